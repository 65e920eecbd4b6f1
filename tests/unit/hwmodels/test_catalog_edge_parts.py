"""Edge and workstation parts that aiconfigurator has system files for (DGX Spark's GB10,
GeForce RTX 5090, Intel Arc Pro B60): they resolve by the names benchmark tables use,
carry the published figures (checked here against those figures, not the YAML), and the
performance model predicts a row on each from its spec sheet."""

from __future__ import annotations

import math

import pytest

from codesign.errors import SpecError
from codesign.perf.estimate import EstimateRequest, estimate
from hwmodels import Chip, MemoryKind, System, default_catalog, derive_system, get_system

GiB = 2**30


@pytest.mark.parametrize(
    ("name", "canonical"),
    [
        ("gb10", "gb10"),
        ("dgx_spark", "gb10"),
        ("DGX Spark", "gb10"),
        ("gb10-spark", "gb10"),
        ("rtx_5090", "rtx_5090"),
        ("rtx5090", "rtx_5090"),
        ("GeForce RTX 5090", "rtx_5090"),
        ("b60", "b60"),
        ("arc-pro-b60", "b60"),
        ("intel_b60", "b60"),
        ("Intel Arc Pro B60", "b60"),
    ],
)
def test_table_names_resolve(name: str, canonical: str) -> None:
    assert get_system(name).name == canonical


def test_new_aliases_shadow_no_other_name() -> None:
    cat = default_catalog()
    for name in ("gb10", "rtx_5090", "b60"):
        for alias in cat.systems[name].aliases:
            assert alias not in cat.systems, f"{alias} is also a system name"
            assert cat.aliases[alias] == name, f"{alias} resolves to {cat.aliases[alias]}"
    # the older names keep resolving where they did
    assert get_system("rtx_pro_6000").name == "rtx_pro_6000_server"
    assert get_system("gb200").name == "gb200"


# --- GB10 (DGX Spark) ---------------------------------------------------------------------
def test_gb10_device_memory_is_the_unified_lpddr5x() -> None:
    s = get_system("gb10")
    dev = s.chip.device_memory()
    assert dev is not None and dev.kind == MemoryKind.unified and "LPDDR5X" in dev.name
    assert s.chip.memory_bandwidth_bytes_per_s == pytest.approx(273e9)
    # 119.7 GiB usable to CUDA out of 128 GiB physical
    assert s.chip.memory_capacity_bytes == pytest.approx(128_538_451_968, rel=1e-4)
    assert dev.capacity_gb * 1e9 == pytest.approx(128 * GiB, rel=1e-4)
    assert s.chips_per_node == 1 and s.scale_up_domain == 1


def test_gb10_memory_is_counted_once() -> None:
    s = get_system("gb10")
    assert s.host_cpu is not None and s.host_cpu.cores == 20
    assert s.host_memory_tier() is None and s.host_kv_tier() is None
    assert s.host_kv_gb_per_chip == 0.0 and s.summary()["host_memory_gb_per_chip"] == 0.0
    tiers = s.kv_tiers()
    assert [t.kind for t in tiers] == [MemoryKind.unified]
    assert sum(t.capacity_bytes_per_chip for t in tiers) == pytest.approx(128.5e9, rel=1e-3)
    # host-memory offload has nothing to offload to
    with pytest.raises(SpecError, match="host"):
        derive_system(s, set={"host_memory_gb": 64})


def test_a_unified_memory_chip_refuses_a_host_dram_tier() -> None:
    doc = get_system("gb10").model_dump(mode="json")
    doc["host_cpu"] = get_system("gb200").host_cpu.model_dump(mode="json")  # Grace + LPDDR5X
    with pytest.raises(ValueError, match="unified memory"):
        System.model_validate(doc)


def test_gb10_device_knobs_change_the_unified_tier() -> None:
    s = derive_system(get_system("gb10"), set={"hbm_bandwidth_tb_s": 0.5})
    assert s.chip.memory_bandwidth_bytes_per_s == pytest.approx(500e9)
    assert s.chip.device_memory().kind == MemoryKind.unified


def test_gb10_fp8_does_not_double_but_fp4_does() -> None:
    chip = get_system("gb10").chip
    bf16 = chip.peak_flops("bf16")
    assert bf16 == pytest.approx(213e12, rel=0.01)
    assert chip.peak_flops("fp8") == pytest.approx(bf16, rel=0.01)  # ~214 vs ~213 on SM12x
    assert chip.peak_flops("int8") == pytest.approx(bf16, rel=0.01)
    assert chip.peak_flops("nvfp4") == pytest.approx(2 * bf16, rel=0.01)  # ~427 dense
    assert chip.tdp_w == 140
    assert get_system("gb10").fabric.chip_to_host.bandwidth_gb_s_per_direction == 450
    assert get_system("gb10").fabric.scale_out.bandwidth_gb_s_per_direction == 25


# --- RTX 5090 -------------------------------------------------------------------------------
def test_rtx_5090_figures() -> None:
    s = get_system("rtx_5090")
    chip = s.chip
    assert chip.peak_flops("bf16") == pytest.approx(419.0e12)
    assert chip.peak_flops("fp8") == pytest.approx(2 * 419.0e12)
    assert chip.peak_flops("nvfp4") == pytest.approx(4 * chip.peak_flops("bf16"))
    assert chip.memory_bandwidth_bytes_per_s == pytest.approx(1.792e12)
    assert chip.memory_capacity_bytes == pytest.approx(34_190_917_632, rel=1e-4)
    assert chip.device_memory().kind == MemoryKind.gddr
    assert s.fabric.scale_up.link.kind.value == "pcie"
    assert s.fabric.scale_up.link.bandwidth_gb_s_per_direction == 64
    assert s.chips_per_node == 1 and s.scale_up_domain == 1
    assert chip.tdp_w == 575


# --- Arc Pro B60 ----------------------------------------------------------------------------
def test_b60_has_no_fp8_rate_and_24_gb() -> None:
    s = get_system("b60")
    chip: Chip = s.chip
    assert chip.vendor == "Intel"
    for fmt in ("fp8", "fp6", "fp4", "nvfp4", "mxfp4"):
        assert fmt not in chip.peak_dense_tflops
    assert not chip.accelerates("fp8") and not chip.accelerates("nvfp4")
    # FP8 and FP4 weights run at the 16-bit XMX rate, INT8 at its own
    assert chip.peak_flops("fp8") == chip.peak_flops("bf16") == pytest.approx(98.3e12)
    assert chip.peak_flops("nvfp4") == pytest.approx(98.3e12)
    assert chip.peak_flops("int8") == pytest.approx(197e12)
    assert chip.memory_capacity_bytes == pytest.approx(24 * GiB, rel=1e-4)
    assert chip.memory_bandwidth_bytes_per_s == pytest.approx(456e9)
    assert chip.tdp_w == 200
    assert s.chips_per_node == 8 and s.scale_up_domain == 8
    assert s.fabric.scale_up.link.kind.value == "pcie"
    assert s.fabric.scale_up.link.bandwidth_gb_s_per_direction == 32
    assert s.fabric.scale_out.bandwidth_gb_s_per_direction == 25


@pytest.mark.parametrize("name", ["gb10", "rtx_5090", "b60"])
def test_prices_are_graded_assumed(name: str) -> None:
    s = get_system(name)
    assert s.price_usd_per_chip_hour > 0
    assert s.chip.source_of("usd_per_hour").grade.value == "assumed"


# --- the performance model on them ----------------------------------------------------------
LLAMA_8B = "meta-llama/Llama-3.1-8B-Instruct"


@pytest.mark.parametrize("system", ["gb10", "rtx_5090", "b60"])
def test_small_model_predicts_on_each(system: str) -> None:
    r = estimate(
        EstimateRequest(
            model=LLAMA_8B, system=system, engine="vllm", tp=1, batch=4, isl=1024, osl=128
        )
    )
    assert r["fits"]
    assert math.isfinite(r["ttft_ms"]) and 0 < r["ttft_ms"] < 1e5
    assert math.isfinite(r["tpot_ms"]) and 0 < r["tpot_ms"] < 1e4


def test_gb10_batch1_tpot_streams_the_weights_at_273_gb_s() -> None:
    # by hand: 8.03 B parameters x 2 bytes (bf16) = ~16 GB read once per decode step
    floor_ms = 16e9 / 273e9 * 1e3  # ~59 ms
    r = estimate(
        EstimateRequest(
            model=LLAMA_8B, system="gb10", engine="vllm", tp=1, batch=1, isl=1024, osl=128
        )
    )
    assert r["gemm_precision"] == "bf16"
    assert r["weights_gb_per_gpu"] == pytest.approx(16.06, rel=0.02)
    assert floor_ms <= r["weights_gb_per_gpu"] * 1e9 / 273e9 * 1e3 <= r["tpot_ms"]
    assert r["tpot_ms"] < 2 * floor_ms
    # an RTX 5090 streams the same weights 1.792 / 0.273 = 6.6x faster
    r5090 = estimate(
        EstimateRequest(
            model=LLAMA_8B, system="rtx_5090", engine="vllm", tp=1, batch=1, isl=1024, osl=128
        )
    )
    assert 4 < r["tpot_ms"] / r5090["tpot_ms"] < 8
