"""The storage KV tier as a search dimension: ``nvme`` is the worker's share of its node's
drives, decoded the same way into the candidates the search scores and the deployment
it exports, so the public evaluator agrees with the search."""

import numpy as np
import pytest
from search_helpers import TINY

from codesign.errors import SpecError
from codesign.evaluate import evaluate
from codesign.perf.calibration import load_calibration
from hwmodels import get_system
from search.batch_eval import EvalContext, evaluate_points
from search.decode import Decoder
from search.driver import build_load
from search.pareto import Objectives
from search.space import Space
from search.spec import JobSpec


def _spec(storage: list) -> JobSpec:
    space = {**TINY["space"], "decode_systems": ["same"], "kv_tiers": {"storage": storage}}
    return JobSpec.from_data({**TINY, "space": space})


def test_unknown_storage_choice_is_refused() -> None:
    with pytest.raises(SpecError, match="unknown storage tier .ssd."):
        _spec(["none", "ssd"])


def test_a_space_without_storage_has_no_storage_dimension() -> None:
    assert "storage" not in Space(JobSpec.from_data(TINY), is_moe=True).by_name


def test_nvme_choice_decodes_to_the_node_share_and_evaluates_like_the_search() -> None:
    spec = _spec(["none", "nvme", 500.0])
    space = Space(spec, is_moe=True)
    dec = Decoder(space)
    pts = space.sample(96, np.random.default_rng(3))
    cands = dec.candidates(pts)
    ok = np.flatnonzero(cands.invalid == "")
    choice = space.values(pts, "storage")
    c = cands.main
    for i in ok[:40]:
        d = dec.deployment(pts, int(i))
        gb = d.kv_tiers.storage_gb_per_worker
        assert gb == pytest.approx(float(c.storage_gb[i]))
        if choice[i] == "nvme":
            # the pool that holds the prefix cache: agg, or prefill (the first pool)
            s = get_system(d.pools[0].system)
            par = d.pools[0].parallel
            assert gb == pytest.approx(s.storage_kv_gb_per_chip * par.tp * par.dp * par.pp)
            assert gb > 0
        else:
            assert gb == (0.0 if choice[i] == "none" else 500.0)
    load = build_load(spec)
    ctx = EvalContext(dec, load, spec.workload.concurrent_sessions, None, Objectives(spec))
    ctx.calib = load_calibration()
    pick = ok[[choice[j] == "nvme" for j in ok]][:3]
    assert len(pick) >= 2
    from search.space import take

    sub = take(pts, pick)
    res, _, _ = evaluate_points(ctx, sub)
    deps = [dec.deployment(sub, i) for i in range(len(pick))]
    out = evaluate(deps, load, spec.workload.concurrent_sessions)
    for m in ("cache_hit_ratio_storage", "ttft_p50_s", "usd_per_mtok_output"):
        np.testing.assert_allclose(out[m], res[m], rtol=1e-9, err_msg=m)
