"""A worker's general step planning (``worker.Worker._plan`` calls these): admission of
waiting requests and the mixed step (decoding sequences and prefill chunks). The worker's
inline paths (a request reaching an idle worker, a step or run ending) must equal them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from codesign.simulate.requests import CACHED, LOAD_S, N_IN, N_OUT, PF_DONE, PF_LEFT

if TYPE_CHECKING:
    from codesign.simulate.worker import Worker

IDLE, STEP, RUN = 0, 1, 2  # a worker's mode


def admit(w: Worker) -> None:
    """Admit waiting requests, first come first served, while a sequence slot and their
    KV fit (the first always, on an empty worker). A request holds its prompt and the
    engine's share of its output (``PoolModel.kv_held``)."""
    rows = w.rows
    m = w.model
    waiting, pf = w.waiting, w.pf_active
    if waiting:
        n_dec = w.n_dec
        prefill_only = w.role == "prefill"
        max_seqs, cap, kv = m.max_seqs, w.kv_cap, w.kv_used
        while waiting:
            rid = waiting[0]
            row = rows[rid]
            need = row[N_IN] if prefill_only else m.kv_held(row[N_IN], row[N_OUT])
            if (pf or n_dec) and (len(pf) + n_dec >= max_seqs or kv + need > cap):
                break
            waiting.popleft()
            kv += need
            pf.append(rid)
        w.kv_used = kv
    while w.dec_wait:
        rid = w.dec_wait[0]
        row = rows[rid]
        need = m.kv_held(row[N_IN], row[N_OUT])
        if w.n_dec and (w.n_dec >= m.max_seqs or w.kv_used + need > w.kv_cap):
            break
        w.dec_wait.popleft()
        w.kv_used += need
        w._join_decode(rid)


def mixed_step(w: Worker, now: float, n: int) -> float:
    """Plan a step with the decoding sequences and prefill chunks; its end time."""
    m = w.model
    rows = w.rows
    pf = w.pf_active
    dp, chunk = m.dp, m.chunk_tokens
    n_rank = -(-n // dp)
    budget = chunk - n_rank  # max(chunk - n_rank, chunk // 8)
    if budget < chunk // 8:
        budget = chunk // 8
    rid = pf[0]
    row = rows[rid]
    c = row[PF_LEFT]
    if budget < c:
        c = budget
    if len(pf) == 1 and c > 0:
        # one chunk: min(pf_left, budget, budget x dp) = min(pf_left, budget); sums
        # of one term, shares of one sequence (x / 1 == x)
        done = row[PF_DONE]
        load = row[LOAD_S] if done == row[CACHED] else 0.0  # with the first chunk
        w.step_rid, w.step_c = rid, c
        w.mode, w.t0 = STEP, now
        if not n:  # the same step_s call as below, remembered
            return now + m.chunk_step_s(c, done, load)
        attn = 0.0 + m.prefill_attn_s(c, done)
        even = -(-c // dp)
        n_pf = c if c > even else even
        seqs = 1
    else:
        attn_s = m.prefill_attn_s
        left = budget * dp
        chunks: list[tuple[int, int]] = []
        attn = load = 0.0
        biggest = total = 0
        for rid in pf:
            row = rows[rid]
            c = row[PF_LEFT]  # min(pf_left, budget, left)
            if budget < c:
                c = budget
            if left < c:
                c = left
            if c <= 0:
                break
            done = row[PF_DONE]
            attn += attn_s(c, done)
            if done == row[CACHED]:
                load += row[LOAD_S]
            chunks.append((rid, c))
            left -= c
            total += c
            if c > biggest:
                biggest = c
        seqs = len(chunks)
        share = dp if dp < seqs else seqs
        attn, load = attn / share, load / share
        even = -(-total // dp)
        n_pf = biggest if biggest > even else even
        w.step_rid = -1
        w.step_chunks = chunks
    ctx = (w.ctx_base + n * w.E * w.S) / n if n else 0.0
    dt = m.step_s(n_rank, ctx, n_pf, attn, -(-seqs // dp), load)
    w.mode, w.t0 = STEP, now
    return now + dt
