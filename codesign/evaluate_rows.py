"""Turn deployments serving an agent workload into the perf model's row records.

One record per (deployment, part): the main model on the deployment's pools, and, when
the deployment puts sub-agents on their own model, that model on its pools. The hit ratio
comes from the workload's curve at the worker's KV capacity (device memory left after the
weights, plus the host tier), shared by the sessions the router sends to that worker.
"""

from __future__ import annotations

import numpy as np

from codesign.deployment import Deployment, Pool
from codesign.errors import CodesignError
from codesign.models import kv_elements_per_token, load_model
from codesign.perf.calibration import Calibration
from codesign.perf.engine import byte_sizes
from codesign.perf.hardware import hw_vectors
from codesign.perf.memory import memory_use
from codesign.perf.predict import Group, make_layout, row_precisions
from codesign.perf.profile import ModelProfile, build_profile
from codesign.validation.silicon import INT_FIELDS, STR_FIELDS, SiliconRows
from codesign.workload.agent_load import AgentLoad, TierLoad
from hwmodels.precision import get_precision

Member = tuple[Deployment, bool]  # (deployment, is the sub-agent part)


def _pools(dep: Deployment, sub: bool) -> tuple[list[Pool], str]:
    if sub:
        pools = dep.subagents.pools  # type: ignore[union-attr]
        return pools, "agg" if len(pools) == 1 else "disagg"
    return dep.pools, dep.mode


def _tier(load: AgentLoad, sub: bool) -> TierLoad:
    if "all" in load.tiers:
        return load.tiers["all"]
    name = "small" if sub else "main"
    return load.tiers.get(name) or next(iter(load.tiers.values()))


def sub_agent_share(load: AgentLoad) -> float:
    """Fraction of a session's time spent in the sub-agent tier (by requests and gaps)."""
    if "small" not in load.tiers or "main" not in load.tiers:
        return 0.0
    m, s = load.tiers["main"], load.tiers["small"]
    wm = m.requests * max(m.think_mean_s, 1.0)
    ws = s.requests * max(s.think_mean_s, 1.0)
    return ws / (wm + ws)


def _check(prof: ModelProfile, pools: list[Pool]) -> str:
    for p in pools:
        par = p.parallel
        if prof.num_heads and prof.num_heads % par.tp:
            return f"{p.role} pool: tp={par.tp} does not divide the {prof.num_heads} heads"
        if par.ep and not prof.is_moe:
            return f"{p.role} pool: ep={par.ep} but the model has no experts"
        if prof.is_moe and par.ep and prof.num_experts % par.ep:
            return f"{p.role} pool: ep={par.ep} does not divide the {prof.num_experts} experts"
    return ""


def build_group(
    model: str, members: list[Member], load: AgentLoad, sessions: float, calib: Calibration
) -> tuple[Group, list[str], np.ndarray]:
    """One Group (vectorised rows) for every member on ``model``; per-member reasons; and
    the factor from a row's request rate to the deployment's (agg rows are one worker)."""
    from codesign.evaluate import pool_system

    arch = load_model(model)
    prof = build_profile(arch)
    kv_elems = float(kv_elements_per_token(arch))
    share_sub = sub_agent_share(load)
    n = len(members)
    ints = {k: np.zeros(n, dtype=np.int64) for k in INT_FIELDS}
    strs = {k: np.full(n, "", dtype=object) for k in STR_FIELDS}
    gemm, moe, kvp, sys_p, sys_d = [], [], [], [], []
    reasons, hetero = [""] * n, False
    think, ctx_hi, host_gb, workers_kv, spc_div = (np.zeros(n) for _ in range(5))
    spec_k, spec_a = np.zeros(n), np.zeros(n)
    for j, (dep, sub) in enumerate(members):
        pools, mode = _pools(dep, sub)
        if mode == "afd":
            reasons[j] = "afd deployments are not in the agent evaluator yet (codesign estimate)"
            mode = "agg"
            pools = [Pool(role="agg", system=pools[0].system, parallel=pools[0].parallel)]
        reasons[j] = reasons[j] or _check(prof, pools)
        tier = _tier(load, sub)
        clients = sessions * (share_sub if sub else 1.0 - share_sub)
        prec = dep.subagents.precision if sub else dep.precision  # type: ignore[union-attr]
        g, m, _ = row_precisions(prec.gemm or "", prec.moe or "", "", dep.engine, prof)
        gemm.append(g)
        moe.append(m)
        kvp.append(prec.kv)
        strs["id"][j] = f"{j}"
        strs["backend"][j] = dep.engine
        strs["model"][j] = model
        strs["mode"][j] = mode
        ints["isl"][j] = max(round(tier.context_mean), 1)
        ints["osl"][j] = max(round(tier.output_mean), 1)
        think[j] = tier.think_mean_s
        ctx_hi[j] = tier.context_p90
        if not sub and dep.spec_decoding.method != "none":
            spec_k[j], spec_a[j] = dep.spec_decoding.draft_tokens, dep.spec_decoding.acceptance
        by_role = {p.role: p for p in pools}
        kv_pool = by_role.get("agg") or by_role["decode"]
        pre_pool = by_role.get("agg") or by_role["prefill"]
        sys_p.append(pool_system(pre_pool))
        sys_d.append(pool_system(kv_pool))
        hetero = hetero or sys_p[-1].name != sys_d[-1].name
        host_gb[j] = 0.0 if sub else dep.kv_tiers.host_gb_per_worker
        workers_kv[j] = kv_pool.workers
        spc_div[j] = kv_pool.workers if dep.router != "round_robin" else 1.0
        strs["system"][j] = sys_p[-1].name
        if mode == "agg":
            p = kv_pool.parallel
            ints["concurrency"][j] = max(round(clients / kv_pool.workers), 1)
            for f, v in (
                ("batch", 1),
                ("tp", p.tp),
                ("pp", p.pp),
                ("dp", p.dp),
                ("moe_tp", 1 if prof.is_moe else 0),
                ("moe_ep", (p.ep or p.tp * p.dp) if prof.is_moe else 0),
            ):
                ints[f][j] = v
            if prof.is_moe:
                ints["moe_tp"][j] = max(p.tp * p.dp // ints["moe_ep"][j], 1)
        else:
            ints["concurrency"][j] = max(round(clients), 1)
            for ph, pool in (("p", pre_pool), ("d", kv_pool)):
                p = pool.parallel
                ep = (p.ep or p.tp * p.dp) if prof.is_moe else 0
                vals = {
                    "batch": 1 if ph == "p" else (pool.max_batch or 0),
                    "workers": pool.workers,
                    "tp": p.tp,
                    "pp": p.pp,
                    "dp": p.dp,
                    "moe_tp": max(p.tp * p.dp // ep, 1) if ep else 0,
                    "moe_ep": ep,
                }
                for f, v in vals.items():
                    ints[f"{ph}_{f}"][j] = v
    rows = SiliconRows(**ints, **strs, ttft_ms=np.full(n, np.nan), tpot_ms=np.full(n, np.nan))
    hw_p = hw_vectors(sys_p, gemm, moe)
    hw_d = hw_vectors(sys_d, gemm, moe)
    nb = byte_sizes(gemm, moe, kvp)
    # KV capacity of one worker of the KV-holding pool, and the sessions sharing it
    agg = rows.mode == "agg"
    lay = make_layout(
        np.where(agg, rows.tp, rows.d_tp),
        np.where(agg, rows.dp, rows.d_dp),
        np.where(agg, rows.moe_tp, rows.d_moe_tp),
        np.where(agg, rows.moe_ep, rows.d_moe_ep),
        np.where(agg, rows.pp, rows.d_pp),
        prof.is_moe,
    )
    use = memory_use(prof, lay, nb, hw_d.mem_bytes, kv_elems)
    kv_tok_bytes = kv_elems * np.array([get_precision(k).bytes_per_element for k in kvp])
    host_tokens = host_gb * 1e9 / np.maximum(kv_tok_bytes, 1e-9)
    for j, (_dep, _sub) in enumerate(members):
        if reasons[j]:
            continue
        if not use.fits[j]:
            reasons[j] = (
                f"weights need {use.weights_bytes_per_gpu[j] / 1e9:.1f} GB per GPU; "
                f"the {strs['system'][j]} GPU has {hw_d.mem_bytes[j] / 1e9:.1f} GB"
            )
        elif use.kv_tokens_per_worker[j] < rows.isl[j] + rows.osl[j]:
            reasons[j] = "no room for the KV cache of one mean request after the weights"
        host_cap = _host_capacity_gb(sys_d[j], lay, j)
        if host_gb[j] > host_cap + 1e-6:
            reasons[j] = (
                f"kv_tiers.host_gb_per_worker={host_gb[j]:g} exceeds the "
                f"{host_cap:.0f} GB of host memory a worker has on {sys_d[j].name}"
            )
    hbm = use.kv_tokens_per_worker.astype(np.float64)
    h_tot, h_hbm = _hit(load, members, hbm, hbm + host_tokens, sessions, spc_div)
    host_share = np.where(h_tot > 0, np.clip((h_tot - h_hbm) / np.maximum(h_tot, 1e-12), 0, 1), 0.0)
    group = Group(
        index=np.arange(n),
        rows=rows,
        prof=prof,
        kv_elems_per_token=kv_elems,
        hw=hw_p,
        nb=nb,
        hw_decode=hw_d if hetero else None,
        prefix_hit=np.minimum(h_tot, 0.999),
        host_share=host_share,
        spec_k=spec_k if spec_k.any() else None,
        spec_alpha=spec_a if spec_k.any() else None,
        think_s=think,
        ctx_hi=ctx_hi,
    )
    rate_mult = np.where(rows.mode == "agg", workers_kv, 1.0)
    return group, reasons, rate_mult


def _host_capacity_gb(system: object, lay: object, j: int) -> float:
    tiers = system.kv_tiers()  # type: ignore[attr-defined]
    if len(tiers) < 2:
        return 0.0
    return tiers[1].capacity_bytes_per_chip * float(lay.gpus[j]) / 1e9  # type: ignore[attr-defined]


def _hit(
    load: AgentLoad,
    members: list[Member],
    cap_hbm: np.ndarray,
    cap_all: np.ndarray,
    sessions: float,
    spc_div: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Token hit ratio (device + host, and device only) per member."""
    summary = load.summary
    n = len(members)
    h_all, h_hbm = np.zeros(n), np.zeros(n)
    if not summary.curves:
        # no block hashes: the ideal (infinite-cache) ratio is the best available bound
        for j, (_, sub) in enumerate(members):
            t = _tier(load, sub)
            h_all[j] = h_hbm[j] = 1.0 - t.new_ideal_mean / max(t.context_mean, 1e-9)
        return h_all, h_hbm
    for div in np.unique(spc_div):
        m = spc_div == div
        spc = max(sessions / div, 1.0)
        tot = summary.hit_ratio(cap_all[m], spc)
        dev = summary.hit_ratio(cap_hbm[m], spc)
        weights = {t: float(ts.context_tokens.sum()) for t, ts in summary.tiers.items()}
        for j_local, j in enumerate(np.flatnonzero(m)):
            sub = members[j][1]
            if "all" in load.tiers:
                w = sum(weights.values())
                h_all[j] = sum(weights[t] * tot[t][j_local] for t in tot) / w
                h_hbm[j] = sum(weights[t] * dev[t][j_local] for t in dev) / w
            else:
                t = (
                    "small"
                    if sub and "small" in tot
                    else ("main" if "main" in tot else next(iter(tot)))
                )
                h_all[j], h_hbm[j] = tot[t][j_local], dev[t][j_local]
    return h_all, h_hbm


def deployment_rows(deployments: list[Deployment]) -> list[Member]:
    out: list[Member] = []
    for d in deployments:
        out.append((d, False))
        if d.subagents is not None:
            out.append((d, True))
    return out


__all__ = ["CodesignError", "build_group", "deployment_rows", "sub_agent_share"]
