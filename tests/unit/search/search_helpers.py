"""Shared search-test data (a tiny job spec) and helpers."""

from search.spec import JobSpec

TINY = {
    "name": "tiny",
    "model": "deepseek-ai/DeepSeek-R1",
    "workload": {
        "synth": {"preset": "claude-code-fleet", "sessions": 8},
        "concurrent_sessions": 200,
    },
    "space": {
        "systems": ["h200_sxm", "gb200"],
        "decode_systems": ["same", "groq3_lpx"],
        "precision": {"gemm": ["fp8", "nvfp4"]},
        "parallelism": {"tp": [1, 8], "ep": [8], "dp": [1, 8], "workers": [1, 4]},
        "spec_decoding": ["none", "mtp3"],
    },
    "objectives": [
        "max tokens_per_s_per_user",
        "max tokens_per_s_per_gpu",
        "min usd_per_mtok_output",
    ],
    "constraints": {"ttft_p90_s": {"max": 5.0}},
    "strategy": {"sampler": "exhaustive", "budget": 100000},
}


def with_strategy(spec: JobSpec, **kw) -> JobSpec:
    return spec.model_copy(update={"strategy": spec.strategy.model_copy(update=kw)})
