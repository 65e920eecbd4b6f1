"""Kernel measurements as calibration data: the parameters they pin.

``codesign calibrate --kernels FILE ...`` reads each measurement file against the model
(``compare``), takes the parameters the kernels imply, the median over the files where
several devices were measured, and sets them on the calibration as ``kernel_pins``: the
fit then moves only the rest (overheads, collectives, queueing, MoE knees), and every
later fit keeps the pins. What is pinned, and from which kernels:

- ``mem_eff``: the best device-copy bandwidth over the spec sheet's;
- ``gemm_eff_max.<class>`` and ``gemm_m_half_tokens``: the GEMM plateau per precision
  class and its knee in H100-BF16 ridge units (the median over the precisions measured),
  only where the GEMM sweep reached past the memory floor (``identified``);
- ``attn_eff`` and ``attn_half_tokens``: the causal prefill-attention plateau and the
  mean keys per query at half of it.

The files' provenance (device, time, framework, driver, commit, and the file's SHA-256)
is kept as ``kernel_sources``.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from pathlib import Path

import numpy as np

from codesign.errors import SpecError
from codesign.kernels.compare import compare
from codesign.kernels.report import load_report
from codesign.perf.calibration import FORMAT_CLASSES, Calibration

_GEMM_CLASS = {"bf16": "bf16", "fp16": "bf16", "fp8": "fp8", "fp4": "fp4"}


def implied_pins(implied: dict) -> dict[str, float]:
    """The calibration parameters one comparison's ``implied`` section sets."""
    pins: dict[str, float] = {}
    if "mem_eff" in implied:
        pins["mem_eff"] = float(implied["mem_eff"]["measured"])
    halves = []
    for key, fit in implied.items():
        dtype = key.removeprefix("gemm_")
        if key.startswith("gemm_") and fit.get("identified") and dtype in _GEMM_CLASS:
            pins[f"gemm_eff_max.{_GEMM_CLASS[dtype]}"] = float(fit["eff_max"])
            halves.append(float(fit["m_half_h100_bf16_units"]))
    if halves:
        pins["gemm_m_half_tokens"] = float(np.median(halves))
    if "attn_prefill" in implied:
        pins["attn_eff"] = float(implied["attn_prefill"]["attn_eff"])
        pins["attn_half_tokens"] = float(implied["attn_prefill"]["attn_half_tokens"])
    return pins


def pins_from_files(
    paths: list[Path], calib: Calibration, chip: str | None = None
) -> tuple[dict[str, float], list[dict[str, str]]]:
    """(pins, sources) from measurement files: each file's implied parameters, the median
    of each over the files that set it."""
    values: dict[str, list[float]] = defaultdict(list)
    sources = []
    for path in paths:
        result = compare(load_report(path), chip, calib)
        for name, v in implied_pins(result["implied"]).items():
            values[name].append(v)
        p = result["provenance"]
        sources.append(
            {
                "file": path.name,
                "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
                "chip": result["chip"],
                **{k: str(p.get(k, "")) for k in ("device", "measured_at", "framework", "driver")},
                "codesign_commit": str(p.get("codesign_commit", "")),
            }
        )
    if not values:
        raise SpecError("the kernel measurements pin nothing: no copy, GEMM or prefill sweep")
    return {k: float(np.median(v)) for k, v in values.items()}, sources


def apply_pins(
    calib: Calibration, pins: dict[str, float], sources: list[dict[str, str]]
) -> Calibration:
    """The calibration with the pinned values set and recorded (replacing earlier pins)."""
    update: dict[str, object] = {"kernel_pins": dict(pins), "kernel_sources": list(sources)}
    for name, v in pins.items():
        field, _, key = name.partition(".")
        if key:
            if key not in FORMAT_CLASSES:
                raise SpecError(f"kernel pin {name!r}: unknown format class {key!r}")
            table = dict(update.get(field) or getattr(calib, field))  # type: ignore[arg-type]
            table[key] = v
            update[field] = table
        else:
            update[field] = v
    return calib.model_copy(update=update)
