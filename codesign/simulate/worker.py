"""One serving worker: continuous batching with chunked prefill, advanced event by event.

The worker runs engine steps. A step with prefill work (a *mixed* step) carries every
decoding sequence (one token each, E with speculative decoding) and prefill chunks from the
admitted requests, first come first served, within ``chunk_tokens`` per DP rank; it is
one event. Without prefill work the batch is unchanged until its next sequence finishes,
so those k decode steps are one event (*decode run*, timed at the mid-run context); a new
request cuts the run at the end of the step in flight. No Python work per token.

Per sequence state lives in the simulator's request table (``Requests``); a decoding
sequence is a heap entry (finishing step, request id), and the batch's summed context is
kept as ``ctx_base + n E S`` (S = steps run), so a step's mean context costs O(1).

Roles: ``agg`` (prefill + decode), ``prefill`` (prefill only; the request then leaves for
a decode worker), ``decode`` (admits requests whose KV has arrived). A worker with dp
attention-DP ranks is timed by its busiest rank: decode sequences ceil(n / dp), prefill
the largest chunk or the even share, whichever is larger.
"""

from __future__ import annotations

from collections import deque
from heapq import heappop, heappush
from math import ceil
from typing import TYPE_CHECKING

from codesign.simulate.stepmodel import PoolModel

if TYPE_CHECKING:
    from codesign.simulate.engine import Simulator

IDLE, STEP, RUN = 0, 1, 2


class Worker:
    __slots__ = (
        "E",
        "S",
        "busy_s",
        "busy_total_s",
        "cache",
        "ctx_base",
        "dec",
        "dec_n2_s",
        "dec_n_s",
        "dec_wait",
        "index",
        "join_term",
        "kv_cap",
        "kv_used",
        "mode",
        "model",
        "n_dec",
        "pending_pf_tokens",
        "pf_active",
        "role",
        "run_S0",
        "run_dt",
        "run_k",
        "sim",
        "step_chunks",
        "steps",
        "t0",
        "version",
        "waiting",
    )

    def __init__(self, index: int, model: PoolModel, sim: Simulator, cache: object = None):
        self.index = index
        self.model = model
        self.sim = sim
        self.role = model.role
        self.cache = cache
        self.kv_cap = model.kv_tokens_per_worker
        self.S = 0  # engine steps run
        self.dec: list[tuple[int, int]] = []  # (finishing step, request id)
        self.n_dec = 0
        self.ctx_base = 0.0
        self.join_term: dict[int, float] = {}
        self.kv_used = 0
        self.waiting: deque[int] = deque()  # requests to prefill, not yet admitted
        self.pf_active: list[int] = []  # admitted, prefilling
        self.dec_wait: deque[int] = deque()  # decode role: KV arrived, waiting for a slot
        self.mode = IDLE
        self.t0 = 0.0  # start of the step or run in flight
        self.run_S0 = self.run_k = 0
        self.run_dt = 0.0
        self.version = 0
        self.step_chunks: list[tuple[int, int]] = []
        self.busy_s = 0.0  # inside the measurement window
        self.busy_total_s = 0.0
        self.dec_n_s = 0.0  # sum of decode batch x seconds (whole run)
        self.dec_n2_s = 0.0  # sum of decode batch^2 x seconds
        self.E = model.spec_tokens_per_step
        self.pending_pf_tokens = 0
        self.steps = 0

    # --- new work ----------------------------------------------------------------------
    def enqueue(self, rid: int, now: float) -> None:
        """A request to prefill (agg or prefill role)."""
        self.waiting.append(rid)
        self.pending_pf_tokens += self.sim.req.pf_left[rid]
        self._poke(now)

    def enqueue_decode(self, rid: int, now: float) -> None:
        """A prefilled request whose KV has arrived (decode role)."""
        self.dec_wait.append(rid)
        self._poke(now)

    def _poke(self, now: float) -> None:
        if self.mode == IDLE:
            self._plan(now)
        elif self.mode == RUN:  # cut the decode run after the step in flight
            done = ceil((now - self.t0) / self.run_dt - 1e-9) if self.run_dt > 0 else 0
            if done < self.run_k:
                self.run_k = max(done, 0)
                self.version += 1
                self.sim.wake(self, self.t0 + self.run_k * self.run_dt, self.version)

    # --- the engine loop ---------------------------------------------------------------
    def on_wake(self, now: float, version: int) -> None:
        if version != self.version:
            return
        req = self.sim.req
        if self.mode != IDLE:
            self.sim.account_busy(self, self.t0, now)
            n = self.n_dec
            self.dec_n_s += n * (now - self.t0)
            self.dec_n2_s += n * n * (now - self.t0)
        if self.mode == STEP:
            self.S += 1
            self.steps += 1
            for rid, c in self.step_chunks:
                req.pf_left[rid] -= c
                req.pf_done[rid] += c
                self.pending_pf_tokens -= c
                if req.pf_left[rid] <= 0:
                    self.pf_active.remove(rid)
                    self._prefilled(rid, now)
            self.step_chunks = []
        elif self.mode == RUN:
            self.S = self.run_S0 + self.run_k
            self.steps += self.run_k
        dec = self.dec
        while dec and dec[0][0] <= self.S:
            _, rid = heappop(dec)
            self._finish(rid, now)
        self.mode = IDLE
        self._plan(now)

    def _prefilled(self, rid: int, now: float) -> None:
        req = self.sim.req
        if self.role == "prefill":
            self.kv_used -= req.n_in[rid]
            self.sim.on_prefilled(rid, now)
            return
        self.sim.on_first_token(rid, now)
        if req.n_out[rid] <= 1:
            self.kv_used -= req.n_in[rid] + req.n_out[rid]
            self.sim.on_finish(rid, now)
            return
        self._join_decode(rid)

    def _join_decode(self, rid: int) -> None:
        req = self.sim.req
        steps = ceil((req.n_out[rid] - 1) / self.E - 1e-9)
        heappush(self.dec, (self.S + max(steps, 1), rid))
        term = req.n_in[rid] + 1 - self.E * self.S
        self.join_term[rid] = term
        self.ctx_base += term
        self.n_dec += 1

    def _finish(self, rid: int, now: float) -> None:
        req = self.sim.req
        self.n_dec -= 1
        self.ctx_base -= self.join_term.pop(rid)
        self.kv_used -= req.n_in[rid] + req.n_out[rid]
        self.sim.on_finish(rid, now)

    def _admit(self) -> None:
        req = self.sim.req
        m = self.model
        prefill_only = self.role == "prefill"
        while self.waiting:
            rid = self.waiting[0]
            need = req.n_in[rid] + (0 if prefill_only else req.n_out[rid])
            empty = not self.pf_active and not self.n_dec
            if not empty and (
                len(self.pf_active) + self.n_dec >= m.max_seqs or self.kv_used + need > self.kv_cap
            ):
                break
            self.waiting.popleft()
            self.kv_used += need
            self.pf_active.append(rid)
        while self.dec_wait:
            rid = self.dec_wait[0]
            need = req.n_in[rid] + req.n_out[rid]
            if self.n_dec and (self.n_dec >= m.max_seqs or self.kv_used + need > self.kv_cap):
                break
            self.dec_wait.popleft()
            self.kv_used += need
            self._join_decode(rid)

    def _plan(self, now: float) -> None:
        self._admit()
        m = self.model
        n = self.n_dec
        dp = m.dp
        if self.pf_active:
            self._mixed_step(now)
        elif n:
            k = self.dec[0][0] - self.S
            n_rank = -(-n // dp)
            ctx = (self.ctx_base + n * self.E * (self.S + 0.5 * k)) / n
            dt = m.step_s(n_rank, ctx)
            self.mode, self.t0, self.run_S0, self.run_k, self.run_dt = RUN, now, self.S, k, dt
            self.version += 1
            self.sim.wake(self, now + k * dt, self.version)

    def _mixed_step(self, now: float) -> None:
        m = self.model
        req = self.sim.req
        n, dp = self.n_dec, m.dp
        n_rank = -(-n // dp)
        budget = max(m.chunk_tokens - n_rank, m.chunk_tokens // 8)
        left = budget * dp
        chunks: list[tuple[int, int]] = []
        attn = host = 0.0
        biggest = total = 0
        for rid in self.pf_active:
            c = min(req.pf_left[rid], budget, left)
            if c <= 0:
                break
            done = req.pf_done[rid]
            attn += m.prefill_attn_s(c, done)
            if done == req.cached[rid]:
                host += req.host_tok[rid]
            chunks.append((rid, c))
            left -= c
            total += c
            biggest = max(biggest, c)
        seqs = len(chunks)
        share = min(dp, seqs)
        ctx = (self.ctx_base + n * self.E * self.S) / n if n else 0.0
        dt = m.step_s(
            n_rank, ctx, max(biggest, -(-total // dp)), attn / share, -(-seqs // dp), host / share
        )
        self.step_chunks = chunks
        self.mode, self.t0 = STEP, now
        self.version += 1
        self.sim.wake(self, now + dt, self.version)

    # --- router inputs -----------------------------------------------------------------
    def load_tokens(self) -> float:
        """Work queued on this worker, in prefill-token equivalents (router heuristic)."""
        return self.pending_pf_tokens + 0.02 * self.kv_used
