"""`codesign estimate`: one deployment point from the performance model (TTFT, TPOT,
throughput, cost, and the error band the calibration carries for its mode and engine)."""

from __future__ import annotations

from pathlib import Path

import typer

from codesign.cli.common import JSON_OPTION, print_json, print_table


def estimate_command(
    model: str = typer.Option(..., "--model", "-m", help="Hugging Face id or config path."),
    system: str = typer.Option(..., "--system", "-s", help="System name, e.g. h200_sxm."),
    mode: str = typer.Option("agg", help="agg | disagg | afd"),
    decode_system: str = typer.Option(
        None, help="Decode-pool system (disagg) or FFN-pool system (afd); may differ."
    ),
    engine: str = typer.Option("trtllm", help="Serving engine: trtllm | vllm | sglang."),
    tp: int = typer.Option(1, min=1, help="Tensor parallel size per worker."),
    pp: int = typer.Option(1, min=1, help="Pipeline parallel size."),
    ep: int = typer.Option(0, min=0, help="Expert parallel size (0: tp x dp for MoE)."),
    dp: int = typer.Option(1, min=1, help="Attention data-parallel ranks per worker."),
    batch: int = typer.Option(8, min=1, help="Concurrent clients per attention-DP rank."),
    isl: int = typer.Option(4096, min=1, help="Input tokens per request."),
    osl: int = typer.Option(512, min=1, help="Output tokens per request."),
    prefix_hit: float = typer.Option(0.0, min=0.0, max=0.999, help="Cached prompt fraction."),
    host_share: float = typer.Option(
        0.0, min=0.0, max=1.0, help="Part of the cached prefix loaded from host memory."
    ),
    storage_share: float = typer.Option(
        0.0, min=0.0, max=1.0, help="Part of the cached prefix read from the node's NVMe."
    ),
    shared_share: float = typer.Option(
        0.0, min=0.0, max=1.0, help="Part of the cached prefix read from a shared KV store."
    ),
    shared_read_gb_s: float = typer.Option(
        0.0, min=0.0, help="The shared KV store's aggregate read bandwidth, GB/s."
    ),
    precision: str = typer.Option(None, help="GEMM weight precision (e.g. fp8, nvfp4)."),
    moe_precision: str = typer.Option(None, help="Expert weight precision."),
    prefill_workers: int = typer.Option(1, min=1, help="Prefill workers (disagg)."),
    decode_workers: int = typer.Option(1, min=1, help="Decode workers (disagg)."),
    set_: list[str] = typer.Option(None, "--set", help="Hardware override KNOB=VALUE."),
    spec: str = typer.Option("none", help="Speculative decoding: none | mtp | eagle."),
    draft_tokens: int = typer.Option(0, min=0, max=16, help="Draft tokens per verify step."),
    acceptance: float = typer.Option(0.7, min=0.0, max=0.999, help="Draft acceptance rate."),
    ffn_chips: int = typer.Option(8, min=1, help="AFD: chips of the FFN/expert pool."),
    micro_batches: int = typer.Option(2, min=1, max=8, help="AFD: ping-pong micro-batches."),
    arrival_rate: float = typer.Option(
        None, min=0.0, help="Open loop: offered requests/s (default: closed-loop --batch)."
    ),
    cuda_graphs: bool = typer.Option(
        True,
        "--cuda-graphs/--eager",
        help="Decode steps replayed as CUDA graphs (the engines' default), or launched "
        "eagerly kernel by kernel (vLLM --enforce-eager, SGLang --disable-cuda-graph).",
    ),
    adp_balance_iters: int = typer.Option(
        0,
        min=0,
        help="TRT-LLM attention-DP balancing (attention_dp_config.enable_balance) with this "
        "timeout in iterations; 0: off (TRT-LLM's default). The DEP recipes use 60.",
    ),
    memory_fraction: float = typer.Option(
        None,
        help="The engine's memory setting for every pool: vLLM --gpu-memory-utilization, "
        "SGLang --mem-fraction-static, TRT-LLM free_gpu_memory_fraction (default: the "
        "engine's own; the estimate reports it as kv_memory_setting).",
    ),
    breakdown: bool = typer.Option(
        False,
        "--breakdown",
        help="Also show where the time goes: one decode step and the request's prefill by "
        "component (GEMMs, experts, attention, communication, element-wise, fixed), and "
        "TTFT's parts (ms).",
    ),
    calibration: Path = typer.Option(None, help="Calibration file (default: packaged)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Estimate one deployment point: TTFT, TPOT, tokens/s per user and per GPU, cost."""
    from codesign.perf.calibration import load_calibration
    from codesign.perf.estimate import EstimateRequest, estimate
    from hwmodels.derive import parse_assignments

    req = EstimateRequest(
        model=model,
        system=system,
        mode=mode,
        decode_system=decode_system,
        engine=engine,
        tp=tp,
        pp=pp,
        dp=dp,
        ep=ep,
        batch=batch,
        isl=isl,
        osl=osl,
        prefix_hit=prefix_hit,
        host_share=host_share,
        storage_share=storage_share,
        shared_share=shared_share,
        shared_read_gb_s=shared_read_gb_s,
        gemm_precision=precision,
        moe_precision=moe_precision,
        prefill_workers=prefill_workers,
        decode_workers=decode_workers,
        hardware_overrides=parse_assignments(set_),
        spec_method=spec,
        draft_tokens=draft_tokens,
        acceptance=acceptance,
        ffn_chips=ffn_chips,
        micro_batches=micro_batches,
        arrival_rate=arrival_rate or None,
        cuda_graphs=cuda_graphs,
        adp_balance_iters=adp_balance_iters,
        memory_fraction=memory_fraction,
        breakdown=breakdown,
    )
    result = estimate(req, load_calibration(calibration))
    if as_json:
        print_json(result)
        return
    parts = result.pop("breakdown", None)
    print_table(
        f"{model} on {system} ({mode}, {engine}{'' if cuda_graphs else ', eager'})",
        ["metric", "value"],
        list(result.items()),
    )
    if parts:
        names = list(dict.fromkeys(k for group in parts.values() for k in group if k != "total"))
        print_table(
            "where the time goes (ms)",
            ["part", *parts],
            [[k, *(group.get(k, "") for group in parts.values())] for k in [*names, "total"]],
        )
