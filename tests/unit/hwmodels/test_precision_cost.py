"""Precisions (bits with block scales, fallbacks) and cost/power arithmetic by hand."""

from __future__ import annotations

import numpy as np
import pytest

from codesign.errors import NotFoundError
from hwmodels import chips_accelerating, get_chip, get_precision, get_system
from hwmodels.cost import (
    energy_usd_per_chip_hour,
    ownership_usd_per_chip_hour,
    power_w_per_chip,
    usd_per_chip_hour,
)


def test_bits_include_block_scales() -> None:
    assert get_precision("nvfp4").bits_effective == pytest.approx(4.5)  # 4 + 8/16
    assert get_precision("mxfp4").bits_effective == pytest.approx(4.25)  # 4 + 8/32
    assert get_precision("mxfp8").bits_effective == pytest.approx(8.25)  # 8 + 8/32 (OCP MX)
    assert get_precision("fp8").bytes_per_element == 1.0
    assert get_precision("bf16").bytes_per_element == 2.0
    assert get_precision("fp8_block").bits_effective == pytest.approx(8 + 32 / 16384)
    # W8A16: a bf16 scale per output channel of a 4096-wide input row
    assert get_precision("w8a16").bits_effective == pytest.approx(8 + 16 / 4096)
    assert get_precision("BFloat16").name == "bf16"  # alias, case-insensitive


def test_unknown_precision_lists_valid_names() -> None:
    with pytest.raises(NotFoundError, match="unknown precision 'fp5'.*nvfp4"):
        get_precision("fp5")


def test_which_chips_accelerate_fp4() -> None:
    fp4 = chips_accelerating("nvfp4")
    assert {"b200", "gb200", "gb300", "rubin"} <= set(fp4)
    assert "h100_sxm" not in fp4 and "mi300x" not in fp4
    assert "mi355x" in chips_accelerating("mxfp4")


def test_unaccelerated_formats_fall_back_to_next_wider_rate() -> None:
    h100 = get_chip("h100_sxm")
    assert not h100.accelerates("nvfp4")
    assert h100.compute_format_for("nvfp4") == "fp8"  # weights dequantised to FP8
    assert h100.peak_flops("nvfp4") == pytest.approx(1978.9e12)
    assert h100.compute_format_for("int4_wo") == "bf16"
    assert h100.compute_format_for("int8_wo") == "bf16"  # W8A16: one byte stored, bf16 math
    assert get_chip("b200").peak_flops("nvfp4") == pytest.approx(9000e12)


def test_power_and_cost_by_hand() -> None:
    h100 = get_system("h100_sxm")
    # idle = 0.3 x 700 W = 210 W (no published idle); overhead 575 W per GPU.
    assert power_w_per_chip(h100, 0.0) == pytest.approx(210 + 575)
    assert power_w_per_chip(h100, 1.0) == pytest.approx(700 + 575)
    # energy at full load: 1,275 W x PUE 1.3 x $0.08/kWh = $0.1326/h
    assert energy_usd_per_chip_hour(h100, 1.0) == pytest.approx(1.275 * 1.3 * 0.08)
    assert ownership_usd_per_chip_hour(h100) == pytest.approx(1.30 - 1.275 * 1.3 * 0.08)
    # at full load the published TCO rate is returned exactly; idle costs less
    assert usd_per_chip_hour(h100, 1.0) == pytest.approx(1.30)
    assert usd_per_chip_hour(h100, 0.0) == pytest.approx(1.30 - (1.275 - 0.785) * 1.3 * 0.08)


def test_cost_is_vectorised_and_monotone_in_utilisation() -> None:
    gb200 = get_system("gb200")
    u = np.linspace(0, 1, 11)
    cost = usd_per_chip_hour(gb200, u)
    assert cost.shape == (11,)
    assert np.all(np.diff(cost) > 0)
    assert cost[-1] == pytest.approx(2.21)
