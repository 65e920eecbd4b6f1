"""`codesign model ...` and `codesign catalog models`."""

from __future__ import annotations

from typing import Any

import typer

from codesign.cli.common import JSON_OPTION, console, print_json, print_table, user_errors
from codesign.models import (
    ModelArch,
    decode_flops,
    fit_report,
    kv_bytes_per_token,
    kv_state_bytes_per_sequence,
    list_models,
    load_model,
    param_counts,
    prefill_flops,
    weight_bytes,
    weight_bytes_breakdown,
)
from hwmodels import get_system
from hwmodels.derive import parse_assignments

model_app = typer.Typer(
    help="Inspect LLM architectures (from Hugging Face config.json).", no_args_is_help=True
)


def show_models(as_json: bool) -> None:
    entries = list_models()
    if as_json:
        print_json([e.model_dump() for e in entries])
        return
    print_table(
        "Models (../shared/models/hf_configs and CODESIGN_MODEL_DIRS)",
        [
            "model",
            "family",
            "params B",
            "active B",
            "KV bytes/token (bf16)",
            "context",
            "weights",
            "note",
        ],
        [
            (
                e.id,
                e.family,
                e.total_params / 1e9 if e.total_params else None,
                e.active_params / 1e9 if e.active_params else None,
                e.kv_bytes_per_token_bf16,
                e.max_context_tokens,
                e.weight_precision,
                (f"alias of {e.alias_of}" if e.alias_of else "")
                + ("" if e.supported else f"unsupported: {e.unsupported_reason}"),
            )
            for e in entries
        ],
    )


def model_summary(
    arch: ModelArch, kv_precision: str, weight_precision: str | None, context_tokens: int
) -> dict[str, Any]:
    counts = param_counts(arch)
    layers: dict[str, int] = {}
    for mixer, ffn in zip(arch.layer_mixers, arch.layer_ffns, strict=True):
        key = f"{mixer}+{ffn}"
        layers[key] = layers.get(key, 0) + 1
    return {
        "id": arch.id,
        "family": arch.family,
        "architecture": arch.architecture,
        "layers": arch.num_layers,
        "layer_kinds": layers,
        "hidden_size": arch.hidden_size,
        "vocab_size": arch.vocab_size,
        "max_context_tokens": arch.max_context_tokens,
        "attention": arch.attention.model_dump() if arch.attention else None,
        # layers whose attention differs: their specs and each layer's spec index
        "extra_attention": [a.model_dump() for a in arch.extra_attention],
        "layer_attention": list(arch.layer_attention),
        "moe": arch.moe.model_dump() if arch.moe else None,
        "params_total": counts.total,
        "params_active": counts.active,
        "params_mtp": counts.mtp,
        "params_breakdown": counts.breakdown(),
        "weight_precision": arch.precision.model_dump(),
        "weight_bytes": weight_bytes(arch, weight_precision),
        "weight_bytes_breakdown": weight_bytes_breakdown(arch, weight_precision, include_mtp=True),
        "kv_precision": kv_precision,
        "kv_bytes_per_token": kv_bytes_per_token(arch, kv_precision),
        "state_bytes_per_sequence": kv_state_bytes_per_sequence(arch),
        "context_tokens": context_tokens,
        "prefill_flops": float(prefill_flops(arch, context_tokens)),
        "decode_flops_per_token": float(decode_flops(arch, context_tokens)),
        "notes": list(arch.notes),
        "source_path": arch.source_path,
    }


@model_app.command("info")
@user_errors
def model_info(
    model: str = typer.Argument(
        ...,
        help="Hugging Face id (e.g. deepseek-ai/DeepSeek-R1) or "
        "a path to a config.json or its folder.",
    ),
    kv_precision: str = typer.Option("bf16", help="KV-cache precision for bytes per token."),
    weight_precision: str = typer.Option(
        None, help="Store GEMM weights in this precision instead of the checkpoint's."
    ),
    context: int = typer.Option(8192, min=1, help="Context length for the FLOPs figures."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Parameters, weight bytes, KV-cache bytes per token and FLOPs of one model."""
    arch = load_model(model)
    s = model_summary(arch, kv_precision, weight_precision, context)
    if as_json:
        print_json(s)
        return
    console.print(f"[bold]{s['id']}[/] ({s['architecture']}, {s['family']})", highlight=False)
    rows = [
        (
            "layers",
            f"{s['layers']}: " + ", ".join(f"{n}x {k}" for k, n in s["layer_kinds"].items()),
        ),
        ("hidden / vocab", f"{s['hidden_size']:,} / {s['vocab_size']:,}"),
        ("context (max)", s["max_context_tokens"]),
        ("params total", f"{s['params_total'] / 1e9:.2f} B"),
        ("params active per token", f"{s['params_active'] / 1e9:.2f} B"),
        ("params MTP (not in total)", f"{s['params_mtp'] / 1e9:.2f} B"),
        ("weights (stored)", f"{s['weight_bytes'] / 1e9:.1f} GB ({arch.precision.source})"),
        (f"KV bytes / token ({kv_precision})", s["kv_bytes_per_token"]),
        ("recurrent state / sequence", s["state_bytes_per_sequence"]),
        (f"prefill FLOPs ({context:,} tokens)", f"{s['prefill_flops']:.3e}"),
        (f"decode FLOPs / token at {context:,}", f"{s['decode_flops_per_token']:.3e}"),
    ]
    print_table("Architecture", ["quantity", "value"], rows)
    print_table(
        "Parameters and weight bytes by component",
        ["component", "params", "GB"],
        [
            (k, v, s["weight_bytes_breakdown"].get(k, 0) / 1e9)
            for k, v in s["params_breakdown"].items()
            if v
        ],
    )
    for note in s["notes"]:
        console.print(f"note: {note}", highlight=False)


@model_app.command("fit")
@user_errors
def model_fit(
    model: str = typer.Argument(..., help="Hugging Face id or path to a config.json."),
    system: str = typer.Option(..., "--system", "-s", help="System name, e.g. h200_sxm."),
    chips: int = typer.Option(None, min=1, help="Chips used (default: max(tp x pp, ep x pp))."),
    tp: int = typer.Option(1, min=1, help="Tensor parallel size."),
    pp: int = typer.Option(1, min=1, help="Pipeline parallel size."),
    ep: int = typer.Option(1, min=1, help="Expert parallel size."),
    weight_precision: str = typer.Option(None, help="GEMM weight precision override."),
    kv_precision: str = typer.Option("fp8", help="KV-cache precision."),
    reserve: float = typer.Option(0.1, min=0.0, max=0.9, help="Memory fraction kept back."),
    set_: list[str] = typer.Option(None, "--set", help="Override system fields (KNOB=VALUE)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Does the model fit on the chips at this parallelism, and how much KV is left?"""
    from hwmodels import derive_system

    arch = load_model(model)
    sys_ = get_system(system)
    overrides = parse_assignments(set_)
    if overrides:
        sys_ = derive_system(sys_, set=overrides)
    n = chips or max(tp * pp, ep * pp)
    report = fit_report(
        arch,
        sys_.chip.memory_capacity_bytes,
        n,
        tp=tp,
        pp=pp,
        ep=ep,
        weight_precision=weight_precision,
        kv_precision=kv_precision,
        reserve_fraction=reserve,
    )
    if as_json:
        print_json(report.model_dump())
        return
    style = "green" if report.fits else "red"
    console.print(f"[{style}]{report.reason}[/]", highlight=False)
    print_table(
        f"{arch.id} on {n}x {sys_.chip.name}",
        ["quantity", "value"],
        [
            ("weights per chip GB", report.weight_bytes_per_chip / 1e9),
            ("usable per chip GB", report.usable_bytes_per_chip / 1e9),
            ("KV bytes/token per chip", report.kv_bytes_per_token_per_chip),
            ("KV tokens per worker", report.kv_tokens_per_worker),
            ("KV tokens total", report.kv_tokens_total),
        ],
    )
    if not report.fits:
        raise typer.Exit(1)
