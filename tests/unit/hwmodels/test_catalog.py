"""The built-in catalog: coverage, sources, round-trips, and published figures."""

from __future__ import annotations

import pytest
from pydantic import BaseModel

from hwmodels import Chip, ChipKind, System, get_chip, get_system, list_chips, list_systems
from hwmodels.base import Sourced

REQUIRED_SYSTEMS = [
    # issue: the catalog must cover these ...
    "h100_sxm",
    "h200_sxm",
    "b200_sxm",
    "b300_sxm",
    "gb200",
    "gb300",
    "vera_rubin_nvl72",
    "rubin_cpx",
    "groq3_lpx",
    "mi300x",
    "mi325x",
    "mi355x",
    "tpu_v7",
]
REQUIRED_CHIPS = ["rubin", "rubin_cpx", "groq3_lpu", "grace", "vera"]
VALIDATION_SYSTEMS = ["h100_sxm", "h200_sxm", "b200_sxm", "b300_sxm", "gb200", "gb300"]


@pytest.mark.parametrize("name", REQUIRED_SYSTEMS + VALIDATION_SYSTEMS)
def test_required_systems_exist(name: str) -> None:
    assert get_system(name).name == name


@pytest.mark.parametrize("name", REQUIRED_CHIPS)
def test_required_chips_exist(name: str) -> None:
    assert get_chip(name).name == name


def test_aliases_resolve_case_insensitively() -> None:
    assert get_system("GB200_NVL72").name == "gb200"
    assert get_system("hgx_h100").name == "h100_sxm"
    assert get_system("Ironwood").name == "tpu_v7"


def test_hyphens_and_spaces_spell_the_same_system() -> None:
    assert get_system("gb300-nvl72").name == "gb300"
    assert get_system("H100 SXM").name == "h100_sxm"
    assert get_system("rtx-pro-6000").name == "rtx_pro_6000_server"
    with pytest.raises(Exception, match="unknown system 'h100-pcie'"):
        get_system("h100-pcie")


def _walk_sourced(spec: object, path: str = ""):
    if isinstance(spec, Sourced):
        yield path, spec
    for name, value in spec:  # type: ignore[attr-defined]
        if isinstance(value, list):
            for i, item in enumerate(value):
                if isinstance(item, BaseModel):
                    yield from _walk_sourced(item, f"{path}{name}[{i}].")
        elif isinstance(value, BaseModel) and name != "sources":
            yield from _walk_sourced(value, f"{path}{name}.")


@pytest.mark.parametrize("spec", list_chips() + list_systems(), ids=lambda s: s.name)
def test_every_published_number_has_a_specific_source(spec: Chip | System) -> None:
    for where, obj in _walk_sourced(spec):
        assert "*" not in obj.sources, f"{spec.name}:{where} uses a '*' blanket source"
        for field in obj._sourced_numbers():
            src = obj.source_of(field)
            assert src is not None and src.ref, f"{spec.name}:{where}{field} has no source"


@pytest.mark.parametrize("spec", list_chips() + list_systems(), ids=lambda s: s.name)
def test_yaml_and_json_round_trip(spec: Chip | System) -> None:
    cls = type(spec)
    assert cls.from_yaml(spec.to_yaml()) == spec
    assert cls.model_validate_json(spec.model_dump_json()) == spec


def test_h100_matches_published_datasheet() -> None:
    h100 = get_chip("h100_sxm")
    assert h100.peak_dense_tflops["bf16"] == pytest.approx(989.4)
    # NVIDIA's 3,958 TFLOPS FP8 figure is with 2:4 sparsity; dense is half.
    assert h100.peak_dense_tflops["fp8"] == pytest.approx(3957.8 / 2, rel=1e-3)
    assert h100.hbm_bandwidth_tb_s == pytest.approx(3.35)
    assert h100.hbm_capacity_gb == 80


def test_nvl72_rack_totals_match_published_rack_figures() -> None:
    gb200 = get_system("gb200")
    n = gb200.scale_up_domain
    assert n == 72
    # GB200 NVL72: 13.4 TB HBM, 576 TB/s, 720 PF FP4 dense, 130 TB/s NVLink (B2).
    assert n * gb200.chip.hbm_capacity_gb / 1000 == pytest.approx(13.4, rel=0.01)
    assert n * gb200.chip.hbm_bandwidth_tb_s == pytest.approx(576)
    assert n * gb200.chip.peak_dense_tflops["nvfp4"] / 1000 == pytest.approx(720)
    both_ways = 2 * gb200.fabric.scale_up.link.bandwidth_gb_s_per_direction
    assert n * both_ways / 1000 == pytest.approx(130, rel=0.01)
    # GB300 NVL72: 1,080 PF FP4 dense (B2, verda.com).
    gb300 = get_system("gb300")
    assert gb300.scale_up_domain * gb300.chip.peak_dense_tflops["nvfp4"] / 1000 == 1080
    # Vera Rubin NVL72: 20.7 TB HBM4, 260 TB/s NVLink 6.
    vr = get_system("vera_rubin_nvl72")
    assert vr.scale_up_domain * vr.chip.hbm_capacity_gb / 1000 == pytest.approx(20.7, rel=0.01)
    vr_both_ways = 2 * vr.fabric.scale_up.link.bandwidth_gb_s_per_direction
    assert vr.scale_up_domain * vr_both_ways / 1000 == pytest.approx(260, rel=0.01)


def test_groq3_lpx_rack_figures() -> None:
    lpx = get_system("groq3_lpx")
    n = lpx.scale_up_domain
    assert n == 256
    assert lpx.chip.kind == ChipKind.lpu
    assert lpx.chip.device_memory() is None  # SRAM-first: no HBM
    assert n * lpx.chip.sram_mb / 1000 == pytest.approx(128)  # 128 GB SRAM per rack
    assert n * lpx.chip.sram_bandwidth_tb_s / 1000 == pytest.approx(40, rel=0.05)  # 40 PB/s
    assert n * lpx.chip.peak_dense_tflops["fp8"] / 1000 == pytest.approx(315, rel=0.01)
    assert lpx.chip.memory_capacity_bytes == pytest.approx(500e6)


def test_kv_tiers_share_host_memory_and_cap_by_link() -> None:
    tiers = get_system("gb200").kv_tiers()
    assert [t.kind.value for t in tiers] == ["hbm", "lpddr", "nvme"]
    host = tiers[1]
    # 2 Grace x 480 GB shared by 4 GPUs; bandwidth min(C2C 450 GB/s, 2 x 512 / 4 = 256 GB/s).
    assert host.capacity_bytes_per_chip == pytest.approx(240e9)
    assert host.bandwidth_bytes_per_s_per_chip == pytest.approx(256e9)
    # HGX H100: 2 x 1 TB DDR5 over 8 GPUs, reached over PCIe Gen5 (63 GB/s) < 2 x 307 / 8.
    h100_host = get_system("h100_sxm").kv_tiers()[1]
    assert h100_host.capacity_bytes_per_chip == pytest.approx(256e9)
    assert h100_host.bandwidth_bytes_per_s_per_chip == pytest.approx(63e9)


def test_usable_capacity_is_used_for_memory_fit() -> None:
    gb300 = get_chip("gb300")
    assert gb300.hbm_capacity_gb == 288
    assert gb300.memory_capacity_bytes == pytest.approx(279 * 2**30)
    # the summary (CLI, API) shows both: the quoted figure and what the memory fit uses
    summary = get_system("h100_sxm").summary()
    assert summary["hbm_capacity_gb"] == 80
    assert summary["device_memory_usable_gb"] == pytest.approx(85.52, abs=0.01)


@pytest.mark.parametrize(
    ("chip", "quoted_gb", "smi_mib"),
    [
        # what nvidia-smi reports as memory.total: the quoted "GB" are binary
        ("h100_sxm", 80, 81_559),
        ("h200_sxm", 141, 143_771),
        ("b200", 180, 183_359),
        ("gb200", 186, 189_471),
        ("b300", 288, 275_040),
        ("a100_sxm", 80, 81_920),
        ("l40s", 48, 46_068),
    ],
)
def test_device_memory_is_the_measured_bytes_not_the_quoted_decimal_gb(
    chip: str, quoted_gb: float, smi_mib: int
) -> None:
    c = get_chip(chip)
    assert c.hbm_capacity_gb == quoted_gb
    assert c.memory_capacity_bytes == pytest.approx(smi_mib * 2**20, rel=1e-5)
    # an H100's "80 GB" holds 85.5e9 bytes: 6.9% more KV room than 80e9 would say
    assert c.memory_capacity_bytes <= quoted_gb * 2**30


def test_usable_capacity_may_not_exceed_the_quoted_figure_read_as_binary() -> None:
    from hwmodels.memory import MemoryTier

    src = {"*": {"ref": "test", "grade": "assumed"}}
    tier = {"name": "HBM", "kind": "hbm", "capacity_gb": 80, "bandwidth_gb_s": 1, "sources": src}
    assert MemoryTier(**tier, usable_capacity_gb=85.5).usable_bytes == pytest.approx(85.5e9)
    with pytest.raises(ValueError, match="read as GiB"):
        MemoryTier(**tier, usable_capacity_gb=86)
