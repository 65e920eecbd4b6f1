"""Nonsense is rejected with messages that name the field and say what to do."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from codesign.errors import NotFoundError, SpecError
from hwmodels import Chip, MemoryTier, System, get_chip, get_system
from hwmodels.catalog import BUILTIN_DIR, Catalog

SRC = {"ref": "test", "grade": "assumed"}


def chip_doc(**over: object) -> dict:
    doc = {
        "name": "testchip",
        "vendor": "Test",
        "kind": "gpu",
        "peak_dense_tflops": {"bf16": 100.0},
        "memory": [
            {
                "name": "HBM",
                "kind": "hbm",
                "capacity_gb": 10,
                "bandwidth_gb_s": 1000,
                "sources": {"capacity_gb": SRC, "bandwidth_gb_s": SRC},
            }
        ],
        "tdp_w": 300,
        "usd_per_hour": 1.0,
        "sources": {"peak_dense_tflops": SRC, "tdp_w": SRC, "usd_per_hour": SRC},
    }
    doc.update(over)
    return doc


def test_a_valid_chip_loads() -> None:
    chip = Chip.model_validate(chip_doc())
    assert chip.memory_capacity_bytes == 10e9


def test_negative_bandwidth_is_rejected_naming_the_field() -> None:
    with pytest.raises(ValidationError, match="bandwidth_gb_s"):
        MemoryTier(name="HBM", kind="hbm", capacity_gb=1, bandwidth_gb_s=-5, sources={"*": SRC})


def test_unknown_compute_format_lists_valid_ones() -> None:
    with pytest.raises(ValidationError, match="unknown compute format 'fp3'.*valid: fp32"):
        Chip.model_validate(chip_doc(peak_dense_tflops={"fp3": 1.0}))


def test_a_number_without_source_is_rejected() -> None:
    doc = chip_doc(sram_mb=50)
    with pytest.raises(ValidationError, match="needs a source.*sram_mb"):
        Chip.model_validate(doc)


def test_idle_power_above_tdp_is_rejected() -> None:
    doc = chip_doc(idle_power_w=400)
    doc["sources"]["idle_power_w"] = SRC
    with pytest.raises(ValidationError, match="idle_power_w .400.* exceeds tdp_w"):
        Chip.model_validate(doc)


def test_accelerator_without_memory_is_rejected() -> None:
    with pytest.raises(ValidationError, match="needs device memory or on-chip SRAM"):
        Chip.model_validate(chip_doc(memory=[]))


def test_unknown_field_is_rejected() -> None:
    with pytest.raises(ValidationError, match="hbm_gb"):
        Chip.model_validate(chip_doc(hbm_gb=80))


def test_system_rejects_cpu_as_accelerator_and_unknown_chip() -> None:
    base = get_system("h100_sxm").model_dump(mode="json")
    base["chip"] = "grace"
    with pytest.raises(ValidationError, match="must be an accelerator"):
        System.model_validate(base)
    base["chip"] = "h1000"
    with pytest.raises(NotFoundError, match="unknown chip 'h1000'"):
        System.model_validate(base)


def test_unknown_system_suggests_close_names() -> None:
    with pytest.raises(NotFoundError, match="did you mean .*gb200"):
        get_system("gb20")


def test_user_catalog_folder_adds_and_reports_bad_files(tmp_path: Path) -> None:
    import yaml

    (tmp_path / "chips").mkdir()
    (tmp_path / "systems").mkdir()
    (tmp_path / "chips" / "testchip.yaml").write_text(yaml.safe_dump(chip_doc()))
    system = get_system("h100_sxm").model_dump(mode="json")
    system.update(name="test_node", aliases=[], chip="testchip")
    (tmp_path / "systems" / "test_node.yaml").write_text(yaml.safe_dump(system))
    cat = Catalog([BUILTIN_DIR, tmp_path])
    assert cat.system("test_node").chip.name == "testchip"
    assert cat.system("gb200").name == "gb200"  # built-ins still there

    bad = chip_doc(name="badchip")
    bad["memory"][0]["bandwidth_gb_s"] = 0
    (tmp_path / "chips" / "badchip.yaml").write_text(yaml.safe_dump(bad))
    with pytest.raises(SpecError, match=r"badchip\.yaml: memory\.0\.bandwidth_gb_s"):
        Catalog([BUILTIN_DIR, tmp_path])


def test_invalid_yaml_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "chips").mkdir()
    (tmp_path / "chips" / "broken.yaml").write_text("name: [unclosed\n")
    with pytest.raises(SpecError, match="broken.yaml: not valid YAML"):
        Catalog([tmp_path])


def test_get_chip_case_insensitive() -> None:
    assert get_chip("H100_SXM").name == "h100_sxm"
