"""Memory tiers: device HBM/GDDR, unified SoC memory, host LPDDR/DDR, CXL, NVMe storage."""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field, model_validator

from hwmodels.base import Sourced

GB = 1e9  # decimal gigabyte, as vendors publish bandwidths
GIB = 2.0**30  # binary gigabyte: what a quoted DRAM capacity in "GB" usually is


class MemoryKind(StrEnum):
    hbm = "hbm"
    gddr = "gddr"
    lpddr = "lpddr"
    ddr = "ddr"
    cxl = "cxl"
    nvme = "nvme"
    sram = "sram"
    # One DRAM pool shared by the CPU and the accelerator of an SoC (DGX Spark's GB10:
    # 128 GB LPDDR5X). A kind of its own rather than ``lpddr`` with a flag: the
    # accelerator's device memory is found by kind (DEVICE_KINDS) and a host-memory KV
    # tier by ``lpddr``/``ddr``/``cxl`` (System.host_memory_tier, derive's knobs), so
    # a unified pool is counted once, as device memory, and never again as host memory.
    unified = "unified"


DEVICE_KINDS = frozenset({MemoryKind.hbm, MemoryKind.gddr, MemoryKind.unified, MemoryKind.sram})


class MemoryTier(Sourced):
    """One tier of memory as seen by one chip (per-chip capacity and bandwidth).

    ``bandwidth_gb_s`` is the sustained peak the chip can read from the tier (for a device
    tier: the memory's peak; for a host or storage tier, see System.kv_tiers which caps it
    by the link that reaches it).
    """

    name: str = Field(min_length=1, description="e.g. HBM3e, LPDDR5X, NVMe")
    kind: MemoryKind
    capacity_gb: float = Field(gt=0, description="capacity as the vendor quotes it, in GB")
    usable_capacity_gb: float | None = Field(
        default=None,
        gt=0,
        description="bytes / 1e9 left to software (what nvidia-smi reports); default all",
    )
    bandwidth_gb_s: float = Field(gt=0, description="peak read bandwidth in GB/s")
    latency_us: float | None = Field(default=None, gt=0, description="access latency in µs")

    @model_validator(mode="after")
    def _usable_within_capacity(self) -> MemoryTier:
        # DRAM comes in binary sizes and vendors quote GiB as "GB": an H100's "80 GB" is
        # 81,559 MiB = 85.5e9 bytes to CUDA. The usable bytes may exceed the quoted figure
        # read as decimal, never the quoted figure read as binary.
        most = self.capacity_gb * GIB / GB
        if self.usable_capacity_gb is not None and self.usable_capacity_gb > most * (1 + 1e-9):
            raise ValueError(
                f"{self.name}: usable_capacity_gb ({self.usable_capacity_gb}) exceeds "
                f"capacity_gb ({self.capacity_gb}) read as GiB ({most:.3f} GB)"
            )
        return self

    @property
    def usable_bytes(self) -> float:
        return (self.usable_capacity_gb or self.capacity_gb) * GB

    @property
    def bandwidth_bytes_per_s(self) -> float:
        return self.bandwidth_gb_s * GB
