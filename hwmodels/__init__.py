"""Parametric hardware, real and hypothetical: chips, memory tiers, fabrics, precisions,
systems, cost and power, and the YAML catalog that names them."""

from hwmodels.catalog import (
    Catalog,
    default_catalog,
    get_chip,
    get_system,
    list_chips,
    list_systems,
)
from hwmodels.chip import Chip, ChipKind, Efficiency
from hwmodels.cost import (
    energy_usd_per_chip_hour,
    ownership_usd_per_chip_hour,
    power_w_per_chip,
    usd_per_chip_hour,
)
from hwmodels.derive import KNOBS, derive_chip, derive_system
from hwmodels.fabric import Fabric, Link, LinkKind, ScaleUp
from hwmodels.memory import MemoryKind, MemoryTier
from hwmodels.precision import PRECISIONS, Precision, get_precision
from hwmodels.provenance import Grade, Source
from hwmodels.system import KVTier, System


def chips_accelerating(precision: str) -> list[str]:
    """Names of the catalog accelerators with a native peak rate for a format."""
    p = get_precision(precision)
    return [c.name for c in list_chips() if c.kind != ChipKind.cpu and c.accelerates(p)]


__all__ = [
    "KNOBS",
    "PRECISIONS",
    "Catalog",
    "Chip",
    "ChipKind",
    "Efficiency",
    "Fabric",
    "Grade",
    "KVTier",
    "Link",
    "LinkKind",
    "MemoryKind",
    "MemoryTier",
    "Precision",
    "ScaleUp",
    "Source",
    "System",
    "chips_accelerating",
    "default_catalog",
    "derive_chip",
    "derive_system",
    "energy_usd_per_chip_hour",
    "get_chip",
    "get_precision",
    "get_system",
    "list_chips",
    "list_systems",
    "ownership_usd_per_chip_hour",
    "power_w_per_chip",
    "usd_per_chip_hour",
]
