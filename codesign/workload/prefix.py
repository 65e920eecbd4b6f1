"""Block reuse within a trace: previous occurrence of every block, ideal prefix hits.

Everything here is vectorised over the flat CSR hash array. Sorting is done per "hash
group" (one session when the source's ids were session-local, else the whole trace), which
keeps the sorts small: 94 M blocks of the 710 Claude Code sessions take a few seconds.
"""

from __future__ import annotations

import numpy as np

from codesign.workload.schema import Trace, segment_ids

I64 = np.int64


def _group_bounds(trace: Trace) -> np.ndarray:
    """Flat-array boundaries of independent hash groups (sessions or the whole trace)."""
    off = trace.hash_offsets
    if trace.meta.hash_scope != "session" or trace.n_sessions <= 1:
        return np.array([0, trace.hash_ids.size], dtype=I64)
    sess = trace.req_session
    # first request of each session (requests are sorted by session)
    starts = np.flatnonzero(np.r_[True, sess[1:] != sess[:-1]]) if sess.size else np.zeros(0, I64)
    return np.r_[off[starts], off[-1]].astype(I64)


def previous_occurrence(trace: Trace) -> np.ndarray:
    """For each flat block, the flat index of the previous block with the same id, or -1."""
    cached = trace._cache.get("prev_occurrence")
    if cached is not None:
        return cached
    prev = prev_in_groups(trace.hash_ids, _group_bounds(trace))
    trace._cache["prev_occurrence"] = prev
    return prev


def prev_in_groups(h: np.ndarray, bounds: np.ndarray) -> np.ndarray:
    """Previous flat index with the same id inside each group ``[bounds[i], bounds[i+1])``."""
    prev = np.full(h.size, -1, dtype=I64)
    for lo, hi in zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True):
        if hi - lo < 2:
            continue
        seg = h[lo:hi]
        order = np.argsort(seg, kind="stable")
        s = seg[order]
        same = s[1:] == s[:-1]
        prev[lo + order[1:][same]] = lo + order[:-1][same]
    return prev


def leading_run(flags: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Per CSR row, how many leading elements of ``flags`` are True."""
    starts, ends = offsets[:-1], offsets[1:]
    misses = np.r_[np.flatnonzero(~flags), flags.size]
    first_miss = misses[np.searchsorted(misses, starts)]
    return np.minimum(first_miss, ends) - starts


def ideal_hit_blocks(trace: Trace) -> np.ndarray:
    """Per request, leading blocks already seen in an earlier request (infinite cache)."""
    cached = trace._cache.get("ideal_hit_blocks")
    if cached is not None:
        return cached
    if not trace.has_hashes:
        return np.zeros(trace.n_requests, dtype=I64)
    prev = previous_occurrence(trace)
    req = segment_ids(trace.hash_offsets)
    seen = prev >= 0
    seen[seen] = req[prev[seen]] < req[seen]
    blocks = leading_run(seen, trace.hash_offsets)
    trace._cache["ideal_hit_blocks"] = blocks
    return blocks


def ideal_hit_tokens(trace: Trace) -> np.ndarray:
    """Per request, input tokens that an infinite prefix cache would already hold.

    A block hits when the same id was seen in an earlier request; a request hits its
    longest run of leading hit blocks (prefix caching), in whole blocks. Requests without
    hashes fall back to ``shared_prefix_tokens`` (0 when unknown).
    """
    cached = trace._cache.get("ideal_hit_tokens")
    if cached is not None:
        return cached
    fallback = np.maximum(trace.shared_prefix_tokens, 0)
    if not trace.has_hashes:
        hits = np.minimum(fallback, trace.input_tokens)
    else:
        blocks = ideal_hit_blocks(trace)
        hits = np.minimum(blocks * trace.meta.block_size_tokens, trace.input_tokens)
        no_hash = trace.blocks_per_request == 0
        hits = np.where(no_hash, np.minimum(fallback, trace.input_tokens), hits)
    trace._cache["ideal_hit_tokens"] = hits
    return hits
