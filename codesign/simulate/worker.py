"""One serving worker: continuous batching with chunked prefill, advanced event by event.

The worker runs engine steps. A step with prefill work (a *mixed* step) carries every
decoding sequence (one token each, E with speculative decoding) and prefill chunks from the
admitted requests, first come first served, within ``chunk_tokens`` per DP rank; it is
one event. Where the engine runs prefills on their own (SGLang,
``PoolModel.prefill_pauses_decode``) the step carries only the chunks and the decoding
sequences wait for it (S does not advance). Without prefill work the batch is unchanged
until its next sequence finishes, so those k decode steps are one event (*decode run*,
timed at the mid-run context); a new request cuts the run at the end of the step in
flight. No Python work per token.

Per sequence state lives in the simulator's request table (``Requests``); a decoding
sequence is a heap entry (finishing step, request id, its term of ``ctx_base``), and the
batch's summed context is kept as ``ctx_base + n E S`` (S = steps run), so a step's mean
context costs O(1). The common paths (a request reaching an idle worker, a step or run
ending) are written out inline; ``_plan`` and ``batching``'s ``admit`` and ``mixed_step`` are the
general ones, which the inline paths must equal.

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

from codesign.simulate.batching import IDLE, RUN, STEP, admit, mixed_step
from codesign.simulate.requests import N_IN, N_OUT, PF_LEFT, T_FIRST
from codesign.simulate.stepmodel import PoolModel

if TYPE_CHECKING:
    from codesign.simulate.engine import Simulator

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
        "on_finish",
        "pauses",
        "pending_pf_tokens",
        "pf_active",
        "pf_only_steps",
        "role",
        "rows",
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
        self.rows = sim.req.rows  # the simulator's request rows, its event heap and window
        self.heap = sim.heap
        self.window = sim.window
        self.role = model.role
        self.cache = cache
        self.kv_cap = model.kv_tokens_per_worker
        self.S = 0  # engine steps run
        # (finishing step, request id, its term of ctx_base, its KV tokens); ids are
        # unique, so the heap orders by (step, id)
        self.dec: list[tuple[int, int, float, int]] = []
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
        # SGLang: a step with prefill work carries no decode tokens (the decoding
        # sequences wait), so it does not advance S; such steps are counted here
        self.pauses = model.prefill_pauses_decode
        self.pf_only_steps = 0
        self.pending_pf_tokens = 0
        self.on_finish = sim.on_finish

    @property
    def steps(self) -> int:
        """Engine steps run (a step adds one to S, a decode run of k steps k; a step that
        pauses the decoding sequences adds to ``pf_only_steps`` instead)."""
        return self.S + self.pf_only_steps

    # --- new work ----------------------------------------------------------------------
    def enqueue(
        self, rid: int, now: float, pf_tokens: int | None = None, last: bool = False
    ) -> None:
        """A request to prefill (agg or prefill role); ``pf_tokens``: its ``pf_left``;
        ``last``: nothing else happens in the event that calls this (see ``_alone``)."""
        if pf_tokens is None:
            pf_tokens = self.rows[rid][PF_LEFT]
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
            row = self.rows[rid]
            self.pending_pf_tokens += pf_tokens
            self.kv_used += self.model.kv_held(row[7], row[8])  # N_IN, N_OUT
            self.pf_active.append(rid)
            c = chunk if chunk < pf_tokens else pf_tokens
            done = row[12]  # PF_DONE
            # CACHED, LOAD_S: the prefix loads with the first chunk
            load = row[15] if done == row[9] else 0.0
            t1 = now + self.model.chunk_step_s(c, done, load)
            self.step_rid, self.step_c = rid, c
            self.mode, self.t0 = STEP, now
            v = self.version = self.version + 1
            sim = self.sim  # Simulator.wake, inline
            seq = sim.seq = sim.seq + 1
            p = sim.pending
            heap = self.heap
            if p is not None:
                heappush(heap, p)
            if last and c == pf_tokens and row[8] > 1 and (not heap or t1 < heap[0][0]):
                self._alone(rid, now, t1, c, row)
                return
            sim.pending = (t1, seq, WAKE, self, v)
            return
        self.waiting.append(rid)
        self.pending_pf_tokens += pf_tokens
        if mode == IDLE:
            self._plan(now)
        elif mode == RUN:
            self._cut(now)

    def _alone(self, rid: int, now: float, t1: float, c: int, row: list) -> None:
        """The step ``enqueue`` just started on an idle worker prefills the whole prompt
        (one chunk) of a request that then decodes, and its wake-up at ``t1`` is earlier
        than every other event (``last``: the event that started it does nothing after it;
        ties would go to the others, so strictly earlier): it is the next event taken.
        Take it now: ``on_wake``'s one-chunk step end and next decode run, inline, in the
        same operations (the wake-up's seq is used as it would be)."""
        self._busy(now, t1)  # as ``on_wake`` (no decoding sequences: n = 0)
        if self.pauses:
            S = self.S
            self.pf_only_steps += 1
        else:
            S = self.S = self.S + 1
        row[11] = 0  # PF_LEFT: pf_left - c
        row[12] += c  # PF_DONE
        self.pending_pf_tokens -= c
        self.pf_active.remove(rid)
        row[5] = t1  # T_FIRST
        E = self.E
        n_in, n_out = row[7], row[8]  # N_IN, N_OUT
        steps = ceil((n_out - 1) / E - 1e-9)
        term = n_in + 1 - E * S
        end = S + (steps if steps > 1 else 1)
        heappush(self.dec, (end, rid, term, n_in + n_out))
        self.ctx_base += term
        self.n_dec = 1
        # ``on_wake``'s next decode run (n = 1), inline
        m = self.model
        k = end - S
        ctx = (self.ctx_base + 1 * E * (S + 0.5 * k)) / 1
        dt = m.run_step_s(-(-1 // m.dp), ctx)
        self.mode, self.t0, self.run_S0, self.run_k, self.run_dt = RUN, t1, S, k, dt
        v = self.version = self.version + 2  # the step's wake-up and the run's
        sim = self.sim
        seq = sim.seq = sim.seq + 1
        sim.pending = (t1 + k * dt, seq, WAKE, self, v)

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
            sim = self.sim
            p = sim.pending
            if p is not None and p[3] is self:  # its superseded wake-up, which would be
                sim.pending = None  # skipped when taken: dropped (its seq stays used)
            sim.wake(self, self.t0 + self.run_k * self.run_dt, self.version)

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
        span = self._busy(t0, now)
        n = self.n_dec
        paused = mode == STEP and self.pauses  # the decoding sequences waited
        if n and not paused:
            self.dec_n_s += n * span
            self.dec_n2_s += n * n * span
        if mode == STEP:
            if paused:
                S = self.S
                self.pf_only_steps += 1
            else:
                S = self.S = self.S + 1
            rid = self.step_rid
            if rid >= 0:  # one chunk
                c = self.step_c
                row = self.rows[rid]
                left = row[11] - c  # PF_LEFT
                row[11] = left
                row[12] += c  # PF_DONE
                self.pending_pf_tokens -= c
                if left <= 0:
                    self.pf_active.remove(rid)
                    n_out = row[8]  # N_OUT
                    if self.role == "agg" and n_out > 1:  # ``_prefilled``, inline
                        row[5] = now  # T_FIRST
                        E = self.E
                        steps = ceil((n_out - 1) / E - 1e-9)
                        n_in = row[7]  # N_IN
                        term = n_in + 1 - E * S
                        heappush(
                            self.dec, (S + (steps if steps > 1 else 1), rid, term, n_in + n_out)
                        )
                        self.ctx_base += term
                        self.n_dec += 1
                    else:
                        self._prefilled(rid, now)
            else:
                rows = self.rows
                for rid, c in self.step_chunks:
                    row = rows[rid]
                    left = row[11] - c  # PF_LEFT
                    row[11] = left
                    row[12] += c  # PF_DONE
                    self.pending_pf_tokens -= c
                    if left <= 0:
                        self.pf_active.remove(rid)
                        self._prefilled(rid, now)
        else:
            k = self.run_k
            S = self.S = self.run_S0 + k
        dec = self.dec
        if dec and dec[0][0] <= S:
            on_finish = self.on_finish
            while dec and dec[0][0] <= S:
                _, rid, term, kv = heappop(dec)
                self.n_dec -= 1
                self.ctx_base -= term
                self.kv_used -= kv
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
        row = self.rows[rid]
        if self.role == "prefill":
            self.kv_used -= row[N_IN]
            self.sim.on_prefilled(rid, now)
            return
        row[T_FIRST] = now
        n_out = row[N_OUT]
        if n_out <= 1:
            self.kv_used -= self.model.kv_held(row[N_IN], n_out)
            self.on_finish(rid, now)
            return
        self._join_decode(rid)

    def _join_decode(self, rid: int) -> None:
        row = self.rows[rid]
        E, S = self.E, self.S
        n_in, n_out = row[N_IN], row[N_OUT]
        steps = ceil((n_out - 1) / E - 1e-9)
        term = n_in + 1 - E * S
        held = self.model.kv_held(n_in, n_out)  # as ``admit`` reserved
        heappush(self.dec, (S + (steps if steps > 1 else 1), rid, term, held))
        self.ctx_base += term
        self.n_dec += 1

    def _plan(self, now: float) -> None:
        """Start the next step (a mixed step while prefill work is admitted) or decode run,
        and schedule its end."""
        if self.waiting or self.dec_wait:
            admit(self)
        n = self.n_dec
        if self.pf_active:  # SGLang prefills without the decoding sequences
            tw = mixed_step(self, now, 0 if self.pauses else n)
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

    def _busy(self, t0: float, t1: float) -> float:
        """Add a busy span (whole, and clipped to the measurement window); returns it."""
        span = t1 - t0
        self.busy_total_s += span
        lo, hi = self.window
        if lo <= t0 and t1 <= hi:  # inside the window: the overlap is the span
            self.busy_s += span
        else:
            a = lo if lo > t0 else t0
            b = hi if hi < t1 else t1
            if b > a:
                self.busy_s += b - a
        return span

    # --- router inputs -----------------------------------------------------------------
    def load_tokens(self) -> float:
        """Work queued on this worker, in prefill-token equivalents (router heuristic)."""
        return self.pending_pf_tokens + 0.02 * self.kv_used
