"""Exact block-level LRU simulation of a shared, tiered prefix cache (the ground truth).

Blocks are the trace's hash blocks. A request hits the longest run of its leading blocks
that are cached in any tier (prefix caching), then touches all its blocks from the last to
the first, so a request's prefix is the most recent and its tail is evicted first (as vLLM
frees a sequence's blocks in reverse).

Tiers (device HBM → host memory → storage), capacities in tokens:

* ``exclusive``: a victim cache chain — the top tier's LRU victims move to the next tier,
  the last tier's are dropped; a hit in a lower tier promotes the block to the top.
* ``inclusive``: tier k holds the ``C_k`` most recent blocks (capacities non-decreasing);
  a hit is credited to the fastest tier holding the block.

Tool-gap policy ``pin_ttl_s``: after a request, its session's blocks may not be evicted
from the top tier until the response end + TTL (an LRU victim that is pinned is moved back
to the most-recent end; if every block is pinned the oldest is evicted anyway). ``None``
evicts normally.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from itertools import pairwise
from typing import Literal

import numpy as np

from codesign.errors import SpecError
from codesign.kvcache.schedule import Replay, replay_schedule
from codesign.workload.schema import Trace

Mode = Literal["exclusive", "inclusive"]


@dataclass(frozen=True)
class SimResult:
    """Token-weighted hit ratios of the measured requests; per tier and total."""

    hit_ratio_per_tier: np.ndarray  # (K,)
    hit_tokens_per_tier: np.ndarray  # (K,)
    input_tokens: int
    requests: int
    # sums over the measured requests of squared hit tokens (all tiers) and squared input:
    # the prefill's causal attention work is (input^2 - hit^2) / 2 per request
    hit_sq_tokens: float = 0.0
    input_sq_tokens: float = 0.0

    @property
    def hit_ratio(self) -> float:
        return float(self.hit_ratio_per_tier.sum())


def _check(capacities_tokens: list[float], mode: Mode) -> None:
    if not capacities_tokens or min(capacities_tokens) < 0:
        raise SpecError("cache tier capacities must be non-negative token counts")
    if mode == "inclusive" and any(b < a for a, b in pairwise(capacities_tokens)):
        raise SpecError("inclusive tiers need non-decreasing capacities (HBM <= host <= disk)")
    if mode not in ("exclusive", "inclusive"):
        raise SpecError(f"unknown tier mode {mode!r} (exclusive, inclusive)")


def simulate(
    trace: Trace,
    capacities_tokens: list[float],
    sessions_per_cache: int = 1,
    *,
    mode: Mode = "exclusive",
    pin_ttl_s: float | None = None,
    tier: str | None = None,
    seed: int = 0,
    replay: Replay | None = None,
) -> SimResult:
    """Replay ``trace`` (requests of model tier ``tier``, or all) through the cache."""
    _check(capacities_tokens, mode)
    if not trace.has_hashes:
        raise SpecError("the cache simulation needs block hashes; this trace has none")
    bs = trace.meta.block_size_tokens
    caps = [int(c // bs) for c in capacities_tokens]
    mask = None if tier is None else trace.tier == trace.tier_code(tier)
    if replay is None:
        replay = replay_schedule(trace, sessions_per_cache, seed, mask)
    k_tiers = len(caps)
    tiers: list[OrderedDict[int, int]] = [OrderedDict() for _ in caps]
    pin_until: dict[int, float] = {}
    stride = int(trace.hash_ids.max()) + 1 if trace.hash_ids.size else 1
    off = trace.hash_offsets
    hashes = trace.hash_ids
    sess_of = trace.req_session
    end_s = np.nan_to_num(trace.server_s)
    inp = trace.input_tokens
    hit_tok = np.zeros(k_tiers)
    total_in = 0
    hit_sq = 0.0
    in_sq = 0.0
    n_measured = 0
    exclusive = mode == "exclusive"
    for r, copy, wall, measured in zip(
        replay.request.tolist(),
        replay.copy.tolist(),
        replay.wall_s.tolist(),
        replay.measured.tolist(),
        strict=True,
    ):
        blocks = (hashes[off[r] : off[r + 1]] + copy * stride).tolist()
        owner = int(sess_of[r]) * 1_000_003 + copy
        # 1. longest cached prefix, tier of each of its blocks
        found = [0] * k_tiers
        n_hit = 0
        last_tier = -1
        for h in blocks:
            for k in range(k_tiers):
                if h in tiers[k]:
                    found[k] += 1
                    last_tier = k
                    break
            else:
                break
            n_hit += 1
        if measured:
            n_tok = int(inp[r])
            total_in += n_tok
            n_measured += 1
            for k in range(k_tiers):
                hit_tok[k] += found[k] * bs
            if n_hit and n_hit * bs > n_tok:  # a partial last block holds fewer tokens
                hit_tok[last_tier] -= n_hit * bs - n_tok
            hit_sq += float(min(n_hit * bs, n_tok)) ** 2
            in_sq += float(n_tok) ** 2
        # 2. touch all blocks, tail first
        if pin_ttl_s is not None:
            pin_until[owner] = wall + float(end_s[r]) + pin_ttl_s
        if exclusive:
            top = tiers[0]
            for h in reversed(blocks):
                if h in top:
                    top.move_to_end(h)
                    top[h] = owner
                    continue
                for k in range(1, k_tiers):
                    if h in tiers[k]:
                        del tiers[k][h]
                        break
                top[h] = owner
            _cascade(tiers, caps, pin_until, wall)
        else:
            for k, t in enumerate(tiers):
                for h in reversed(blocks):
                    if h in t:
                        t.move_to_end(h)
                    t[h] = owner
                _evict(t, caps[k], pin_until if k == 0 else None, wall)
    ratio = hit_tok / total_in if total_in else np.zeros(k_tiers)
    return SimResult(ratio, hit_tok, total_in, n_measured, hit_sq, in_sq)


def _evict(
    t: OrderedDict[int, int], cap: int, pin_until: dict[int, float] | None, now: float
) -> list[tuple[int, int]]:
    """Drop LRU blocks until ``len(t) <= cap``; pinned ones get a second chance."""
    victims: list[tuple[int, int]] = []
    spared = 0
    while len(t) > cap:
        h, owner = t.popitem(last=False)
        if pin_until is not None and spared < len(t) and pin_until.get(owner, -1.0) > now:
            t[h] = owner  # pinned: back to the most-recent end
            spared += 1
            continue
        victims.append((h, owner))
    return victims


def _cascade(
    tiers: list[OrderedDict[int, int]], caps: list[int], pin_until: dict[int, float], now: float
) -> None:
    """Exclusive tiers: each tier's victims become the next tier's most recent blocks."""
    for k, t in enumerate(tiers):
        victims = _evict(t, caps[k], pin_until if k == 0 else None, now)
        if k + 1 < len(tiers):
            nxt = tiers[k + 1]
            for h, owner in victims:
                nxt[h] = owner
