"""The discrete-event loop: clients replay agent sessions, a router places requests on
workers, workers batch them (``worker.py``), and KV moves between disaggregated pools.

Concurrency: ``sessions`` lanes each play one session at a time, taking the next trace
session (a seeded permutation, cycled; every copy is a different user with its own block
ids) when the previous one ends, until ``total_sessions`` have started (default: the
trace's sessions or 16 per lane, whichever is more: heavy-tailed client gaps of hours
need many sessions per lane before the rates converge). Lane i starts at
i/N of the mean recorded session duration, so the lanes are spread over a session's
phases as in a steady state. Metrics are measured from the last lane's start to the
moment the first lane finds no session left (``t_stop``); the loop then drains, so
every request that was issued finishes exactly once.

A request enters the router ``ttft_overhead`` (fixed and per layer) after the client sends
it (request handling outside the engine), and its prefill queue a calibrated time per
uncached prompt token after that. Routers: ``round_robin``;
``session_affinity`` (a session copy sticks to one worker); ``kv_aware`` (the worker with
the least uncached prompt tokens plus queued work, ``Worker.load_tokens``; when no worker
holds any of the prompt, the session's home worker unless it is busier by more than the
prompt, ``router.py``).
Disaggregated parts keep the prefix cache (and its host and NVMe tiers) on the prefill
workers, as the engines do and as the analytic model sizes it: the router places the
request on a prefill worker, which computes the uncached tokens; then the KV (whole
context: the decode workers look no prefix up) moves to the decode worker with the fewest
sequences, over the scale-up domain when both fit in it, else the scale-out NICs.

Events are (time, sequence number, kind, a, b) tuples, taken in that order; the latest
worker wake-up waits outside the heap (``wake``), as it is most often the next event.
The routers live in ``router.py``.
"""

from __future__ import annotations

import gc
from collections.abc import Callable
from dataclasses import dataclass, field
from heapq import heappop, heappush, heappushpop

import numpy as np

from codesign.deployment import Deployment, Pool
from codesign.errors import SpecError
from codesign.perf.calibration import Calibration, load_calibration
from codesign.simulate.kvstore import (
    RequestRuns,
    RunCache,
    SharedStore,
    one_runs,
    request_runs,
)
from codesign.simulate.plan import ReplayPlan, build_plan
from codesign.simulate.requests import N_IN, N_OUT, NAN, PART, PF_LEFT, T_FIRST, WORKER, Requests
from codesign.simulate.router import kv_aware_one, route
from codesign.simulate.stepmodel import PoolModel, build_pool_model
from codesign.simulate.worker import WAKE, Worker
from codesign.workload.agent_load import sub_tier_apart
from codesign.workload.schema import Trace

ISSUE, DECODE_ARRIVE, LANE, PREFILL_QUEUE = 1, 2, 3, 4  # and WAKE (0, ``worker``)
DEFAULT_PIN_TTL_S = 600.0
# heavy-tailed client gaps (hours) need many sessions per lane before rates converge
DEFAULT_SESSIONS_PER_LANE = 16


@dataclass
class SimOptions:
    sessions: int = 64  # concurrent sessions (lanes)
    total_sessions: int | None = None  # sessions to start (default max(trace, 16 x lanes))
    seed: int = 0
    pin_ttl_s: float = DEFAULT_PIN_TTL_S  # retention pin_during_tool_gaps: max pin time
    calib: Calibration | None = None
    progress: Callable[[float], None] | None = field(default=None, repr=False)


@dataclass
class Part:
    """One model's pools: the KV pool (agg or decode) and, disaggregated, the prefill pool.
    The router places requests on ``cache_workers``, the workers that prefill and hold the
    prefix cache: the agg pool's, or the prefill pool's."""

    name: str
    kv_model: PoolModel
    pf_model: PoolModel | None
    workers: list[Worker]
    pf_workers: list[Worker]
    router: str
    overhead_s: float
    same_domain: bool
    rr: int = 0
    kv_many: bool = False  # kv_aware on two or more workers (set below)
    overhead_per_token_s: float = 0.0  # request handling per uncached prompt token
    shared: SharedStore | None = None  # a KV store shared by the part's workers
    # (worker, its prefix cache's ``tot.get``, ``dev.get`` and ``mid``), for the router
    kv_index: list[tuple[Worker, Callable[..., int], Callable[..., int], dict[int, int]]] = field(
        default_factory=list, repr=False
    )
    cache_workers: list[Worker] = field(default_factory=list, repr=False)  # set below

    @property
    def prefill_model(self) -> PoolModel:
        """The model of the workers that prefill (and so load cached prefixes)."""
        return self.pf_model if self.pf_model is not None else self.kv_model

    def __post_init__(self) -> None:
        ws = self.cache_workers = self.pf_workers or self.workers
        self.kv_many = self.router == "kv_aware" and len(ws) > 1
        self.kv_index = [
            (w, w.cache.tot.get, w.cache.dev.get, w.cache.mid)  # type: ignore[union-attr]
            for w in ws
        ]


def _decode_load(w: Worker) -> tuple[int, int, int]:
    return (w.n_dec + len(w.dec_wait), w.kv_used, w.index)


def _pools(pools: list[Pool]) -> tuple[Pool, Pool | None]:
    roles = {p.role: p for p in pools}
    if "agg" in roles:
        return roles["agg"], None
    return roles["decode"], roles["prefill"]


class Simulator:
    def __init__(self, dep: Deployment, trace: Trace, opts: SimOptions) -> None:
        if dep.mode == "afd":
            raise SpecError("afd deployments are not simulated yet (use codesign estimate)")
        if dep.adp_balance_timeout_iters and any(p.parallel.dp > 1 for p in dep.pools):
            raise SpecError(
                "adp_balance_timeout_iters (TRT-LLM attention-DP balancing) is not simulated "
                "yet; codesign evaluate models it, or set it to 0 to replay"
            )
        if opts.sessions < 1:
            raise SpecError("sessions must be >= 1")
        self.dep, self.trace, self.opts = dep, trace, opts
        self.plan: ReplayPlan = build_plan(trace)
        self.runs: RequestRuns = request_runs(trace)
        runs, plan = self.runs, self.plan  # read by the hot paths without attribute look-ups
        self.run_off, self.run_keys, self.run_lens = runs.off, runs.keys, runs.lengths
        self.stride, self.block_tokens = runs.stride, runs.block_tokens
        self.children, self.next_req, self.think_s = plan.children, plan.next_req, plan.think_s
        self.req = Requests()
        self.heap: list = []
        self.pending: tuple | None = None  # the event queue is heap + pending (``wake``)
        self.window = [0.0, float("inf")]  # measurement window (changed in place)
        self.seq = 0
        self.pin_until: dict[int, float] | None = (
            {} if dep.kv_tiers.retention == "pin_during_tool_gaps" else None
        )
        calib = opts.calib or load_calibration()
        max_ctx = int(trace.input_tokens.max() + trace.output_tokens.max()) + 1024
        self.parts = [
            self._part(
                "main",
                dep.model,
                dep.pools,
                dep.precision,
                calib,
                max_ctx,
                dep.kv_tiers.host_gb_per_worker,
                main=True,
                storage_gb=dep.kv_tiers.storage_gb_per_worker,
            )
        ]
        small = trace.tier_code("small")
        self.part_of_tier: dict[int, int] = {}
        if dep.subagents is not None:
            sa = dep.subagents
            self.parts.append(
                self._part(
                    "sub-agents", sa.model, sa.pools, sa.precision, calib, max_ctx, 0.0, main=False
                )
            )
            present = {trace.meta.tiers[c] for c in np.unique(trace.tier)}
            if small >= 0 and sub_tier_apart(present, merge_tiers=False):
                self.part_of_tier[small] = 1
        self.req_part = [self.part_of_tier.get(t, 0) for t in self.plan.tier]
        self.overhead_s = [self.parts[p].overhead_s for p in self.req_part]
        self.n_in = trace.input_tokens.astype(np.int64).tolist()
        self.n_out = np.maximum(trace.output_tokens, 1).astype(np.int64).tolist()
        # per trace request, for ``_arrive``: part, tokens, its one run (or 0 blocks), runs
        key1, len1 = one_runs(self.runs)
        off = self.run_off
        self.req_info = list(
            zip(self.req_part, self.n_in, self.n_out, key1, len1, off[:-1], off[1:], strict=True)
        )
        self.t_stop: float | None = None
        self.n_lanes = opts.sessions
        n_trace = trace.n_sessions
        per_lane = DEFAULT_SESSIONS_PER_LANE * opts.sessions
        self.total_sessions = opts.total_sessions or max(n_trace, per_lane)
        rng = np.random.default_rng(opts.seed)
        self.order = rng.permutation(n_trace).tolist()
        self.started = 0
        self.copy_session: list[int] = []
        self.copy_lane: list[int] = []
        self.copy_start: list[float] = []
        self.copy_end: list[float] = []
        self.agents_left: list[int] = []
        self.join_left: dict[tuple[int, int], int] = {}
        self.join_end: dict[tuple[int, int], float] = {}
        self.finished = 0
        self._reported, self._tick = 0, 1  # progress: sessions finished when last reported

    # --- construction ------------------------------------------------------------------
    def _part(
        self,
        name: str,
        model: str,
        pools: list[Pool],
        prec,
        calib: Calibration,
        max_ctx: int,
        host_gb: float,
        main: bool,
        storage_gb: float = 0.0,
    ) -> Part:
        kv_pool, pf_pool = _pools(pools)
        sd = self.dep.spec_decoding
        k = sd.draft_tokens if main and sd.method != "none" else 0
        eager = not self.dep.cuda_graphs
        tiers = self.dep.kv_tiers
        shared_tb = tiers.shared_storage_tb if main else 0.0
        # the store's read bandwidth, shared by the chips that prefill
        readers = (pf_pool or kv_pool).chips
        shared_bw = tiers.shared_storage_read_gb_s * 1e9 / readers if shared_tb > 0 else 0.0
        agg = pf_pool is None  # else the prefill pool holds the prefix cache and its tiers
        kv_model = build_pool_model(
            model,
            kv_pool,
            prec,
            self.dep.engine,
            calib,
            host_gb if agg else 0.0,
            k,
            sd.acceptance,
            max_ctx,
            eager,
            storage_gb if agg else 0.0,
            shared_bw if agg else 0.0,
        )
        pf_model = (
            build_pool_model(
                model,
                pf_pool,
                prec,
                self.dep.engine,
                calib,
                host_gb,
                0,
                0.0,
                max_ctx,
                eager,
                storage_gb,
                shared_bw,
            )
            if pf_pool is not None
            else None
        )
        for m, pool in ((kv_model, kv_pool), (pf_model, pf_pool)):
            if m is not None and pool is not None and m.kv_tokens_per_worker < 1:
                raise SpecError(f"{name}: the {pool.role} pool has no room for a KV cache")
        workers = [Worker(i, kv_model, self) for i in range(kv_pool.workers)]
        pf_workers = (
            [Worker(i, pf_model, self) for i in range(pf_pool.workers)]
            if pf_model is not None and pf_pool is not None
            else []
        )
        # the workers that prefill hold the prefix cache
        c_model = pf_model if pf_model is not None else kv_model
        bs = self.runs.block_tokens
        for w in pf_workers or workers:
            w.cache = RunCache(
                c_model.kv_tokens_per_worker // bs,
                c_model.host_tokens_per_worker // bs,
                self.pin_until,
                c_model.storage_tokens_per_worker // bs,
            )
        chips = kv_pool.chips + (pf_pool.chips if pf_pool else 0)
        same = (
            pf_model is not None
            and chips <= kv_model.scale_up_domain
            and (pf_model.system.name == kv_model.system.name)
        )
        return Part(
            name,
            kv_model,
            pf_model,
            workers,
            pf_workers,
            self.dep.router,
            kv_model.ttft_overhead_s,
            same,
            overhead_per_token_s=kv_model.ttft_per_input_token_s,
            shared=SharedStore(int(shared_tb * 1e12 / kv_model.kv_bytes_per_token) // bs)
            if shared_tb > 0
            else None,
        )

    # --- scheduling helpers used by the workers ------------------------------------------
    def wake(self, w: Worker, t: float, version: int) -> None:
        """Schedule a worker's wake-up. The latest one waits in ``pending`` (outside the
        heap, pushed when the next one comes): most often it is the next event, which the
        loop then takes without a heap operation. The order is the heap's either way."""
        self.seq += 1
        p = self.pending
        if p is not None:
            heappush(self.heap, p)
        self.pending = (t, self.seq, WAKE, w, version)

    def _push(self, t: float, kind: int, a: object, b: int = 0) -> None:
        self.seq += 1
        heappush(self.heap, (t, self.seq, kind, a, b))

    # --- the loop ------------------------------------------------------------------------
    def run(self) -> None:
        durations = self.plan.duration_s[self.plan.requests_per_session > 0]
        mean_d = float(durations.mean()) if durations.size else 0.0
        for lane in range(self.n_lanes):
            self._push(lane * mean_d / self.n_lanes, LANE, lane)
        self.window[0] = (self.n_lanes - 1) * mean_d / self.n_lanes
        self._tick = max(self.total_sessions // 200, 1)
        gc_on = gc.isenabled()
        # the loop makes no reference cycles, and its rows and events are many small
        # containers, which would set the cyclic collector off again and again
        gc.disable()
        try:
            self._loop()
        finally:
            if gc_on:
                gc.enable()
        if self.opts.progress is not None:
            self.opts.progress(1.0)

    def _loop(self) -> None:
        heap = self.heap
        arrive, start = self._arrive, self._start_session
        while True:
            p = self.pending
            if p is not None:
                self.pending = None
                t, _, kind, a, b = heappushpop(heap, p)  # the earlier of p and the heap's
            elif heap:
                t, _, kind, a, b = heappop(heap)
            else:
                break
            if kind == WAKE:
                a.on_wake(t, b)
            elif kind == ISSUE:
                arrive(t, a, b)
            elif kind == DECODE_ARRIVE:
                self._to_decode(a, t)
            elif kind == PREFILL_QUEUE:
                self._queue_prefill(a, t)
            else:
                start(a, t)

    def _to_decode(self, rid: int, t: float) -> None:
        """Disaggregated: the request's KV has arrived; the decode worker with the fewest
        sequences (running and waiting; then the least KV held) takes it."""
        row = self.req.rows[rid]
        ws = self.parts[row[PART]].workers
        w = ws[0] if len(ws) == 1 else min(ws, key=_decode_load)
        row[WORKER] = w.index
        w.enqueue_decode(rid, t)

    # --- clients -------------------------------------------------------------------------
    def _start_session(self, lane: int, t: float) -> None:
        plan = self.plan
        while True:
            if self.started >= self.total_sessions:
                if self.t_stop is None:
                    self.t_stop = t
                    self.window[1] = t
                return
            s = self.order[self.started % len(self.order)]
            self.started += 1
            if plan.agents_with_requests[s] > 0:
                break
        c = len(self.copy_session)
        self.copy_session.append(s)
        self.copy_lane.append(lane)
        self.copy_start.append(t)
        self.copy_end.append(float("nan"))
        self.agents_left.append(plan.agents_with_requests[s])
        for a in plan.roots[s]:
            self._issue(plan.first_req[a], c, t + plan.spawn_delay_s[a])

    def _issue(self, r: int, c: int, t_send: float) -> None:
        self.seq += 1
        heappush(self.heap, (t_send + self.overhead_s[r], self.seq, ISSUE, r, c))

    def _arrive(self, t: float, r: int, c: int) -> None:
        """The request reaches the router: prefix lookup, placement, prefill queue."""
        part_i, n_in, n_out, k, n, lo, hi = self.req_info[r]
        part = self.parts[part_i]
        bs = self.block_tokens
        if n:  # one run (most requests): no key lists
            k += c * self.stride
            if part.kv_many:
                w, d, h, s = kv_aware_one(part, k, n, n_in, c, bs)
            else:
                w, d, h, s = route(part, [k], [n], n_in, c, bs)
            w.cache.touch1(k, n, c, t)  # type: ignore[union-attr]
        else:
            keys, lens = self._runs(lo, hi, c)
            w, d, h, s = route(part, keys, lens, n_in, c, bs)
            w.cache.touch(keys, lens, c, t)  # type: ignore[union-attr]
        g = 0  # blocks read from the shared store past the worker's own prefix
        store = part.shared
        if store is not None:  # (the request's blocks are written when it ends: on_finish)
            if n:
                keys, lens = [k], [n]
            if keys:
                g = store.lookup(keys, lens) - (d + h + s)
                if g < 0:
                    g = 0
        load = 0.0
        if n_in > 1:
            cached = (d + h + s + g) * bs
            if cached > n_in - 1:
                cached = n_in - 1
            # the tiers in order: the device's blocks first, the shared store's last
            host = cached - d * bs
            if host < 0:
                host = 0
            sto = shared = 0
            if s or g:
                shared = host - (h + s) * bs
                if shared < 0:
                    shared = 0
                sto = host - shared - h * bs
                if sto < 0:
                    sto = 0
                host -= sto + shared
            if host or sto or shared:
                load = part.prefill_model.load_s(host, sto, shared)
            pf_left = n_in - cached  # >= 1
        else:  # min(.., n_in - 1) if n_in > 1 else 0; max(0 - d x bs, 0); max(n_in - 0, 1)
            n_in, cached, host, sto, shared, pf_left = 1, 0, 0, 0, 0, 1
        rows = self.req.rows
        rid = len(rows)
        rows.append(  # Requests.add, inline (a row in the order of COLUMNS)
            [
                r,
                c,
                w.index,
                part_i,
                t - self.overhead_s[r],
                NAN,
                NAN,
                n_in,
                n_out,
                cached,
                host,
                pf_left,
                cached,
                sto,
                shared,
                load,
            ]
        )
        # request-path work per uncached prompt token (calibrated) before the prefill queue
        delay = part.overhead_per_token_s * pf_left
        if delay > 0.0:
            self._push(t + delay, PREFILL_QUEUE, rid)
        else:
            w.enqueue(rid, t, pf_left, last=True)

    def _write_through(self, store: SharedStore, r: int, c: int) -> None:
        """A finished request's prompt blocks into the part's shared store. Written when
        the request ends, not when it arrives: a request of another session arriving in
        between must not read KV not yet computed (the next turn of a session and the
        sub-agents it spawns come after it ends, so they find it)."""
        k, n, lo, hi = self.req_info[r][3:7]
        if n:
            store.store([k + c * self.stride], [n])
        elif hi > lo:
            store.store(*self._runs(lo, hi, c))

    def _runs(self, lo: int, hi: int, c: int) -> tuple[list[int], list[int]]:
        """The run keys (of session copy ``c``) and lengths of a request of several runs."""
        shift = c * self.stride
        return [k + shift for k in self.run_keys[lo:hi]], self.run_lens[lo:hi]

    def _queue_prefill(self, rid: int, t: float) -> None:
        """The request joins the prefill queue (after its per-token request handling)."""
        row = self.req.rows[rid]
        part = self.parts[row[PART]]
        part.cache_workers[row[WORKER]].enqueue(rid, t, row[PF_LEFT], last=True)

    # --- worker callbacks ----------------------------------------------------------------
    def on_prefilled(self, rid: int, t: float) -> None:
        """Disaggregated: the prefill is done; the KV moves to the decode worker."""
        row = self.req.rows[rid]
        part = self.parts[row[PART]]
        xfer = part.kv_model.kv_transfer_s(row[N_IN], part.same_domain)
        if part.pf_model is not None:
            xfer = max(xfer, part.pf_model.kv_transfer_s(row[N_IN], part.same_domain))
        row[T_FIRST] = t + xfer
        if row[N_OUT] <= 1:
            self.on_finish(rid, t + xfer)
            return
        self._push(t + xfer, DECODE_ARRIVE, rid)

    def on_finish(self, rid: int, t: float) -> None:
        row = self.req.rows[rid]
        row[6] = t  # T_FINISH
        r, c = row[0], row[1]  # TRACE_IDX, COPY
        store = self.parts[row[3]].shared  # PART
        if store is not None:
            self._write_through(store, r, c)
        if self.pin_until is not None:
            self.pin_until[c] = t + self.opts.pin_ttl_s
        kids = self.children.get(r)
        if kids:
            plan = self.plan
            self.join_left[(c, r)] = len(kids)
            self.join_end[(c, r)] = t
            for a in kids:
                self._issue(plan.first_req[a], c, t + plan.spawn_delay_s[a])
        n = self.next_req[r]
        if n >= 0:
            if not kids:  # self._issue(n, c, t + plan.think_s[n]), inline
                seq = self.seq = self.seq + 1
                heappush(self.heap, ((t + self.think_s[n]) + self.overhead_s[n], seq, ISSUE, n, c))
            return
        self._agent_done(self.plan.req_agent[r], c, t)

    def _agent_done(self, a: int, c: int, t: float) -> None:
        plan = self.plan
        anchor = plan.anchor[a]
        if anchor >= 0:
            key = (c, anchor)
            self.join_left[key] -= 1
            self.join_end[key] = max(self.join_end[key], t)
            if self.join_left[key] == 0:
                end = self.join_end.pop(key)
                del self.join_left[key]
                n = plan.next_req[anchor]
                if n >= 0:
                    self._issue(n, c, end + plan.join_slack_s[n])
        self.agents_left[c] -= 1
        if self.agents_left[c] == 0:
            self.copy_end[c] = t
            self.finished += 1
            progress = self.opts.progress
            if progress is not None and self.finished - self._reported >= self._tick:
                self._reported = self.finished
                progress(min(self.finished / self.total_sessions, 1.0))
            if self.pin_until is not None:
                self.pin_until.pop(c, None)
            self._start_session(self.copy_lane[c], t)
