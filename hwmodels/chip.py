"""Accelerator and host-CPU chips: peak dense FLOP/s per format, memory, power, price."""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field, field_validator, model_validator

from hwmodels.base import Sourced, Spec
from hwmodels.memory import DEVICE_KINDS, GB, MemoryKind, MemoryTier
from hwmodels.precision import COMPUTE_FORMATS, FALLBACK_CHAIN, Precision, get_precision


class ChipKind(StrEnum):
    gpu = "gpu"
    lpu = "lpu"  # SRAM-first dataflow inference chip (Groq)
    tpu = "tpu"
    cpu = "cpu"
    other = "other"


class Efficiency(Spec):
    """Clock-independent efficiency defaults: fractions of peak that well-shaped work reaches.

    These are priors for the performance model; calibration replaces them with fitted
    values per chip generation. All are assumptions unless a calibration file says otherwise.
    """

    gemm_max: float = Field(default=0.75, gt=0, le=1, description="large-GEMM fraction of peak")
    attention_max: float = Field(default=0.55, gt=0, le=1, description="flash attention")
    memory_bandwidth: float = Field(default=0.85, gt=0, le=1, description="streaming reads")
    scale_up_bandwidth: float = Field(default=0.8, gt=0, le=1, description="collectives")
    scale_out_bandwidth: float = Field(default=0.7, gt=0, le=1, description="NIC transfers")


class Chip(Sourced):
    """One chip. FLOP/s are dense (no 2:4 sparsity), per chip, in TFLOP/s (TOPS for ints)."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_\-.]*$", description="catalog key")
    vendor: str
    kind: ChipKind = ChipKind.gpu
    description: str = ""
    peak_dense_tflops: dict[str, float] = Field(
        default_factory=dict, description="dense peak per compute format, TFLOP/s"
    )
    memory: list[MemoryTier] = Field(default_factory=list, description="attached device tiers")
    sram_mb: float = Field(default=0.0, ge=0, description="on-chip SRAM (L2/SMEM) in MB")
    sram_bandwidth_tb_s: float | None = Field(default=None, gt=0, description="SRAM TB/s")
    cores: int | None = Field(default=None, gt=0, description="CPU cores (host chips)")
    tdp_w: float | None = Field(default=None, gt=0, description="power at full load, W")
    idle_power_w: float | None = Field(default=None, ge=0, description="power when idle, W")
    usd_per_hour: float | None = Field(
        default=None, ge=0, description="all-in TCO per chip-hour (energy included)"
    )
    efficiency: Efficiency = Field(default_factory=Efficiency)

    @field_validator("peak_dense_tflops")
    @classmethod
    def _known_formats(cls, value: dict[str, float]) -> dict[str, float]:
        for fmt, tflops in value.items():
            if fmt not in COMPUTE_FORMATS:
                raise ValueError(
                    f"unknown compute format {fmt!r}; valid: {', '.join(COMPUTE_FORMATS)}"
                )
            if not tflops > 0:
                raise ValueError(f"peak_dense_tflops.{fmt} must be > 0, got {tflops}")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Chip:
        if self.kind != ChipKind.cpu and not self.peak_dense_tflops:
            raise ValueError(f"chip {self.name}: an accelerator needs peak_dense_tflops")
        if self.kind != ChipKind.cpu and not self.memory and self.sram_mb == 0:
            raise ValueError(f"chip {self.name}: needs device memory or on-chip SRAM")
        if self.sram_mb > 0 and self.sram_bandwidth_tb_s is None and self.kind == ChipKind.lpu:
            raise ValueError(f"chip {self.name}: an SRAM-first chip needs sram_bandwidth_tb_s")
        if (
            self.idle_power_w is not None
            and self.tdp_w is not None
            and self.idle_power_w > self.tdp_w
        ):
            raise ValueError(
                f"chip {self.name}: idle_power_w ({self.idle_power_w}) exceeds tdp_w ({self.tdp_w})"
            )
        names = [m.name for m in self.memory]
        if len(set(names)) != len(names):
            raise ValueError(f"chip {self.name}: memory tier names must be unique: {names}")
        return self

    # --- derived views -------------------------------------------------------------
    def device_memory(self) -> MemoryTier | None:
        """The main device tier (HBM, GDDR or unified SoC memory), or None for an SRAM-only
        chip."""
        for tier in self.memory:
            if tier.kind in DEVICE_KINDS and tier.kind != MemoryKind.sram:
                return tier
        return None

    @property
    def memory_capacity_bytes(self) -> float:
        """Bytes available for weights and KV: device memory, or SRAM when there is none."""
        tier = self.device_memory()
        return tier.usable_bytes if tier else self.sram_mb * 1e6

    @property
    def memory_bandwidth_bytes_per_s(self) -> float:
        tier = self.device_memory()
        if tier:
            return tier.bandwidth_bytes_per_s
        return (self.sram_bandwidth_tb_s or 0.0) * 1e12

    @property
    def hbm_capacity_gb(self) -> float:
        tier = self.device_memory()
        return tier.capacity_gb if tier else 0.0

    @property
    def hbm_bandwidth_tb_s(self) -> float:
        tier = self.device_memory()
        return tier.bandwidth_gb_s / 1000 if tier else 0.0

    def accelerates(self, precision: str | Precision) -> bool:
        """True when the chip has a native peak rate for the format."""
        p = get_precision(precision) if isinstance(precision, str) else precision
        if p.weight_only:
            return False
        return any(f in self.peak_dense_tflops for f in p.compute_formats)

    def compute_format_for(self, precision: str | Precision) -> str:
        """The peak-rate class the chip uses for this format (native, else next wider)."""
        p = get_precision(precision) if isinstance(precision, str) else precision
        for fmt in p.compute_formats:
            if fmt in self.peak_dense_tflops:
                return fmt
        start = FALLBACK_CHAIN.index(_fallback_start(p))
        for fmt in FALLBACK_CHAIN[start:]:
            if fmt in self.peak_dense_tflops:
                return fmt
        raise ValueError(f"chip {self.name} has no compute rate usable for {p.name}")

    def peak_flops(self, precision: str | Precision) -> float:
        """Dense peak FLOP/s for a format (falling back to a wider native format)."""
        return self.peak_dense_tflops[self.compute_format_for(precision)] * 1e12


def _fallback_start(p: Precision) -> str:
    for fmt in p.compute_formats:
        if fmt in FALLBACK_CHAIN:
            return fmt
    if "4" in p.name:
        return "fp4"
    return "bf16"


__all__ = ["GB", "Chip", "ChipKind", "Efficiency"]
