"""The memory each engine gives its KV cache (``perf.kv_budget``), by hand."""

from __future__ import annotations

import numpy as np
import pytest

from codesign.perf.kv_budget import kv_budget_bytes, sglang_mem_fraction_static

MIB, GIB = 2.0**20, 2.0**30
H100 = 85.521e9  # bytes nvidia-smi reports for an "80 GB" H100
B200 = 192.266e9


def test_sglang_fraction_by_hand() -> None:
    """SGLang's default leaves 512 MiB + 1.5 MiB x 8,192 chunk tokens + 2 MiB x 256 graph
    slots + 1 GiB per 8 GPUs, at least 10 GiB on a GPU over 60 GB, 2 GiB more for a draft
    model, and rounds the fraction to 3 decimals."""

    def frac(reserved_mib: float, mem: float) -> float:
        return round(1 - reserved_mib * MIB / mem, 3)

    tp8 = 512 + 12_288 + 512 + 1024  # 14 GiB
    assert sglang_mem_fraction_static(H100, 8) == frac(tp8, H100) == 0.824
    assert sglang_mem_fraction_static(B200, 1) == frac(512 + 12_288 + 512 + 128, B200)
    # attention DP over 8 ranks (SGLang's tp-size 8): + 3 MiB per graph slot per rank
    dep8 = tp8 + 3 * 256 * 8
    assert sglang_mem_fraction_static(H100, 1, dp=8) == frac(dep8, H100) == 0.749
    # an EAGLE / MTP draft model: 2 GiB more
    assert sglang_mem_fraction_static(H100, 8, draft=True) == frac(tp8 + 2048, H100) == 0.799
    # the 10 GiB floor binds for a small chunk on a large GPU, not on a small GPU
    small = 512 + 1.5 * 2048 + 512 + 128
    assert sglang_mem_fraction_static(B200, 1, chunk_tokens=1024) == frac(10 * 1024, B200)
    assert sglang_mem_fraction_static(48e9, 1, chunk_tokens=1024) == frac(small, 48e9)


def test_each_engines_budget_by_hand() -> None:
    """35 GB of weights on an H100 at tp 2: vLLM 0.9 M - W, TRT-LLM 0.9 (0.95 M - W),
    SGLang its fraction of M - W, any other engine 0.95 M - W."""
    w = np.full(4, 35e9)
    one = np.ones(4)
    got = kv_budget_bytes(
        ["vllm", "trtllm", "sglang", "other"], np.full(4, H100), w, 2 * one, one, one
    )
    f = round(1 - (512 + 12_288 + 512 + 256) * MIB / H100, 3)  # SGLang at tp 2: 13,568 MiB
    want = [0.9 * H100 - 35e9, 0.9 * (0.95 * H100 - 35e9), f * H100 - 35e9, 0.95 * H100 - 35e9]
    assert f == 0.834 and got == pytest.approx(want)
    # weights beyond an engine's share do not fit: 79 GB fits TRT-LLM's 95 % (81.2 GB)
    # but not vLLM's 90 % (77.0 GB) nor SGLang's; 82 GB fits none
    engines = ["vllm", "trtllm", "sglang"]
    for gb, fits in ((79e9, [False, True, False]), (82e9, [False, False, False])):
        left = kv_budget_bytes(engines, np.full(3, H100), np.full(3, gb), *[one[:3]] * 3)
        assert list(left > 0) == fits
    # no engine named: the generic reserve
    generic = kv_budget_bytes(None, np.array([H100]), np.array([35e9]), *[one[:1]] * 3)
    assert generic[0] == pytest.approx(0.95 * H100 - 35e9)


def test_estimate_names_the_setting_its_capacity_assumes() -> None:
    """``codesign estimate`` names the engine setting behind ``kv_tokens_per_worker``, the
    one ``codesign export`` writes: SGLang at tp 2 on H100s leaves 13,568 MiB (0.834)."""
    from codesign.perf.estimate import EstimateRequest, estimate

    req = dict(model="meta-llama/Llama-3.1-70B", system="h100_sxm", tp=2, gemm_precision="fp8")
    want = {
        "sglang": f"mem_fraction_static={1 - 13_568 * MIB / H100:.3f}",
        "vllm": "gpu_memory_utilization=0.9",
        "trtllm": "free_gpu_memory_fraction=0.9",
    }
    assert want["sglang"] == "mem_fraction_static=0.834"
    for engine, setting in want.items():
        assert estimate(EstimateRequest(**req, engine=engine))["kv_memory_setting"] == setting
