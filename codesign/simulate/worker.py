"""One serving worker: continuous batching with chunked prefill, advanced event by event.

The worker runs engine steps. A step with prefill work (a *mixed* step) carries every
decoding sequence (one token each, E with speculative decoding) and prefill chunks from the
admitted requests, first come first served, within ``chunk_tokens`` per DP rank; it is
one event. Without prefill work the batch is unchanged until its next sequence finishes,
so those k decode steps are one event (*decode run*, timed at the mid-run context); a new
request cuts the run at the end of the step in flight. No Python work per token.

Per sequence state lives in the simulator's request table (``Requests``); a decoding
sequence is a heap entry (finishing step, request id, its term of ``ctx_base``), and the
batch's summed context is kept as ``ctx_base + n E S`` (S = steps run), so a step's mean
context costs O(1). The common paths (a request reaching an idle worker, a step or run
ending) are written out inline; ``_plan``, ``_admit`` and ``_mixed_step`` are the general
ones, which the inline paths must equal.

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
WAKE = 0  # the simulator's event kind of a worker's wake-up


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
        "heap",
        "index",
        "kv_cap",
        "kv_used",
        "mode",
        "model",
        "n_dec",
        "pending_pf_tokens",
        "pf_active",
        "req",
        "role",
        "run_S0",
        "run_dt",
        "run_k",
        "sim",
        "step_c",
        "step_chunks",
        "step_rid",
        "t0",
        "version",
        "waiting",
        "window",
    )

    def __init__(self, index: int, model: PoolModel, sim: Simulator, cache: object = None):
        self.index = index
        self.model = model
        self.sim = sim
        self.req = sim.req  # the simulator's request table, its event heap and window
        self.heap = sim.heap
        self.window = sim.window
        self.role = model.role
        self.cache = cache
        self.kv_cap = model.kv_tokens_per_worker
        self.S = 0  # engine steps run
        # (finishing step, request id, its term of ctx_base); ids are unique, so the heap
        # orders by (step, id)
        self.dec: list[tuple[int, int, float]] = []
        self.n_dec = 0
        self.ctx_base = 0.0
        self.kv_used = 0
        self.waiting: deque[int] = deque()  # requests to prefill, not yet admitted
        self.pf_active: list[int] = []  # admitted, prefilling
        self.dec_wait: deque[int] = deque()  # decode role: KV arrived, waiting for a slot
        self.mode = IDLE
        self.t0 = 0.0  # start of the step or run in flight
        self.run_S0 = self.run_k = 0
        self.run_dt = 0.0
        self.version = 0
        # the step in flight's chunks: one (step_rid, step_c), or step_rid -1 and the list
        self.step_rid = -1
        self.step_c = 0
        self.step_chunks: list[tuple[int, int]] = []
        self.busy_s = 0.0  # inside the measurement window
        self.busy_total_s = 0.0
        self.dec_n_s = 0.0  # sum of decode batch x seconds (whole run)
        self.dec_n2_s = 0.0  # sum of decode batch^2 x seconds
        self.E = model.spec_tokens_per_step
        self.pending_pf_tokens = 0

    @property
    def steps(self) -> int:
        """Engine steps run (a step adds one to S, a decode run of k steps k)."""
        return self.S

    # --- new work ----------------------------------------------------------------------
    def enqueue(self, rid: int, now: float, pf_tokens: int | None = None) -> None:
        """A request to prefill (agg or prefill role); ``pf_tokens``: its ``pf_left``."""
        req = self.req
        if pf_tokens is None:
            pf_tokens = req.pf_left[rid]
        mode = self.mode
        chunk = self.model.chunk_tokens
        if (
            mode == IDLE
            and self.role == "agg"
            and not self.pf_active
            and not self.n_dec
            and chunk > 0
            and not self.waiting
            and not self.dec_wait
        ):
            # an idle, empty worker: ``_plan`` admits the request and ``_mixed_step``
            # starts a step with its first chunk (one sequence, no decode), inline
            self.pending_pf_tokens += pf_tokens
            self.kv_used += req.n_in[rid] + req.n_out[rid]
            self.pf_active.append(rid)
            c = chunk if chunk < pf_tokens else pf_tokens
            done = req.pf_done[rid]
            host = 0.0 + req.host_tok[rid] if done == req.cached[rid] else 0.0
            dt = self.model.chunk_step_s(c, done, host)
            self.step_rid, self.step_c = rid, c
            self.mode, self.t0 = STEP, now
            v = self.version = self.version + 1
            sim = self.sim  # Simulator.wake, inline
            seq = sim.seq = sim.seq + 1
            p = sim.pending
            if p is not None:
                heappush(self.heap, p)
            sim.pending = (now + dt, seq, WAKE, self, v)
            return
        self.waiting.append(rid)
        self.pending_pf_tokens += pf_tokens
        if mode == IDLE:
            self._plan(now)
        elif mode == RUN:
            self._cut(now)

    def enqueue_decode(self, rid: int, now: float) -> None:
        """A prefilled request whose KV has arrived (decode role)."""
        self.dec_wait.append(rid)
        if self.mode == IDLE:
            self._plan(now)
        elif self.mode == RUN:
            self._cut(now)

    def _cut(self, now: float) -> None:
        """Cut the decode run in flight after the step in flight."""
        done = ceil((now - self.t0) / self.run_dt - 1e-9) if self.run_dt > 0 else 0
        if done < self.run_k:
            self.run_k = max(done, 0)
            self.version += 1
            self.sim.wake(self, self.t0 + self.run_k * self.run_dt, self.version)

    # --- the engine loop ---------------------------------------------------------------
    def on_wake(self, now: float, version: int) -> None:
        """The step or run in flight ends: account it, move its sequences on, plan the next
        (``_plan``; the next decode run inline)."""
        if version != self.version:
            return
        mode = self.mode
        if mode == IDLE:  # not reached: a valid wake-up ends a step or a run
            self._plan(now)
            return
        # busy time (whole run, and clipped to the measurement window) and decode batch sums
        t0 = self.t0
        span = now - t0
        self.busy_total_s += span
        lo, hi = self.window
        if lo <= t0 and now <= hi:  # inside the window: the overlap is the span
            self.busy_s += span
        else:
            a = lo if lo > t0 else t0
            b = hi if hi < now else now
            if b > a:
                self.busy_s += b - a
        n = self.n_dec
        if n:
            self.dec_n_s += n * span
            self.dec_n2_s += n * n * span
        req = self.req
        if mode == STEP:
            S = self.S = self.S + 1
            rid = self.step_rid
            if rid >= 0:  # one chunk
                c = self.step_c
                pf_left = req.pf_left
                left = pf_left[rid] - c
                pf_left[rid] = left
                req.pf_done[rid] += c
                self.pending_pf_tokens -= c
                if left <= 0:
                    self.pf_active.remove(rid)
                    n_out = req.n_out[rid]
                    if self.role == "agg" and n_out > 1:  # ``_prefilled``, inline
                        req.t_first[rid] = now
                        E = self.E
                        steps = ceil((n_out - 1) / E - 1e-9)
                        term = req.n_in[rid] + 1 - E * S
                        heappush(self.dec, (S + (steps if steps > 1 else 1), rid, term))
                        self.ctx_base += term
                        self.n_dec += 1
                    else:
                        self._prefilled(rid, now)
            else:
                pf_left, pf_done = req.pf_left, req.pf_done
                for rid, c in self.step_chunks:
                    left = pf_left[rid] - c
                    pf_left[rid] = left
                    pf_done[rid] += c
                    self.pending_pf_tokens -= c
                    if left <= 0:
                        self.pf_active.remove(rid)
                        self._prefilled(rid, now)
        else:
            k = self.run_k
            S = self.S = self.run_S0 + k
        dec = self.dec
        if dec and dec[0][0] <= S:
            n_in, n_out, on_finish = req.n_in, req.n_out, self.sim.on_finish
            while dec and dec[0][0] <= S:
                _, rid, term = heappop(dec)
                self.n_dec -= 1
                self.ctx_base -= term
                self.kv_used -= n_in[rid] + n_out[rid]
                on_finish(rid, now)
        if self.pf_active or self.waiting or self.dec_wait:
            self.mode = IDLE
            self._plan(now)
            return
        n = self.n_dec
        if not n:
            self.mode = IDLE
            return
        # ``_plan``: a decode run until the next sequence finishes
        m = self.model
        k = dec[0][0] - S
        ctx = (self.ctx_base + n * self.E * (S + 0.5 * k)) / n
        dt = m.run_step_s(-(-n // m.dp), ctx)
        self.mode, self.t0, self.run_S0, self.run_k, self.run_dt = RUN, now, S, k, dt
        v = self.version = self.version + 1
        sim = self.sim
        seq = sim.seq = sim.seq + 1
        p = sim.pending
        if p is not None:
            heappush(self.heap, p)
        sim.pending = (now + k * dt, seq, WAKE, self, v)

    def _prefilled(self, rid: int, now: float) -> None:
        req = self.req
        if self.role == "prefill":
            self.kv_used -= req.n_in[rid]
            self.sim.on_prefilled(rid, now)
            return
        req.t_first[rid] = now
        n_out = req.n_out[rid]
        if n_out <= 1:
            self.kv_used -= req.n_in[rid] + n_out
            self.sim.on_finish(rid, now)
            return
        self._join_decode(rid)

    def _join_decode(self, rid: int) -> None:
        req = self.req
        E, S = self.E, self.S
        steps = ceil((req.n_out[rid] - 1) / E - 1e-9)
        term = req.n_in[rid] + 1 - E * S
        heappush(self.dec, (S + (steps if steps > 1 else 1), rid, term))
        self.ctx_base += term
        self.n_dec += 1

    def _admit(self) -> None:
        """Admit waiting requests, first come first served, while a sequence slot and their
        KV fit (the first always, on an empty worker)."""
        req = self.req
        m = self.model
        waiting, pf = self.waiting, self.pf_active
        if waiting:
            n_in, n_out, n_dec = req.n_in, req.n_out, self.n_dec
            prefill_only = self.role == "prefill"
            max_seqs, cap, kv = m.max_seqs, self.kv_cap, self.kv_used
            while waiting:
                rid = waiting[0]
                need = n_in[rid] + (0 if prefill_only else n_out[rid])
                if (pf or n_dec) and (len(pf) + n_dec >= max_seqs or kv + need > cap):
                    break
                waiting.popleft()
                kv += need
                pf.append(rid)
            self.kv_used = kv
        while self.dec_wait:
            rid = self.dec_wait[0]
            need = req.n_in[rid] + req.n_out[rid]
            if self.n_dec and (self.n_dec >= m.max_seqs or self.kv_used + need > self.kv_cap):
                break
            self.dec_wait.popleft()
            self.kv_used += need
            self._join_decode(rid)

    def _plan(self, now: float) -> None:
        """Start the next step (a mixed step while prefill work is admitted) or decode run,
        and schedule its end."""
        if self.waiting or self.dec_wait:
            self._admit()
        n = self.n_dec
        if self.pf_active:
            tw = self._mixed_step(now, n)
        elif n:
            m = self.model
            S = self.S
            k = self.dec[0][0] - S
            ctx = (self.ctx_base + n * self.E * (S + 0.5 * k)) / n
            dt = m.run_step_s(-(-n // m.dp), ctx)
            self.mode, self.t0, self.run_S0, self.run_k, self.run_dt = RUN, now, S, k, dt
            tw = now + k * dt
        else:
            return
        self.version += 1
        self.sim.wake(self, tw, self.version)

    def _mixed_step(self, now: float, n: int) -> float:
        """Plan a step with the decoding sequences and prefill chunks; its end time."""
        m = self.model
        req = self.req
        pf = self.pf_active
        dp, chunk = m.dp, m.chunk_tokens
        n_rank = -(-n // dp)
        budget = chunk - n_rank  # max(chunk - n_rank, chunk // 8)
        if budget < chunk // 8:
            budget = chunk // 8
        rid = pf[0]
        c = req.pf_left[rid]
        if budget < c:
            c = budget
        if len(pf) == 1 and c > 0:
            # one chunk: min(pf_left, budget, budget x dp) = min(pf_left, budget); sums
            # of one term, shares of one sequence (x / 1 == x)
            done = req.pf_done[rid]
            host = 0.0 + req.host_tok[rid] if done == req.cached[rid] else 0.0
            self.step_rid, self.step_c = rid, c
            self.mode, self.t0 = STEP, now
            if not n:  # the same step_s call as below, remembered
                return now + m.chunk_step_s(c, done, host)
            attn = 0.0 + m.prefill_attn_s(c, done)
            even = -(-c // dp)
            n_pf = c if c > even else even
            seqs = 1
        else:
            pf_left, pf_done, cached, host_tok = req.pf_left, req.pf_done, req.cached, req.host_tok
            attn_s = m.prefill_attn_s
            left = budget * dp
            chunks: list[tuple[int, int]] = []
            attn = host = 0.0
            biggest = total = 0
            for rid in pf:
                c = pf_left[rid]  # min(pf_left, budget, left)
                if budget < c:
                    c = budget
                if left < c:
                    c = left
                if c <= 0:
                    break
                done = pf_done[rid]
                attn += attn_s(c, done)
                if done == cached[rid]:
                    host += host_tok[rid]
                chunks.append((rid, c))
                left -= c
                total += c
                if c > biggest:
                    biggest = c
            seqs = len(chunks)
            share = dp if dp < seqs else seqs
            attn, host = attn / share, host / share
            even = -(-total // dp)
            n_pf = biggest if biggest > even else even
            self.step_rid = -1
            self.step_chunks = chunks
        ctx = (self.ctx_base + n * self.E * self.S) / n if n else 0.0
        dt = m.step_s(n_rank, ctx, n_pf, attn, -(-seqs // dp), host)
        self.mode, self.t0 = STEP, now
        return now + dt

    # --- router inputs -----------------------------------------------------------------
    def load_tokens(self) -> float:
        """Work queued on this worker, in prefill-token equivalents (router heuristic)."""
        return self.pending_pf_tokens + 0.02 * self.kv_used
