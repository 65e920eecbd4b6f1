"""`codesign system ...`, `codesign chip ...` and the hardware parts of `codesign catalog`."""

from __future__ import annotations

from typing import Any

import typer
from pydantic import BaseModel

from codesign.cli.common import JSON_OPTION, console, print_json, print_table, user_errors
from hwmodels import (
    KNOBS,
    PRECISIONS,
    Chip,
    ChipKind,
    System,
    chips_accelerating,
    derive_chip,
    derive_system,
    get_chip,
    get_system,
    list_chips,
    list_systems,
    usd_per_chip_hour,
)
from hwmodels.derive import parse_assignments
from hwmodels.memory import GB

SET_HELP = (
    "Override a field: KNOB=VALUE (e.g. hbm_bandwidth_tb_s=16) or a dotted path "
    "(chip.efficiency.gemm_max=0.8). Repeatable. Knobs: " + ", ".join(KNOBS)
)
SCALE_HELP = "Multiply a field: KNOB=FACTOR (e.g. hbm_bandwidth_tb_s=2). Repeatable."

system_app = typer.Typer(
    help="Show systems (real or derived hypothetical ones).", no_args_is_help=True
)
chip_app = typer.Typer(help="Show chips (real or derived hypothetical ones).", no_args_is_help=True)


def system_row(s: System) -> dict[str, Any]:
    return s.summary()


def chip_row(c: Chip) -> dict[str, Any]:
    return {
        "name": c.name,
        "vendor": c.vendor,
        "kind": c.kind.value,
        "peak_dense_tflops": dict(c.peak_dense_tflops),
        "hbm_capacity_gb": c.hbm_capacity_gb,
        "device_memory_usable_gb": round(c.memory_capacity_bytes / GB, 3),
        "hbm_bandwidth_tb_s": c.hbm_bandwidth_tb_s,
        "sram_mb": c.sram_mb,
        "tdp_w": c.tdp_w,
        "usd_per_hour": c.usd_per_hour,
    }


def _best_low_precision(flops: dict[str, float]) -> str:
    for fmt in ("nvfp4", "mxfp4", "fp4", "fp8", "bf16"):
        if fmt in flops:
            return f"{fmt} {flops[fmt]:,.0f}"
    return "-"


def show_systems(as_json: bool) -> None:
    rows = [system_row(s) for s in list_systems()]
    if as_json:
        print_json(rows)
        return
    print_table(
        "Systems (per chip; bandwidth each direction)",
        [
            "system",
            "chip",
            "chips/node",
            "scale-up",
            "NVLink-class GB/s",
            "NIC GB/s",
            "HBM GB",
            "HBM TB/s",
            "host GB",
            "best TFLOP/s",
            "W at load",
            "$/chip-h",
        ],
        [
            (
                r["name"],
                r["chip"],
                r["chips_per_node"],
                r["scale_up_domain"],
                r["scale_up_gb_s_per_direction"],
                r["scale_out_gb_s_per_direction"],
                r["hbm_capacity_gb"],
                r["hbm_bandwidth_tb_s"],
                r["host_memory_gb_per_chip"],
                _best_low_precision(r["peak_dense_tflops"]),
                r["power_w_per_chip_at_load"],
                r["usd_per_chip_hour"],
            )
            for r in rows
        ],
    )


def show_chips(as_json: bool) -> None:
    rows = [chip_row(c) for c in list_chips()]
    if as_json:
        print_json(rows)
        return
    print_table(
        "Chips (dense peak, no sparsity)",
        [
            "chip",
            "vendor",
            "kind",
            "bf16 TFLOP/s",
            "fp8",
            "fp4",
            "HBM GB",
            "HBM TB/s",
            "SRAM MB",
            "TDP W",
            "$/h",
        ],
        [
            (
                r["name"],
                r["vendor"],
                r["kind"],
                r["peak_dense_tflops"].get("bf16"),
                r["peak_dense_tflops"].get("fp8"),
                r["peak_dense_tflops"].get("nvfp4") or r["peak_dense_tflops"].get("fp4"),
                r["hbm_capacity_gb"],
                r["hbm_bandwidth_tb_s"],
                r["sram_mb"],
                r["tdp_w"],
                r["usd_per_hour"],
            )
            for r in rows
        ],
    )


def show_precisions(as_json: bool) -> None:
    rows = [
        {
            "name": p.name,
            "bits_per_element": p.bits_per_element,
            "bits_effective": round(p.bits_effective, 4),
            "weight_only": p.weight_only,
            "accelerated_on": chips_accelerating(p.name),
            "description": p.description,
        }
        for p in PRECISIONS.values()
    ]
    if as_json:
        print_json(rows)
        return
    print_table(
        "Precisions",
        ["name", "bits", "bits incl. scales", "accelerated on", "description"],
        [
            (
                r["name"],
                r["bits_per_element"],
                r["bits_effective"],
                ", ".join(r["accelerated_on"]) or "-",
                r["description"],
            )
            for r in rows
        ],
    )


def _sources_table(title: str, spec: Chip | System) -> None:
    rows: list[tuple[str, str, str]] = []

    def collect(prefix: str, obj: Any) -> None:
        sources = getattr(obj, "sources", None)
        if sources:
            for key, src in sources.items():
                rows.append((f"{prefix}{key}", src.grade.value, src.ref))
        for name, value in obj:
            if isinstance(value, list):
                for i, item in enumerate(value):
                    if hasattr(item, "sources"):
                        collect(f"{prefix}{name}[{getattr(item, 'name', i)}].", item)
            elif isinstance(value, BaseModel) and name != "sources":
                collect(f"{prefix}{name}.", value)

    collect("", spec)
    print_table(title, ["number", "grade", "source"], rows)


@system_app.command("show")
@user_errors
def system_show(
    name: str = typer.Argument(..., help="System name or alias, e.g. gb200."),
    set_: list[str] = typer.Option(None, "--set", help=SET_HELP),
    scale: list[str] = typer.Option(None, "--scale", help=SCALE_HELP),
    new_name: str = typer.Option(None, "--name", help="Name of the derived system."),
    yaml_out: bool = typer.Option(False, "--yaml", help="Print the full spec as YAML."),
    sources: bool = typer.Option(False, "--sources", help="List every number's source."),
    keep_price: bool = typer.Option(
        False,
        "--keep-price",
        help="Keep the base system's $/chip-hour (default: price the knobs with the knob "
        "cost model, docs/hardware.md).",
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Show one system, optionally a hypothetical one derived with --set/--scale (priced by
    the knob cost model unless --keep-price or a price knob is set)."""
    system = get_system(name)
    overrides, factors = parse_assignments(set_), parse_assignments(scale)
    if overrides or factors:
        system = derive_system(
            system, set=overrides, scale=factors, name=new_name, reprice=not keep_price
        )
    if as_json:
        data = system.summary()
        data["kv_tiers"] = [t.model_dump() for t in system.kv_tiers()]
        data["usd_per_chip_hour_at_50pct"] = usd_per_chip_hour(system, 0.5)
        data["spec"] = system.model_dump(mode="json", exclude_none=True)
        print_json(data)
        return
    if yaml_out:
        console.print(system.to_yaml(), highlight=False, markup=False)
        return
    summary = system.summary()
    console.print(f"[bold]{system.name}[/]: {system.description}", highlight=False)
    print_table(
        "Summary",
        ["field", "value"],
        [
            (
                k,
                ", ".join(f"{f} {v:,.0f}" for f, v in val.items())
                if isinstance(val, dict)
                else val,
            )
            for k, val in summary.items()
            if k != "name"
        ],
    )
    print_table(
        "KV-cache tiers per chip",
        ["tier", "kind", "GB", "GB/s", "latency µs"],
        [
            (
                t.name,
                t.kind.value,
                t.capacity_bytes_per_chip / 1e9,
                t.bandwidth_bytes_per_s_per_chip / 1e9,
                t.latency_us,
            )
            for t in system.kv_tiers()
        ],
    )
    if sources:
        _sources_table("Sources", system)


@chip_app.command("show")
@user_errors
def chip_show(
    name: str = typer.Argument(..., help="Chip name, e.g. h100_sxm."),
    set_: list[str] = typer.Option(None, "--set", help=SET_HELP),
    scale: list[str] = typer.Option(None, "--scale", help=SCALE_HELP),
    new_name: str = typer.Option(None, "--name", help="Name of the derived chip."),
    sources: bool = typer.Option(False, "--sources", help="List every number's source."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Show one chip, optionally a hypothetical one derived with --set/--scale."""
    chip = get_chip(name)
    overrides, factors = parse_assignments(set_), parse_assignments(scale)
    if overrides or factors:
        chip = derive_chip(chip, set=overrides, scale=factors, name=new_name)
    if as_json:
        data = chip_row(chip)
        data["spec"] = chip.model_dump(mode="json", exclude_none=True)
        print_json(data)
        return
    console.print(
        f"[bold]{chip.name}[/] ({chip.vendor}, {chip.kind.value}): {chip.description}",
        highlight=False,
    )
    row = chip_row(chip)
    print_table(
        "Summary",
        ["field", "value"],
        [
            (
                k,
                ", ".join(f"{f} {v:,.0f}" for f, v in val.items())
                if isinstance(val, dict)
                else val,
            )
            for k, val in row.items()
            if k != "name"
        ],
    )
    if chip.kind != ChipKind.cpu:
        print_table(
            "Precisions",
            ["precision", "runs at", "native"],
            [(p, chip.compute_format_for(p), chip.accelerates(p)) for p in PRECISIONS],
        )
    if sources:
        _sources_table("Sources", chip)
