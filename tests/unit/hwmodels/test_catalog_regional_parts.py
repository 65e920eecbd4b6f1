"""Systems that measured-row tables name beyond the usual HGX/NVL parts (H800, the 141 GB
H20, RTX PRO 6000 Server): they resolve by the names those tables use, carry the
published figures, and the step model reads the differences that matter."""

from __future__ import annotations

import numpy as np
import pytest

from codesign.models import load_model
from codesign.perf.profile import build_profile
from hwmodels import get_system


@pytest.mark.parametrize(
    ("name", "canonical"),
    [
        ("h800_sxm", "h800_sxm"),
        ("h800", "h800_sxm"),
        ("h20_3e", "h20_3e"),
        ("h20e_sxm", "h20_3e"),
        ("rtx_pro_6000_server", "rtx_pro_6000_server"),
        ("rtxpro6000_blackwell_server", "rtx_pro_6000_server"),
    ],
)
def test_table_names_resolve(name: str, canonical: str) -> None:
    assert get_system(name).name == canonical


def test_h800_is_an_h100_with_half_the_nvlink() -> None:
    h100, h800 = get_system("h100_sxm"), get_system("h800_sxm")
    assert h800.chip.peak_dense_tflops == h100.chip.peak_dense_tflops
    assert h800.chip.memory_bandwidth_bytes_per_s == h100.chip.memory_bandwidth_bytes_per_s
    # 400 GB/s bidirectional against H100's 900
    assert h800.fabric.scale_up.link.bandwidth_gb_s_per_direction == 200.0
    assert h100.fabric.scale_up.link.bandwidth_gb_s_per_direction == 450.0


def test_h20_3e_keeps_h20_compute_with_more_and_faster_memory() -> None:
    h20, h20e = get_system("h20"), get_system("h20_3e")
    assert h20e.chip.peak_dense_tflops["fp8"] == h20.chip.peak_dense_tflops["fp8"] == 296
    assert h20e.chip.memory_capacity_bytes == pytest.approx(143_771 * 2**20, rel=1e-5)  # an H200's
    assert h20e.chip.memory_capacity_bytes > h20.chip.memory_capacity_bytes
    assert h20e.chip.memory_bandwidth_bytes_per_s == pytest.approx(4.917e12)


def test_rtx_pro_6000_has_fp4_and_no_nvlink() -> None:
    s = get_system("rtx_pro_6000_server")
    assert s.chip.peak_dense_tflops["nvfp4"] == pytest.approx(4 * s.chip.peak_dense_tflops["bf16"])
    assert s.fabric.scale_up.link.kind.value == "pcie"
    assert s.chip.memory_bandwidth_bytes_per_s == pytest.approx(1.792e12)


def _tp8_prefill_s(system: str) -> float:
    from codesign.perf.calibration import load_calibration
    from codesign.perf.engine import byte_sizes, efficiency
    from codesign.perf.hardware import hw_vectors
    from codesign.perf.predict import make_layout, make_load
    from codesign.perf.step import step_time

    prof = build_profile(load_model("meta-llama/Llama-3.1-70B"))
    hw = hw_vectors([system], ["fp8"], ["fp8"])
    one = np.ones(1)
    lay = make_layout(8 * one, one, one, one, one, False)
    load = make_load(0 * one, 0 * one, 8192 * one, 0 * one, one, 0 * one)
    eff = efficiency(load_calibration(), hw, ["trtllm"])
    out = step_time(prof, hw, lay, load, byte_sizes(["fp8"], ["fp8"], ["fp8"]), eff)
    return float(out["total"][0]), float(out["comm"][0])


def test_h800_tp8_prefill_pays_only_in_all_reduce() -> None:
    t100, c100 = _tp8_prefill_s("h100_sxm")
    t800, c800 = _tp8_prefill_s("h800_sxm")
    # the all-reduce bytes term scales with 450/200 (the latency term does not)
    assert 1.8 < c800 / c100 <= 450 / 200
    assert t800 - t100 == pytest.approx(c800 - c100, rel=1e-9)
