"""Hypothetical hardware derived from catalog entries."""

from __future__ import annotations

import pytest

from codesign.errors import SpecError
from hwmodels import derive_chip, derive_system, get_chip, get_system
from hwmodels.derive import parse_assignments


def test_faster_hbm_on_gb200() -> None:
    base = get_system("gb200")
    new = derive_system(base, set={"hbm_bandwidth_tb_s": 16})
    assert new.chip.hbm_bandwidth_tb_s == pytest.approx(16)
    assert new.name == "gb200-custom" and new.chip.name == "gb200-custom"
    src = new.chip.device_memory().source_of("bandwidth_gb_s")
    assert src.grade.value == "assumed" and "hbm_bandwidth_tb_s=16" in src.ref
    assert base.chip.hbm_bandwidth_tb_s == pytest.approx(8)  # the catalog entry is untouched
    assert new.chip.hbm_capacity_gb == base.chip.hbm_capacity_gb


def test_rubin_with_twice_the_hbm_bandwidth_and_larger_domain() -> None:
    new = derive_system(
        get_system("vera_rubin_nvl72"), scale={"hbm_bandwidth_tb_s": 2, "scale_up_domain": 8}
    )
    assert new.chip.hbm_bandwidth_tb_s == pytest.approx(44)
    assert new.scale_up_domain == 576
    assert "x2" in new.description


def test_lpu_with_1gb_sram() -> None:
    chip = derive_chip(get_chip("groq3_lpu"), set={"sram_mb": 1000}, name="lpu-1gb")
    assert chip.name == "lpu-1gb"
    assert chip.memory_capacity_bytes == pytest.approx(1e9)


def test_sram_only_chip_gains_hbm_when_both_knobs_given() -> None:
    chip = derive_chip(get_chip("groq3_lpu"), set={"hbm_capacity_gb": 64, "hbm_bandwidth_tb_s": 4})
    assert chip.hbm_capacity_gb == 64 and chip.hbm_bandwidth_tb_s == pytest.approx(4)
    with pytest.raises(SpecError, match="has no HBM"):
        derive_chip(get_chip("groq3_lpu"), set={"hbm_bandwidth_tb_s": 4})


def test_capacity_change_keeps_the_usable_share() -> None:
    new = derive_system(get_system("gb300"), set={"hbm_capacity_gb": 576})
    assert new.chip.memory_capacity_bytes == pytest.approx(576 * 279 / 288 * 2**30)


def test_dotted_paths_and_system_knobs() -> None:
    new = derive_system(
        get_system("h200_sxm"),
        set={"chip.efficiency.gemm_max": 0.9, "pue": 1.1, "usd_per_kwh": 0.12},
    )
    assert new.chip.efficiency.gemm_max == 0.9
    assert new.pue == 1.1 and new.usd_per_kwh == 0.12
    assert new.source_of("pue").ref == "user override: pue=1.1"


def test_derived_hardware_is_validated_like_the_catalog() -> None:
    with pytest.raises(SpecError, match=r"bandwidth_gb_s: Input should be greater than 0"):
        derive_system(get_system("gb200"), set={"hbm_bandwidth_tb_s": -1})
    with pytest.raises(SpecError, match="domain_chips: Input should be a valid integer"):
        derive_system(get_system("gb200"), set={"scale_up_domain": 2.5})
    with pytest.raises(SpecError, match="unknown hardware knob 'hbm_speed'.*hbm_bandwidth_tb_s"):
        derive_system(get_system("gb200"), set={"hbm_speed": 2})
    with pytest.raises(SpecError, match="is a system knob"):
        derive_chip(get_chip("b200"), set={"scale_up_domain": 16})


def test_parse_assignments() -> None:
    assert parse_assignments(["a=1", "b=2.5", "c=x"]) == {"a": 1, "b": 2.5, "c": "x"}
    with pytest.raises(SpecError, match="expected KEY=VALUE"):
        parse_assignments(["hbm_bandwidth_tb_s"])
