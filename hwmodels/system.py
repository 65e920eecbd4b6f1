"""Systems: chips in nodes and scale-up domains, a host CPU whose memory is a KV tier,
storage, the fabric, and the power and cost parameters of running them."""

from __future__ import annotations

from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from hwmodels.base import Sourced
from hwmodels.chip import Chip, ChipKind
from hwmodels.fabric import Fabric
from hwmodels.memory import GB, MemoryKind, MemoryTier


class KVTier(BaseModel):
    """A place KV cache can live, as seen by one accelerator chip (derived, not stored)."""

    model_config = ConfigDict(frozen=True)

    name: str
    kind: MemoryKind
    capacity_bytes_per_chip: float
    bandwidth_bytes_per_s_per_chip: float
    latency_us: float | None = None


class System(Sourced):
    """A deployable system: e.g. an HGX H100 8-GPU node, or a GB200 NVL72 rack."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_\-.]*$", description="catalog key")
    aliases: list[str] = Field(default_factory=list)
    description: str = ""
    chip: Chip
    chips_per_node: int = Field(ge=1, description="accelerators per node (tray/server)")
    host_cpu: Chip | None = Field(default=None, description="host CPU (a kind: cpu chip)")
    cpus_per_node: int = Field(default=0, ge=0)
    fabric: Fabric
    storage: MemoryTier | None = Field(default=None, description="local storage per node")
    overhead_power_w_per_chip: float = Field(
        default=0.0, ge=0, description="host CPU, NICs, switches and fans per chip, W"
    )
    pue: float = Field(default=1.3, ge=1.0, le=3.0, description="power usage effectiveness")
    usd_per_kwh: float = Field(default=0.08, gt=0, le=2.0, description="energy price")
    usd_per_chip_hour: float | None = Field(
        default=None, ge=0, description="all-in TCO per chip-hour; default: the chip's"
    )

    @field_validator("chip", "host_cpu", mode="before")
    @classmethod
    def _resolve_chip(cls, value: Any, info: ValidationInfo) -> Any:
        """A chip may be given by catalog name; a loading catalog passes its chips."""
        if isinstance(value, str):
            chips = (info.context or {}).get("chips")
            if chips is not None:
                key = value.strip().lower()
                if key not in chips:
                    raise ValueError(f"unknown chip {value!r}; known: {', '.join(sorted(chips))}")
                return chips[key]
            from hwmodels.catalog import get_chip

            return get_chip(value)
        return value

    @model_validator(mode="after")
    def _consistent(self) -> System:
        if self.chip.kind == ChipKind.cpu:
            raise ValueError(f"system {self.name}: 'chip' must be an accelerator, not a CPU")
        if self.host_cpu is not None:
            if self.host_cpu.kind != ChipKind.cpu:
                raise ValueError(f"system {self.name}: host_cpu {self.host_cpu.name} is not a CPU")
            if self.cpus_per_node < 1:
                raise ValueError(f"system {self.name}: a host_cpu needs cpus_per_node >= 1")
            dev = self.chip.device_memory()
            if dev is not None and dev.kind == MemoryKind.unified:
                # the CPU of a unified-memory SoC reads the accelerator's own DRAM: a
                # DRAM tier listed on it would count that memory twice (as a KV tier too)
                shared = [
                    t.name
                    for t in self.host_cpu.memory
                    if t.kind in (MemoryKind.lpddr, MemoryKind.ddr)
                ]
                if shared:
                    raise ValueError(
                        f"system {self.name}: chip {self.chip.name} has unified memory "
                        f"shared with the CPU; host_cpu {self.host_cpu.name} must not list "
                        f"it again as {', '.join(shared)}"
                    )
        if self.storage is not None and self.storage.kind not in (
            MemoryKind.nvme,
            MemoryKind.cxl,
        ):
            raise ValueError(f"system {self.name}: storage must be nvme or cxl")
        if self.usd_per_chip_hour is None and self.chip.usd_per_hour is None:
            raise ValueError(
                f"system {self.name}: no price; set usd_per_chip_hour on the system or the chip"
            )
        if self.chip.tdp_w is None:
            raise ValueError(f"system {self.name}: chip {self.chip.name} needs tdp_w for power")
        return self

    # --- derived views -------------------------------------------------------------
    @property
    def scale_up_domain(self) -> int:
        return self.fabric.scale_up.domain_chips

    @property
    def price_usd_per_chip_hour(self) -> float:
        price = self.usd_per_chip_hour
        return float(price if price is not None else self.chip.usd_per_hour)  # type: ignore[arg-type]

    def host_memory_tier(self) -> MemoryTier | None:
        if self.host_cpu is None:
            return None
        for tier in self.host_cpu.memory:
            if tier.kind in (MemoryKind.lpddr, MemoryKind.ddr, MemoryKind.cxl):
                return tier
        return None

    def host_kv_tier(self) -> KVTier | None:
        """The host-memory KV tier as one chip sees it, or None without a host CPU tier.

        Host memory is shared by the chips of a node and reached over the chip-to-host
        link, so its bandwidth per chip is the smaller of the link and the CPU memory
        bandwidth share.
        """
        host = self.host_memory_tier()
        if host is None:
            return None
        share = self.cpus_per_node / self.chips_per_node
        bw = host.bandwidth_bytes_per_s * share
        link = self.fabric.chip_to_host
        if link is not None:
            bw = min(bw, link.bandwidth_bytes_per_s)
        return KVTier(
            name=host.name,
            kind=host.kind,
            capacity_bytes_per_chip=host.usable_bytes * share,
            bandwidth_bytes_per_s_per_chip=bw,
            latency_us=host.latency_us,
        )

    def storage_kv_tier(self) -> KVTier | None:
        """The node's storage (NVMe) as a KV tier for one chip, or None without storage:
        the node's drives and their read bandwidth shared evenly by its chips."""
        if self.storage is None:
            return None
        return KVTier(
            name=self.storage.name,
            kind=self.storage.kind,
            capacity_bytes_per_chip=self.storage.usable_bytes / self.chips_per_node,
            bandwidth_bytes_per_s_per_chip=self.storage.bandwidth_bytes_per_s / self.chips_per_node,
            latency_us=self.storage.latency_us,
        )

    @property
    def storage_kv_gb_per_chip(self) -> float:
        """Storage KV capacity per accelerator chip, GB (0 without storage)."""
        tier = self.storage_kv_tier()
        return tier.capacity_bytes_per_chip / 1e9 if tier else 0.0

    @property
    def host_kv_gb_per_chip(self) -> float:
        """Host-memory KV capacity per accelerator chip, GB (0 without a host tier)."""
        tier = self.host_kv_tier()
        return tier.capacity_bytes_per_chip / 1e9 if tier else 0.0

    def kv_tiers(self) -> list[KVTier]:
        """KV-cache tiers per accelerator chip, fastest first.

        Host memory is shared by the chips of a node and reached over the chip-to-host
        link, so its bandwidth per chip is the smaller of the link and the CPU memory
        bandwidth share; storage is shared by the node.
        """
        tiers: list[KVTier] = []
        dev = self.chip.device_memory()
        if dev is not None:
            tiers.append(
                KVTier(
                    name=dev.name,
                    kind=dev.kind,
                    capacity_bytes_per_chip=dev.usable_bytes,
                    bandwidth_bytes_per_s_per_chip=dev.bandwidth_bytes_per_s,
                    latency_us=dev.latency_us,
                )
            )
        elif self.chip.sram_mb > 0:
            tiers.append(
                KVTier(
                    name="SRAM",
                    kind=MemoryKind.sram,
                    capacity_bytes_per_chip=self.chip.sram_mb * 1e6,
                    bandwidth_bytes_per_s_per_chip=self.chip.memory_bandwidth_bytes_per_s,
                )
            )
        host = self.host_kv_tier()
        if host is not None:
            tiers.append(host)
        storage = self.storage_kv_tier()
        if storage is not None:
            tiers.append(storage)
        return tiers

    def summary(self) -> dict[str, Any]:
        """A flat, human-oriented summary (used by the CLI and API)."""
        from hwmodels.cost import power_w_per_chip

        host = self.host_memory_tier()
        share = self.cpus_per_node / self.chips_per_node if host else 0.0
        return {
            "name": self.name,
            "chip": self.chip.name,
            "chips_per_node": self.chips_per_node,
            "scale_up_domain": self.scale_up_domain,
            "scale_up_gb_s_per_direction": self.fabric.scale_up.link.bandwidth_gb_s_per_direction,
            "scale_out_gb_s_per_direction": (
                self.fabric.scale_out.bandwidth_gb_s_per_direction if self.fabric.scale_out else 0
            ),
            "hbm_capacity_gb": self.chip.hbm_capacity_gb,
            # what the driver reports, as the memory fit uses (the quoted "GB" are GiB)
            "device_memory_usable_gb": round(self.chip.memory_capacity_bytes / GB, 3),
            "hbm_bandwidth_tb_s": self.chip.hbm_bandwidth_tb_s,
            "sram_mb": self.chip.sram_mb,
            "peak_dense_tflops": dict(self.chip.peak_dense_tflops),
            "host_memory_gb_per_chip": (host.capacity_gb * share) if host else 0.0,
            "power_w_per_chip_at_load": power_w_per_chip(self, 1.0),
            "usd_per_chip_hour": self.price_usd_per_chip_hour,
        }


__all__ = ["GB", "KVTier", "System"]
