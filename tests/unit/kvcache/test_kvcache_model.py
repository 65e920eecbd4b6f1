"""Block LRU simulation counted by hand, and properties of the analytic hit-ratio model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from codesign.kvcache import Replay, hit_curve, replay_schedule, simulate
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


@pytest.fixture(scope="module")
def cc_sample(shared_dir: Path):
    t = load_trace(shared_dir / "traces" / "claude-code-weka", "claude-code")
    return t.select_sessions(np.random.default_rng(1).choice(t.n_sessions, 12, replace=False))


@settings(max_examples=25, deadline=None)
@given(
    caps=st.lists(st.floats(0, 5e7), min_size=2, max_size=8),
    n=st.sampled_from([1, 2, 3, 8, 50, 300]),
)
def test_analytic_monotone_in_capacity(cc_sample, caps, n) -> None:
    c = _curve(cc_sample)
    caps = np.sort(np.array(caps))
    h = c.hit_ratio(caps, n)
    assert np.all(np.diff(h) >= -1e-12)
    assert np.all((h >= 0) & (h <= c.ideal_hit_ratio + 1e-12))


_CURVES: dict[int, object] = {}


def _curve(trace):
    if id(trace) not in _CURVES:
        _CURVES[id(trace)] = hit_curve(trace)
    return _CURVES[id(trace)]


def test_simulation_monotone_and_analytic_close_on_real_sessions(cc_sample) -> None:
    """Single cache (N=1): the model's own-session stack distance is near-exact."""
    c = _curve(cc_sample)
    rep = replay_schedule(cc_sample, 1)
    total = cc_sample.hash_ids.size * 64
    prev = -1.0
    for cap in [0, 2e3, 1e4, 5e4, 2.5e5, 1e6, total * 2]:
        sim = simulate(cc_sample, [cap], 1, replay=rep).hit_ratio
        assert sim >= prev - 1e-12
        prev = sim
        assert float(c.hit_ratio(cap, 1)) == pytest.approx(sim, abs=0.02)
    assert prev == pytest.approx(c.ideal_hit_ratio, abs=1e-9)
