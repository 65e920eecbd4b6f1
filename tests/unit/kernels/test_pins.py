"""Kernel measurements as calibration data: what they pin, and that fits keep the pins."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from codesign.cli import app
from codesign.errors import SpecError
from codesign.kernels.compare import compare
from codesign.kernels.pins import apply_pins, implied_pins, pins_from_files
from codesign.kernels.report import save_report
from codesign.perf.calibration import Calibration, load_calibration
from codesign.perf.fit import PARAMS, fit_calibration, free_params
from codesign.validation.silicon import SiliconRows
from tests.unit.kernels.helpers import model_speed_report

PINNED = {
    "mem_eff",
    "gemm_eff_max.bf16",
    "gemm_eff_max.fp8",
    "gemm_m_half_tokens",
    "attn_eff",
    "attn_half_tokens",
}


def _kernel_calibration() -> Calibration:
    """A device unlike calibration v16: FlashAttention-3's ramp (half speed at ~250 keys),
    a slower memory and FP8 GEMMs nearer their peak."""
    c = load_calibration()
    return c.model_copy(
        update={
            "attn_half_tokens": 250.0,
            "mem_eff": 0.9,
            "gemm_eff_max": {**c.gemm_eff_max, "fp8": 0.8},
        }
    )


def test_a_device_pins_what_it_measured() -> None:
    device = _kernel_calibration()
    result = compare(model_speed_report("h100_sxm", calib=device), "h100_sxm", device)
    pins = implied_pins(result["implied"])
    assert set(pins) == PINNED  # no FP4 GEMMs on an H100: nothing pinned for fp4
    assert pins["attn_half_tokens"] == pytest.approx(250.0, rel=0.05)
    assert pins["mem_eff"] == pytest.approx(0.9, rel=1e-6)
    assert pins["gemm_eff_max.fp8"] == pytest.approx(0.8, rel=0.02)
    assert pins["gemm_m_half_tokens"] == pytest.approx(device.gemm_m_half_tokens, rel=0.05)


def test_files_pin_their_median_with_provenance(tmp_path: Path) -> None:
    device = _kernel_calibration()
    paths = []
    for i, chip in enumerate(("h100_sxm", "h200_sxm")):
        path = tmp_path / f"k{i}.json"
        save_report(model_speed_report(chip, calib=device), path)
        paths.append(path)
    pins, sources = pins_from_files(paths[:1], device, chip="h100_sxm")
    assert pins["attn_half_tokens"] == pytest.approx(250.0, rel=0.05)
    assert sources[0]["chip"] == "h100_sxm" and len(sources[0]["sha256"]) == 64
    pins2, sources2 = pins_from_files(paths, device)
    assert [s["chip"] for s in sources2] == ["h100_sxm", "h200_sxm"]  # matched by name
    assert pins2["mem_eff"] == pytest.approx(0.9, rel=1e-6)


def test_a_fit_keeps_the_pins(shared_dir: Path) -> None:
    device = _kernel_calibration()
    pins = implied_pins(
        compare(model_speed_report("h100_sxm", calib=device), None, device)["implied"]
    )
    base = apply_pins(load_calibration(), pins, [{"device": "NVIDIA H100"}])
    assert base.attn_half_tokens == pins["attn_half_tokens"]
    assert base.gemm_eff_max["fp8"] == pins["gemm_eff_max.fp8"]
    free = {f"{p[0]}.{p[1]}" if p[1] else p[0] for p in free_params(base)}
    # attn_eff is a kernel figure no fit moves (not in PARAMS); the other five leave the fit
    assert not (free & PINNED) and len(free) == len(PARAMS) - len(PINNED - {"attn_eff"})
    rows = SiliconRows.from_csv(shared_dir / "validation" / "silicon_dev.csv")
    sub = rows.subset(np.sort(np.random.default_rng(1).choice(len(rows), 200, replace=False)))
    fitted = fit_calibration(sub, base, max_nfev=3)
    assert fitted.kernel_pins == pins and fitted.kernel_sources == base.kernel_sources
    assert fitted.attn_half_tokens == pins["attn_half_tokens"]
    assert fitted.mem_eff == pins["mem_eff"]
    # saved and read back, the pins stay pins
    again = Calibration.model_validate_json(fitted.model_dump_json())
    assert again.kernel_pins == pins
    with pytest.raises(SpecError, match="unknown format class"):
        apply_pins(base, {"gemm_eff_max.int3": 0.5}, [])


def test_calibrate_with_kernels_writes_a_pinned_calibration(
    shared_dir: Path, tmp_path: Path
) -> None:
    src = shared_dir / "validation" / "silicon_dev.csv"
    with src.open() as f:
        reader = csv.reader(f)
        header = next(reader)
        kept = [row for i, row in enumerate(reader) if i % 40 == 0]
    small = tmp_path / "rows.csv"
    with small.open("w", newline="") as f:
        csv.writer(f).writerows([header, *kept])
    kfile = tmp_path / "h100.json"
    save_report(model_speed_report("h100_sxm", calib=_kernel_calibration()), kfile)
    out = tmp_path / "calibration.json"
    res = CliRunner().invoke(
        app,
        [
            "calibrate",
            "--silicon",
            str(small),
            "--out",
            str(out),
            "--kernels",
            str(kfile),
            "--evaluations",
            "2",
            "--bands",
            "none",
            "--json",
        ],
    )
    assert res.exit_code == 0, res.output
    written = json.loads(out.read_text())
    assert set(written["kernel_pins"]) == PINNED
    assert written["attn_half_tokens"] == pytest.approx(250.0, rel=0.05)
    assert written["kernel_sources"][0]["file"] == "h100.json"
