"""Exporter protocol, registry, result type and the checks every exporter shares."""

from __future__ import annotations

import json
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from codesign.deployment import Deployment, DeploymentPrecision, Pool
from codesign.errors import SpecError

if TYPE_CHECKING:
    from hwmodels.system import System


class ExportError(SpecError):
    """A deployment (or part of it) that the chosen format cannot express."""


@dataclass
class ExportResult:
    """Files to write (relative path -> text) plus notes for the reader."""

    format: str
    engine: str
    engine_version: str
    files: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


class Exporter(Protocol):
    name: str

    def export(self, dep: Deployment, version: str | None) -> ExportResult: ...


EXPORTERS: dict[str, Callable[[], Exporter]] = {}


def register(name: str) -> Callable[[Callable[[], Exporter]], Callable[[], Exporter]]:
    def deco(factory: Callable[[], Exporter]) -> Callable[[], Exporter]:
        EXPORTERS[name] = factory
        return factory

    return deco


@dataclass(frozen=True)
class Group:
    """One set of workers: the primary model's pools or the sub-agent model's pools."""

    name: str  # "main" | "subagent"
    model: str
    precision: DeploymentPrecision
    pools: tuple[Pool, ...]
    disagg: bool


def groups(dep: Deployment) -> list[Group]:
    out = [Group("main", dep.model, dep.precision, tuple(dep.pools), dep.mode == "disagg")]
    if dep.subagents is not None:
        sp = tuple(dep.subagents.pools)
        out.append(
            Group(
                "subagent",
                dep.subagents.model,
                dep.subagents.precision,
                sp,
                any(p.role == "prefill" for p in sp),
            )
        )
    return out


def check_expressible(dep: Deployment, fmt: str) -> None:
    """Refuse what no serving engine here can run: AFD pools, non-GPU systems."""
    from hwmodels.catalog import get_system

    if dep.mode == "afd":
        raise ExportError(
            f"{fmt}: mode afd (attention/FFN disaggregation) cannot be expressed: none of "
            "Dynamo, vLLM, SGLang, TRT-LLM has separate attention and FFN workers"
        )
    for g in groups(dep):
        for p in g.pools:
            kind = str(get_system(p.system).chip.kind)
            if kind != "gpu":
                raise ExportError(
                    f"{fmt}: {g.name} {p.role} pool on system {p.system} (chip kind {kind}) "
                    f"cannot be expressed: {fmt} runs on GPUs only"
                )


def gpus_per_worker(pool: Pool) -> int:
    return pool.parallel.tp * pool.parallel.dp * pool.parallel.pp


def _tier_gb_per_rank(group: Group, pool: Pool, worker_gb: float, per_chip_gb: float) -> float:
    """A KV tier of ``worker_gb`` per worker, per GPU rank of the main model's pool that
    prefills (at most the chip's share of its node: a pool narrower than the one the
    evaluation sized the tier on cannot take more). Sub-agent pools get none, and neither
    does a disaggregated decode pool: the engines look prefixes up on the prefill workers
    and send the decode workers the whole context, as modelled."""
    if group.name != "main" or pool.role == "decode" or worker_gb <= 0:
        return 0.0
    return min(worker_gb / gpus_per_worker(pool), per_chip_gb)


def _system(pool: Pool) -> System:
    from hwmodels.catalog import get_system
    from hwmodels.derive import derive_system

    s = get_system(pool.system)
    return derive_system(s, set=pool.hardware) if pool.hardware else s


def uses_draft(dep: Deployment, group: Group) -> bool:
    """Whether the group's pools run a speculative draft model (the main model's only)."""
    return group.name == "main" and dep.spec_decoding.method != "none"


def memory_fraction(dep: Deployment, group: Group, pool: Pool) -> float:
    """The engine's memory setting this pool's prediction assumed (``perf.kv_budget``): the
    pool's own, else the engine's default for its GPU, layout and batch, written out so the
    run holds that cache."""
    from codesign.perf.kv_budget import pool_memory_fraction

    mem = _system(pool).chip.memory_capacity_bytes
    return pool_memory_fraction(dep.engine, mem, pool, uses_draft(dep, group))


def host_gb_per_rank(dep: Deployment, group: Group, pool: Pool) -> float:
    """The host-memory KV tier per GPU rank (``_tier_gb_per_rank``)."""
    cap = _system(pool).host_kv_gb_per_chip
    return _tier_gb_per_rank(group, pool, dep.kv_tiers.host_gb_per_worker, cap)


# where the exports put the NVMe KV tier's files: a directory on the node's local drives
# (the evaluator reads them at the system's NVMe bandwidth); mount or create it there
NVME_KV_DIR = "/mnt/nvme/kv-cache"


def storage_gb_per_rank(dep: Deployment, group: Group, pool: Pool) -> float:
    """The node-NVMe KV tier per GPU rank (``_tier_gb_per_rank``)."""
    cap = _system(pool).storage_kv_gb_per_chip
    return _tier_gb_per_rank(group, pool, dep.kv_tiers.storage_gb_per_worker, cap)


# the shared KV store's address: the deployment gives its size and bandwidth, not where it
# runs; the exports write this name and say to replace it
SHARED_KV_STORE = "SHARED_KV_STORE"


def uses_shared_store(dep: Deployment, group: Group, pool: Pool) -> bool:
    """The pool reads a KV store shared by the workers: the main model's pools that
    prefill (agg or prefill; a decode pool looks no prefixes up), as modelled."""
    return group.name == "main" and pool.role != "decode" and dep.kv_tiers.shared_storage_tb > 0


def env_lines(env: dict[str, str]) -> str:
    """``export NAME=value`` lines for a launch script (before its one command)."""
    return "".join(f"export {k}={shlex.quote(v)}\n" for k, v in env.items())


def fp8_kv(precision: DeploymentPrecision) -> bool:
    return precision.kv.startswith("fp8")


def kv_note(precision: DeploymentPrecision, engine: str) -> str | None:
    if precision.kv.startswith("fp8") or precision.kv in ("bf16", "fp16"):
        return None
    return (
        f"kv precision {precision.kv} has no {engine} mapping here; the KV cache dtype is left auto"
    )


def shell_line(argv: list[str]) -> str:
    """One command line, each option on its own continued line."""
    parts: list[str] = []
    for word in argv:
        q = shlex.quote(word)
        if word.startswith("--") and parts:
            parts.append(" \\\n  " + q)
        else:
            parts.append((" " if parts else "") + q)
    return "".join(parts)


def compact_json(data: object) -> str:
    return json.dumps(data, separators=(",", ":"))


def pool_label(group: Group, pool: Pool) -> str:
    return pool.role if group.name == "main" else f"subagent-{pool.role}"


def start_engine_export(dep: Deployment, engine: str, version: str | None) -> ExportResult:
    """Refuse what the engine cannot express, resolve and check the version, start a result."""
    from codesign.export.argdefs import argdefs, default_version

    check_expressible(dep, engine)
    version = version or default_version(engine)
    argdefs(engine, version)
    return ExportResult(engine, engine, version)


def pool_header(title: str, version: str, label: str, group: Group, pool: Pool) -> str:
    """The comment line that opens a pool's launch script."""
    return (
        f"# {title} {version}: {label} pool of {group.model} on {pool.system}; run "
        f"{pool.workers} instance(s), {pool.chips // pool.workers} GPU(s) each\n"
    )
