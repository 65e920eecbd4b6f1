"""Power and cost per chip-hour as functions of utilisation.

Published TCO rates (e.g. SemiAnalysis $/GPU-hour) already include energy at a
reference load. To price energy at the user's PUE, $/kWh and the deployment's actual
utilisation without counting it twice, the rate is split into ownership (the rate minus
energy at full load) plus energy at the given utilisation:

    usd_per_chip_hour(u) = rate - E(1) + E(u),   E(u) = P(u) * PUE * usd_per_kwh / 1000
    P(u) = idle + (tdp - idle) * u + overhead_per_chip

so at full utilisation the published rate is returned exactly.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from hwmodels.system import System

DEFAULT_IDLE_FRACTION = 0.3  # idle power as a fraction of TDP when a chip gives none


def idle_power_w(system: System) -> float:
    chip = system.chip
    assert chip.tdp_w is not None
    return (
        chip.idle_power_w if chip.idle_power_w is not None else DEFAULT_IDLE_FRACTION * chip.tdp_w
    )


def power_w_per_chip(system: System, utilization: ArrayLike) -> NDArray[np.float64] | float:
    """Wall power per accelerator chip (chip + its share of host/network), before PUE."""
    u = np.clip(np.asarray(utilization, dtype=np.float64), 0.0, 1.0)
    idle = idle_power_w(system)
    tdp = float(system.chip.tdp_w)  # type: ignore[arg-type]
    p = idle + (tdp - idle) * u + system.overhead_power_w_per_chip
    return float(p) if p.ndim == 0 else p


def energy_usd_per_chip_hour(system: System, utilization: ArrayLike) -> NDArray[np.float64] | float:
    """Facility energy cost per chip-hour at a utilisation (PUE included)."""
    p = np.asarray(power_w_per_chip(system, utilization))
    e = p * system.pue * system.usd_per_kwh / 1000.0
    return float(e) if e.ndim == 0 else e


def ownership_usd_per_chip_hour(system: System) -> float:
    """The part of the TCO rate that does not depend on load (never negative)."""
    rate = system.price_usd_per_chip_hour
    return max(0.0, rate - float(energy_usd_per_chip_hour(system, 1.0)))


def usd_per_chip_hour(system: System, utilization: ArrayLike = 1.0) -> NDArray[np.float64] | float:
    """All-in cost per chip-hour at a utilisation; equals the published rate at u=1."""
    e = np.asarray(energy_usd_per_chip_hour(system, utilization))
    c = ownership_usd_per_chip_hour(system) + e
    return float(c) if c.ndim == 0 else c
