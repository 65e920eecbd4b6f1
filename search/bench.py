"""Sample efficiency of the search strategies on a space small enough to enumerate.

The exhaustive front's hypervolume is the reference; each strategy gets ``fraction`` of
the space's size as its budget and is scored by the share of that hypervolume it reaches
(target for ``auto``: >= 99 % with <= 5 % of the evaluations) and by its end-to-end
evaluations per second.
"""

from __future__ import annotations

import time
from typing import Any

from search.spec import JobSpec

BENCH_SPEC: dict[str, Any] = {
    "name": "bench-search",
    "model": "deepseek-ai/DeepSeek-R1",
    "workload": {
        "synth": {"preset": "claude-code-fleet", "sessions": 20, "seed": 0},
        "concurrent_sessions": 500,
    },
    "space": {
        "systems": ["h200_sxm", "b200_sxm", "gb200", "gb300", "vera_rubin_nvl72"],
        "decode_systems": ["same", "groq3_lpx"],
        "modes": ["agg", "disagg"],
        "precision": {"gemm": ["fp8", "nvfp4"], "kv": ["fp8"]},
        "parallelism": {
            "tp": [1, 4, 8],
            "ep": [8, 32],
            "dp": [1, 8, 32],
            "workers": [1, 2, 4, 8],
            "prefill": {"tp": [4, 8], "ep": [8], "dp": [1, 8], "workers": [1, 4]},
        },
        "spec_decoding": ["none", "mtp1", "mtp3"],
        "kv_tiers": {"host": ["none", "host_memory"]},
    },
    "objectives": [
        "max tokens_per_s_per_user",
        "max tokens_per_s_per_gpu",
        "min usd_per_mtok_output",
    ],
    # 20 s: with M/G/1 queueing of agent prefills (a few whole-context prefills among many
    # small ones) a 10 s p90 leaves 1.7 % of this space feasible, its front's cheapest
    # point at 9.9 s: a needle, not a landscape to compare samplers on
    "constraints": {"ttft_p90_s": {"max": 20.0}},
}


def bench_search(
    samplers: tuple[str, ...] = ("auto", "tpe", "nsga2", "random"),
    fraction: float = 0.05,
    seed: int = 0,
    spec: dict[str, Any] | None = None,
    max_evaluations: dict[str, int] | None = None,
) -> dict[str, Any]:
    """Hypervolume share of the exhaustive front per sampler at ``fraction`` of the space.

    ``max_evaluations`` caps a sampler's budget (TPE costs ~40-70 ms per trial).
    """
    from search.driver import Search, build_load

    base = JobSpec.from_data(spec or BENCH_SPEC, "bench spec")
    load = build_load(base)

    def with_strategy(**kw: Any) -> JobSpec:
        st = base.strategy.model_copy(update={"seed": seed, **kw})
        return base.model_copy(update={"strategy": st})

    probe = Search(with_strategy(sampler="exhaustive"), load=load)
    size = probe.space.count()
    probe.spec = with_strategy(sampler="exhaustive", budget=size)
    t0 = time.perf_counter()
    exact = probe.run()
    t_ex = time.perf_counter() - t0
    out: dict[str, Any] = {
        "space_size": size,
        "exhaustive": {
            "hypervolume": exact.hypervolume,
            "pareto_size": len(exact.front),
            "seconds": t_ex,
            "evaluations_per_s": size / t_ex,
        },
    }
    caps = max_evaluations or {"tpe": 2000}
    for name in samplers:
        budget = max(int(size * fraction), 1)
        budget = min(budget, caps.get(name, budget))
        t0 = time.perf_counter()
        res = Search(with_strategy(sampler=name, budget=budget), load=load).run()
        dt = time.perf_counter() - t0
        out[name] = {
            "evaluations": res.evaluations,
            "fraction_of_space": res.evaluations / size,
            "hypervolume_share": res.hypervolume / exact.hypervolume if exact.hypervolume else 0,
            "pareto_size": len(res.front),
            "seconds": dt,
            "evaluations_per_s": res.evaluations / dt,
        }
    return out


def bench_ray_verify(points: int = 8, budget: int = 2000, num_cpus: int | None = None) -> dict:
    """Speed-up of ``executor: ray`` over inline for simulation-fidelity evaluation: the
    bundled agentic-coding job's ``points`` best front points simulated (``verify_top``)
    inline, then as Ray tasks on a private local Ray (its start-up timed apart), with a
    check that both give the same simulated metrics."""
    from pathlib import Path

    import numpy as np

    from search.driver import Search, build_load
    from search.executor import InlineExecutor, RayExecutor
    from search.verify import verify

    path = Path(__file__).resolve().parents[1] / "examples" / "agentic-coding.yaml"
    spec = JobSpec.from_file(path)
    st = spec.strategy.model_copy(update={"budget": budget, "verify_top": 0})
    search = Search(spec.model_copy(update={"strategy": st}), load=build_load(spec))
    result = search.run()
    search.spec = spec.model_copy(update={"strategy": st.model_copy(update={"verify_top": points})})
    t0 = time.perf_counter()
    verify(search, result, InlineExecutor())
    inline_s = time.perf_counter() - t0
    inline = [p.metrics_simulated for p in result.front]
    t0 = time.perf_counter()
    ex = RayExecutor(num_cpus=num_cpus)
    start_s = time.perf_counter() - t0
    try:
        t0 = time.perf_counter()
        verify(search, result, ex)
        ray_s = time.perf_counter() - t0
        workers = ex.workers
    finally:
        ex.close()
    pairs = zip(inline, [p.metrics_simulated for p in result.front], strict=True)
    same = all(
        (a is None and b is None)
        or (
            a is not None
            and b is not None
            and np.allclose([a[m] for m in sorted(a)], [b[m] for m in sorted(a)], equal_nan=True)
        )
        for a, b in pairs
    )
    return {
        "points_simulated": points,
        "ray_workers": workers,
        "inline_s": round(inline_s, 2),
        "ray_s": round(ray_s, 2),
        "ray_startup_s": round(start_s, 2),
        "speedup": round(inline_s / ray_s, 2),
        "speedup_with_startup": round(inline_s / (ray_s + start_s), 2),
        "same_results": same,
        "target_speedup": 1.6,
    }
