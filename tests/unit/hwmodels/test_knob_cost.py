"""The knob cost model against hand computations and the published same-die pairs."""

from __future__ import annotations

import math

import pytest

from hwmodels import derive_system, get_system
from hwmodels.knob_cost import (
    HBM_USD_PER_GB_HOUR,
    SCALE_UP_USD_PER_DOUBLING,
    SRAM_USD_PER_MB_HOUR,
    knob_cost,
    priced_rate,
)


def test_coefficients_come_from_the_published_pairs() -> None:
    # H100 -> H200 (+61 GB, +$0.11) and MI300X -> MI325X (+64 GB, +$0.16), SemiAnalysis TCO
    assert pytest.approx((0.11 / 61 + 0.16 / 64) / 2, rel=0.01) == HBM_USD_PER_GB_HOUR
    assert pytest.approx(0.26 / math.log2(9)) == SCALE_UP_USD_PER_DOUBLING


def test_rubin_with_doubled_memory_sram_and_a_576_chip_domain() -> None:
    base = get_system("vera_rubin_nvl72")  # 288 GB, 22 TB/s HBM4, 126 MB SRAM, domain 72
    knobs = {"hbm_bandwidth_tb_s": 44, "hbm_capacity_gb": 576, "sram_mb": 1024}
    d = derive_system(base, set={**knobs, "scale_up_domain": 576})
    k = knob_cost(base, d)
    # twice the stacks: one more base HBM subsystem = 288 GB x $0.00215
    assert k.hbm == pytest.approx(288 * 0.00215)
    assert k.sram == pytest.approx((1024 - 126) * SRAM_USD_PER_MB_HOUR)
    assert k.scale_up == pytest.approx(3 * SCALE_UP_USD_PER_DOUBLING)  # 72 -> 576: 3 doublings
    assert k.compute == 0 and k.host_memory == 0
    assert priced_rate(base, d) == pytest.approx(3.70 + k.total)


def test_bandwidth_alone_needs_stacks_too() -> None:
    base = get_system("vera_rubin_nvl72")
    fast = derive_system(base, set={"hbm_bandwidth_tb_s": 66})  # 3x bandwidth, same capacity
    assert knob_cost(base, fast).hbm == pytest.approx(2 * 288 * HBM_USD_PER_GB_HOUR)
    # less capacity at the same bandwidth saves nothing (the stacks are still needed)
    small = derive_system(base, set={"hbm_capacity_gb": 144})
    assert knob_cost(base, small).hbm == pytest.approx(0.0)


def test_model_reproduces_the_same_die_pair_within_20_percent() -> None:
    got = knob_cost(get_system("h100_sxm"), get_system("h200_sxm")).total
    assert got == pytest.approx(1.41 - 1.30, rel=0.2)


def test_reprice_is_opt_in_and_an_explicit_price_wins() -> None:
    base = get_system("vera_rubin_nvl72")
    kept = derive_system(base, set={"hbm_bandwidth_tb_s": 60})
    assert kept.price_usd_per_chip_hour == base.price_usd_per_chip_hour
    priced = derive_system(base, set={"hbm_bandwidth_tb_s": 60}, reprice=True)
    assert priced.price_usd_per_chip_hour == pytest.approx(
        3.70 + (60 / 22 - 1) * 288 * HBM_USD_PER_GB_HOUR, rel=1e-6
    )
    assert "knob cost model" in priced.chip.sources["usd_per_hour"].ref
    given = derive_system(
        base, set={"hbm_bandwidth_tb_s": 60, "chip_usd_per_hour": 5}, reprice=True
    )
    assert given.price_usd_per_chip_hour == 5


def test_a_cheaper_chip_never_goes_below_the_floor() -> None:
    base = get_system("vera_rubin_nvl72")
    tiny = derive_system(base, set={"nvfp4_tflops": 1, "fp4_tflops": 1, "mxfp4_tflops": 1})
    assert priced_rate(base, tiny) >= 0.25 * 3.70
