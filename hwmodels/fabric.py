"""Interconnect: links (NVLink, PCIe, C2C, NICs) and the fabric of a system.

Bandwidths are per chip and per direction (a "1.8 TB/s bidirectional" NVLink 5 port is
900 GB/s each way), because a collective's time is bytes sent per chip / one-way bandwidth.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field

from hwmodels.base import Sourced, Spec


class LinkKind(StrEnum):
    nvlink = "nvlink"
    nvlink_c2c = "nvlink_c2c"
    pcie = "pcie"
    xgmi = "xgmi"  # AMD Infinity Fabric
    ici = "ici"  # Google inter-chip interconnect
    lpu_c2c = "lpu_c2c"  # Groq chip-to-chip
    ethernet = "ethernet"
    infiniband = "infiniband"


class Link(Sourced):
    """A point-to-point or switched link as seen by one chip."""

    name: str = Field(min_length=1, description="e.g. NVLink 5, PCIe Gen5 x16, ConnectX-7")
    kind: LinkKind
    bandwidth_gb_s_per_direction: float = Field(gt=0, description="GB/s each way, per chip")
    latency_us: float = Field(default=1.0, ge=0, description="one-way latency, µs")

    @property
    def bandwidth_bytes_per_s(self) -> float:
        return self.bandwidth_gb_s_per_direction * 1e9


class ScaleUp(Spec):
    """The scale-up domain: chips that share a high-bandwidth fabric (NVLink switch, ICI)."""

    link: Link
    domain_chips: int = Field(ge=1, description="chips in one scale-up domain")


class Fabric(Spec):
    """Everything a chip talks over: scale-up domain, scale-out NIC, and its host link."""

    scale_up: ScaleUp
    scale_out: Link | None = Field(default=None, description="NIC bandwidth per chip")
    chip_to_host: Link | None = Field(default=None, description="PCIe or NVLink-C2C to the CPU")

    @property
    def scale_up_domain(self) -> int:
        return self.scale_up.domain_chips
