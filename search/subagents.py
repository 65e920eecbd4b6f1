"""Sub-agent pools in the search: the ``space.subagents`` lists, their dimensions and
their decoding.

With ``subagent_model`` set, every point also gets one aggregated sub-agent pool that
serves the workload's small-model tier (sub-agent requests) on its own model::

    subagent_model: Qwen/Qwen3-32B
    space:
      subagents: {systems: [h200_sxm, h100_sxm], tp: [1, 2, 4], workers: [1, 2, 4, 8],
                  precision: {gemm: [fp8], kv: [fp8]}}

The pool adds the categorical dimensions ``SUB_DIMS`` (always active when declared), so
enumeration, sampling, neighbours and Optuna handle them like any other dimension.
Structural invalidity (a TP that does not divide the sub-agent model's heads, weights
that do not fit) is reported by the evaluator per row ("sub-agents: ..."), as for the
main pools. The load is then built with separate "main" and "small" tiers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import Field, field_validator

from codesign.candidates import ROUTERS, Candidates, memory_fractions
from search.spec_base import CUSTOM, SAME, PrecisionSpace, _nonempty_unique, _Strict
from search.spec_base import resolve_systems as _resolve

if TYPE_CHECKING:
    from hwmodels import System
    from search.space import Points, Space
    from search.spec import JobSpec

SUB_DIMS = ("sub_system", "sub_tp", "sub_workers", "sub_gemm", "sub_kv")


class SubAgentSpace(_Strict):
    """The sub-agent pool's lists (one aggregated pool of ``workers`` TP-``tp`` workers)."""

    systems: list[str] | None = Field(
        None, description="sub-agent systems (default: space.systems without custom)"
    )
    tp: list[int] = Field(default_factory=lambda: [1, 2, 4, 8])
    workers: list[int] = Field(default_factory=lambda: [1, 2, 4, 8])
    precision: PrecisionSpace = Field(default_factory=PrecisionSpace)

    @field_validator("systems")
    @classmethod
    def _systems(cls, v: list[str] | None) -> list[str] | None:
        if v is None:
            return v
        for s in v:
            if s in (CUSTOM, SAME):
                raise ValueError(
                    f"{s!r}: sub-agent pools run on catalog systems (the hypothetical "
                    "'custom' system and 'same' are for the main pools)"
                )
        return _resolve(v, keep=())

    @field_validator("tp", "workers")
    @classmethod
    def _pos(cls, v: list[int]) -> list[int]:
        if any(x < 1 for x in v):
            raise ValueError(f"values must be >= 1, got {v}")
        return _nonempty_unique(v)


def check_subagents(spec: JobSpec) -> None:
    """Check ``subagent_model`` / ``space.subagents`` and fill in the defaults (in place)."""
    sub = spec.space.subagents
    if spec.subagent_model is None:
        if sub is not None:
            raise ValueError(
                "space.subagents: give subagent_model (the sub-agents' model) to search "
                "separate sub-agent pools, or leave space.subagents out"
            )
        return
    from codesign.models import load_model

    try:
        load_model(spec.subagent_model)
    except Exception as exc:
        raise ValueError(f"subagent_model: {exc}") from None
    if sub is None:
        sub = spec.space.subagents = SubAgentSpace()
    if sub.systems is None:
        systems = [s for s in spec.space.systems if s != CUSTOM]
        if not systems:
            raise ValueError(
                "space.subagents.systems: space.systems has only 'custom'; list the "
                "sub-agent systems explicitly"
            )
        sub.systems = systems


def dim_choices(spec: JobSpec) -> list[tuple[str, tuple[Any, ...]]]:
    """(name, choices) of the sub-agent dimensions (none without ``subagent_model``)."""
    sub = spec.space.subagents
    if spec.subagent_model is None or sub is None:
        return []
    vals = (sub.systems, sub.tp, sub.workers, sub.precision.gemm, sub.precision.kv)
    return [(n, tuple(v or ())) for n, v in zip(SUB_DIMS, vals, strict=True)]


def sub_catalog(spec: JobSpec) -> list[System]:
    """The sub-agent systems, in the order of the ``sub_system`` choices."""
    from hwmodels import get_system

    sub = spec.space.subagents
    if spec.subagent_model is None or sub is None:
        return []
    return [get_system(s) for s in sub.systems or ()]


def sub_candidates(
    space: Space, pts: Points, systems: list[System], spec_alpha: float
) -> Candidates:
    """The sub-agent part of a batch (same rows): one aggregated pool per point, with the
    main deployment's engine and router, exactly as `from_deployments(..., sub=True)`
    builds it from the decoded deployment."""
    sp = space.spec
    n = len(pts["sub_system"])
    tp = space.values(pts, "sub_tp").astype(np.int64)
    workers = space.values(pts, "sub_workers").astype(np.int64)
    sys_idx = pts["sub_system"].astype(np.int64)
    ones, zeros = np.ones(n, dtype=np.int64), np.zeros(n, dtype=np.int64)
    router = np.array([ROUTERS.index(r) for r in space.values(pts, "router")], dtype=np.int64)
    return Candidates(
        model=sp.subagent_model,  # type: ignore[arg-type]
        systems=tuple(systems),
        engine=np.full(n, sp.space.engine, dtype=object),
        mode=np.full(n, "agg", dtype=object),
        sys_d=sys_idx,
        tp=tp,
        dp=ones,
        ep=zeros,
        pp=ones.copy(),
        workers=workers,
        max_batch=zeros.copy(),
        sys_p=sys_idx.copy(),
        p_tp=tp.copy(),
        p_dp=ones.copy(),
        p_ep=zeros.copy(),
        p_pp=ones.copy(),
        p_workers=workers.copy(),
        gemm=space.values(pts, "sub_gemm").astype(object),
        moe=np.full(n, "", dtype=object),
        kv=space.values(pts, "sub_kv").astype(object),
        host_gb=np.zeros(n),
        router=router,
        spec_k=zeros.copy(),
        spec_alpha=np.full(n, spec_alpha),
        cuda_graphs=np.ones(n, dtype=bool),
        mem_fraction=memory_fractions(sp.space.memory_fraction, n),
        p_mem_fraction=memory_fractions(sp.space.memory_fraction, n),
    )


def sub_deployment(spec: JobSpec, params: dict[str, Any]) -> dict[str, Any] | None:
    """The ``subagents`` block of a point's deployment (None without sub-agent pools)."""
    if spec.subagent_model is None:
        return None
    pool = {
        "role": "agg",
        "system": params["sub_system"],
        "workers": params["sub_workers"],
        "parallel": {"tp": params["sub_tp"]},
    }
    if spec.space.memory_fraction is not None:
        pool["memory_fraction"] = spec.space.memory_fraction
    return {
        "model": spec.subagent_model,
        "pools": [pool],
        "precision": {"gemm": params["sub_gemm"], "kv": params["sub_kv"]},
    }
