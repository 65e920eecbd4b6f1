"""`codesign bench simulate`: simulated requests per second of the event loop (one core)."""

from __future__ import annotations

import time

from codesign.deployment import Deployment

BENCH_DEPLOYMENT = """
model: deepseek-ai/DeepSeek-R1
mode: agg
engine: trtllm
precision: {gemm: nvfp4, moe: nvfp4, kv: fp8}
pools: [{role: agg, system: gb200, workers: 4, parallel: {tp: 8}}]
kv_tiers: {host_gb_per_worker: 200}
router: kv_aware
"""


def bench_simulate(
    requests: int = 200_000, seed: int = 0, sessions: int = 64, trace_sessions: int = 100
) -> dict[str, float | int | str]:
    """Replay a synthetic fleet trace (``claude-code-fleet``) on a 4-worker agg deployment
    until about ``requests`` requests have run; report simulated requests per second of
    wall time (set-up, i.e. tabulating the step model and planning, timed separately)."""
    from codesign.simulate import SimOptions, Simulator, native
    from codesign.simulate.metrics import aggregate, request_table
    from codesign.workload.synth import generate, preset

    trace = generate(preset("claude-code-fleet").with_overrides(sessions=trace_sessions, seed=seed))
    per_session = trace.n_requests / max(trace.n_sessions, 1)
    total = max(int(requests / per_session), sessions)
    dep = Deployment.from_yaml(BENCH_DEPLOYMENT)
    t0 = time.perf_counter()
    sim = Simulator(dep, trace, SimOptions(sessions=sessions, total_sessions=total, seed=seed))
    t1 = time.perf_counter()
    sim.run()
    t2 = time.perf_counter()
    aggregate(sim, request_table(sim))
    t3 = time.perf_counter()
    n = len(sim.req)
    loop_s = t2 - t1
    return {
        "deployment": "DeepSeek-R1 agg, 4 x GB200 TP8, kv_aware, host tier",
        "implementation": native.implementation(),
        "trace": f"claude-code-fleet, {trace.n_sessions} sessions, seed {seed}",
        "concurrent_sessions": sessions,
        "simulated_requests": n,
        "events": sim.seq,
        "setup_s": round(t1 - t0, 4),
        "loop_s": round(loop_s, 4),
        "metrics_s": round(t3 - t2, 4),
        "requests_per_s": round(n / loop_s, 1),
        "requests_per_s_end_to_end": round(n / (t3 - t0), 1),
        "target_requests_per_s": 100_000,
    }
