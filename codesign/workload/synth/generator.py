"""Generate a `Trace` of synthetic agent sessions from `SynthParams` (seeded, deterministic).

Every session draws from its own child of ``SeedSequence(seed)``, so session k is the same
whatever the number of sessions generated. Prefix hashes follow the context: request i+1
of an agent repeats the full blocks of request i and appends new ones; a compaction (or a
prefix break) starts a new chain after the static tool/system prefix (after a random
block); sub-agents share the session's tool-definition blocks and then grow their own
chain. Hash ids are fresh integers per trace, so sessions never share blocks.

Quantities that occur a few hundred times per trace — the context class and the
compaction decision of a session, each compaction's threshold and post-compaction size,
each sub-agent's calls and final size (when fitted) — are low-discrepancy draws in session
order (`_Weyl`), so their realised distribution follows the fitted tables closely even
for a few hundred sessions; everything else is iid from the session's own generator.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from scipy.special import ndtr

from codesign.workload.builder import TraceBuilder
from codesign.workload.schema import (
    GAP_HUMAN,
    GAP_NONE,
    GAP_TOOL,
    PRIMARY_KIND,
    STOP_END_TURN,
    STOP_TOOL_USE,
    Trace,
    TraceMeta,
)
from codesign.workload.synth.params import ContextClass, SynthParams

I64 = np.int64


class _Ids:
    """Fresh hash ids for the whole trace."""

    def __init__(self) -> None:
        self.next = 0

    def take(self, n: int) -> np.ndarray:
        out = np.arange(self.next, self.next + max(n, 0), dtype=I64)
        self.next += max(n, 0)
        return out


class _Weyl:
    """Low-discrepancy quantiles drawn in session order across the whole trace.

    Rare per-session events (compactions, sub-agents) number a few hundred per trace; iid
    draws of their sizes scatter their empirical CDF by ~1/sqrt(n). Each stream ``key``
    instead walks the additive sequence ``frac(offset(seed) + alpha * j)``, advanced only
    when its value is used, so the realised values are evenly spread over (0, 1). Session
    k still depends only on sessions 0..k (the same whatever the number generated).
    """

    # fractional parts of rationally independent irrationals: the streams of one event
    # (threshold and post-compaction size; turns and final size) are jointly equidistributed
    ALPHA: ClassVar[dict[str, float]] = {
        "thr": 0.6180339887498949,  # golden ratio
        "post": 0.41421356237309515,  # sqrt(2)
        "sub_turns": 0.7320508075688772,  # sqrt(3)
        "sub_last": 0.2360679774997898,  # sqrt(5)
        "cls": 0.6457513110645906,  # sqrt(7)
        "comp": 0.1622776601683795,  # sqrt(10)
    }

    def __init__(self, seed: int) -> None:
        self.offset = (0.7548776662466927 * seed) % 1.0
        self.count: dict[tuple[str, int], int] = {}

    def peek(self, key: str, stream: int = 0) -> float:
        j = self.count.get((key, stream), 0)
        return float((self.offset + 0.5 * self.ALPHA[key] + self.ALPHA[key] * j) % 1.0)

    def take(self, key: str, stream: int = 0) -> float:
        u = self.peek(key, stream)
        self.count[(key, stream)] = self.count.get((key, stream), 0) + 1
        return u


@dataclass
class _Main:
    """The main agent's columns of one session (times relative to the session start)."""

    ctx: np.ndarray
    out: np.ndarray
    stop: np.ndarray
    server: np.ndarray
    gap: np.ndarray
    compaction: np.ndarray
    breaks: np.ndarray


def _pick(rng: np.random.Generator, shares: dict[str, float]) -> str:
    names = list(shares)
    w = np.asarray([shares[k] for k in names], dtype=float)
    return names[int(rng.choice(len(names), p=w / w.sum()))]


def _round_gaps(gap: np.ndarray, step_s: float) -> np.ndarray:
    return np.round(gap / step_s) * step_s if step_s > 0 else gap


def _copula(rng: np.random.Generator, cls: ContextClass) -> np.ndarray:
    """Correlated uniforms for (turns, initial context, growth scale) of one session."""
    z = np.linalg.cholesky(np.asarray(cls.copula_corr)) @ rng.standard_normal(3)
    return ndtr(z)


def _main_contexts(
    rng: np.random.Generator, cls: ContextClass, ci: int, static: int, bs: int, lds: _Weyl
) -> tuple[np.ndarray, np.ndarray]:
    """Context per main turn and compaction markers (the request after a compaction).

    A compacting session compacts every time its context reaches the threshold; each
    compaction's threshold and post-compaction size are the next values of its class's
    low-discrepancy streams (a threshold the session never reaches stays for the next
    session), so the realised sizes follow the fitted tables closely.
    """
    u = _copula(rng, cls)
    n = max(1, int(cls.turns.ppf(u[:1])[0]))
    growth = cls.context_growth_tokens.sample(rng, n) * float(cls.growth_scale.ppf(u[2:])[0])
    c = max(float(cls.initial_context_tokens.ppf(u[1:2])[0]), float(static + bs))
    compacts = lds.take("comp", ci) < cls.compaction_prob

    def threshold() -> float:
        if not compacts:
            return np.inf
        return float(cls.compaction_threshold_tokens.ppf(np.asarray([lds.peek("thr", ci)]))[0])

    thr = threshold()
    ctx = np.empty(n)
    comp = np.zeros(n, dtype=bool)
    window = cls.context_window_tokens
    for i in range(n):
        if c > window:
            n = i
            break
        ctx[i] = c
        # compact at the request closest to the threshold (no systematic overshoot)
        if (c >= thr or c + growth[i] - thr > thr - c) and i + 1 < ctx.size:
            lds.take("thr", ci)
            post = float(cls.post_compaction_tokens.ppf(np.asarray([lds.take("post", ci)]))[0])
            c = max(min(post, 0.45 * c), float(static + bs))
            comp[i + 1] = True
            thr = threshold()
            growth[i + 1 :] *= cls.post_compaction_growth_scale
        else:
            # the client compacts before the window fills: a jump never carries the
            # context far past the threshold
            c = min(c + growth[i], max(c, 1.02 * thr))
    n = max(n, 1)
    return np.round(ctx[:n]), comp[:n]


def _main_agent(
    rng: np.random.Generator, p: SynthParams, ci: int, static: int, lds: _Weyl
) -> _Main:
    cls = p.classes[ci]
    ctx, comp = _main_contexts(rng, cls, ci, static, p.block_size_tokens, lds)
    n = ctx.size
    stop = np.where(rng.random(n) < p.end_turn_prob, STOP_END_TURN, STOP_TOOL_USE)
    stop[-1] = STOP_END_TURN
    tool_gap = p.tool_gap_s.sample(rng, n)
    human_gap = p.human_gap_s.sample(rng, n)
    gap = np.zeros(n)
    gap[1:] = np.where(stop[:-1] == STOP_END_TURN, human_gap[1:], tool_gap[1:])
    breaks = (rng.random(n) < p.prefix_break_prob) & ~comp
    breaks[0] = False
    return _Main(
        ctx=ctx,
        out=p.output_tokens.sample(rng, n),
        stop=stop.astype(np.int8),
        server=p.server_s.sample(rng, n),
        gap=_round_gaps(gap, p.gap_resolution_s),
        compaction=comp,
        breaks=breaks,
    )


def _main_hashes(
    rng: np.random.Generator, m: _Main, static_ids: np.ndarray, bs: int, ids: _Ids
) -> tuple[np.ndarray, np.ndarray]:
    """Block ids per main request (CSR counts, flat ids): chains restart at compactions."""
    nb = (m.ctx // bs).astype(I64)
    n = nb.size
    new_seg = m.compaction | m.breaks
    new_seg[0] = True
    seg_id = np.cumsum(new_seg) - 1
    seg_max = np.zeros(int(seg_id[-1]) + 1, dtype=I64)
    np.maximum.at(seg_max, seg_id, nb)
    s_blocks = static_ids.size
    chain = static_ids
    parts = []
    for i in range(n):
        if new_seg[i]:
            if m.breaks[i]:
                keep = int(rng.integers(min(s_blocks, nb[i - 1]), max(nb[i - 1], s_blocks) + 1))
                keep = min(keep, chain.size)
            else:
                keep = s_blocks
            need = int(seg_max[seg_id[i]])
            chain = np.concatenate([chain[:keep], ids.take(need - keep)])
        parts.append(chain[: nb[i]])
    return nb, np.concatenate(parts) if parts else np.zeros(0, I64)


def _add_subagents(
    b: TraceBuilder,
    rng: np.random.Generator,
    p: SynthParams,
    sid: int,
    primary: int,
    start_s: float,
    main_model: str,
    m: _Main,
    tool_ids: np.ndarray,
    ids: _Ids,
    u_sub: float,
    lds: _Weyl,
) -> np.ndarray:
    """Spawn sub-agents after tool_use turns; return extra main wait (s) per main turn."""
    sp = p.subagents
    wait = np.zeros(m.ctx.size)
    tool_turns = np.flatnonzero(m.stop[:-1] == STOP_TOOL_USE)
    if u_sub >= sp.session_prob or tool_turns.size == 0:
        return wait
    count = max(1, int(sp.count.sample(rng, 1)[0]))
    n_batches = min(int(np.ceil(count / sp.max_parallel)), tool_turns.size)
    turns = np.sort(rng.choice(tool_turns, n_batches, replace=False))
    sizes = np.diff(np.linspace(0, count, n_batches + 1).round().astype(int))
    # main-relative times without the sub-agent waits, then shifted batch by batch
    bs = p.block_size_tokens
    small = b.model_code(p.small_model)
    for j, size in zip(turns.tolist(), sizes.tolist(), strict=True):
        t_main = np.cumsum(np.r_[0.0, m.server[:-1]] + m.gap + wait)
        spawn = t_main[j] + m.server[j]
        end_max = spawn
        for _ in range(size):
            kind = _pick(rng, sp.kinds)
            model = small if rng.random() < sp.small_model_prob else b.model_code(main_model)
            if sp.final_context_tokens is None:
                n = max(1, int(sp.turns.sample(rng, 1)[0]))
                c0 = float(sp.initial_context_tokens.sample(rng, 1)[0])
                growth = sp.context_growth_tokens.sample(rng, n)
                ctx = c0 + np.r_[0.0, np.cumsum(growth[:-1])]
            else:
                n = max(1, int(sp.turns.ppf(np.asarray([lds.take("sub_turns")]))[0]))
                c0 = float(sp.initial_context_tokens.sample(rng, 1)[0])
                last = sp.final_context_tokens.ppf(np.asarray([lds.take("sub_last")]))[0]
                steps = sp.context_growth_tokens.sample(rng, n - 1) + 1.0
                frac = (np.cumsum(steps) / steps.sum()) ** sp.growth_shape
                ctx = c0 + max(float(last) - c0, 0.0) * np.r_[0.0, frac]
            ctx = np.round(np.maximum(ctx, float(bs)))
            server = p.server_s.sample(rng, n)
            gap = _round_gaps(np.r_[0.0, sp.gap_s.sample(rng, n - 1)], p.gap_resolution_s)
            arrival = spawn + np.cumsum(np.r_[0.0, server[:-1]] + gap)
            end = float(arrival[-1] + server[-1])
            agent = b.add_agent(
                sid, primary, kind, f"agent_{b.n_agents:05d}", start_s + spawn, end_s=start_s + end
            )
            nb = (ctx // bs).astype(I64)
            shared = min(tool_ids.size, int(nb[0]))
            chain = np.concatenate([tool_ids[:shared], ids.take(int(nb.max()) - shared)])
            stop = np.full(n, STOP_TOOL_USE, dtype=np.int8)
            stop[-1] = STOP_END_TURN
            b.add_requests(
                agent,
                arrival_s=start_s + arrival,
                input_tokens=ctx.astype(I64),
                output_tokens=p.output_tokens.sample(rng, n).astype(I64),
                stop=stop,
                gap_s=gap,
                gap_kind=np.r_[GAP_NONE, np.full(n - 1, GAP_TOOL)],
                server_s=server,
                model=model,
                compaction=np.zeros(n, dtype=np.int8),
                hash_counts=nb,
                hash_ids=np.concatenate([chain[:k] for k in nb.tolist()]),
            )
            end_max = max(end_max, end)
        if j + 1 < wait.size:
            wait[j + 1] += end_max - spawn
    return wait


def _session(
    b: TraceBuilder,
    p: SynthParams,
    rng: np.random.Generator,
    k: int,
    start_s: float,
    ids: _Ids,
    lds: _Weyl,
) -> None:
    weights = np.cumsum([c.weight for c in p.classes])
    ci = min(
        int(np.searchsorted(weights / weights[-1], lds.take("cls"), side="right")),
        len(p.classes) - 1,
    )
    cls = p.classes[ci]
    main_model = _pick(rng, cls.models)
    tool = int(p.tool_tokens.sample(rng, 1)[0])
    system = int(p.system_tokens.sample(rng, 1)[0])
    bs = p.block_size_tokens
    sid = b.add_session(f"{p.name}-{p.seed}-{k:05d}", start_s, tool, system)
    primary = b.add_agent(sid, -1, PRIMARY_KIND, "main", start_s, tool, system)
    m = _main_agent(rng, p, ci, tool + system, lds)
    tool_ids = ids.take(tool // bs)
    static_ids = np.concatenate([tool_ids, ids.take((tool + system) // bs - tool // bs)])
    counts, flat = _main_hashes(rng, m, static_ids, bs, ids)
    wait = _add_subagents(
        b, rng, p, sid, primary, start_s, main_model, m, tool_ids, ids, _lds(p.seed, k), lds
    )
    gap = m.gap + wait
    arrival = np.cumsum(np.r_[0.0, m.server[:-1]] + gap)
    gap_kind = np.where(m.stop[:-1] == STOP_END_TURN, GAP_HUMAN, GAP_TOOL)
    b.add_requests(
        primary,
        arrival_s=start_s + arrival,
        input_tokens=m.ctx.astype(I64),
        output_tokens=m.out.astype(I64),
        stop=m.stop,
        gap_s=gap,
        gap_kind=np.r_[GAP_NONE, gap_kind].astype(np.int8),
        server_s=m.server,
        model=b.model_code(main_model),
        compaction=m.compaction.astype(np.int8),
        hash_counts=counts,
        hash_ids=flat,
    )


def _lds(seed: int, k: int) -> float:
    """Low-discrepancy uniform of session k: the share of sessions with sub-agents is exact
    for any number of sessions (a rare event, 2% of sessions, would else vary by seed)."""
    return float((0.7548776662466927 * seed + 0.6180339887498949 * (k + 1)) % 1.0)


def session_starts(p: SynthParams) -> np.ndarray:
    """Start time (s) of each session: all at 0, or a Poisson process at the given rate."""
    if p.arrival.process == "all_at_zero":
        return np.zeros(p.sessions)
    rng = np.random.default_rng(np.random.SeedSequence([p.seed, 1]))
    return np.cumsum(rng.exponential(1.0 / p.arrival.sessions_per_s, p.sessions))


def generate(params: SynthParams) -> Trace:
    """The synthetic trace of ``params`` (see the module docstring)."""
    meta = TraceMeta(
        name=params.name,
        source_format="synth",
        block_size_tokens=params.block_size_tokens,
        hash_scope="global",
        description=params.description or f"synthetic sessions, seed {params.seed}",
    )
    b = TraceBuilder(meta, local_hashes=False)
    ids = _Ids()
    lds = _Weyl(params.seed)
    starts = session_starts(params)
    children = np.random.SeedSequence(params.seed).spawn(params.sessions)
    for k, child in enumerate(children):
        _session(b, params, np.random.default_rng(child), k, float(starts[k]), ids, lds)
    return b.build()
