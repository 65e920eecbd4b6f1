"""Measured kernels against the performance model's roofline, and what they imply.

For every measured row the model's time for the same work on the catalog chip, with the
calibration's efficiencies and the formulas ``codesign.perf.step`` uses:

- gemm: max(2 m n k / (peak x eff(m)), bytes / (bandwidth x mem_eff)), eff(m) =
  gemm_eff_max[precision] x m / (m + m_half x the chip's ridge relative to H100 BF16);
- membw: bytes / (bandwidth x mem_eff);
- h2d: bytes / (chip-to-host link x ``step.HOST_LINK_EFF``), the link of the catalog
  system built on the chip (the measured server's own link may differ: its PCIe
  generation is in the device notes, not the measurement);
- attn_prefill: FLOPs / (bf16 peak x attn_eff x keys / (keys + attn_half_tokens)), keys
  the mean keys a query attends (q_len / 2 for a causal pass from an empty cache);
- attn_decode: max(FLOPs / (bf16 peak x decode_attn_eff), bytes / (bandwidth x mem_eff)).

Then the parameters the measurements imply, fitted the same way (least squares on log
time): the streaming efficiency (best copy bandwidth / spec), per GEMM precision the
plateau efficiency and m_half (in H100-BF16 ridge units, as the calibration stores it),
the prefill-attention plateau and half-speed keys, and the decode-attention bandwidth
share. These are what a lent GPU contributes to calibration: kernel figures with their
provenance, next to the values fitted to end-to-end rows.
"""

from __future__ import annotations

import re
from collections import defaultdict
from functools import lru_cache

import numpy as np
from scipy.optimize import least_squares

from codesign.errors import SpecError
from codesign.kernels.cases import BYTES
from codesign.kernels.report import KernelReport, KernelRow
from codesign.perf.calibration import Calibration
from codesign.perf.step import HOST_LINK_EFF, ridge_scale
from hwmodels import Chip, get_chip, list_chips, list_systems

_CLASS = {"fp32": "bf16", "bf16": "bf16", "fp16": "bf16", "fp8": "fp8", "fp4": "fp4"}


def chip_for_device(device: str) -> str:
    """The catalog chip a framework's device name refers to ("NVIDIA H200" -> h200_sxm):
    the chip whose name's first part appears in the device name as a whole word, the
    longest such match."""
    words = set(re.findall(r"[a-z0-9]+", device.lower()))
    best, best_len = "", 0
    for chip in sorted(list_chips(), key=lambda c: c.name):
        head = chip.name.split("_")[0]
        if head in words and len(head) > best_len:
            best, best_len = chip.name, len(head)
    if not best:
        raise SpecError(
            f"no catalog chip matches device {device!r}: pass --chip (codesign catalog chips)"
        )
    return best


def _peak(chip: Chip, dtype: str) -> float:
    """Dense peak for the operand precision (fp32 GEMMs run on the tensor cores as TF32
    where a framework allows it; the measured rows say which)."""
    try:
        return chip.peak_flops(dtype)
    except (KeyError, ValueError):
        return chip.peak_flops("bf16")


def host_link_bytes_per_s(chip: Chip) -> float | None:
    """The chip-to-host link of the catalog system built on ``chip`` (the one named like
    the chip first), None where no system has one."""
    return _host_link_of(chip.name)


@lru_cache(maxsize=64)
def _host_link_of(chip_name: str) -> float | None:
    """``host_link_bytes_per_s`` by chip name, looked up once (every h2d row asks)."""
    systems = sorted(list_systems(), key=lambda s: (s.name != chip_name, s.name))
    for system in systems:
        link = system.fabric.chip_to_host
        if system.chip.name == chip_name and link is not None:
            return float(link.bandwidth_bytes_per_s)
    return None


def predicted_s(row: KernelRow, chip: Chip, calib: Calibration) -> float:
    """The model's seconds for the row's work (NaN where the model has no figure)."""
    bw = chip.memory_bandwidth_bytes_per_s
    mem = bw * calib.mem_eff
    s = row.shape
    if row.op == "membw":
        return row.bytes_moved / mem
    if row.op == "h2d":
        link = host_link_bytes_per_s(chip)
        return float("nan") if link is None else row.bytes_moved / (link * HOST_LINK_EFF)
    if row.op == "gemm":
        peak = _peak(chip, row.dtype)
        cls = _CLASS.get(row.dtype, "bf16")
        nb = np.float64(BYTES.get(row.dtype, 2))
        half = calib.gemm_m_half_tokens * float(ridge_scale(peak, bw, nb))
        eff = calib.gemm_eff_max.get(cls, 0.7) * s["m"] / (s["m"] + half)
        return max(row.flops / (peak * eff), row.bytes_moved / mem)
    peak = _peak(chip, "bf16")
    if row.op == "attn_prefill":
        keys = max(s["q_len"] / 2.0, 1.0)
        ramp = keys / (keys + calib.attn_half_tokens) if calib.attn_half_tokens > 0 else 1.0
        return row.flops / (peak * calib.attn_eff * ramp)
    return max(row.flops / (peak * calib.decode_attn_eff), row.bytes_moved / mem)


def _fit_ramp(x: np.ndarray, t: np.ndarray, work: np.ndarray, floor: np.ndarray) -> tuple:
    """(plateau, half) of t = max(work (x + half) / (plateau x), floor), log least squares."""

    def resid(p: np.ndarray) -> np.ndarray:
        e, h = p
        model = np.maximum(work * (x + h) / (e * x), floor)
        return np.log(model) - np.log(t)

    fit = least_squares(resid, x0=[0.7, float(np.median(x))], bounds=([1e-3, 0.0], [1.0, 1e6]))
    return float(fit.x[0]), float(fit.x[1])


def compare(report: KernelReport, chip_name: str | None, calib: Calibration) -> dict:
    """Per-row ratios, a summary per op and precision, and the implied parameters."""
    name = chip_name or chip_for_device(report.provenance.device)
    chip = get_chip(name)
    bw = chip.memory_bandwidth_bytes_per_s
    rows = []
    groups: dict[tuple[str, str], list[float]] = defaultdict(list)
    for r in report.rows:
        pred = predicted_s(r, chip, calib)
        ratio = pred / r.seconds
        if np.isfinite(ratio):
            groups[(r.op, r.dtype)].append(ratio)
        rows.append({**r.model_dump(), "predicted_s": pred, "predicted_over_measured": ratio})
    summary = [
        {
            "op": op,
            "dtype": dtype,
            "rows": len(v),
            "ratio_median": float(np.median(v)),
            "ratio_min": float(np.min(v)),
            "ratio_max": float(np.max(v)),
        }
        for (op, dtype), v in sorted(groups.items())
    ]
    implied = _implied(report.rows, chip, bw, calib)
    return {
        "chip": name,
        "provenance": report.provenance.model_dump(),
        "summary": summary,
        "implied": implied,
        "rows": rows,
    }


def _implied(rows: list[KernelRow], chip: Chip, bw: float, calib: Calibration) -> dict:
    out: dict[str, object] = {}
    copies = [r.gb_per_s * 1e9 / bw for r in rows if r.op == "membw"]
    mem_eff = max(copies) if copies else calib.mem_eff
    if copies:
        out["mem_eff"] = {"measured": mem_eff, "calibration": calib.mem_eff}
    link = host_link_bytes_per_s(chip)
    h2d = [r.gb_per_s * 1e9 for r in rows if r.op == "h2d"]
    if h2d:
        out["host_link"] = {
            "measured_gb_per_s": max(h2d) / 1e9,
            "share_of_link": max(h2d) / link if link else None,
            "model_share": HOST_LINK_EFF,
        }
    for dtype in sorted({r.dtype for r in rows if r.op == "gemm"}):
        g = [r for r in rows if r.op == "gemm" and r.dtype == dtype]
        if len(g) < 3:
            continue
        peak = _peak(chip, dtype)
        m = np.array([r.shape["m"] for r in g], dtype=float)
        t = np.array([r.seconds for r in g])
        floor = np.array([r.bytes_moved for r in g]) / (bw * mem_eff)
        work = np.array([r.flops for r in g]) / peak
        if np.count_nonzero(t > 1.2 * floor) < 3:
            out[f"gemm_{dtype}"] = {
                "identified": False,
                "reason": "fewer than 3 GEMMs slower than the memory floor: no compute ramp to fit",
            }
            continue
        e, h = _fit_ramp(m, t, work, floor)
        scale = float(ridge_scale(peak, bw, np.float64(BYTES.get(dtype, 2))))
        cls = _CLASS.get(dtype, "bf16")
        out[f"gemm_{dtype}"] = {
            "identified": True,
            "eff_max": e,
            "m_half_tokens": h,
            "m_half_h100_bf16_units": h / scale if scale > 0 else h,
            "calibration_eff_max": calib.gemm_eff_max.get(cls),
            "calibration_m_half_h100_bf16_units": calib.gemm_m_half_tokens,
        }
    pf = [r for r in rows if r.op == "attn_prefill"]
    if len(pf) >= 3:
        keys = np.array([max(r.shape["q_len"] / 2.0, 1.0) for r in pf])
        t = np.array([r.seconds for r in pf])
        work = np.array([r.flops for r in pf]) / _peak(chip, "bf16")
        e, h = _fit_ramp(keys, t, work, np.zeros_like(t))
        out["attn_prefill"] = {
            "attn_eff": e,
            "attn_half_tokens": h,
            "calibration_attn_eff": calib.attn_eff,
            "calibration_attn_half_tokens": calib.attn_half_tokens,
        }
    dec = [r.gb_per_s * 1e9 / bw for r in rows if r.op == "attn_decode"]
    if dec:
        out["attn_decode_bandwidth_share"] = {
            "median": float(np.median(dec)),
            "max": float(np.max(dec)),
            "calibration_mem_eff": calib.mem_eff,
        }
    return out
