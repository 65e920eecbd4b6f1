"""Hypothetical chips are priced by the knob cost model in the search, and the priced rate
travels with the decoded deployment, so the public evaluator agrees with the search."""

import numpy as np
import pytest
from search_helpers import TINY

from codesign.evaluate import evaluate
from hwmodels import derive_system, get_system
from search.decode import Decoder
from search.driver import build_load
from search.space import Space, take
from search.spec import JobSpec

HW = {"base": "vera_rubin_nvl72", "hbm_bandwidth_tb_s": [13, 60], "sram_mb": [0, 1024]}


def _spec(pricing: str) -> JobSpec:
    space = {**TINY["space"], "systems": ["custom"], "decode_systems": ["same"]}
    space["hardware"] = {**HW, "pricing": pricing}
    return JobSpec.from_data({**TINY, "space": space})


@pytest.mark.parametrize("pricing", ["model", "base"])
def test_priced_deployments_evaluate_like_the_search(pricing, shared_dir) -> None:
    spec = _spec(pricing)
    space = Space(spec, is_moe=True)
    dec = Decoder(space)
    pts = space.sample(64, np.random.default_rng(1))
    valid = dec.candidates(pts).invalid == ""  # e.g. ep dividing tp x dp
    custom = np.flatnonzero((space.values(pts, "system") == "custom") & valid)[:6]
    assert len(custom) >= 4
    pts = take(pts, custom)
    load = build_load(spec)
    from search.batch_eval import EvalContext, evaluate_points
    from search.pareto import Objectives

    ctx = EvalContext(dec, load, spec.workload.concurrent_sessions, None, Objectives(spec))
    from codesign.perf.calibration import load_calibration

    ctx.calib = load_calibration()
    res, _, _ = evaluate_points(ctx, pts)
    deps = [dec.deployment(pts, i) for i in range(len(custom))]
    base = get_system("vera_rubin_nvl72")
    for i, d in enumerate(deps):
        hw = d.pools[0].hardware
        knobs = {k: v for k, v in hw.items() if k != "usd_per_chip_hour"}
        if pricing == "model":  # the rate is the cost model's for these knobs
            want = derive_system(base, set=knobs, reprice=True).price_usd_per_chip_hour
            assert hw["usd_per_chip_hour"] == pytest.approx(want, rel=1e-9)
            assert want > base.price_usd_per_chip_hour or knobs["hbm_bandwidth_tb_s"] <= 22
        else:
            assert "usd_per_chip_hour" not in hw
        out = evaluate([d], load, spec.workload.concurrent_sessions)
        for m in ("usd_per_hour", "usd_per_mtok_output", "tokens_per_s_per_user"):
            np.testing.assert_allclose(out[m][0], res[m][i], rtol=1e-9, err_msg=m)
