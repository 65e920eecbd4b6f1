"""Placement of a request on a part's workers that prefill and hold the prefix cache
(``Part.cache_workers``: the agg pool's, or the prefill pool's) by ``round_robin``,
``session_affinity`` or ``kv_aware`` (see ``engine``), with the prefix lookup the
placement needs."""

from __future__ import annotations

from typing import TYPE_CHECKING

INF = float("inf")
# kv_aware counts one uncached prompt token like one token of queued work. Measured on 8
# GB200 workers (R1, 128 / 256 fleet sessions): that gives hit ratio 0.964 / 0.959 and TTFT
# p99 24 / 32 s; weighting a miss 2x gives 0.968 / 0.964 and 28 / 45 s, 4x 0.969 / 0.966
# and 37 / 60 s (session affinity: 0.970 / 0.968 and 52 / 112 s): heavier weights keep
# more locality and lose tail latency.

if TYPE_CHECKING:
    from codesign.simulate.engine import Part
    from codesign.simulate.worker import Worker


def route(
    part: Part, keys: list[int], lens: list[int], n_in: int, owner: int, bs: int
) -> tuple[Worker, int, int, int]:
    """(worker, device, host and storage blocks hit). ``kv_aware`` takes the worker with the
    least uncached prompt tokens plus queued work (``Worker.load_tokens``), the first of
    equals."""
    ws = part.cache_workers
    if len(ws) == 1:
        return ws[0], *ws[0].cache.lookup(keys, lens)  # type: ignore[union-attr]
    if part.router == "round_robin":
        w = ws[part.rr % len(ws)]
        part.rr += 1
        return w, *w.cache.lookup(keys, lens)  # type: ignore[union-attr]
    if part.router == "session_affinity":
        w = ws[owner % len(ws)]
        return w, *w.cache.lookup(keys, lens)  # type: ignore[union-attr]
    if len(keys) == 1:
        return kv_aware_one(part, keys[0], lens[0], n_in, owner, bs)
    return _kv_aware(part, ws, keys, lens, n_in, owner, bs)


def kv_aware_one(
    part: Part, k0: int, n0: int, n_in: int, owner: int, bs: int
) -> tuple[Worker, int, int, int]:
    """``kv_aware`` for a prompt of one run (key ``k0``, ``n0`` blocks) on two or more
    workers: ``_kv_aware`` with ``RunCache.lookup``'s one-run path inline."""
    best = INF  # every cost is finite: the first worker is taken, then strictly cheaper ones
    ws = part.cache_workers
    best_w, best_d, best_h, best_s = ws[0], 0, 0, 0
    miss = n_in if n_in > 0 else 0
    for x, tot_get, dev_get, mid in part.kv_index:
        t = tot_get(k0, 0)
        if t:
            d = dev_get(k0, 0)
            m = mid.get(k0, t) if mid else t
            if t >= n0:
                if d > n0:
                    d = n0
                if m > n0:
                    m = n0
                t = n0
            h, s = m - d, t - m
            hit = t * bs
            cost = n_in - (n_in if n_in < hit else hit) + (x.pending_pf_tokens + 0.02 * x.kv_used)
            if cost < best:
                best, best_w, best_d, best_h, best_s = cost, x, d, h, s
        else:
            cost = miss + (x.pending_pf_tokens + 0.02 * x.kv_used)
            if cost < best:
                best, best_w, best_d, best_h, best_s = cost, x, 0, 0, 0
    if best_d + best_h + best_s == 0:  # a miss everywhere: keep the session's cache in one place
        return _home_unless_busy(ws, owner, best_w, n_in), 0, 0, 0
    return best_w, best_d, best_h, best_s


def _kv_aware(
    part: Part, ws: list[Worker], keys: list[int], lens: list[int], n_in: int, owner: int, bs: int
) -> tuple[Worker, int, int, int]:
    """The worker with the least uncached prompt tokens + queued work; when no
    worker holds any of the prompt, the session's home worker (as ``session_affinity``)
    unless its queue is longer than the least loaded one's by more than the prompt."""
    best = INF  # every cost is finite: the first worker is taken, then strictly cheaper ones
    best_w, best_d, best_h, best_s = ws[0], 0, 0, 0
    miss = n_in if n_in > 0 else 0
    if not keys:  # nothing cached can match
        for x in ws:
            cost = miss + (x.pending_pf_tokens + 0.02 * x.kv_used)
            if cost < best:
                best, best_w = cost, x
    else:
        k0 = keys[0]
        for x, tot_get, _, _ in part.kv_index:
            if tot_get(k0, 0):
                d, h, s = x.cache.lookup(keys, lens)  # type: ignore[union-attr]
                hit = (d + h + s) * bs
                cost = (
                    n_in - (n_in if n_in < hit else hit) + (x.pending_pf_tokens + 0.02 * x.kv_used)
                )
                if cost < best:
                    best, best_w, best_d, best_h, best_s = cost, x, d, h, s
            else:  # the first run is not cached: no hit (RunCache.lookup's answer)
                cost = miss + (x.pending_pf_tokens + 0.02 * x.kv_used)
                if cost < best:
                    best, best_w, best_d, best_h, best_s = cost, x, 0, 0, 0
    if best_d + best_h + best_s == 0:  # a miss everywhere: keep the session's cache in one place
        return _home_unless_busy(ws, owner, best_w, n_in), 0, 0, 0
    return best_w, best_d, best_h, best_s


def _home_unless_busy(ws: list[Worker], owner: int, least: Worker, n_in: int) -> Worker:
    """On a miss everywhere: the session's home worker (as ``session_affinity``) unless its
    queue is longer than the least loaded worker's by more than the prompt."""
    home = ws[owner % len(ws)]
    if home is least:
        return home
    load_home = home.pending_pf_tokens + 0.02 * home.kv_used
    load_least = least.pending_pf_tokens + 0.02 * least.kv_used
    return home if load_home - load_least <= n_in else least
