"""The search space of a job: named dimensions, conditional on the mode and the systems.

A point is a row of *choice indices* (categorical dimensions) and knob values (continuous
co-design dimensions); a batch of points is ``Points``: name -> array (index -1 / NaN where
the dimension is inactive). Conditions:

- ``decode_system`` and the prefill pool's ``p_tp``, ``p_ep``, ``p_dp``, ``p_workers`` exist
  only for disagg (for agg the one pool does both);
- ``ep`` / ``p_ep`` exist only for MoE models;
- hardware knobs exist only when a pool uses the hypothetical ``custom`` system;
- the sub-agent pool's ``sub_system``, ``sub_tp``, ``sub_workers``, ``sub_gemm``,
  ``sub_kv`` exist only when the job has a ``subagent_model`` (``search.subagents``);
  they are then active in every branch.

The branching dimensions (mode, system, decode system) are enumerated explicitly; every
other active dimension is a mixed-radix digit, so ``count()`` is exact and ``enumerate``
yields each distinct configuration once (knobs on a ``knob_levels`` grid).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from search.spec import CUSTOM, SAME, JobSpec
from search.subagents import dim_choices

Points = dict[str, np.ndarray]
INT_KNOBS = ("scale_up_domain", "chips_per_node")
BRANCH = ("mode", "system", "decode_system")


@dataclass(frozen=True)
class Dim:
    name: str
    choices: tuple[Any, ...] = ()  # categorical values (empty for a continuous knob)
    low: float = 0.0
    high: float = 0.0
    scope: str = "all"  # all | disagg | custom

    @property
    def continuous(self) -> bool:
        return not self.choices

    def grid(self, levels: int) -> np.ndarray:
        if self.low == self.high:
            return np.array([self.low])
        g = np.linspace(self.low, self.high, levels)
        return np.unique(np.round(g)) if self.name in INT_KNOBS else g


@dataclass(frozen=True)
class Branch:
    mode: int
    system: int
    decode_system: int  # -1 for agg
    dims: tuple[Dim, ...]  # active non-branch dims
    sizes: tuple[int, ...]

    @property
    def size(self) -> int:
        return int(np.prod(self.sizes, dtype=np.int64)) if self.sizes else 1


class Space:
    def __init__(self, spec: JobSpec, is_moe: bool) -> None:
        sp = spec.space
        par = sp.parallelism
        pre = par.prefill or par
        self.spec = spec
        self.is_moe = is_moe
        self.knob_levels = spec.strategy.knob_levels
        self.retention = sp.kv_tiers.retention[0]
        d: list[Dim] = [
            Dim("mode", tuple(sp.modes)),
            Dim("system", tuple(sp.systems)),
            Dim("decode_system", tuple(sp.decode_systems), scope="disagg"),
            Dim("gemm", tuple(sp.precision.gemm)),
            Dim("kv", tuple(sp.precision.kv)),
            Dim("spec", tuple(sp.spec_decoding)),
            Dim("host", tuple(sp.kv_tiers.host)),
            # (only when searched: a one-choice dimension would still draw from the
            # samplers' random streams and change the trials of every other space)
            *(
                [Dim("storage", tuple(sp.kv_tiers.storage))]
                if sp.kv_tiers.storage != ["none"]
                else []
            ),
            Dim("router", tuple(sp.routers)),
            Dim("tp", tuple(par.tp)),
            *([Dim("ep", tuple(par.ep))] if is_moe else []),
            Dim("dp", tuple(par.dp)),
            Dim("workers", tuple(par.workers)),
            Dim("pp", tuple(par.pp)),
            Dim("p_tp", tuple(pre.tp), scope="disagg"),
            *([Dim("p_ep", tuple(pre.ep), scope="disagg")] if is_moe else []),
            Dim("p_dp", tuple(pre.dp), scope="disagg"),
            Dim("p_workers", tuple(pre.workers), scope="disagg"),
            Dim("p_pp", tuple(pre.pp), scope="disagg"),
            *(Dim(name, choices) for name, choices in dim_choices(spec)),
        ]
        if sp.hardware is not None:
            for k, (lo, hi) in sp.hardware.knobs.items():
                d.append(Dim(f"hw.{k}", (), lo, hi, scope="custom"))
        self.dims = tuple(d)
        self.by_name = {x.name: x for x in self.dims}
        self.branches = self._branches()
        self._cum = np.cumsum([0, *(b.size for b in self.branches)])

    # --- structure ----------------------------------------------------------------------
    def _branches(self) -> list[Branch]:
        modes, systems = self.by_name["mode"].choices, self.by_name["system"].choices
        decs = self.by_name["decode_system"].choices
        out = []
        for mi, mode in enumerate(modes):
            for si, s in enumerate(systems):
                for di, dsys in enumerate(decs) if mode == "disagg" else [(-1, None)]:
                    if SAME in decs and dsys is not None and dsys != SAME and dsys == s:
                        continue  # the same configuration as decode_system "same"
                    active = self.active_dims(mode, s, dsys)
                    sizes = tuple(
                        len(x.grid(self.knob_levels)) if x.continuous else len(x.choices)
                        for x in active
                    )
                    out.append(Branch(mi, si, di, active, sizes))
        return out

    def active_dims(self, mode: str, system: str, decode_system: str | None) -> tuple[Dim, ...]:
        custom = CUSTOM in (system, decode_system)
        on = {"all": True, "disagg": mode == "disagg", "custom": custom}
        return tuple(x for x in self.dims if x.name not in BRANCH and on[x.scope])

    def count(self) -> int:
        """Distinct configurations (continuous knobs counted on the ``knob_levels`` grid)."""
        return int(self._cum[-1])

    @property
    def has_knobs(self) -> bool:
        return any(x.continuous for x in self.dims)

    def empty(self, n: int) -> Points:
        return {
            x.name: np.full(n, np.nan) if x.continuous else np.full(n, -1, dtype=np.int64)
            for x in self.dims
        }

    # --- vectorised generation ----------------------------------------------------------
    def enumerate(self, start: int = 0, stop: int | None = None) -> Points:
        """Configurations ``start`` .. ``stop`` of the mixed-radix enumeration."""
        stop = self.count() if stop is None else min(stop, self.count())
        idx = np.arange(start, stop, dtype=np.int64)
        pts = self.empty(len(idx))
        which = np.searchsorted(self._cum, idx, side="right") - 1
        for b in np.unique(which):
            br = self.branches[b]
            m = which == b
            local = idx[m] - self._cum[b]
            pts["mode"][m], pts["system"][m], pts["decode_system"][m] = (
                br.mode,
                br.system,
                br.decode_system,
            )
            for dim, size in zip(reversed(br.dims), reversed(br.sizes), strict=True):
                digit = local % size
                local = local // size
                pts[dim.name][m] = dim.grid(self.knob_levels)[digit] if dim.continuous else digit
        return pts

    def sample(self, n: int, rng: np.random.Generator, qmc: bool = False) -> Points:
        """``n`` points, each dimension uniform (QMC: a scrambled Sobol sequence)."""
        names = [x.name for x in self.dims]
        if qmc:
            from scipy.stats import qmc as sq

            m = max(int(np.ceil(np.log2(max(n, 2)))), 1)
            u = sq.Sobol(len(names), scramble=True, seed=rng).random_base2(m)[:n]
        else:
            u = rng.random((n, len(names)))
        pts = self.empty(n)
        for j, x in enumerate(self.dims):
            if x.continuous:
                v = x.low + u[:, j] * (x.high - x.low)
                pts[x.name] = np.round(v) if x.name in INT_KNOBS else v
            else:
                pts[x.name] = np.minimum(
                    (u[:, j] * len(x.choices)).astype(np.int64), len(x.choices) - 1
                )
        return self.canonical(pts)

    def canonical(self, pts: Points) -> Points:
        """Mark inactive dimensions (-1 / NaN) and map a decode system equal to the
        prefill system onto "same", so equal configurations have equal rows."""
        mode = np.asarray(self.by_name["mode"].choices, dtype=object)[pts["mode"]]
        agg = mode == "agg"
        systems = np.asarray(self.by_name["system"].choices, dtype=object)[pts["system"]]
        dec_choices = self.by_name["decode_system"].choices
        dec = np.asarray(dec_choices, dtype=object)[np.maximum(pts["decode_system"], 0)]
        if SAME in dec_choices:
            pts["decode_system"] = np.where(
                dec == systems, dec_choices.index(SAME), pts["decode_system"]
            )
            dec = np.asarray(dec_choices, dtype=object)[np.maximum(pts["decode_system"], 0)]
        custom = (systems == CUSTOM) | (~agg & (dec == CUSTOM))
        for x in self.dims:
            off = (agg & (x.scope == "disagg")) | (~custom & (x.scope == "custom"))
            if x.name == "decode_system":
                off = agg
            pts[x.name] = np.where(off, np.nan if x.continuous else -1, pts[x.name])
        return pts

    def neighbours(self, pts: Points) -> Points:
        """Every point one categorical step away (one non-mode dimension changed)."""
        parts = []
        for x in self.dims:
            if x.continuous or x.name == "mode":
                continue
            active = pts[x.name] >= 0
            for alt in range(len(x.choices)):
                m = active & (pts[x.name] != alt)
                if m.any():
                    q = take(pts, np.flatnonzero(m))
                    q[x.name] = np.full(int(m.sum()), alt, dtype=np.int64)
                    parts.append(q)
        if not parts:
            return self.empty(0)
        out = concat(parts)
        for x in self.dims:  # a pool newly on the custom system gets mid-range knobs
            if x.continuous:
                out[x.name] = np.where(np.isnan(out[x.name]), (x.low + x.high) / 2, out[x.name])
        return self.canonical(out)

    # --- Optuna -------------------------------------------------------------------------
    def suggest(self, trial: Any) -> dict[str, Any]:
        """Ask ``trial`` for the active parameters (conditional on mode and systems)."""
        mode = trial.suggest_categorical("mode", list(self.by_name["mode"].choices))
        system = trial.suggest_categorical("system", list(self.by_name["system"].choices))
        dec = None
        if mode == "disagg":
            dec = trial.suggest_categorical(
                "decode_system", list(self.by_name["decode_system"].choices)
            )
        params = {"mode": mode, "system": system, **({"decode_system": dec} if dec else {})}
        for x in self.active_dims(mode, system, dec):
            if not x.continuous:
                params[x.name] = trial.suggest_categorical(x.name, list(x.choices))
            elif x.name in INT_KNOBS:
                params[x.name] = trial.suggest_int(x.name, int(x.low), int(x.high))
            else:
                params[x.name] = trial.suggest_float(x.name, x.low, x.high)
        return params

    def from_params(self, rows: list[dict[str, Any]]) -> Points:
        pts = self.empty(len(rows))
        for i, r in enumerate(rows):
            for k, v in r.items():
                x = self.by_name[k]
                pts[k][i] = v if x.continuous else x.choices.index(v)
        return self.canonical(pts)

    def params(self, pts: Points, i: int) -> dict[str, Any]:
        """The active parameters of row ``i`` (what Optuna's ``enqueue_trial`` takes)."""
        out: dict[str, Any] = {}
        for x in self.dims:
            v = pts[x.name][i]
            if x.continuous:
                if not np.isnan(v):
                    out[x.name] = int(v) if x.name in INT_KNOBS else float(v)
            elif v >= 0:
                c = x.choices[int(v)]
                out[x.name] = c.item() if hasattr(c, "item") else c
        return out

    def values(self, pts: Points, name: str) -> np.ndarray:
        """Choice values of a categorical dimension (None where inactive)."""
        x = self.by_name[name]
        ch = np.asarray([*x.choices, None], dtype=object)
        return ch[np.where(pts[name] >= 0, pts[name], len(x.choices))]


def take(pts: Points, idx: np.ndarray) -> Points:
    return {k: v[idx] for k, v in pts.items()}


def concat(parts: list[Points]) -> Points:
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def row_keys(pts: Points) -> np.ndarray:
    """One hashable key per row (for de-duplication)."""
    mat = np.column_stack([np.nan_to_num(v.astype(np.float64), nan=-1.0) for v in pts.values()])
    return np.array([r.tobytes() for r in mat], dtype=object)


def model_is_moe(spec: JobSpec) -> bool:
    """Whether the job's model has experts, after checking the space suits the model
    (MTP speculative decoding needs the checkpoint's multi-token-prediction layers)."""
    from codesign.errors import SpecError
    from codesign.models import load_model

    arch = load_model(spec.model)
    mtp = [s for s in spec.space.spec_decoding if s.startswith("mtp")]
    if mtp and arch.num_mtp_layers == 0:
        raise SpecError(
            f"space.spec_decoding: {', '.join(mtp)} needs MTP layers, which {arch.id} does not "
            "have; use eagleK (a separate draft head) or none"
        )
    return arch.moe is not None
