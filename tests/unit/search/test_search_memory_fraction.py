"""The engine's memory setting in a search (``space.memory_fraction``): every pool the
search builds carries it, in the candidates it scores and the deployments it exports, so
the public evaluator agrees with the search."""

import numpy as np
from search_helpers import TINY

from codesign.evaluate import evaluate
from codesign.perf.calibration import load_calibration
from search.batch_eval import EvalContext, evaluate_points
from search.decode import Decoder
from search.driver import build_load
from search.pareto import Objectives
from search.space import Space, take
from search.spec import JobSpec


def test_fraction_reaches_candidates_deployments_and_the_evaluator() -> None:
    space_spec = {**TINY["space"], "decode_systems": ["same"], "memory_fraction": 0.8}
    spec = JobSpec.from_data({**TINY, "space": space_spec})
    space = Space(spec, is_moe=True)
    dec = Decoder(space)
    pts = space.sample(64, np.random.default_rng(5))
    c = dec.candidates(pts).main
    assert (c.mem_fraction == 0.8).all() and (c.p_mem_fraction == 0.8).all()
    ok = np.flatnonzero(dec.candidates(pts).invalid == "")[:6]
    sub = take(pts, ok)
    deps = [dec.deployment(sub, i) for i in range(len(ok))]
    assert all(p.memory_fraction == 0.8 for d in deps for p in d.pools)
    load = build_load(spec)
    n = spec.workload.concurrent_sessions
    ctx = EvalContext(dec, load, n, None, Objectives(spec))
    ctx.calib = load_calibration()
    res, _, _ = evaluate_points(ctx, sub)
    out = evaluate(deps, load, n)
    np.testing.assert_array_equal(res["feasible"], out["feasible"])
    assert out["feasible"].any()
    for m in ("cache_hit_ratio", "ttft_p50_s", "usd_per_mtok_output"):
        np.testing.assert_allclose(out[m], res[m], rtol=1e-9, equal_nan=True, err_msg=m)
    # the default search leaves every pool at the engine's own setting
    plain = Space(JobSpec.from_data(TINY), is_moe=True)
    plain_pts = plain.sample(8, np.random.default_rng(5))
    assert Decoder(plain).candidates(plain_pts).main.mem_fraction is None
    assert Decoder(plain).deployment(plain_pts, 0).pools[0].memory_fraction is None
