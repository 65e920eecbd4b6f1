"""Conservation, determinism, monotonicity and bad input of the simulator."""

from __future__ import annotations

import numpy as np
import pytest
from sim_helpers import qwen_agg

from codesign.deployment import Deployment
from codesign.errors import CodesignError, SpecError
from codesign.simulate import SimOptions, Simulator, simulate


def test_every_request_finishes_once_and_tokens_are_conserved(tool_trace):
    sim = Simulator(qwen_agg(2), tool_trace, SimOptions(sessions=8, total_sessions=40))
    sim.run()
    req = sim.req
    counts = sim.plan.requests_per_session
    want = int(sum(counts[s] for s in sim.copy_session))
    assert len(req) == want  # every request of every started session was sent once
    assert np.all(np.isfinite(req.t_finish)) and np.all(np.isfinite(req.t_first))
    pairs = set(zip(req.trace_idx, req.copy, strict=True))
    assert len(pairs) == len(req)  # ... and only once
    # tokens in: every prompt token is either a cache hit or prefilled, exactly
    assert req.pf_done == req.n_in
    assert all(x <= 0 for x in req.pf_left)
    trace_in = sum(int(tool_trace.input_tokens[r]) for r in req.trace_idx)
    assert sum(req.n_in) == trace_in
    # tokens out: every worker's KV reservations were released, nothing is left running
    for w in sim.parts[0].workers:
        assert w.kv_used == 0 and w.n_dec == 0 and not w.dec and not w.pf_active
    assert all(np.isfinite(sim.copy_end))
    t = np.asarray(req.t_finish) - np.asarray(req.t_issue)
    assert np.all(t > 0)


def test_same_seed_same_result_other_seed_other_order(tool_trace):
    a = simulate(qwen_agg(2), tool_trace, 6, total_sessions=30, seed=1)
    b = simulate(qwen_agg(2), tool_trace, 6, total_sessions=30, seed=1)
    c = simulate(qwen_agg(2), tool_trace, 6, total_sessions=30, seed=2)
    for k in ("trace_idx", "t_finish", "worker", "cached"):
        np.testing.assert_array_equal(a.requests[k], b.requests[k])
    np.testing.assert_equal(a.metrics, b.metrics)
    assert not np.array_equal(a.requests["trace_idx"], c.requests["trace_idx"])


@pytest.mark.parametrize("router", ["session_affinity", "kv_aware"])
def test_more_workers_never_slower(tool_trace, router):
    # each of the 24 lanes plays one session, the same ones whatever the worker count.
    # (Not round robin: with more workers a session's next request more often misses the
    # worker holding its prefix, which can cost more than the extra engines save.)
    slack = 1.0
    spans, responses = [], []
    for w in (1, 2, 4):
        sim = Simulator(qwen_agg(w, router), tool_trace, SimOptions(sessions=24, total_sessions=24))
        sim.run()
        spans.append(np.mean(np.asarray(sim.copy_end) - np.asarray(sim.copy_start)))
        responses.append(np.mean(np.asarray(sim.req.t_finish) - np.asarray(sim.req.t_issue)))
    assert spans[0] * slack >= spans[1] and spans[1] * slack >= spans[2]
    assert responses[0] * slack >= responses[1] and responses[1] * slack >= responses[2]
    assert responses[0] > responses[2] * 1.1  # and the load is heavy enough to show it


def _qwen_disagg(prefill_workers: int, router: str) -> Deployment:
    """Qwen3-32B on H200s: TP2 prefill workers, two TP2 decode workers."""
    return Deployment.from_yaml(f"""
model: Qwen/Qwen3-32B
mode: disagg
precision: {{kv: fp8}}
pools:
  - {{role: prefill, system: h200_sxm, workers: {prefill_workers}, parallel: {{tp: 2}}}}
  - {{role: decode, system: h200_sxm, workers: 2, parallel: {{tp: 2}}}}
router: {router}
""")


def test_disaggregated_deployment_runs_and_pays_the_kv_transfer(tool_trace):
    res = simulate(_qwen_disagg(1, "kv_aware"), tool_trace, 8, total_sessions=30)
    assert np.all(np.isfinite(res.requests["t_finish"]))
    assert res.metrics["chips"] == 6
    assert np.nanmin(res.requests["ttft_s"]) > 0
    assert res.metrics["cache_hit_ratio"] > 0.2


def test_disaggregated_prefix_cache_is_on_the_prefill_workers(tool_trace):
    """The router places a request on a prefill worker, whose cache (session affinity:
    the copy's home, ``copy % 2``) holds its prefix; the decode workers hold no cache and
    take the whole context's KV by load, so both serve."""
    dep = _qwen_disagg(2, "session_affinity")
    sim = Simulator(dep, tool_trace, SimOptions(sessions=8, total_sessions=30))
    sim.run()
    part = sim.parts[0]
    assert part.cache_workers is part.pf_workers
    assert all(w.cache is None for w in part.workers)
    for w in part.pf_workers:
        assert w.cache.tot  # type: ignore[union-attr]
        assert {k // sim.stride % 2 for k in w.cache.tot} == {w.index}  # type: ignore[union-attr]
    for w in (*part.workers, *part.pf_workers):
        assert w.kv_used == 0 and w.n_dec == 0 and not w.pf_active
    req = sim.req
    assert sum(req.cached) > 0.2 * sum(req.n_in)
    decoded = [w for w, n in zip(req.worker, req.n_out, strict=True) if n > 1]
    assert set(decoded) == {0, 1}


def test_unknown_system_is_named(tool_trace):
    dep = Deployment.from_yaml("model: Qwen/Qwen3-32B\npools: [{role: agg, system: no_such_gpu}]\n")
    with pytest.raises(CodesignError, match="no_such_gpu"):
        simulate(dep, tool_trace, 4)


def test_impossible_deployment_says_why(tool_trace):
    dep = Deployment.from_yaml(
        "model: deepseek-ai/DeepSeek-R1\nprecision: {gemm: bf16, moe: bf16}\n"
        "pools: [{role: agg, system: h200_sxm, parallel: {tp: 1}}]\n"
    )
    with pytest.raises(SpecError, match="weights need .* GB per GPU"):
        simulate(dep, tool_trace, 4)
    bad_tp = Deployment.from_yaml(
        "model: Qwen/Qwen3-32B\npools: [{role: agg, system: h200_sxm, parallel: {tp: 3}}]\n"
    )
    with pytest.raises(SpecError, match="tp=3 does not divide"):
        simulate(bad_tp, tool_trace, 4)


def test_empty_trace_is_an_error(tool_trace):
    empty = tool_trace.select_sessions([])
    with pytest.raises(SpecError, match="no requests"):
        simulate(qwen_agg(1), empty, 4)
