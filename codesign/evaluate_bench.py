"""`codesign bench evaluate`: agent-workload evaluations per second (struct-of-arrays path).

The mix: DeepSeek-R1 deployments on five systems, agg and disagg, workers 1-16, tp 4/8,
host KV tier 0-200 GB, three routers, on a synthetic Claude-Code fleet workload.
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np

from codesign.candidates import ROUTERS, from_deployments
from codesign.deployment import Deployment
from codesign.evaluate import evaluate_arrays
from codesign.perf.calibration import load_calibration
from codesign.workload.agent_load import agent_load, session_gaps
from codesign.workload.summary import summarize
from codesign.workload.synth import generate, preset

SYSTEMS = ("gb200", "gb300", "b200_sxm", "h200_sxm", "vera_rubin_nvl72")


def bench_evaluate(
    candidates: int = 100_000, sessions: int = 40, seed: int = 0, repeats: int = 3
) -> dict[str, float]:
    trace = generate(
        preset("claude-code-fleet").model_copy(update={"sessions": sessions, "seed": seed})
    )
    load = agent_load(summarize(trace), session_gaps(trace), merge_tiers=True)
    deps = []
    for system in SYSTEMS:
        deps.append(
            Deployment.model_validate(
                {
                    "model": "deepseek-ai/DeepSeek-R1",
                    "precision": {"gemm": "fp8", "moe": "fp8"},
                    "pools": [{"role": "agg", "system": system, "parallel": {"tp": 8}}],
                }
            )
        )
        deps.append(
            Deployment.model_validate(
                {
                    "model": "deepseek-ai/DeepSeek-R1",
                    "mode": "disagg",
                    "precision": {"gemm": "fp8", "moe": "fp8"},
                    "pools": [
                        {"role": "prefill", "system": system, "parallel": {"tp": 8}},
                        {
                            "role": "decode",
                            "system": system,
                            "parallel": {"tp": 1, "dp": 8, "ep": 8},
                        },
                    ],
                }
            )
        )
    base = from_deployments(deps)
    rng = np.random.default_rng(seed)
    pick = rng.integers(0, len(deps), candidates)
    c = base.subset(pick)
    c = dataclasses.replace(
        c,
        workers=rng.integers(1, 17, candidates),
        tp=np.where(c.mode == "agg", rng.choice([4, 8], candidates), c.tp),
        host_gb=rng.choice([0.0, 100.0, 200.0], candidates),
        router=rng.integers(0, len(ROUTERS), candidates),
    )
    calib = load_calibration()
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = evaluate_arrays(c, load, 500, calib)
        best = min(best, time.perf_counter() - t0)
    return {
        "candidates": float(candidates),
        "seconds": best,
        "candidates_per_s": candidates / best,
        "feasible_fraction": float(np.mean(out["feasible"])),
    }
