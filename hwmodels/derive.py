"""Hypothetical hardware: derive a chip or system from a catalog entry.

Overrides are given by *knob* (a short, unit-carrying name such as ``hbm_bandwidth_tb_s``)
or by a dotted field path into the spec (``chip.efficiency.gemm_max``,
``fabric.scale_up.link.latency_us``). ``set`` replaces a value, ``scale`` multiplies it.
Every changed number is re-cited as a user override (grade: assumed) and the result is
validated exactly like a catalog entry.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from pydantic import ValidationError

from codesign.errors import SpecError
from hwmodels.catalog import format_validation_error
from hwmodels.chip import Chip
from hwmodels.memory import DEVICE_KINDS, MemoryKind
from hwmodels.precision import COMPUTE_FORMATS
from hwmodels.provenance import OVERRIDE_SOURCE
from hwmodels.system import System

Path_ = list[str | int]


def _device_tier_index(chip: dict) -> int | None:
    for i, tier in enumerate(chip.get("memory", [])):
        if tier["kind"] in {k.value for k in DEVICE_KINDS} and tier["kind"] != "sram":
            return i
    return None


def _host_tier_index(cpu: dict) -> int | None:
    for i, tier in enumerate(cpu.get("memory", [])):
        if tier["kind"] in (MemoryKind.lpddr, MemoryKind.ddr, MemoryKind.cxl):
            return i
    return None


# knob -> (path builder on the *chip* dict or the *system* dict, unit factor to stored value)
ChipKnob = Callable[[dict], Path_]


def _hbm_path(field: str) -> ChipKnob:
    def build(chip: dict) -> Path_:
        idx = _device_tier_index(chip)
        if idx is None:
            raise SpecError(
                f"chip {chip['name']} has no HBM/GDDR/unified memory tier to change; "
                "add one with hbm_capacity_gb and hbm_bandwidth_tb_s together"
            )
        return ["memory", idx, field]

    return build


CHIP_KNOBS: dict[str, tuple[ChipKnob, float]] = {
    "hbm_bandwidth_tb_s": (_hbm_path("bandwidth_gb_s"), 1000.0),
    "hbm_capacity_gb": (_hbm_path("capacity_gb"), 1.0),
    "sram_mb": (lambda c: ["sram_mb"], 1.0),
    "sram_bandwidth_tb_s": (lambda c: ["sram_bandwidth_tb_s"], 1.0),
    "tdp_w": (lambda c: ["tdp_w"], 1.0),
    "idle_power_w": (lambda c: ["idle_power_w"], 1.0),
    "chip_usd_per_hour": (lambda c: ["usd_per_hour"], 1.0),
    **{
        f"{fmt}_tflops": ((lambda f: lambda c: ["peak_dense_tflops", f])(fmt), 1.0)
        for fmt in COMPUTE_FORMATS
    },
}

SYSTEM_KNOBS: dict[str, tuple[Callable[[dict], Path_], float]] = {
    "scale_up_domain": (lambda s: ["fabric", "scale_up", "domain_chips"], 1.0),
    "scale_up_bandwidth_gb_s": (
        lambda s: ["fabric", "scale_up", "link", "bandwidth_gb_s_per_direction"],
        1.0,
    ),
    "scale_out_bandwidth_gb_s": (
        lambda s: ["fabric", "scale_out", "bandwidth_gb_s_per_direction"],
        1.0,
    ),
    "host_link_bandwidth_gb_s": (
        lambda s: ["fabric", "chip_to_host", "bandwidth_gb_s_per_direction"],
        1.0,
    ),
    "host_memory_gb": (
        lambda s: [
            "host_cpu",
            "memory",
            _require(_host_tier_index(s.get("host_cpu") or {}), s, "host CPU memory tier"),
            "capacity_gb",
        ],
        1.0,
    ),
    "chips_per_node": (lambda s: ["chips_per_node"], 1.0),
    "usd_per_chip_hour": (lambda s: ["usd_per_chip_hour"], 1.0),
    "pue": (lambda s: ["pue"], 1.0),
    "usd_per_kwh": (lambda s: ["usd_per_kwh"], 1.0),
    "overhead_power_w_per_chip": (lambda s: ["overhead_power_w_per_chip"], 1.0),
}

KNOBS: tuple[str, ...] = tuple(sorted({*CHIP_KNOBS, *SYSTEM_KNOBS}))


def _require(idx: int | None, system: dict, what: str) -> int:
    if idx is None:
        raise SpecError(f"system {system['name']} has no {what} to change")
    return idx


def parse_value(text: str) -> Any:
    """'16' -> 16, '1.5' -> 1.5, 'true' -> True, anything else stays a string."""
    low = text.strip().lower()
    if low in ("true", "false"):
        return low == "true"
    for conv in (int, float):
        try:
            return conv(text)
        except ValueError:
            pass
    return text.strip()


def parse_assignments(items: list[str] | None) -> dict[str, Any]:
    """Parse CLI ``key=value`` items; a malformed item is a SpecError."""
    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise SpecError(f"expected KEY=VALUE, got {item!r}")
        out[key.strip()] = parse_value(value)
    return out


def _walk(doc: Any, path: Path_, create: bool = False) -> tuple[Any, str | int]:
    node = doc
    for i, key in enumerate(path[:-1]):
        try:
            node = node[key]
        except (KeyError, IndexError, TypeError):
            where = ".".join(str(p) for p in path[: i + 1])
            raise SpecError(f"no field {where!r} to change") from None
        if node is None:
            where = ".".join(str(p) for p in path[: i + 1])
            raise SpecError(f"{where!r} is not set on this entry, so it cannot be changed")
    return node, path[-1]


def _cite(doc: dict, path: Path_, note: str) -> None:
    """Record an override source on the nearest enclosing spec that has 'sources'."""
    for cut in range(len(path) - 1, -1, -1):
        owner, _ = _walk(doc, [*path[:cut], "_"]) if cut else (doc, None)
        if isinstance(owner, dict) and "sources" in owner:
            key = ".".join(str(p) for p in path[cut:])
            owner["sources"][key] = {"ref": note, "grade": OVERRIDE_SOURCE.grade.value}
            return


def _apply(doc: dict, path: Path_, value: Any, scale: bool, label: str, shown: Any) -> None:
    parent, leaf = _walk(doc, path)
    if scale:
        current = parent.get(leaf) if isinstance(parent, dict) else parent[leaf]
        if not isinstance(current, int | float) or isinstance(current, bool):
            raise SpecError(f"cannot scale {label}: it has no numeric value here")
        if not isinstance(value, int | float):
            raise SpecError(f"scale factor for {label} must be a number, got {value!r}")
        new = current * value
        value = round(new) if isinstance(current, int) and float(new).is_integer() else new
    if leaf == "capacity_gb" and isinstance(parent, dict) and parent.get("usable_capacity_gb"):
        # keep the usable share of a memory tier when its capacity changes
        parent["usable_capacity_gb"] = parent["usable_capacity_gb"] * value / parent[leaf]
    parent[leaf] = value
    note = f"{label} x{shown} (now {value})" if scale else f"{label}={shown}"
    _cite(doc, path, f"user override: {note}")


def _resolve(doc: dict, key: str, chip_key: str | None) -> tuple[Path_, float]:
    """Path and unit factor of a knob or dotted path, relative to ``doc``."""
    prefix: Path_ = [chip_key] if chip_key else []
    if key in CHIP_KNOBS:
        build, factor = CHIP_KNOBS[key]
        chip_doc = doc[chip_key] if chip_key else doc
        return [*prefix, *build(chip_doc)], factor
    if key in SYSTEM_KNOBS:
        if chip_key is None:
            raise SpecError(f"{key!r} is a system knob; derive a system, not a chip")
        build, factor = SYSTEM_KNOBS[key]
        return build(doc), factor
    if "." in key or key in doc:
        return [int(p) if p.isdigit() else p for p in key.split(".")], 1.0
    raise SpecError(
        f"unknown hardware knob {key!r}; knobs: {', '.join(KNOBS)} "
        "(or a dotted field path such as chip.efficiency.gemm_max)"
    )


def _add_hbm_if_missing(chip: dict, set_: Mapping[str, Any]) -> None:
    """An SRAM-only chip gains an HBM tier when both HBM knobs are set."""
    if _device_tier_index(chip) is not None:
        return
    if "hbm_capacity_gb" in set_ and "hbm_bandwidth_tb_s" in set_:
        chip.setdefault("memory", []).append(
            {
                "name": "HBM",
                "kind": "hbm",
                "capacity_gb": 1.0,
                "bandwidth_gb_s": 1.0,
                "sources": {"*": OVERRIDE_SOURCE.model_dump(mode="json")},
            }
        )


def _derive_doc(
    doc: dict, set_: Mapping[str, Any], scale: Mapping[str, float], chip_key: str | None
) -> list[str]:
    changes: list[str] = []
    _add_hbm_if_missing(doc[chip_key] if chip_key else doc, set_)
    for mapping, is_scale in ((set_, False), (scale, True)):
        for key, value in mapping.items():
            path, factor = _resolve(doc, key, chip_key)
            shown = value
            if not is_scale and factor != 1.0:
                if not isinstance(value, int | float):
                    raise SpecError(f"{key} must be a number, got {value!r}")
                value = value * factor
            _apply(doc, path, value, is_scale, key, shown)
            changes.append(f"{key}{'x' if is_scale else '='}{mapping[key]}")
    return changes


def derive_chip(
    base: Chip,
    set: Mapping[str, Any] | None = None,
    scale: Mapping[str, float] | None = None,
    name: str | None = None,
) -> Chip:
    doc = base.model_dump(mode="json")
    changes = _derive_doc(doc, set or {}, scale or {}, None)
    doc["name"] = name or f"{base.name}-custom"
    doc["description"] = f"derived from {base.name}: {', '.join(changes)}"
    try:
        return Chip.model_validate(doc)
    except ValidationError as err:
        raise SpecError(format_validation_error(err, f"derived chip {doc['name']}")) from None


PRICE_KNOBS = ("usd_per_chip_hour", "chip_usd_per_hour", "chip.usd_per_hour")


def derive_system(
    base: System,
    set: Mapping[str, Any] | None = None,
    scale: Mapping[str, float] | None = None,
    name: str | None = None,
    reprice: bool = False,
) -> System:
    """A hypothetical system: e.g. ``derive_system(gb200, set={"hbm_bandwidth_tb_s": 16})``.

    ``reprice``: the derived system's $/chip-hour follows the knob cost model
    (`hwmodels.knob_cost`) unless a price knob is set explicitly; otherwise it keeps the
    base system's rate."""
    derived = _derive_system(base, set, scale, name)
    given = {*(set or {}), *(scale or {})}
    if not reprice or derived is base or given.intersection(PRICE_KNOBS):
        return derived
    from hwmodels.knob_cost import knob_cost, priced_rate

    doc = derived.model_dump(mode="json")
    source = {"ref": knob_cost(base, derived).describe(), "grade": "assumed"}
    rate = round(priced_rate(base, derived), 6)
    if doc.get("usd_per_chip_hour") is not None:
        doc["usd_per_chip_hour"] = rate
        doc.setdefault("sources", {})["usd_per_chip_hour"] = source
    else:
        doc["chip"]["usd_per_hour"] = rate
        doc["chip"].setdefault("sources", {})["usd_per_hour"] = source
    return System.model_validate(doc)


def _derive_system(
    base: System,
    set: Mapping[str, Any] | None,
    scale: Mapping[str, float] | None,
    name: str | None,
) -> System:
    doc = base.model_dump(mode="json")
    changes = _derive_doc(doc, set or {}, scale or {}, "chip")
    if not changes:
        return base
    new_name = name or f"{base.name}-custom"
    doc["name"] = new_name
    doc["aliases"] = []
    doc["description"] = f"derived from {base.name}: {', '.join(changes)}"
    if any(k in CHIP_KNOBS or k.startswith("chip.") for k in [*(set or {}), *(scale or {})]):
        doc["chip"]["name"] = f"{base.chip.name}-custom"
        doc["chip"]["description"] = f"derived from {base.chip.name}: {', '.join(changes)}"
    try:
        return System.model_validate(doc)
    except ValidationError as err:
        raise SpecError(format_validation_error(err, f"derived system {new_name}")) from None
