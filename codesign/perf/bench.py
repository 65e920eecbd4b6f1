"""`codesign bench perf`: candidate evaluations per second on a realistic mix.

The mix: four model families (MLA MoE, GQA MoE with sliding windows, dense 70B, dense 32B),
every GPU system of the catalog, agg and disagg, tp/dp/ep, batch, ISL and OSL drawn at
random; only layouts whose head and expert counts divide are kept. Timing covers the
evaluator proper (step model + closed-loop serving), after per-model preparation.
"""

from __future__ import annotations

import time

import numpy as np

from codesign.models import kv_elements_per_token, load_model
from codesign.perf.calibration import load_calibration
from codesign.perf.engine import byte_sizes
from codesign.perf.hardware import hw_vectors
from codesign.perf.predict import Group, evaluate_group
from codesign.perf.profile import build_profile
from codesign.validation.silicon import INT_FIELDS, STR_FIELDS, SiliconRows

BENCH_MODELS = (
    "deepseek-ai/DeepSeek-R1",
    "openai/gpt-oss-120b",
    "meta-llama/Llama-3.1-70B",
    "Qwen/Qwen3-32B",
)
BENCH_SYSTEMS = (
    "h100_sxm",
    "h200_sxm",
    "b200_sxm",
    "b300_sxm",
    "gb200",
    "gb300",
    "vera_rubin_nvl72",
    "mi355x",
)


def _mix(model: str, n: int, rng: np.random.Generator) -> tuple[Group, int]:
    arch = load_model(model)
    prof = build_profile(arch)
    tp = rng.choice([1, 2, 4, 8], n)
    dp = np.where(prof.is_moe, rng.choice([1, 2, 4, 8], n), 1)
    gpus = tp * dp
    ok = (prof.num_heads % tp == 0) & ((not prof.is_moe) | (prof.num_experts % gpus == 0))
    tp, dp, gpus = tp[ok], dp[ok], gpus[ok]
    m = len(tp)
    agg = rng.random(m) < 0.6
    ints = {k: np.zeros(m, dtype=np.int64) for k in INT_FIELDS}
    ints["isl"] = rng.choice([1024, 4096, 8192, 32768, 131072], m)
    ints["osl"] = rng.choice([128, 512, 1024, 4096], m)
    batch = rng.choice([1, 4, 16, 64, 256], m)
    moe_ep = np.where(prof.is_moe, gpus, 0)
    moe_tp = np.where(prof.is_moe, 1, 0)
    for name, vals in (
        ("batch", batch),
        ("tp", tp),
        ("pp", np.ones(m, int)),
        ("dp", dp),
        ("moe_tp", moe_tp),
        ("moe_ep", moe_ep),
    ):
        ints[name] = np.where(agg, vals, 0)
        for ph in ("p", "d"):
            ints[f"{ph}_{name}"] = np.where(
                agg, 0, vals if name != "batch" else (1 if ph == "p" else batch)
            )
    ints["p_workers"] = np.where(agg, 0, rng.choice([1, 2, 4], m))
    ints["d_workers"] = np.where(agg, 0, 1)
    ints["concurrency"] = batch * dp
    strs = {k: np.full(m, "", dtype=object) for k in STR_FIELDS}
    strs["id"] = np.arange(m).astype(str).astype(object)
    strs["backend"] = rng.choice(np.array(["trtllm", "vllm", "sglang"], dtype=object), m)
    strs["model"] = np.full(m, model, dtype=object)
    strs["system"] = rng.choice(np.array(BENCH_SYSTEMS, dtype=object), m)
    strs["mode"] = np.where(agg, "agg", "disagg").astype(object)
    rows = SiliconRows(**ints, **strs, ttft_ms=np.full(m, np.nan), tpot_ms=np.full(m, np.nan))
    gemm = np.where(np.isin(strs["system"], ["h100_sxm", "h200_sxm", "mi355x"]), "fp8", "nvfp4")
    kv = np.full(m, "fp8")
    group = Group(
        index=np.arange(m),
        rows=rows,
        prof=prof,
        kv_elems_per_token=float(kv_elements_per_token(arch)),
        hw=hw_vectors(list(strs["system"]), list(gemm), list(gemm)),
        nb=byte_sizes(list(gemm), list(gemm), list(kv)),
    )
    return group, m


def bench_perf(candidates: int = 100_000, seed: int = 0, repeats: int = 3) -> dict[str, float]:
    rng = np.random.default_rng(seed)
    calib = load_calibration()
    per_model = candidates // len(BENCH_MODELS)
    groups = [_mix(m, per_model, rng) for m in BENCH_MODELS]
    total = sum(n for _, n in groups)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        for g, _n in groups:
            out = evaluate_group(g, calib)
        best = min(best, time.perf_counter() - t0)
    finite = float(np.isfinite(out["ttft_s"]).mean())
    return {
        "candidates": float(total),
        "seconds": best,
        "candidates_per_s": total / best,
        "models": float(len(groups)),
        "finite_fraction_last_model": finite,
    }
