"""Exact LRU stack distances of the interleaved stream, computed per request, not per block.

Mattson's stack algorithm: a block hits an LRU cache of ``C`` blocks iff its stack distance
(distinct blocks touched since its previous access) is ``< C``, so the CDF of distances is
the hit-ratio curve for every capacity at once. A request hits the longest run of its
leading blocks that are cached, so block ``j`` of a request hits iff the running maximum of
the distances of blocks ``0..j`` is ``< C`` (with prefix-chained hashes the distances are
already non-decreasing along a request, as block ``j - 1`` is touched with and after ``j``).

The stream (`schedule.replay_schedule`) has ~10^8 block accesses for the 710 Claude Code
sessions, too many for a per-block pass per ``N``. Requests touch their blocks tail first,
so for a block ``b`` of request ``r`` whose previous access was in request ``r'`` (stream
indices ``i' < i``), at the time ``r`` looks it up

    d(b) = W(i', i) + own(b),
    W(i', i) = distinct blocks touched by the requests strictly between ``i'`` and ``i``,
    own(b)   = blocks of ``r'`` before ``b``'s position (touched after ``b``) that are not
               touched again before ``r``.

``own`` depends on the trace only (a copy of a session is replayed in its own order), so it
is computed once per trace, block by block. ``W`` is a 2-D dominance count over request
*groups* — (request ``q``, next request touching the block, number of blocks) — since a
block counts in the window iff its last access in it is its last access before ``i``:
``W(i', i) = sum over i' < q < i of the blocks of q whose next access is at or after i``.
One vectorised offline pass (`dominance_sum`) answers all windows of a stream. Along a
request, ``own`` grows by one per block, so blocks come in runs ("ramps") of consecutive
distances, and the curve is a sum of ramps evaluated at any capacities in one sort.

Result: for a given ``N`` and seed, the curve equals `simulate.simulate` with one tier and
no pinning, exactly (the tests check it block for block on real traces).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from codesign.kvcache.ramps import Ramps
from codesign.kvcache.schedule import Replay, cycle_positions
from codesign.workload.prefix import prev_in_groups
from codesign.workload.schema import Trace, gather_segments, segment_ids

I64 = np.int64
INF = np.int64(1) << 40  # "never": a distance no cache reaches


def dominance_sum(
    px: np.ndarray, py: np.ndarray, pw: np.ndarray, qx: np.ndarray, qy: np.ndarray
) -> np.ndarray:
    """For each query, the sum of ``pw`` over points with ``px <= qx`` and ``py >= qy``.

    Offline, vectorised: the prefix ``[0, qx]`` is split into Fenwick blocks, and each
    level answers its blocks with one sort and two `searchsorted` (O(n log^2 n)).
    """
    out = np.zeros(qx.size)
    if px.size == 0 or qx.size == 0:
        return out
    px, py, qy = px.astype(I64), py.astype(I64), qy.astype(I64)
    e = qx.astype(I64) + 1  # points with px < e
    span = int(max(py.max(), qy.max())) + 2
    top = int(max(px.max(), e.max())).bit_length() + 1
    w = pw.astype(float)
    # each level's order refines the last one's: the points come sorted by (px >> lvl, py)
    # in runs (the blocks of the level below, each sorted by py), which a stable sort
    # (timsort) merges in about linear time
    order = np.arange(px.size)
    for lvl in range(top):
        sel = np.flatnonzero((e >> lvl) & 1)
        if sel.size == 0:
            continue
        key = (px >> lvl) * span + py
        order = order[np.argsort(key[order], kind="stable")]
        ks = key[order]
        cw = np.r_[0.0, np.cumsum(w[order])]
        g = (e[sel] >> lvl) - 1
        lo = np.searchsorted(ks, g * span + qy[sel], side="left")
        hi = np.searchsorted(ks, (g + 1) * span, side="left")
        out[sel] += cw[hi] - cw[lo]
    return out


@dataclass(frozen=True)
class TraceReuse:
    """The N-independent part: requests in cycle order ("rank"), groups and segments.

    groups: blocks of request ``g_rank`` whose next access is request ``g_next`` (rank;
    ``n_ranks`` = never), ``g_count`` of them, sorted by rank.
    segments: runs of blocks of request ``s_rank`` (in position order) whose previous access
    was request ``s_prev`` (rank; -1 = first access, a miss at any capacity), with distances
    ``W + s_own, W + s_own + 1, ...`` (``s_len`` blocks of ``s_tokens`` tokens each).
    """

    n_ranks: int
    rank_of_request: np.ndarray  # (n_requests,) rank, -1 for requests not modelled
    input_tokens: np.ndarray  # (n_ranks,)
    g_offsets: np.ndarray  # (n_ranks + 1,) CSR into the group arrays
    g_next: np.ndarray
    g_count: np.ndarray
    s_offsets: np.ndarray  # (n_ranks + 1,) CSR into the segment arrays
    s_prev: np.ndarray
    s_own: np.ndarray
    s_len: np.ndarray
    s_tokens: np.ndarray
    s_pos: np.ndarray  # blocks of the request before the segment's first block
    block_size_tokens: int


def _csr(rank: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    order = np.argsort(rank, kind="stable")
    off = np.zeros(n + 1, dtype=I64)
    np.cumsum(np.bincount(rank, minlength=n), out=off[1:])
    return order, off


def _pointer_jump(ptr: np.ndarray) -> np.ndarray:
    """Follow ``ptr`` (a forest with roots pointing to themselves) to the roots."""
    while True:
        nxt = ptr[ptr]
        if np.array_equal(nxt, ptr):
            return ptr
        ptr = nxt


def _own_counts(req: np.ndarray, nxt: np.ndarray) -> np.ndarray:
    """Per block: earlier blocks of its request (position order) with ``nxt >=`` its own."""
    n = req.size
    idx = np.arange(n, dtype=I64)
    new_req = np.r_[True, req[1:] != req[:-1]] if n else np.zeros(0, bool)
    run_start = np.r_[True, (req[1:] != req[:-1]) | (nxt[1:] != nxt[:-1])] if n else new_req
    own = idx - np.maximum.accumulate(np.where(run_start, idx, 0))
    # fast path exact where nxt is non-decreasing along the request (prefix-chained hashes);
    # elsewhere count earlier blocks with a larger next access too
    bad = np.flatnonzero(~new_req[1:] & (nxt[1:] < nxt[:-1])) + 1 if n else idx
    if bad.size:
        starts = np.flatnonzero(new_req)
        for r in np.unique(req[bad]).tolist():
            lo = int(starts[np.searchsorted(req[starts], r)])
            hi = lo + int(np.searchsorted(req[lo:], r, side="right"))
            v = nxt[lo:hi]
            u, inv = np.unique(v, return_inverse=True)
            cnt = np.zeros(v.size, dtype=I64)
            for k in range(u.size):  # earlier blocks with next >= u[k], for blocks of value k
                ge = np.r_[0, np.cumsum(inv >= k)[:-1]]
                cnt[inv == k] = ge[inv == k]
            own[lo:hi] = cnt
    return own


CHUNK_BLOCKS = 4_000_000  # blocks per pass (whole sessions) when ids are session-local


def trace_reuse(trace: Trace, requests: np.ndarray | None = None, seed: int = 0) -> TraceReuse:
    """Precompute the reuse structure of ``trace`` (``requests``: a mask, e.g. one tier)."""
    pos_c, _ = cycle_positions(trace, seed)
    idx = np.arange(trace.n_requests) if requests is None else np.flatnonzero(requests)
    order = np.argsort(pos_c[idx], kind="stable")  # the order `replay_schedule` plays
    n_ranks = int(idx.size)
    rank_of = np.full(trace.n_requests, -1, dtype=I64)
    rank_of[idx[order]] = np.arange(n_ranks, dtype=I64)
    # Work in an order where ids are compared within contiguous groups: trace order by
    # session for session-local ids (a session's trace order is its cycle order), a few
    # sessions per pass; else the cycle order itself (global ids are shared by sessions).
    if trace.meta.hash_scope == "session" and trace.n_sessions > 1 and idx.size:
        rows = idx
        sess = trace.req_session[rows]
        starts = np.flatnonzero(np.r_[True, sess[1:] != sess[:-1]])
        before = np.r_[0, np.cumsum(trace.blocks_per_request[rows])][starts]
        marks = np.arange(0, max(int(before[-1]), 1), CHUNK_BLOCKS)
        cut = np.unique(np.searchsorted(before, marks, side="right") - 1)
        chunks = np.r_[starts[cut], rows.size]
    else:
        rows = idx[order]
        starts = np.zeros(min(rows.size, 1), dtype=I64)
        chunks = np.r_[0, rows.size]
    parts = []
    for lo, hi in zip(chunks[:-1].tolist(), chunks[1:].tolist(), strict=True):
        st = starts[(starts >= lo) & (starts < hi)] - lo
        parts.append(_reuse_rows(trace, rows[lo:hi], rank_of[rows[lo:hi]], st, n_ranks))
    cat = [np.concatenate([p[k] for p in parts]) if parts else np.zeros(0, I64) for k in range(8)]
    g_rank, g_next, g_count, s_rank, s_prev, s_own, s_len, s_tok = cat
    o, s_off = _csr(s_rank, n_ranks)  # stable: position order within a request kept
    go, g_off = _csr(g_rank, n_ranks)
    inp_rank = np.zeros(n_ranks, dtype=I64)
    inp_rank[rank_of[rows]] = trace.input_tokens[rows]
    s_len_o = s_len[o]
    before = np.cumsum(s_len_o) - s_len_o  # blocks before each segment, trace-wide
    seg_rank = np.repeat(np.arange(n_ranks, dtype=I64), np.diff(s_off))
    s_pos = before - before[np.minimum(s_off[:-1], max(before.size - 1, 0))][seg_rank]
    return TraceReuse(
        n_ranks=n_ranks,
        rank_of_request=rank_of,
        input_tokens=inp_rank,
        g_offsets=g_off,
        g_next=g_next[go],
        g_count=g_count[go],
        s_offsets=s_off,
        s_prev=s_prev[o],
        s_own=s_own[o],
        s_len=s_len_o,
        s_tokens=s_tok[o],
        s_pos=s_pos,
        block_size_tokens=trace.meta.block_size_tokens,
    )


def _reuse_rows(
    trace: Trace, rows: np.ndarray, rank_w: np.ndarray, starts: np.ndarray, n_ranks: int
) -> list[np.ndarray]:
    """Groups and segments of requests ``rows`` (ranks ``rank_w``); ids are compared
    within ``[starts[k], starts[k + 1])`` of ``rows`` only."""
    bs = trace.meta.block_size_tokens
    counts = trace.blocks_per_request[rows]
    offsets = np.zeros(rows.size + 1, dtype=I64)
    np.cumsum(counts, out=offsets[1:])
    h = trace.hash_ids[gather_segments(trace.hash_offsets, rows)]
    prev = prev_in_groups(h, np.r_[offsets[starts], offsets[-1]].astype(I64))
    del h
    wreq = segment_ids(offsets)  # working row of every block
    # a repeated id inside one request is one cache entry: map it to its first occurrence
    has = prev >= 0
    same = np.zeros(prev.size, bool)
    same[has] = wreq[prev[has]] == wreq[has]
    canon = np.arange(prev.size, dtype=I64)
    if same.any():
        canon[same] = prev[same]
        canon = _pointer_jump(canon)
    is_canon = canon == np.arange(prev.size)
    eprev = np.where(is_canon, prev, -1)  # previous access, in an earlier request
    del prev, same, has
    eprev[eprev >= 0] = canon[eprev[eprev >= 0]]
    nxt_rank = np.full(eprev.size, n_ranks, dtype=I64)  # rank of the next access (n = never)
    src = np.flatnonzero(eprev >= 0)
    nxt_rank[eprev[src]] = rank_w[wreq[src]]
    del src
    # groups: runs of canonical blocks of a request with one next access
    ci = np.flatnonzero(is_canon)
    cr, cn = wreq[ci], nxt_rank[ci]
    del nxt_rank
    gstart = np.flatnonzero(np.r_[True, (cr[1:] != cr[:-1]) | (cn[1:] != cn[:-1])])
    g_rank = rank_w[cr[gstart]]
    g_next = cn[gstart]
    g_count = np.diff(np.r_[gstart, ci.size])
    own = np.zeros(eprev.size, dtype=I64)
    own[ci] = _own_counts(cr, cn)
    del cr, cn, ci
    # query side: every block, distance W(prev request, request) + own of its previous access
    lp = eprev[canon]  # the cache entry's previous access
    del eprev, canon
    found = lp >= 0
    lp0 = np.maximum(lp, 0)
    d_own = np.where(found, own[lp0], -1)
    p_rank = np.where(found, rank_w[wreq[lp0]], -1)
    del own, lp, lp0
    pos = np.arange(wreq.size, dtype=I64) - offsets[wreq]
    tok = np.clip(trace.input_tokens[rows][wreq] - pos * bs, 0, bs)
    del pos
    full = tok == bs
    brk = np.ones(wreq.size, bool)
    if wreq.size:
        brk[1:] = (
            (wreq[1:] != wreq[:-1])
            | (p_rank[1:] != p_rank[:-1])
            | (found[1:] & (d_own[1:] != d_own[:-1] + 1))
            | ~full[1:]
            | ~full[:-1]
        )
    st = np.flatnonzero(brk)
    s_len = np.diff(np.r_[st, wreq.size])
    return [g_rank, g_next, g_count, rank_w[wreq[st]], p_rank[st], d_own[st], s_len, tok[st]]


def ideal_hit_tokens(reuse: TraceReuse) -> float:
    """Hit tokens of an infinite cache over the modelled requests (each session alone)."""
    miss = (reuse.s_prev < 0).astype(I64)
    before = np.cumsum(miss) - miss  # misses before each segment, trace-wide
    at_start = before[np.minimum(reuse.s_offsets[:-1], max(miss.size - 1, 0))]
    rank = np.repeat(np.arange(reuse.n_ranks), np.diff(reuse.s_offsets))
    lead = (before - at_start[rank] == 0) & (miss == 0)
    return float((reuse.s_len * reuse.s_tokens)[lead].sum())


def _expand(offsets: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(owner position in ``rows``, CSR element index) of every element of those rows."""
    n = offsets[rows + 1] - offsets[rows]
    return np.repeat(np.arange(rows.size, dtype=I64), n), gather_segments(offsets, rows)


def stream_ramps(reuse: TraceReuse, replay: Replay) -> Ramps:
    """Exact LRU distances of the replayed stream, as ramps (see the module docstring)."""
    rk = reuse.rank_of_request[replay.request]
    cp = replay.copy.astype(I64)
    n = rk.size
    nr = reuse.n_ranks
    key = cp * (nr + 1) + rk
    korder = np.argsort(key, kind="stable")
    ksorted = key[korder]

    def lookup(c: np.ndarray, r: np.ndarray) -> np.ndarray:
        """Stream index of request rank ``r`` in copy ``c``; ``-1`` where absent."""
        k = c * (nr + 1) + r
        j = np.minimum(np.searchsorted(ksorted, k), max(n - 1, 0))
        ok = (r >= 0) & (r < nr) & (ksorted[j] == k) if n else np.zeros(k.size, bool)
        return np.where(ok, korder[j], -1)

    # points: (stream index, stream index of the next access or n, blocks)
    inst, g = _expand(reuse.g_offsets, rk)
    nxt = lookup(cp[inst], reuse.g_next[g])
    py = np.where(nxt >= 0, nxt, n)
    px, pw = inst, reuse.g_count[g]
    # queries: measured requests' segments
    meas = np.flatnonzero(replay.measured)
    owner, s = _expand(reuse.s_offsets, rk[meas])
    i = meas[owner]
    ip = lookup(cp[i], reuse.s_prev[s])
    ok = ip >= 0
    qi, qp = i[ok], ip[ok]
    f = dominance_sum(px, py, pw, np.r_[qi - 1, qp], np.r_[qi, qi])
    win = f[: qi.size] - f[qi.size :]  # W(i', i) = F(i - 1, i) - F(i', i)
    d0 = np.full(s.size, INF, dtype=I64)
    d0[ok] = np.rint(win).astype(I64) + reuse.s_own[s][ok]
    length = reuse.s_len[s]
    w = reuse.s_tokens[s].astype(float)
    # running maximum along each request (segments are in position order)
    end = np.where(d0 >= INF, INF, d0 + length - 1)
    big = INF * 4
    cm = np.maximum.accumulate(end + owner * big) - owner * big
    first = np.r_[True, owner[1:] != owner[:-1]] if owner.size else np.zeros(0, bool)
    m_before = np.where(first, -1, np.r_[-1, cm[:-1]])
    live = (d0 < INF) & (m_before < INF)
    c1 = np.clip(m_before - d0 + 1, 0, length)  # blocks whose running max is m_before
    pt = live & (c1 > 0)
    rest = live & (c1 < length)
    start = np.r_[m_before[pt], np.maximum(d0, m_before + 1)[rest]]
    lens = np.r_[np.ones(int(pt.sum()), dtype=I64), (length - c1)[rest]]
    weight = np.r_[(c1 * w)[pt], w[rest]]
    # squared hit lengths (`ramps`): block k of a segment adds a0 + b0 k
    bs = float(reuse.block_size_tokens)
    a0 = w * (2.0 * reuse.s_pos[s] * bs + w)
    b0 = 2.0 * bs * w
    c1f = c1.astype(float)
    sq_a = np.r_[(c1f * a0 + b0 * c1f * (c1f - 1.0) / 2.0)[pt], (a0 + b0 * c1f)[rest]]
    sq_b = np.r_[np.zeros(int(pt.sum())), b0[rest]]
    inp = reuse.input_tokens[rk[meas]].astype(float)
    return Ramps(
        start.astype(I64),
        lens.astype(I64),
        weight,
        float(inp.sum()),
        sq_a,
        sq_b,
        float((inp * inp).sum()),
    )
