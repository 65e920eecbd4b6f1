"""A worker's prefix cache for the simulator: a three-tier (device, host, storage) LRU over
block runs.

A request's hash blocks are split once (vectorised) into runs of consecutive block ids
(``request_runs``); generators and most importers allocate a context's blocks
consecutively, so a 150K-token request is one or two runs instead of 2,000 blocks. The
cache keeps, per run key (its first block id), how many leading blocks are on the device
(``dev``), on the device or in host memory (``mid``, only for keys with blocks in storage;
else ``tot``) and in total (``tot``): blocks ``dev..mid`` are in host memory, ``mid..tot``
on the node's NVMe. This is a block LRU in which a run's blocks are touched together, its
tail is evicted first, device victims move to the host tier and host victims to the
storage tier (exclusive tiers, as ``codesign.kvcache.simulate``; without a storage tier
they are dropped); a hit is the longest run of leading blocks cached in any tier.

Retention ``pin_during_tool_gaps``: a run whose owner (session copy) is pinned until a
time later than now is skipped by device eviction (moved to the most-recent end), unless
every entry is pinned.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from codesign.workload.schema import Trace


@dataclass(frozen=True)
class RequestRuns:
    """CSR runs per request: ``keys[off[r]:off[r+1]]`` and their lengths in blocks."""

    keys: list[int]
    lengths: list[int]
    off: list[int]
    stride: int  # key offset between copies of the trace (distinct users)
    block_tokens: int


def request_runs(trace: Trace, fallback_block_tokens: int = 64) -> RequestRuns:
    """Runs of consecutive block ids per request. A trace without hashes gets one run per
    agent context (a new one after each compaction), ``input_tokens // block`` long."""
    if not trace.has_hashes:
        bs = fallback_block_tokens
        epoch = np.zeros(trace.n_requests, dtype=np.int64)
        for a in np.unique(trace.req_agent):  # compactions start a new context chain
            m = trace.req_agent == a
            epoch[m] = np.cumsum(trace.compaction[m])
        keys = (trace.req_agent.astype(np.int64) * 4096 + epoch) * 1_000_003
        lens = trace.input_tokens // bs
        has = lens > 0
        off = np.zeros(trace.n_requests + 1, dtype=np.int64)
        np.cumsum(has, out=off[1:])
        stride = int(keys.max()) + 1_000_003 if keys.size else 1
        return RequestRuns(keys[has].tolist(), lens[has].tolist(), off.tolist(), stride, bs)
    ids, offs = trace.hash_ids, trace.hash_offsets
    n = ids.size
    start = np.ones(n, dtype=bool)
    if n > 1:
        start[1:] = np.diff(ids) != 1
    seg_first = offs[:-1][np.diff(offs) > 0]
    start[seg_first] = True
    pos = np.flatnonzero(start)
    lengths = np.diff(np.append(pos, n))
    per_req = (
        np.add.reduceat(start, np.minimum(offs[:-1], n - 1))
        if n
        else np.zeros(trace.n_requests, dtype=np.int64)
    )
    per_req = np.where(np.diff(offs) > 0, per_req, 0)
    off = np.zeros(trace.n_requests + 1, dtype=np.int64)
    np.cumsum(per_req, out=off[1:])
    stride = int(ids.max()) + 1 if n else 1
    return RequestRuns(
        ids[pos].tolist(), lengths.tolist(), off.tolist(), stride, trace.meta.block_size_tokens
    )


def one_runs(runs: RequestRuns) -> tuple[list[int], list[int]]:
    """Per request: its run's key and length when it has exactly one run, else (0, 0)."""
    off, keys, lens = runs.off, runs.keys, runs.lengths
    one = [off[r + 1] - off[r] == 1 for r in range(len(off) - 1)]
    key1 = [keys[off[r]] if o else 0 for r, o in enumerate(one)]
    len1 = [lens[off[r]] if o else 0 for r, o in enumerate(one)]
    return key1, len1


class RunCache:
    """Device + host + storage LRU of block runs for one worker (capacities in blocks)."""

    __slots__ = (
        "cap_dev",
        "cap_host",
        "cap_sto",
        "dev",
        "host",
        "mid",
        "owner",
        "pin_until",
        "sto",
        "tot",
        "used_dev",
        "used_host",
        "used_sto",
    )

    def __init__(
        self,
        cap_dev_blocks: int,
        cap_host_blocks: int,
        pin_until: dict[int, float] | None = None,
        cap_storage_blocks: int = 0,
    ) -> None:
        self.cap_dev = max(int(cap_dev_blocks), 0)
        self.cap_host = max(int(cap_host_blocks), 0)
        self.cap_sto = max(int(cap_storage_blocks), 0)
        self.dev: OrderedDict[int, int] = OrderedDict()  # key -> leading blocks on device
        self.host: OrderedDict[int, None] = OrderedDict()  # keys with blocks in host memory
        self.sto: OrderedDict[int, None] = OrderedDict()  # keys with blocks in storage
        self.mid: dict[int, int] = {}  # key in ``sto`` -> leading blocks on device or host
        self.tot: dict[int, int] = {}  # key -> leading blocks cached in any tier
        self.owner: dict[int, int] = {}
        self.used_dev = 0
        self.used_host = 0
        self.used_sto = 0
        self.pin_until = pin_until  # shared owner -> time; None: plain LRU

    def lookup(self, keys: list[int], lens: list[int]) -> tuple[int, int, int]:
        """(device, host, storage) blocks of the longest cached prefix of these runs."""
        mid = self.mid
        if len(keys) == 1:  # one run (the loop below, unrolled)
            k, n = keys[0], lens[0]
            t = self.tot.get(k, 0)
            if not t:
                return 0, 0, 0
            d = self.dev.get(k, 0)
            m = mid.get(k, t) if mid else t
            if t >= n:
                dd = d if d < n else n
                mm = m if m < n else n
                return dd, mm - dd, n - mm
            return d, m - d, t - m
        dev_get, tot_get = self.dev.get, self.tot.get
        d_hit = h_hit = s_hit = 0
        for i in range(len(keys)):  # (zip with strict=True costs more than the loop)
            k, n = keys[i], lens[i]
            t = tot_get(k, 0)
            if not t:
                break
            d = dev_get(k, 0)
            m = mid.get(k, t) if mid else t
            if t >= n:
                dd = d if d < n else n
                mm = m if m < n else n
                d_hit += dd
                h_hit += mm - dd
                s_hit += n - mm
                continue
            d_hit += d
            h_hit += m - d
            s_hit += t - m
            break
        return d_hit, h_hit, s_hit

    def touch(self, keys: list[int], lens: list[int], owner: int, now_s: float) -> None:
        """The request's blocks are now on the device and most recently used."""
        if len(keys) == 1:
            self.touch1(keys[0], lens[0], owner, now_s)
            return
        for i in range(len(keys)):
            self._touch_one(keys[i], lens[i], owner)
        if (
            self.used_dev > self.cap_dev
            or self.used_host > self.cap_host
            or self.used_sto > self.cap_sto
        ):
            self._evict(now_s)

    def touch1(self, k: int, n: int, owner: int, now_s: float) -> None:
        """``touch([k], [n], owner, now_s)``: one run (``_touch_one`` inline for a run
        with no blocks in storage, the common case)."""
        if self.mid and k in self.mid:
            self._touch_one(k, n, owner)
        else:
            dev, tot = self.dev, self.tot
            d = dev.get(k, 0)
            t = tot.get(k, 0)
            nd = d if d > n else n
            nt = t if t > n else n
            self.used_dev += nd - d
            self.used_host += (nt - nd) - (t - d)
            dev[k] = nd
            if d:  # a new key is appended at the most-recent end already
                dev.move_to_end(k)
            tot[k] = nt
            if self.pin_until is not None:
                self.owner[k] = owner
            if nt > nd:
                self.host[k] = None
            elif t > d:  # (blocks in host memory: k is in ``host``)
                del self.host[k]
        if (
            self.used_dev > self.cap_dev
            or self.used_host > self.cap_host
            or self.used_sto > self.cap_sto
        ):
            self._evict(now_s)

    def _touch_one(self, k: int, n: int, owner: int) -> None:
        """Blocks ``0..n`` of run ``k`` to the device (the most recently used), the host
        and storage blocks past them staying where they are."""
        dev, tot = self.dev, self.tot
        d = dev.get(k, 0)
        t = tot.get(k, 0)
        nd = d if d > n else n
        nt = t if t > n else n
        dev[k] = nd
        if d:  # a new key is appended at the most-recent end already
            dev.move_to_end(k)
        tot[k] = nt
        if self.pin_until is not None:
            self.owner[k] = owner
        mid = self.mid
        if k in mid:  # blocks in storage: those before n move to the device
            m = mid[k]
            nm = m if m > n else n
            self.used_sto += (nt - nm) - (t - m)
            if nt > nm:
                mid[k] = nm
            else:
                del mid[k]
                del self.sto[k]
        else:
            m = t
            nm = nt
        self.used_dev += nd - d
        self.used_host += (nm - nd) - (m - d)
        if nm > nd:
            self.host[k] = None
        elif m > d:  # (blocks in host memory: k is in ``host``)
            del self.host[k]

    def _evict(self, now_s: float) -> None:
        """Device eviction (the LRU runs' tails move to the host tier), then host eviction
        (the LRU host runs' tails move to storage, or are dropped without one), then
        storage eviction (the LRU storage runs lose their tails), down to the capacities."""
        dev, host, tot = self.dev, self.host, self.tot
        used_dev, used_host = self.used_dev, self.used_host
        if used_dev > self.cap_dev:
            if self.pin_until is not None:
                self._evict_dev(now_s)
                used_host = self.used_host
            else:  # _evict_dev without pins, inline
                cap = self.cap_dev
                while used_dev > cap and dev:
                    k = next(iter(dev))  # the LRU run
                    d = dev[k]
                    x = used_dev - cap
                    if d <= x:  # all of it moves
                        x = d
                        del dev[k]
                    else:  # its tail moves; it stays first (least recently used)
                        dev[k] = d - x
                    used_dev -= x
                    used_host += x
                    host[k] = None
                    host.move_to_end(k)
                self.used_dev, self.used_host = used_dev, used_host
        cap = self.cap_host
        if used_host > cap:
            dev_get = dev.get
            mid, sto = self.mid, self.sto
            keep = self.cap_sto > 0
            while used_host > cap and host:
                k = next(iter(host))
                d = dev_get(k, 0)
                t = tot[k]
                m = mid.get(k, t)
                y = used_host - cap
                if m - d < y:
                    y = m - d
                used_host -= y
                m -= y
                if m - d <= 0:
                    del host[k]
                if keep:  # the tail moves to storage
                    self.used_sto += y
                    mid[k] = m
                    sto[k] = None
                    sto.move_to_end(k)
                    continue
                tot[k] = m
                if m <= 0:
                    del tot[k]
                    self.owner.pop(k, None)
                    dev.pop(k, None)
            self.used_host = used_host
        if self.used_sto > self.cap_sto:
            self._evict_storage()

    def _evict_storage(self) -> None:
        """The LRU storage runs lose their tails down to the storage capacity."""
        mid, sto, tot = self.mid, self.sto, self.tot
        cap = self.cap_sto
        while self.used_sto > cap and sto:
            k = next(iter(sto))
            m, t = mid[k], tot[k]
            z = self.used_sto - cap
            if t - m < z:
                z = t - m
            self.used_sto -= z
            t -= z
            tot[k] = t
            if t <= m:
                del sto[k]
                del mid[k]
            if t <= 0:
                del tot[k]
                self.owner.pop(k, None)
                self.dev.pop(k, None)

    def _evict_dev(self, now_s: float) -> None:
        dev, host, pins = self.dev, self.host, self.pin_until
        spared = 0
        while self.used_dev > self.cap_dev and dev:
            k, d = dev.popitem(last=False)
            if pins is not None and spared < len(dev) and pins.get(self.owner[k], -1.0) > now_s:
                dev[k] = d  # pinned during its session's tool gap: second chance
                spared += 1
                continue
            x = min(d, self.used_dev - self.cap_dev)
            self.used_dev -= x
            self.used_host += x  # the tail moves to the host tier
            if d - x > 0:
                dev[k] = d - x
                dev.move_to_end(k, last=False)
            host[k] = None
            host.move_to_end(k)


class SharedStore:
    """A KV store shared by a part's workers (Mooncake Store, an LMCache server, 3FS), in
    blocks: every block a request computes or reads is written through, so the store
    keeps, per run key, the leading blocks of the most recently used runs; its least
    recently used runs lose their tails down to the capacity. A request on any worker
    reads the blocks past its worker's own cached prefix from here."""

    __slots__ = ("cap", "runs", "used")

    def __init__(self, cap_blocks: int) -> None:
        self.cap = max(int(cap_blocks), 0)
        self.runs: OrderedDict[int, int] = OrderedDict()  # key -> leading blocks stored
        self.used = 0

    def lookup(self, keys: list[int], lens: list[int]) -> int:
        """Blocks of the longest stored prefix of these runs."""
        get = self.runs.get
        hit = 0
        for i in range(len(keys)):
            n = lens[i]
            g = get(keys[i], 0)
            if g >= n:
                hit += n
                continue
            hit += g
            break
        return hit

    def store(self, keys: list[int], lens: list[int]) -> None:
        """The request's blocks are written through (most recently used)."""
        runs = self.runs
        for i in range(len(keys)):
            k, n = keys[i], lens[i]
            g = runs.get(k, 0)
            if n > g:
                self.used += n - g
                runs[k] = n
            if g:
                runs.move_to_end(k)
        cap = self.cap
        while self.used > cap and runs:
            k = next(iter(runs))
            g = runs[k]
            x = self.used - cap
            if g <= x:
                del runs[k]
                self.used -= g
            else:
                runs[k] = g - x
                self.used -= x
