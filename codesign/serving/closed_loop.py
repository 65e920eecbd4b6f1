"""Closed-loop serving (a fixed number of clients, each sending its next request when the
previous one finishes), vectorised over candidates.

Aggregated (continuous batching with chunked prefill), per attention-DP rank with c
concurrent requests, throughput X requests/s and prefill work w = the compute time of one
request's uncached prompt:

- prefill utilisation rho = X w; decode steps stretch by the prefill they carry, so
  TPOT = t_decode(c) / (1 - rho); with client think time only some clients decode, and a
  token's step holds its own sequence plus the others decoding (``_others_share``);
- TTFT = engine overhead + the request's own prefill step(s) + queueing for chunk slots,
  W = q rho / (1 - rho) w + s (c - 1) / 2 w: a random-arrival term and a synchronised
  term (clients with equal output lengths finish together and return as a cohort, so a
  request waits behind a fraction s of the others' prefills; q and s are calibrated);
- Little's law closes the loop: X (TTFT + (osl - 1) TPOT) = c, solved by bisection
  (the left side increases with X).

Disaggregated: the prefill pool serves X at utilisation rho_p = X / mu_p with queueing
W_p = q rho_p / (1 - rho_p) t_prefill; TTFT adds the KV transfer; decode steps carry no
prefill. With more clients than the pools can serve, X approaches the bottleneck and TTFT
grows to absorb the rest (C / X - (osl - 1) TPOT), as measured on saturated pools.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from codesign.serving.adp_balance import balance_cycle_and_fill_s, mean_hold_s

_ITER = 60


def solve_throughput(
    clients: np.ndarray, x_max: np.ndarray, latency_at: Callable[[np.ndarray], np.ndarray]
) -> np.ndarray:
    """Root X in (0, x_max) of X * latency_at(X) = clients (latency increasing in X)."""
    lo = np.zeros_like(x_max)
    hi = x_max * (1.0 - 1e-9)
    for _ in range(_ITER):
        mid = 0.5 * (lo + hi)
        over = mid * latency_at(mid) > clients
        hi = np.where(over, mid, hi)
        lo = np.where(over, lo, mid)
    return 0.5 * (lo + hi)


def wait_probability(rho: np.ndarray, servers: np.ndarray | float = 1.0) -> np.ndarray:
    """Probability that an arrival finds all ``servers`` busy at utilisation ``rho``:
    Erlang C, in Sakasegawa's approximation rho^(sqrt(2 (c + 1)) - 1) (exact for one
    server, rho; within ~12 % of Erlang C where a quarter or more wait, and within 0.05
    where few do: it overstates rare waits at low load, which are short). A pool of c
    prefill servers at the same utilisation makes far fewer requests wait than one
    server does: 4 servers at rho 0.10 make under 1 % of them wait, not 10 %."""
    rho = np.clip(np.asarray(rho, dtype=np.float64), 0.0, 1.0 - 1e-9)
    c = np.maximum(np.asarray(servers, dtype=np.float64), 1.0)
    return rho ** (np.sqrt(2.0 * (c + 1.0)) - 1.0)


def queue_wait(
    rho: np.ndarray, service_s: np.ndarray, q: float, servers: np.ndarray | float = 1.0
) -> np.ndarray:
    """Mean wait for one of ``servers`` servers, each busy ``rho`` of the time and serving
    a request in ``service_s``: q P(wait) / (c (1 - rho)) service (M/M/c with the M/G
    factor q; at c = 1 the M/G/1 q rho / (1 - rho) service)."""
    rho = np.clip(rho, 0.0, 1.0 - 1e-9)
    c = np.maximum(np.asarray(servers, dtype=np.float64), 1.0)
    return q * wait_probability(rho, c) / (c * (1.0 - rho)) * service_s


def cohort_wait(clients: np.ndarray, service_s: np.ndarray, s: float) -> np.ndarray:
    """Wait behind the prefills of the clients that return in the same cohort."""
    return s * np.maximum(clients - 1.0, 0.0) / 2.0 * service_s


def _others_share(clients: np.ndarray | float) -> np.ndarray:
    """(n - 1) / n for n clients sharing a rank: a decoding sequence always shares its step
    with itself, and each of the n - 1 others decodes a fraction B / n of the time, so the
    batch a token sees is 1 + (n - 1) / n B (B = Little's-law mean batch). With long client
    gaps B is far below 1 and the token's own KV read dominates; with every client decoding
    (B = n) it is n."""
    n = np.maximum(np.asarray(clients, dtype=np.float64), 1.0)
    return (n - 1.0) / n


def aggregated(
    clients_per_rank: np.ndarray,
    osl: np.ndarray,
    t_decode_step: np.ndarray,
    t_own_prefill: np.ndarray,
    prefill_work_s: np.ndarray,
    ttft_overhead_s: np.ndarray,
    q: float,
    s: float = 0.0,
    slots: np.ndarray | None = None,
    think_s: np.ndarray | float = 0.0,
    decode_per_seq_s: np.ndarray | float | None = None,
    adp_ranks: np.ndarray | float = 1.0,
    adp_timeout_iters: np.ndarray | float = 0.0,
    tokens_per_iter: np.ndarray | float = 1.0,
) -> dict[str, np.ndarray]:
    """Steady state of one aggregated worker rank (all arrays per candidate).

    ``slots``: sequences the rank's KV cache can hold at once (default: all clients);
    ``t_decode_step`` must be the step time at min(clients, slots) sequences. Clients
    beyond the slots wait for one to free up before their prefill starts. ``think_s``:
    the client's own time between a response and its next request (tool execution or a
    human), so a client's cycle is TTFT + (osl - 1) TPOT + think.

    ``decode_per_seq_s``: the decode step's cost per running sequence. With it the running
    batch is not all the clients but those decoding, B = X (osl - 1) TPOT (Little's law;
    with long think times far fewer than the clients), and the step time is affine in B,
    TPOT = (a + b B) / (1 - rho), solved in closed form for each X.

    ``adp_ranks``, ``adp_timeout_iters``: TRT-LLM attention-DP context balancing
    (``adp_balance``; 0 iterations: off), which holds a request before its prefill; an
    iteration is ``tokens_per_iter`` x TPOT (speculative decoding yields several tokens
    per iteration).
    """
    w = np.maximum(prefill_work_s, 1e-12)
    slots = clients_per_rank if slots is None else np.minimum(slots, clients_per_rank)
    slots = np.maximum(slots, 1.0)
    cohort = cohort_wait(slots, w, s)
    b = 0.0 if decode_per_seq_s is None else np.maximum(decode_per_seq_s, 0.0)
    a = np.maximum(t_decode_step - b * slots, 0.0)
    others = _others_share(slots)
    balancing = bool(np.any(np.asarray(adp_timeout_iters) > 0))

    def held_by_balancing(x: np.ndarray, tpot: np.ndarray) -> tuple[np.ndarray, ...]:
        """(mean hold, timeout cycle, fill time) of attention-DP balancing at x."""
        t_cycle, fill = balance_cycle_and_fill_s(
            adp_ranks, x * adp_ranks, tpot * tokens_per_iter, adp_timeout_iters
        )
        return mean_hold_s(t_cycle, fill), t_cycle, fill

    def parts(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(TTFT, TPOT, queue wait for a chunk slot) at throughput x."""
        rho = np.clip(x * w, 0.0, 1.0 - 1e-9)
        full = t_decode_step / (1.0 - rho)  # every admitted client decoding
        denom = 1.0 - rho - b * x * (osl - 1) * others
        free = (a + b) / np.maximum(denom, 1e-12)
        running = x * (osl - 1) * free
        ok = (denom > 0) & (running < slots)
        tpot = np.where(ok, free, full)
        # an arriving request's prefill shares its step with the other clients' decodes
        smaller = np.where(ok, b * (slots - others * running), 0.0)
        wait = queue_wait(rho, w, q)
        held = held_by_balancing(x, tpot)[0] if balancing else 0.0
        ttft = ttft_overhead_s + t_own_prefill - smaller + wait + held + cohort
        return ttft, tpot, wait

    def latency(x: np.ndarray) -> np.ndarray:
        ttft, tpot, _ = parts(x)
        return ttft + (osl - 1) * tpot + think_s

    # throughput is bounded by prefill work (x w < 1) and by the KV slots: with every slot
    # decoding, x (osl - 1) TPOT = slots and TPOT = t_decode / (1 - x w), so
    # x = slots / ((osl - 1) t_decode + slots w) (the decode steps stretch by the prefill
    # the admitted requests bring)
    x_slots = slots / np.maximum((osl - 1) * t_decode_step + slots * w, 1e-12)
    x = solve_throughput(clients_per_rank, np.minimum(1.0 / w, x_slots), latency)
    ttft, tpot, wait = parts(x)
    # at a bound (KV slots full) the clients that cannot be served wait before their first
    # token: Little's law then sets TTFT
    bound = clients_per_rank / x - (osl - 1) * tpot - think_s
    slot_wait = np.maximum(bound - ttft, 0.0)
    wait = wait + slot_wait
    ttft = np.maximum(ttft, bound)
    running = slots if decode_per_seq_s is None else np.minimum(x * (osl - 1) * tpot, slots)
    zero = 0 * x
    held, t_cycle, fill = held_by_balancing(x, tpot) if balancing else (zero, zero, zero + np.inf)
    return {
        "ttft_s": ttft,
        "queue_wait_s": wait,
        "tpot_s": tpot,
        "requests_per_s": x,
        "prefill_utilization": x * w,
        "prefill_wait_probability": wait_probability(x * w),  # each rank prefills its own
        "slot_wait_s": slot_wait,  # the part of the wait for a free KV/batch slot
        "own_prefill_s": t_own_prefill + zero,
        "decode_batch": running,
        # attention-DP balancing: the mean hold and what its quantiles need
        "adp_wait_s": held + zero,
        "adp_cycle_s": t_cycle + zero,
        "adp_fill_s": fill + zero,
    }


def disaggregated(
    clients: np.ndarray,
    osl: np.ndarray,
    tpot_s: np.ndarray,
    t_prefill_batch: np.ndarray,
    prefill_capacity_rps: np.ndarray,
    decode_slots: np.ndarray,
    kv_transfer_s: np.ndarray,
    ttft_overhead_s: np.ndarray,
    q: float,
    s: float = 0.0,
    prefill_servers: np.ndarray | float = 1.0,
    think_s: np.ndarray | float = 0.0,
    decode_per_seq_s: np.ndarray | float | None = None,
    decode_ranks: np.ndarray | float = 1.0,
    decode_active: np.ndarray | float | None = None,
) -> dict[str, np.ndarray]:
    """Steady state of an xPyD deployment under closed-loop clients (``think_s``: each
    client's own time between a response and its next request).

    ``tpot_s`` is the decode step at ``decode_active`` sequences per decode rank; with
    ``decode_per_seq_s`` the running batch per rank is B = X (osl - 1) TPOT / ranks instead
    (Little's law), and TPOT = a + b B is solved in closed form for each X."""
    active = np.maximum(decode_active if decode_active is not None else 1.0, 1.0)
    b = 0.0 if decode_per_seq_s is None else np.maximum(decode_per_seq_s, 0.0)
    a = np.maximum(tpot_s - b * active, 0.0)
    others = _others_share(np.minimum(clients / decode_ranks, active))

    def tpot_at(x: np.ndarray) -> np.ndarray:
        if decode_per_seq_s is None:
            return tpot_s + 0 * x
        denom = 1.0 - b * x / decode_ranks * (osl - 1) * others
        free = (a + b) / np.maximum(denom, 1e-12)
        running = x / decode_ranks * (osl - 1) * free
        return np.where((denom > 0) & (running < active), free, tpot_s)

    decode_rps = decode_slots / np.maximum((osl - 1) * tpot_s, 1e-12)
    x_max = np.minimum(prefill_capacity_rps, decode_rps)
    per_request = prefill_servers / prefill_capacity_rps  # service time of one request
    cohort = cohort_wait(clients / prefill_servers, per_request, s)

    def waits(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Queueing for the prefill pool and for a decode slot at throughput x."""
        # the prefill pool is ``prefill_servers`` servers (attention-DP ranks of the
        # prefill workers), each serving a batch pass in t_prefill_batch
        wait_p = queue_wait(x / prefill_capacity_rps, t_prefill_batch, q, prefill_servers)
        rho_d = x / decode_rps
        wait_d = queue_wait(rho_d, (osl - 1) * tpot_s / np.maximum(decode_slots, 1.0), q)
        return wait_p, wait_d

    def ttft_at(x: np.ndarray) -> np.ndarray:
        wait_p, wait_d = waits(x)
        return ttft_overhead_s + t_prefill_batch + kv_transfer_s + wait_p + wait_d + cohort

    x = solve_throughput(clients, x_max, lambda x: ttft_at(x) + (osl - 1) * tpot_at(x) + think_s)
    tpot = tpot_at(x)
    # at a bound the clients that cannot be served wait: Little's law then sets TTFT
    t0 = ttft_at(x)
    bound = clients / x - (osl - 1) * tpot - think_s
    wait_p, wait_d = waits(x)
    slot_wait = np.maximum(bound - t0, 0.0)
    wait = wait_p + wait_d + slot_wait
    ttft = np.maximum(t0, bound)
    return {
        "ttft_s": ttft,
        "queue_wait_s": wait,
        "tpot_s": tpot,
        "requests_per_s": x,
        "prefill_utilization": x / prefill_capacity_rps,
        "prefill_wait_probability": wait_probability(x / prefill_capacity_rps, prefill_servers),
        "slot_wait_s": slot_wait,
        "own_prefill_s": t_prefill_batch + 0 * x,
    }
