"""Placement of a request on a part's KV workers (``round_robin``, ``session_affinity``,
``kv_aware``; see ``engine``), with the prefix lookup the placement needs."""

from __future__ import annotations

from typing import TYPE_CHECKING

INF = float("inf")

if TYPE_CHECKING:
    from codesign.simulate.engine import Part
    from codesign.simulate.worker import Worker


def route(
    part: Part, keys: list[int], lens: list[int], n_in: int, owner: int, bs: int
) -> tuple[Worker, int, int]:
    """(worker, device blocks hit, host blocks hit). ``kv_aware`` takes the worker with the
    least uncached prompt tokens plus queued work (``Worker.load_tokens``), the first of
    equals."""
    ws = part.workers
    if len(ws) == 1:
        return ws[0], *ws[0].cache.lookup(keys, lens)  # type: ignore[union-attr]
    if part.router == "round_robin":
        w = ws[part.rr % len(ws)]
        part.rr += 1
        return w, *w.cache.lookup(keys, lens)  # type: ignore[union-attr]
    if part.router == "session_affinity":
        w = ws[owner % len(ws)]
        return w, *w.cache.lookup(keys, lens)  # type: ignore[union-attr]
    base = n_in - (n_in if n_in < 0 else 0)  # n_in - min(0, n_in): the cost of a miss
    best = INF  # every cost is finite: the first worker is taken, then strictly cheaper ones
    best_w, best_d, best_h = ws[0], 0, 0
    if not keys:  # nothing cached can match
        for x in ws:
            cost = base + (x.pending_pf_tokens + 0.02 * x.kv_used)
            if cost < best:
                best, best_w = cost, x
        return best_w, 0, 0
    k0 = keys[0]
    if len(keys) == 1:  # one run: RunCache.lookup's one-run path, inline
        n0 = lens[0]
        for x, tot_get, dev_get in part.kv_index:
            t = tot_get(k0, 0)
            if t:
                d = dev_get(k0, 0)
                if t >= n0:
                    if d > n0:
                        d = n0
                    h = n0 - d
                else:
                    h = t - d
                hit = (d + h) * bs
                cost = (
                    n_in - (n_in if n_in < hit else hit) + (x.pending_pf_tokens + 0.02 * x.kv_used)
                )
                if cost < best:
                    best, best_w, best_d, best_h = cost, x, d, h
            else:
                cost = base + (x.pending_pf_tokens + 0.02 * x.kv_used)
                if cost < best:
                    best, best_w, best_d, best_h = cost, x, 0, 0
        return best_w, best_d, best_h
    for x, tot_get, _ in part.kv_index:
        if tot_get(k0, 0):
            d, h = x.cache.lookup(keys, lens)  # type: ignore[union-attr]
            hit = (d + h) * bs
            # n_in - min(hit, n_in) + x.load_tokens(), in the same order
            cost = n_in - (n_in if n_in < hit else hit) + (x.pending_pf_tokens + 0.02 * x.kv_used)
            if cost < best:
                best, best_w, best_d, best_h = cost, x, d, h
        else:  # the first run is not cached: no hit (RunCache.lookup's answer)
            cost = base + (x.pending_pf_tokens + 0.02 * x.kv_used)
            if cost < best:
                best, best_w, best_d, best_h = cost, x, 0, 0
    return best_w, best_d, best_h
