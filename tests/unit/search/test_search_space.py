import numpy as np
from search_helpers import TINY

from search.space import Space, row_keys
from search.spec import JobSpec


def test_count_by_hand(tiny_spec):
    space = Space(tiny_spec, is_moe=True)
    # common dims: gemm 2 x kv 1 x spec 2 x host 1 x router 1 x tp 2 x ep 1 x dp 2 x workers 2
    common = 2 * 1 * 2 * 1 * 1 * 2 * 1 * 2 * 2  # 32
    agg = 2 * common  # two systems
    # disagg: 2 systems x decode {same, groq3_lpx} x prefill pool (tp 2 x ep 1 x dp 2 x w 2)
    disagg = 2 * 2 * common * 8
    assert space.count() == agg + disagg == 1088
    pts = space.enumerate()
    assert len(np.unique(row_keys(pts))) == space.count()


def test_conditional_dims_dense_model_and_decode_system(tiny_spec):
    dense = Space(tiny_spec.model_copy(update={"model": "Qwen/Qwen3-32B"}), is_moe=False)
    assert "ep" not in dense.by_name and "p_ep" not in dense.by_name
    pts = dense.enumerate()
    agg = dense.values(pts, "mode") == "agg"
    assert (pts["decode_system"][agg] == -1).all() and (pts["p_tp"][agg] == -1).all()
    assert (pts["decode_system"][~agg] >= 0).all()


def test_hardware_knobs_only_on_custom_rows():
    data = {
        **TINY,
        "space": {
            **TINY["space"],
            "hardware": {
                "base": "vera_rubin_nvl72",
                "hbm_bandwidth_tb_s": [13, 30],
                "scale_up_domain": [8, 576],
            },
        },
    }
    spec = JobSpec.from_data(data)
    space = Space(spec, is_moe=True)
    assert "custom" in spec.space.systems
    pts = space.sample(2000, np.random.default_rng(0))
    custom = space.values(pts, "system") == "custom"
    knob = pts["hw.hbm_bandwidth_tb_s"]
    assert (
        np.isfinite(knob[custom]).all()
        and np.isnan(knob[~custom & (space.values(pts, "mode") == "agg")]).all()
    )
    assert ((knob[custom] >= 13) & (knob[custom] <= 30)).all()
