"""Block LRU simulation counted by hand, and properties of the analytic hit-ratio model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from codesign.kvcache import Replay, hit_curve, replay_schedule, simulate, stack
from codesign.workload import TraceBuilder, TraceMeta, load_trace
from codesign.workload.prefix import ideal_hit_tokens


def two_sessions():
    """A: [1,2] then [1,2,3]; B: [1,2] then [1,2] (local ids, so B's blocks are its own)."""
    b = TraceBuilder(TraceMeta(block_size_tokens=64, hash_scope="session"), local_hashes=True)
    for name, second in (("A", [1, 2, 3]), ("B", [1, 2])):
        s = b.add_session(name)
        a = b.add_agent(s)
        b.add_requests(
            a,
            arrival_s=[0.0, 10.0],
            input_tokens=[128, 64 * len(second)],
            output_tokens=[1, 1],
            hash_counts=[2, len(second)],
            hash_ids=np.array([1, 2, *second]),
        )
    return b.build()


def interleaved(trace) -> Replay:
    # A0, B0, A1, B1 (requests are stored A0, A1, B0, B1), one copy, all measured
    req = np.array([0, 2, 1, 3])
    return Replay(
        req, np.zeros(4, np.int64), np.array([0.0, 0.0, 10.0, 10.0]), np.ones(4, bool), 10.0, 2
    )


@pytest.mark.parametrize(
    ("caps", "mode", "hits"),
    [
        # 3 blocks: B0 evicts a2 (LRU; a1 is more recent: tail-first touches), so A1 hits
        # a1 only (64); A1 then evicts b2, b1, so B1 misses → 64 of 576 tokens
        ([192], "exclusive", [64]),
        # 4 blocks: A1 hits a1, a2 (128) and evicts b2; B1 hits b1 (64) → 192
        ([256], "exclusive", [192]),
        # HBM 3 + host 1, exclusive: a2 is demoted to host; A1 hits a1 in HBM, a2 on host;
        # b2 then b1 are demoted (host holds one: b1); B1 hits b1 on host → 64 / 128
        ([192, 64], "exclusive", [64, 128]),
        # inclusive HBM 3 ⊂ host 4: host behaves like the 4-block cache; HBM like 3 blocks
        ([192, 256], "inclusive", [64, 128]),
        ([0], "exclusive", [0]),
    ],
)
def test_two_session_stream_counted_by_hand(caps, mode, hits) -> None:
    t = two_sessions()
    r = simulate(t, caps, 2, mode=mode, replay=interleaved(t))
    assert r.input_tokens == 576
    np.testing.assert_allclose(r.hit_tokens_per_tier, hits)


def test_pinning_keeps_a_session_through_its_gap() -> None:
    # with 3 blocks and both sessions pinned (TTL 100 s), B0's overflow spares pinned a2
    # once and a1 once, then evicts the oldest anyway; A1 then finds a1 and a2 (128 tokens)
    t = two_sessions()
    r = simulate(t, [192], 2, pin_ttl_s=100.0, replay=interleaved(t))
    assert r.hit_tokens_per_tier[0] == 128


def test_replay_measures_every_request_once() -> None:
    t = two_sessions()
    for n in (1, 2, 5):
        rep = replay_schedule(t, n)
        assert sorted(rep.request[rep.measured].tolist()) == [0, 1, 2, 3]


def test_simulation_limits_zero_and_infinite_capacity() -> None:
    t = two_sessions()
    assert simulate(t, [0], 2).hit_ratio == 0.0
    # infinite cache: every re-used block hits, copies never share ids → the ideal ratio
    ideal = ideal_hit_tokens(t).sum() / t.input_tokens.sum()
    assert simulate(t, [1e9], 2).hit_ratio == pytest.approx(ideal)
    c = hit_curve(t)
    assert c.ideal_hit_ratio == pytest.approx(ideal)
    assert float(c.hit_ratio(1e12, 2)) == pytest.approx(ideal)
    assert float(c.hit_ratio(0.0, 2)) == 0.0


def one_growing_session(turns: int = 6):
    """One session whose k-th request (every 10 s) re-sends the k - 1 blocks before it."""
    b = TraceBuilder(TraceMeta(block_size_tokens=64, hash_scope="session"), local_hashes=True)
    a = b.add_agent(b.add_session("only"))
    counts = np.arange(1, turns + 1)
    b.add_requests(
        a,
        arrival_s=10.0 * np.arange(turns),
        input_tokens=64 * counts,
        output_tokens=np.ones(turns, dtype=np.int64),
        hash_counts=counts,
        hash_ids=np.concatenate([np.arange(1, k + 1) for k in counts]),
    )
    return b.build()


@pytest.mark.parametrize("n", [1, 3, 8, 64])
def test_lanes_replay_a_measured_request_after_its_whole_session(n) -> None:
    """One session replayed by n lanes (a period of 50 / n s, shorter than the session):
    every lane warms up from the start of the session in progress, so an infinite cache
    hits every re-sent block (15 of 21 blocks). Lanes that started mid-session missed the
    earlier turns (8 lanes read 0.19, 64 lanes 0, not 0.71), and with 3 lanes the
    requests on the period boundaries were measured by no lane."""
    t = one_growing_session()
    ideal = ideal_hit_tokens(t).sum() / t.input_tokens.sum()
    assert ideal == pytest.approx(15 / 21)
    rep = replay_schedule(t, n)
    assert sorted(rep.request[rep.measured].tolist()) == list(range(6))
    assert simulate(t, [1e9], n).hit_ratio == pytest.approx(ideal)
    assert float(hit_curve(t, sessions_grid=[n]).hit_ratio(1e12, n)) == pytest.approx(ideal)


def _sessions(arrivals: list[list[float]]):
    """Sessions of one-block requests at the given arrivals (no server times)."""
    b = TraceBuilder(TraceMeta(block_size_tokens=64, hash_scope="session"), local_hashes=True)
    for i, arr in enumerate(arrivals):
        a = b.add_agent(b.add_session(f"s{i}"))
        k = len(arr)
        b.add_requests(
            a,
            arrival_s=np.asarray(arr, dtype=float),
            input_tokens=np.full(k, 64),
            output_tokens=np.ones(k, dtype=np.int64),
            hash_counts=np.ones(k, dtype=np.int64),
            hash_ids=np.arange(1, k + 1),
        )
    return b.build()


@pytest.mark.parametrize(
    "arrivals",
    [
        [[0.0, 49.0]],  # the last request at the cycle's end: 49 x (1 / 49) < 1
        [[0.0, 1.0]] * 3,  # a session's last request on the next one's start
        [[0.0] * 4, [0.0], [0.3, 1.1, 1.7, 2.4]],  # zero-length sessions, 0.3 - 0.3 + 2
        [[0.17, 0.46], [0.0] * 4, [0.7, 1.0]],
    ],
)
@pytest.mark.parametrize("n", [1, 2, 3, 6, 10])
@pytest.mark.parametrize("seed", [0, 1])
def test_every_request_measured_once_after_its_previous_turn(arrivals, n, seed):
    """Positions on period boundaries (found by review): each request is measured by
    exactly one lane, and in that lane's copy its previous turn (which re-sent the
    context it extends) was played before it."""
    t = _sessions(arrivals)
    rep = replay_schedule(t, n, seed)
    assert (
        np.bincount(rep.request[rep.measured], minlength=t.n_requests).tolist()
        == [1] * t.n_requests
    )
    order = {}
    for k, (r, c) in enumerate(zip(rep.request.tolist(), rep.copy.tolist(), strict=True)):
        assert (r, c) not in order  # a request once per copy
        order[(r, c)] = k
    for k in np.flatnonzero(rep.measured):
        r, c = int(rep.request[k]), int(rep.copy[k])
        earlier = np.flatnonzero((t.req_agent == t.req_agent[r]) & (np.arange(t.n_requests) < r))
        if earlier.size:
            assert order.get((int(earlier[-1]), c), k + 1) < k


def test_a_single_stream_replays_in_bounded_time() -> None:
    """A trace that is one long stream (Mooncake's requests as one session): each lane
    warms up from its first measured request's previous turn, a request before, not from
    the stream's start (which replayed the stream about N / 2 times: 1.2 s -> 459 s for
    2,000 Mooncake requests on the analytic-vs-simulation test)."""
    t = _sessions([list(np.arange(400.0))])
    rep = replay_schedule(t, 64)
    assert rep.measured.sum() == 400
    assert rep.request.size < 3 * 400
    # a tier with no requests in the trace: an empty stream
    assert replay_schedule(t, 4, requests=np.zeros(400, dtype=bool)).request.size == 0


def test_stack_distances_of_the_two_session_stream_counted_by_hand() -> None:
    # A1 looks up a1 after B0 touched b1, b2: distance 2; a2 also has a1 above it (A0
    # touched it last): 3; a3 is new. B1: A1 touched a1..a3 since B0, so b1 is at 3, b2 at 4.
    # Hit iff distance < capacity (blocks): C=3 → a1 (64); C=4 → a1, a2, b1 (192), as the
    # simulation counted above; C=5 → all four re-used blocks (256 of 576 input tokens).
    t = two_sessions()
    ramps = stack.stream_ramps(stack.trace_reuse(t), interleaved(t))
    assert ramps.total_tokens == 576
    np.testing.assert_allclose(ramps.hit_tokens(np.arange(7)), [0, 0, 0, 64, 192, 256, 256])


def test_dominance_sum_matches_brute_force() -> None:
    rng = np.random.default_rng(3)
    px, py = rng.integers(0, 50, 300), rng.integers(0, 60, 300)
    pw = rng.integers(1, 5, 300)
    qx, qy = rng.integers(-1, 55, 200), rng.integers(0, 65, 200)
    got = stack.dominance_sum(px, py, pw, qx, qy)
    want = [pw[(px <= x) & (py >= y)].sum() for x, y in zip(qx, qy, strict=True)]
    np.testing.assert_allclose(got, want)


def _max_error_pp(trace, ns, n_caps=7, tier=None) -> float:
    """Max |analytic - simulated| (pp) over N and capacities from nothing to everything,
    of the hit ratio and of the attention hit ratio (sum of squared hit lengths over the
    sum of squared input lengths)."""
    curve = hit_curve(trace, tier, sessions_grid=ns)
    mask = None if tier is None else trace.tier == trace.tier_code(tier)
    bs = trace.meta.block_size_tokens
    total = trace.hash_ids.size * bs
    worst = 0.0
    for n in ns:
        rep = replay_schedule(trace, n, 0, mask)
        caps = np.r_[0.0, np.geomspace(bs, 2.0 * total, n_caps)]
        res = [simulate(trace, [c], n, tier=tier, replay=rep) for c in caps]
        sims = [r.hit_ratio for r in res]
        sq = [r.hit_sq_tokens / r.input_sq_tokens for r in res]
        assert sims[0] == 0.0
        assert np.all(np.diff(sims) >= -1e-12)  # the simulation is monotone too
        ana = curve.hit_ratio(caps, n)
        ana_sq = curve.hit_ratio(caps, n, attention=True)
        worst = max(worst, 100 * float(np.abs(ana - sims).max()))
        worst = max(worst, 100 * float(np.abs(ana_sq - sq).max()))
    return worst


@pytest.fixture(scope="module")
def cc_sample(shared_dir: Path):
    t = load_trace(shared_dir / "traces" / "claude-code-weka", "claude-code")
    return t.select_sessions(np.random.default_rng(1).choice(t.n_sessions, 6, replace=False))


@pytest.fixture(scope="module")
def mooncake_prefix(shared_dir: Path):
    """The first 2,000 requests of the Mooncake conversation stream (global hash ids)."""
    m = load_trace(shared_dir / "traces" / "mooncake" / "conversation_trace.jsonl.gz", "mooncake")
    k = 2000
    b = TraceBuilder(m.meta.model_copy(update={"name": "mooncake-prefix"}))
    a = b.add_agent(b.add_session("stream"))
    b.add_requests(
        a,
        arrival_s=m.arrival_s[:k],
        input_tokens=m.input_tokens[:k],
        output_tokens=m.output_tokens[:k],
        hash_counts=m.blocks_per_request[:k],
        hash_ids=m.hash_ids[: m.hash_offsets[k]],
    )
    return b.build()


def synthetic_trace(seed: int = 0, local: bool = False):
    """Agent sessions: a shared system prefix, growing contexts, compaction, sub-agents on a
    small model, tool gaps; plus ids repeated inside a request and non-chained blocks."""
    rng = np.random.default_rng(seed)
    meta = TraceMeta(block_size_tokens=16, hash_scope="session" if local else "global")
    b = TraceBuilder(meta, local_hashes=local)
    main, small = b.model_code("big-model"), b.model_code("small-haiku")
    fresh = iter(range(1_000, 10**9))
    for s_i in range(7):
        s = b.add_session(f"s{s_i}", 0.0)
        agent = b.add_agent(s)
        sub = b.add_agent(s, agent, "Explore", "explore", 5.0)
        ctx = [0, 1, 2]  # system prompt shared by all sessions (global ids)
        t = float(rng.uniform(0, 30))
        for _ in range(int(rng.integers(6, 14))):
            if rng.random() < 0.15 and len(ctx) > 8:
                ctx = ctx[:3] + [next(fresh) for _ in range(2)]  # compaction: a new branch
            ctx = ctx + [next(fresh) for _ in range(int(rng.integers(1, 5)))]
            ids = list(ctx)
            if rng.random() < 0.2:
                ids.insert(int(rng.integers(1, len(ids))), ids[0])  # a repeated id
            if rng.random() < 0.2:
                ids.append(ctx[1])  # an id out of its chain position
            partial = int(rng.integers(0, 16))
            b.add_requests(
                agent,
                arrival_s=[t],
                input_tokens=[16 * len(ids) - partial],
                output_tokens=[10],
                server_s=[float(rng.uniform(1, 5))],
                model=main,
                hash_counts=[len(ids)],
                hash_ids=np.array(ids),
            )
            if rng.random() < 0.3:  # a sub-agent call on its own small-model chain
                sub_ids = [7, 8] + [next(fresh) for _ in range(int(rng.integers(1, 4)))]
                b.add_requests(
                    sub,
                    arrival_s=[t + 1.0],
                    input_tokens=[16 * len(sub_ids)],
                    output_tokens=[5],
                    server_s=[1.0],
                    model=small,
                    hash_counts=[len(sub_ids)],
                    hash_ids=np.array(sub_ids),
                )
            t += float(rng.exponential(40.0))
    return b.build()


def test_analytic_equals_simulation_on_claude_code(cc_sample) -> None:
    """The model replays the simulation's stream exactly: ≤ 2 pp required, ~0 measured."""
    assert _max_error_pp(cc_sample, [1, 4, 16]) <= 0.2


def test_analytic_equals_simulation_on_mooncake(mooncake_prefix) -> None:
    assert _max_error_pp(mooncake_prefix, [1, 4, 16]) <= 0.2


@pytest.mark.parametrize("local", [False, True])
def test_analytic_equals_simulation_on_a_synthetic_trace(local) -> None:
    t = synthetic_trace(local=local)
    assert _max_error_pp(t, [1, 3, 8, 40], n_caps=12) <= 0.2
    assert _max_error_pp(t, [2, 5], n_caps=12, tier="small") <= 0.2


def test_tier_splits_equal_the_simulation(cc_sample) -> None:
    curve = hit_curve(cc_sample, sessions_grid=[4])
    for mode, caps in (("exclusive", [2e4, 3e4, 5e4]), ("inclusive", [2e4, 5e4, 1e5])):
        sim = simulate(cc_sample, caps, 4, mode=mode)
        ana = curve.tier_hit_ratios(np.array(caps), 4, mode)
        np.testing.assert_allclose(ana, sim.hit_ratio_per_tier, atol=2e-3)
        assert sim.hit_ratio_per_tier.min() > 0.01  # every tier matters in this example


def test_session_chunks_do_not_change_the_curve(monkeypatch) -> None:
    t = synthetic_trace(seed=4, local=True)
    whole = hit_curve(t, sessions_grid=[1, 3])
    monkeypatch.setattr(stack, "CHUNK_BLOCKS", 20)
    chunked = hit_curve(t, sessions_grid=[1, 3])
    np.testing.assert_array_equal(whole.hit_table, chunked.hit_table)


_CURVES: dict[int, object] = {}


def _curve(trace):
    if id(trace) not in _CURVES:
        _CURVES[id(trace)] = hit_curve(trace)
    return _CURVES[id(trace)]


@settings(max_examples=25, deadline=None)
@given(
    caps=st.lists(st.floats(0, 5e7), min_size=2, max_size=8),
    n=st.sampled_from([1, 2, 3, 8, 50, 300, 5000]),
)
def test_analytic_monotone_in_capacity(cc_sample, caps, n) -> None:
    c = _curve(cc_sample)
    caps = np.sort(np.array(caps))
    h = c.hit_ratio(caps, n)
    assert np.all(np.diff(h) >= -1e-12)
    assert np.all((h >= 0) & (h <= c.ideal_hit_ratio + 1e-12))


def test_analytic_limits(cc_sample) -> None:
    """0 at zero capacity; at infinite capacity the ideal ratio (N = 1: every session is
    replayed whole; larger N can only lose re-use that falls before a lane's warm-up)."""
    c = _curve(cc_sample)
    ideal = ideal_hit_tokens(cc_sample).sum() / cc_sample.input_tokens.sum()
    assert c.ideal_hit_ratio == pytest.approx(ideal)
    assert all(float(c.hit_ratio(0.0, n)) == 0.0 for n in (1, 2.5, 16, 4096))
    assert float(c.hit_ratio(1e15, 1)) == pytest.approx(ideal, abs=1e-12)
    for n in (4, 64, 4096):
        assert 0.0 <= float(c.hit_ratio(1e15, n)) <= ideal + 1e-12
