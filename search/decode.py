"""Points of the search space -> `Candidates` arrays (one evaluator call per batch) and
a point -> its `Deployment` (for the Pareto set and the exported YAML).

Hypothetical systems (``custom``: the space's hardware knobs on its base system) are
derived once per distinct knob vector; continuous knob values are first snapped to a
grid of ``KNOB_STEPS`` steps over their range, so a long search derives a bounded number
of systems and equal knob vectors share one `System`.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from codesign.candidates import ROUTERS, Candidates, memory_fractions
from codesign.deployment import Deployment
from hwmodels import System, derive_system, get_system
from search.space import INT_KNOBS, Points, Space
from search.spec import CUSTOM, SAME
from search.subagents import sub_candidates, sub_catalog, sub_deployment

KNOB_STEPS = 100
SPEC_ACCEPTANCE = 0.7  # Deployment's default draft-token acceptance


def _spec_k(s: str) -> int:
    return 0 if s == "none" else int(s.lstrip("mtpeagl"))


class Decoded(NamedTuple):
    """A decoded batch: the main part, a structural-invalidity reason per row ('' = ok)
    and the sub-agent part (same rows; None when the job has no ``subagent_model``)."""

    main: Candidates
    invalid: np.ndarray
    sub: Candidates | None = None


class Decoder:
    """Turns `Points` of one `Space` into `Candidates` and `Deployment` objects."""

    def __init__(self, space: Space) -> None:
        self.space = space
        sp = space.spec.space
        names = [s for s in (*sp.systems, *sp.decode_systems) if s not in (SAME, CUSTOM)]
        self.catalog: list[System] = [get_system(n) for n in dict.fromkeys(names)]
        self.index = {s.name: i for i, s in enumerate(self.catalog)}
        self.hw = sp.hardware
        self.knob_dims = [x for x in space.dims if x.continuous]
        self._derived: dict[tuple[float, ...], System] = {}
        self.sub_catalog: list[System] = sub_catalog(space.spec)

    # --- hypothetical systems -----------------------------------------------------------
    def snap(self, pts: Points) -> np.ndarray:
        """(n, knobs) knob values on the cache grid (NaN rows: no custom system)."""
        if not self.knob_dims:
            return np.zeros((len(pts["mode"]), 0))
        cols = []
        for x in self.knob_dims:
            v = pts[x.name]
            if x.high > x.low:
                step = (x.high - x.low) / KNOB_STEPS
                v = x.low + np.round((v - x.low) / step) * step
            cols.append(np.round(v) if x.name.removeprefix("hw.") in INT_KNOBS else v)
        return np.column_stack(cols)

    def derived(self, knobs: tuple[float, ...]) -> System:
        if knobs not in self._derived:
            base = get_system(self.hw.base)  # type: ignore[union-attr]
            values = {
                x.name.removeprefix("hw."): v for x, v in zip(self.knob_dims, knobs, strict=True)
            }
            name = f"{base.name}-custom-{len(self._derived)}"
            reprice = self.hw.pricing == "model"  # type: ignore[union-attr]
            self._derived[knobs] = derive_system(base, set=values, name=name, reprice=reprice)
        return self._derived[knobs]

    # --- batch -> Candidates ------------------------------------------------------------
    def candidates(self, pts: Points) -> Decoded:
        """The batch as `Candidates`, a structural-invalidity reason per row ('' = ok) and
        the sub-agent `Candidates` (see `Decoded`)."""
        sp, space = self.space.spec.space, self.space
        n = len(pts["mode"])
        mode = space.values(pts, "mode")
        agg = mode == "agg"
        systems = list(self.catalog)
        sys_name = space.values(pts, "system")
        dec_name = space.values(pts, "decode_system")
        dec_name = np.where(agg | (dec_name == SAME), sys_name, dec_name)
        sys_p = np.zeros(n, dtype=np.int64)
        sys_d = np.zeros(n, dtype=np.int64)
        for name, i in self.index.items():
            sys_p[sys_name == name] = i
            sys_d[dec_name == name] = i
        custom = (sys_name == CUSTOM) | (dec_name == CUSTOM)
        if custom.any():
            snapped = self.snap(pts)
            uniq, inv = np.unique(snapped[custom], axis=0, return_inverse=True)
            idx = np.empty(n, dtype=np.int64)
            idx[custom] = len(systems) + inv.ravel()
            systems += [self.derived(tuple(float(v) for v in row)) for row in uniq]
            sys_p = np.where(sys_name == CUSTOM, idx, sys_p)
            sys_d = np.where(dec_name == CUSTOM, idx, sys_d)

        def ints(name: str, fallback: str | None = None) -> np.ndarray:
            if name not in space.by_name:
                return np.zeros(n, dtype=np.int64)
            v = space.values(pts, name)
            if fallback is not None:
                v = np.where(agg, space.values(pts, fallback), v)
            return v.astype(np.int64)

        tp, dp, workers, pp = ints("tp"), ints("dp"), ints("workers"), ints("pp")
        ep = ints("ep")
        p_tp, p_dp, p_w = ints("p_tp", "tp"), ints("p_dp", "dp"), ints("p_workers", "workers")
        p_pp = ints("p_pp", "pp")
        p_ep = ints("p_ep", "ep") if space.is_moe else np.zeros(n, dtype=np.int64)
        host = space.values(pts, "host")
        host_gb = np.zeros(n)
        # the tiers are the prefix cache's: the workers that prefill (agg, or the prefill pool)
        cache_gpus = p_tp * p_dp * p_pp
        per_chip = np.array([s.host_kv_gb_per_chip for s in systems])[sys_p] * cache_gpus
        for h in sp.kv_tiers.host:
            m = host == h
            host_gb[m] = per_chip[m] if h == "host_memory" else (0.0 if h == "none" else float(h))
        storage = (
            space.values(pts, "storage")
            if "storage" in space.by_name
            else np.full(n, "none", dtype=object)
        )
        storage_gb = np.zeros(n)
        nvme = np.array([s.storage_kv_gb_per_chip for s in systems])[sys_p] * cache_gpus
        for s in sp.kv_tiers.storage:
            m = storage == s
            storage_gb[m] = nvme[m] if s == "nvme" else (0.0 if s == "none" else float(s))
        spec = space.values(pts, "spec")
        k = np.array([_spec_k(s) for s in spec], dtype=np.int64)
        cand = Candidates(
            model=self.space.spec.model,
            systems=tuple(systems),
            engine=np.full(n, sp.engine, dtype=object),
            mode=mode.astype(object),
            sys_d=sys_d,
            tp=tp,
            dp=dp,
            ep=ep,
            pp=pp,
            workers=workers,
            max_batch=np.zeros(n, dtype=np.int64),
            sys_p=sys_p,
            p_tp=p_tp,
            p_dp=p_dp,
            p_ep=p_ep,
            p_pp=p_pp,
            p_workers=p_w,
            gemm=space.values(pts, "gemm").astype(object),
            moe=np.full(n, "", dtype=object),
            kv=space.values(pts, "kv").astype(object),
            host_gb=host_gb,
            storage_gb=storage_gb,
            router=np.array([ROUTERS.index(r) for r in space.values(pts, "router")]),
            spec_k=k,
            spec_alpha=np.full(n, SPEC_ACCEPTANCE),
            cuda_graphs=np.ones(n, dtype=bool),  # every engine's default; never slower
            mem_fraction=memory_fractions(sp.memory_fraction, n),
            p_mem_fraction=memory_fractions(sp.memory_fraction, n),
        )
        reason = np.full(n, "", dtype=object)
        if space.is_moe:
            for e, t, d, role in ((ep, tp, dp, "decode/agg"), (p_ep, p_tp, p_dp, "prefill")):
                bad = (e > 0) & ((t * d) % np.maximum(e, 1) != 0)
                reason[bad & (reason == "")] = f"{role} pool: ep does not divide tp x dp"
        sub = None
        if self.sub_catalog:
            sub = sub_candidates(space, pts, self.sub_catalog, SPEC_ACCEPTANCE)
        return Decoded(cand, reason, sub)

    # --- one point -> Deployment --------------------------------------------------------
    def deployment(self, pts: Points, i: int) -> Deployment:
        space = self.space
        p = space.params(pts, i)
        sp = space.spec.space
        knobs: dict[str, float] = {}
        key: tuple[float, ...] = ()
        if self.knob_dims and not np.isnan(pts[self.knob_dims[0].name][i]):
            snapped = self.snap({k: v[i : i + 1] for k, v in pts.items()})[0]
            key = tuple(float(v) for v in snapped)
            knobs = {
                x.name.removeprefix("hw."): float(v)
                for x, v in zip(self.knob_dims, snapped, strict=True)
            }
            if self.hw.pricing == "model" and "usd_per_chip_hour" not in knobs:  # type: ignore[union-attr]
                # the priced rate travels with the deployment (an explicit price wins)
                rate = self.derived(key).price_usd_per_chip_hour
                knobs["usd_per_chip_hour"] = round(rate, 6)

        def pool(role: str, system: str, pre: str = "") -> dict:
            par = {"tp": p[pre + "tp"], "dp": p[pre + "dp"], "pp": p.get(pre + "pp", 1)}
            if space.is_moe and p.get(pre + "ep", 0):
                par["ep"] = p[pre + "ep"]
            out = {"role": role, "workers": p[pre + "workers"], "parallel": par}
            if sp.memory_fraction is not None:
                out["memory_fraction"] = sp.memory_fraction
            if system == CUSTOM:
                out |= {"system": self.hw.base, "hardware": knobs}  # type: ignore[union-attr]
            else:
                out["system"] = system
            return out

        if p["mode"] == "agg":
            pools = [pool("agg", p["system"])]
        else:
            dec = p["system"] if p["decode_system"] == SAME else p["decode_system"]
            pools = [pool("prefill", p["system"], "p_"), pool("decode", dec)]
        host, storage = p["host"], p.get("storage", "none")
        if host == "host_memory" or storage == "nvme":
            # the KV tiers are the prefix cache's: the pool that prefills (agg or prefill,
            # the first pool)
            s = self.derived(key) if p["system"] == CUSTOM else get_system(p["system"])
            par = pools[0]["parallel"]
            gpus = par["tp"] * par["dp"] * par["pp"]
            if host == "host_memory":
                host = s.host_kv_gb_per_chip * gpus
            if storage == "nvme":
                storage = s.storage_kv_gb_per_chip * gpus
        k = _spec_k(p["spec"])
        return Deployment.model_validate(
            {
                "model": space.spec.model,
                "mode": p["mode"],
                "engine": sp.engine,
                "precision": {"gemm": p["gemm"], "kv": p["kv"]},
                "pools": pools,
                "kv_tiers": {
                    "host_gb_per_worker": 0.0 if host == "none" else float(host),
                    "storage_gb_per_worker": 0.0 if storage == "none" else float(storage),
                    "retention": space.retention,
                },
                "router": p["router"],
                "spec_decoding": {"method": "none"}
                if k == 0
                else {"method": p["spec"].rstrip("0123456789"), "draft_tokens": k},
                "subagents": sub_deployment(space.spec, p),
            }
        )
