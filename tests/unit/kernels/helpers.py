"""A measurement report of a device that runs every kernel at the model's own speed."""

from __future__ import annotations

from codesign.kernels.cases import plan
from codesign.kernels.compare import predicted_s
from codesign.kernels.report import KernelReport, KernelRow, Provenance
from codesign.perf.calibration import Calibration, load_calibration
from hwmodels import get_chip

DEVICE_NAMES = {"h100_sxm": "NVIDIA H100 80GB HBM3", "h200_sxm": "NVIDIA H200"}


def model_speed_report(
    chip: str, slowdown: float = 1.0, calib: Calibration | None = None
) -> KernelReport:
    """A report whose every kernel took the model's time (times ``slowdown``)."""
    calib, spec = calib or load_calibration(), get_chip(chip)
    rows = []
    for c in plan(["bf16", "fp8"], "bf16", quick=False, host_link=True):
        row = KernelRow(
            op=c.op,
            dtype=c.dtype,
            shape=c.shape,
            seconds=1.0,  # type: ignore[arg-type]
            flops=c.flops,
            bytes_moved=c.bytes_moved,
        )
        rows.append(row.model_copy(update={"seconds": slowdown * predicted_s(row, spec, calib)}))
    prov = Provenance(
        device=DEVICE_NAMES.get(chip, f"NVIDIA {chip.upper()}"),
        backend="torch-cuda",
        measured_at="2026-12-07",
        repeats=1,
    )
    return KernelReport(provenance=prov, rows=rows)
