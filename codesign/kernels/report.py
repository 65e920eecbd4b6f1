"""Kernel measurements as a file: what was timed, on which device, by whom and when.

A measurement file is the record a lent GPU leaves behind (``codesign kernels measure``):
one row per timed kernel with its shape, its FLOPs and bytes counted by hand from the
shape (``flops``, ``bytes_moved``), and the seconds one run took; the
provenance says which device, driver, framework and code produced it. ``codesign kernels
compare`` reads it back against the performance model. Rows are validated at the edge:
a file that does not describe a measurement is refused with the field at fault.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from codesign.errors import SpecError
from codesign.kernels.report_format import FORMAT_VERSION

KernelOp = Literal["membw", "h2d", "gemm", "attn_prefill", "attn_decode"]


class Provenance(BaseModel):
    """Where and how the measurements were taken."""

    model_config = ConfigDict(extra="forbid")

    device: str = Field(min_length=1, description="device name as the framework reports it")
    backend: str = Field(min_length=1, description="torch-cuda, torch-cpu or numpy")
    measured_at: str = Field(description="UTC timestamp (ISO 8601)")
    host: str = ""
    framework: str = ""  # e.g. "torch 2.13.0+cu130"
    driver: str = ""  # nvidia-smi driver version where there is one
    codesign_commit: str = ""
    command: str = ""
    repeats: int = Field(ge=1)
    notes: str = ""


class KernelRow(BaseModel):
    """One timed kernel. ``dtype``: the operand precision (bf16, fp8, fp32 ...);
    ``shape``: the dimensions that define it (gemm m, n, k; attention batch, heads,
    kv_heads, head_dim, q_len, kv_len; membw bytes)."""

    model_config = ConfigDict(extra="forbid")

    op: KernelOp
    dtype: str = Field(min_length=1)
    shape: dict[str, int]
    seconds: float = Field(gt=0.0, description="per run: GPU mean of back-to-back runs, CPU median")
    flops: float = Field(ge=0.0)
    bytes_moved: float = Field(ge=0.0)

    @property
    def tflops(self) -> float:
        return self.flops / self.seconds / 1e12

    @property
    def gb_per_s(self) -> float:
        return self.bytes_moved / self.seconds / 1e9


class SkippedKernel(BaseModel):
    """A planned kernel the device could not run (an FP8 GEMM shape the library refuses,
    memory it does not have), with the framework's reason."""

    model_config = ConfigDict(extra="forbid")

    op: KernelOp
    dtype: str
    shape: dict[str, int]
    reason: str


class KernelReport(BaseModel):
    model_config = ConfigDict(extra="forbid")

    format: Literal["codesign-kernels"] = "codesign-kernels"
    version: int = FORMAT_VERSION
    provenance: Provenance
    rows: list[KernelRow] = Field(min_length=1)
    skipped: list[SkippedKernel] = Field(default_factory=list)


def save_report(report: KernelReport, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(report.model_dump_json(indent=2) + "\n")


def load_report(path: Path) -> KernelReport:
    """Read a measurement file; a clear error naming the file and field when it is not one."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SpecError(f"{path}: not a JSON kernel measurement file ({exc})") from None
    try:
        return KernelReport.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(x) for x in first["loc"])
        raise SpecError(f"{path}: {loc}: {first['msg']}") from None
