"""What a hypothetical chip costs: the change in $/chip-hour when knobs change a catalog
system (HBM capacity and bandwidth, SRAM, compute, scale-up domain, host memory).

Without it a co-design search gets faster memory for free and always picks the top of
every range. Each coefficient is derived from published TCO rates where a same-die pair
isolates it, else from die-area arithmetic; every one is graded and documented in
docs/hardware.md ("What a hypothetical chip costs"). The rate changes only the ownership
part of the TCO (`hwmodels.cost`); energy follows the chip's ``tdp_w`` (a separate knob).

- HBM is priced per stack-equivalent: the base chip's HBM cost (its capacity times
  ``HBM_USD_PER_GB_HOUR``) scaled by ``max(C / C0, B / B0)`` — more capacity or more
  bandwidth at this generation's per-stack figures both need proportionally more stacks.
- SRAM per MB of die area; compute in proportion to peak FLOP/s over the compute share
  of the ownership cost; the scale-up domain per doubling of its size; host DRAM per GB.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from hwmodels.system import System

# $/GB-hour of HBM: same-die pairs with SemiAnalysis TCO rates (reference sheet B8):
# H100 80 GB $1.30 -> H200 141 GB $1.41 (+$0.11 / 61 GB = 0.00180) and MI300X 192 GB
# $1.12 -> MI325X 256 GB $1.28 (+$0.16 / 64 GB = 0.00250); mean of the two.
HBM_USD_PER_GB_HOUR = 0.00215
# $/MB-hour of on-die SRAM: 0.34 mm^2/MB (N3-class HD bitcell ~0.02 um^2, ~50 % array
# efficiency; assumed) x $0.0014 per mm^2-hour (Rubin's $3.70/h x 0.6 ownership share over
# ~1,600 mm^2 of die; assumed).
SRAM_USD_PER_MB_HOUR = 0.34 * 0.0014
# share of the ownership rate that scales with compute (die area for the math units);
# assumed
COMPUTE_SHARE = 0.5
# $/chip-hour per doubling of the scale-up domain: GB200 NVL72 $2.21 vs B200 HGX-8 $1.95
# (same Blackwell die) = +$0.26 over log2(72/8) = 3.17 doublings (an upper bound: the
# GB200 rate also carries the Grace CPU share).
SCALE_UP_USD_PER_DOUBLING = 0.26 / math.log2(72 / 8)
# $/GB-hour of host DDR5: ~$5/GB over a 4-year life (35,040 h) x 1.8 TCO/price; assumed
HOST_DRAM_USD_PER_GB_HOUR = 5.0 / 35_040 * 1.8


@dataclass(frozen=True)
class KnobCost:
    """The change in $/chip-hour of a derived system, by component."""

    hbm: float = 0.0
    sram: float = 0.0
    compute: float = 0.0
    scale_up: float = 0.0
    host_memory: float = 0.0

    @property
    def total(self) -> float:
        return self.hbm + self.sram + self.compute + self.scale_up + self.host_memory

    def describe(self) -> str:
        parts = [f"{k} {v:+.3f}" for k, v in self.__dict__.items() if abs(v) > 5e-4]
        return f"knob cost model: {', '.join(parts) or 'no change'} $/chip-hour"


def _hbm(system: System) -> tuple[float, float]:
    return system.chip.hbm_capacity_gb, system.chip.hbm_bandwidth_tb_s


def _peak(system: System) -> float:
    peaks = system.chip.peak_dense_tflops
    return max(peaks.values()) if peaks else 0.0


def _host_gb(system: System) -> float:
    tier = system.host_memory_tier()
    return 0.0 if tier is None else tier.capacity_gb * system.cpus_per_node / system.chips_per_node


def knob_cost(base: System, derived: System) -> KnobCost:
    """$/chip-hour that ``derived`` costs more (or less) than ``base``, by component."""
    c0, b0 = _hbm(base)
    c1, b1 = _hbm(derived)
    hbm = 0.0
    if c0 > 0 and b0 > 0:
        stacks = max(c1 / c0, b1 / b0) if c1 > 0 else 0.0
        hbm = c0 * HBM_USD_PER_GB_HOUR * (stacks - 1.0)
    elif c1 > 0:
        hbm = c1 * HBM_USD_PER_GB_HOUR
    sram = (derived.chip.sram_mb - base.chip.sram_mb) * SRAM_USD_PER_MB_HOUR
    p0, p1 = _peak(base), _peak(derived)
    ownership = base.price_usd_per_chip_hour
    compute = COMPUTE_SHARE * ownership * (p1 / p0 - 1.0) if p0 > 0 else 0.0
    d0, d1 = base.scale_up_domain, derived.scale_up_domain
    scale_up = SCALE_UP_USD_PER_DOUBLING * math.log2(d1 / d0) if d0 > 0 and d1 > 0 else 0.0
    host = (_host_gb(derived) - _host_gb(base)) * HOST_DRAM_USD_PER_GB_HOUR
    return KnobCost(hbm, sram, compute, scale_up, host)


def priced_rate(base: System, derived: System, floor_fraction: float = 0.25) -> float:
    """The derived system's $/chip-hour: the base rate plus the knob cost (never below
    ``floor_fraction`` of the base rate: packaging, board and facility remain)."""
    rate = base.price_usd_per_chip_hour + knob_cost(base, derived).total
    return max(rate, floor_fraction * base.price_usd_per_chip_hour)
