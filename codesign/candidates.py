"""Candidate deployments as a struct of arrays: what the search generates and the
evaluator consumes without a Python loop per candidate.

One `Candidates` holds deployments of one model (the main model, or the sub-agent model
of each deployment). The KV-holding pool (agg, or decode) and the prefill pool (the same
pool for agg) are described by parallel arrays; systems are indices into ``systems``.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from codesign.deployment import Deployment, Pool
from codesign.perf.kv_budget import pool_memory_fraction
from hwmodels import System, derive_system, get_system

ROUTERS = ("round_robin", "session_affinity", "kv_aware")


@dataclass(frozen=True)
class Candidates:
    model: str
    systems: tuple[System, ...]
    engine: np.ndarray  # object: trtllm | vllm | sglang
    mode: np.ndarray  # object: agg | disagg
    # KV-holding pool: agg or decode
    sys_d: np.ndarray
    tp: np.ndarray
    dp: np.ndarray
    ep: np.ndarray  # 0: tp x dp for MoE models
    pp: np.ndarray
    workers: np.ndarray
    max_batch: np.ndarray  # 0: no limit
    # prefill pool (equal to the KV pool for agg)
    sys_p: np.ndarray
    p_tp: np.ndarray
    p_dp: np.ndarray
    p_ep: np.ndarray
    p_pp: np.ndarray
    p_workers: np.ndarray
    # precisions, KV tiers, routing, speculative decoding
    gemm: np.ndarray  # object ('' = checkpoint)
    moe: np.ndarray  # object ('' = checkpoint)
    kv: np.ndarray  # object
    host_gb: np.ndarray
    router: np.ndarray  # index into ROUTERS
    spec_k: np.ndarray
    spec_alpha: np.ndarray
    cuda_graphs: np.ndarray  # bool: decode steps replayed as CUDA graphs
    # TRT-LLM attention-DP balancing timeout in iterations (None or 0: off, the default)
    adp_balance_iters: np.ndarray | None = None
    # KV on the node's NVMe per worker, GB (None: no storage tier anywhere)
    storage_gb: np.ndarray | None = None
    # a KV store shared by the workers: TB and aggregate read GB/s (None: none anywhere)
    shared_tb: np.ndarray | None = None
    shared_gb_s: np.ndarray | None = None
    shared_usd_per_hour: np.ndarray | None = None  # the store's cost (None: not priced)
    # the engine's memory setting of the KV-holding and the prefill pool
    # (``kv_budget.pool_memory_fraction``; NaN or None: the engine's default for the layout)
    mem_fraction: np.ndarray | None = None
    p_mem_fraction: np.ndarray | None = None

    @property
    def prefill_chips(self) -> np.ndarray:
        """The chips that prefill (and so read prefix hits): the agg pool, else the prefill
        pool."""
        agg = self.workers * self.tp * self.dp * self.pp
        pre = self.p_workers * self.p_tp * self.p_dp * self.p_pp
        return np.where(self.mode == "agg", agg, pre).astype(np.float64)

    def __len__(self) -> int:
        return len(self.tp)

    @property
    def chips(self) -> np.ndarray:
        kv_pool = self.workers * self.tp * self.dp * self.pp
        pre = np.where(self.mode == "agg", 0, self.p_workers * self.p_tp * self.p_dp * self.p_pp)
        return (kv_pool + pre).astype(np.float64)

    def subset(self, idx: np.ndarray) -> Candidates:
        vals = {f.name: getattr(self, f.name) for f in fields(self)}
        for k, v in vals.items():
            if isinstance(v, np.ndarray):
                vals[k] = v[idx]
        return Candidates(**vals)


def _system(pool: Pool, cache: dict[str, int], systems: list[System]) -> int:
    key = pool.system + repr(sorted(pool.hardware.items()))
    if key not in cache:
        s = get_system(pool.system)
        if pool.hardware:
            s = derive_system(s, set=pool.hardware)
        cache[key] = len(systems)
        systems.append(s)
    return cache[key]


def memory_fractions(fraction: float | None, n: int) -> np.ndarray | None:
    """``n`` candidates' memory setting (``Candidates.mem_fraction``) at one value, or None
    for the engine's default."""
    return None if fraction is None else np.full(n, float(fraction))


def from_deployments(deps: list[Deployment], sub: bool = False) -> Candidates:
    """Candidates for the main model (or, ``sub``, the sub-agent model) of each deployment.

    The deployments must share that model. Systems are resolved here, so an unknown system
    raises NotFoundError naming it.
    """
    cache: dict[str, int] = {}
    systems: list[System] = []
    cols: dict[str, list] = {
        f.name: [] for f in fields(Candidates) if f.name not in ("model", "systems")
    }
    for d in deps:
        if sub:
            pools, mode, prec = d.subagents.pools, None, d.subagents.precision  # type: ignore[union-attr]
            mode = "agg" if len(pools) == 1 else "disagg"
        else:
            pools, mode, prec = d.pools, d.mode, d.precision
        roles = {p.role: p for p in pools}
        kv_pool = roles.get("agg") or roles.get("decode") or roles["attention"]
        pre = roles.get("agg") or roles.get("prefill") or roles["attention"]
        vals = {
            "engine": d.engine,
            "mode": mode,
            "sys_d": _system(kv_pool, cache, systems),
            "tp": kv_pool.parallel.tp,
            "dp": kv_pool.parallel.dp,
            "ep": kv_pool.parallel.ep,
            "pp": kv_pool.parallel.pp,
            "workers": kv_pool.workers,
            "max_batch": kv_pool.max_batch or 0,
            "sys_p": _system(pre, cache, systems),
            "p_tp": pre.parallel.tp,
            "p_dp": pre.parallel.dp,
            "p_ep": pre.parallel.ep,
            "p_pp": pre.parallel.pp,
            "p_workers": pre.workers,
            "gemm": prec.gemm or "",
            "moe": prec.moe or "",
            "kv": prec.kv,
            "host_gb": 0.0 if sub else d.kv_tiers.host_gb_per_worker,
            "storage_gb": 0.0 if sub else d.kv_tiers.storage_gb_per_worker,
            "shared_tb": 0.0 if sub else d.kv_tiers.shared_storage_tb,
            "shared_gb_s": 0.0 if sub else d.kv_tiers.shared_storage_read_gb_s,
            "shared_usd_per_hour": 0.0 if sub else d.kv_tiers.shared_storage_usd_per_hour,
            "router": ROUTERS.index(d.router),
            "spec_k": 0
            if sub or d.spec_decoding.method == "none"
            else d.spec_decoding.draft_tokens,
            "spec_alpha": d.spec_decoding.acceptance,
            "cuda_graphs": d.cuda_graphs,
            "adp_balance_iters": 0 if sub else d.adp_balance_timeout_iters,
        }
        # the pools' memory settings (the engine's default for the layout where unset)
        mem = [systems[vals[k]].chip.memory_capacity_bytes for k in ("sys_d", "sys_p")]
        draft = vals["spec_k"] > 0
        vals["mem_fraction"] = pool_memory_fraction(d.engine, mem[0], kv_pool, draft)
        vals["p_mem_fraction"] = pool_memory_fraction(d.engine, mem[1], pre, draft)
        for k, v in vals.items():
            cols[k].append(v)
    arrays = {}
    for k, v in cols.items():
        if k in ("engine", "mode", "gemm", "moe", "kv"):
            arrays[k] = np.array(v, dtype=object)
        elif k == "cuda_graphs":
            arrays[k] = np.asarray(v, dtype=bool)
        else:
            real = k in (
                "host_gb",
                "storage_gb",
                "shared_tb",
                "shared_gb_s",
                "shared_usd_per_hour",
                "spec_alpha",
                "mem_fraction",
                "p_mem_fraction",
            )
            arrays[k] = np.asarray(v, dtype=np.float64 if real else np.int64)
    model = deps[0].subagents.model if sub else deps[0].model  # type: ignore[union-attr]
    return Candidates(model=model, systems=tuple(systems), **arrays)
