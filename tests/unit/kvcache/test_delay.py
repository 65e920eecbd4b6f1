"""Hit ratios with slower responses than the trace's: the retimed replay by hand, the
delayed tables against the block simulation of the retimed trace, and the drop's shape."""

from __future__ import annotations

import numpy as np
import pytest

from codesign.kvcache import hit_curve, simulate
from codesign.kvcache.delay import DELAY_GRID_S, delayed, issue_times
from codesign.workload import TraceBuilder, TraceMeta
from codesign.workload.synth import generate, preset
from tests.unit.kvcache.test_kvcache_model import synthetic_trace


@pytest.fixture(scope="module")
def fleet():
    return generate(preset("claude-code-fleet").model_copy(update={"sessions": 24, "seed": 3}))


def _serial_session():
    """One agent: requests at 0, 10 and 30 s, each answered in 2 s (gaps 8 and 18 s)."""
    b = TraceBuilder(TraceMeta(block_size_tokens=64, hash_scope="session"), local_hashes=True)
    a = b.add_agent(b.add_session("s"))
    b.add_requests(
        a,
        arrival_s=[0.0, 10.0, 30.0],
        input_tokens=[64, 128, 192],
        output_tokens=[1, 1, 1],
        server_s=[2.0, 2.0, 2.0],
        hash_counts=[1, 2, 3],
        hash_ids=np.array([1, 1, 2, 1, 2, 3]),
    )
    return b.build()


def test_a_request_moves_by_the_delays_on_its_path() -> None:
    """With 5 s more per response, the second request (after one response) comes 5 s
    later and the third (after two) 10 s later; the recorded gaps stay."""
    t = _serial_session()
    np.testing.assert_allclose(issue_times(t, t.server_s), t.arrival_s)
    late = delayed(t, 5.0)
    np.testing.assert_allclose(late.arrival_s, [0.0, 15.0, 40.0])
    np.testing.assert_allclose(late.server_s, [7.0, 7.0, 7.0])


def test_sub_agents_replay_as_recorded() -> None:
    """The replay plan reproduces the recorded arrivals of sessions with sub-agents
    (spawns, joins and gaps as recorded), and a delay moves no request earlier."""
    t = generate(preset("claude-code-session").model_copy(update={"sessions": 4, "seed": 1}))
    assert (t.agent_parent >= 0).sum() > 5
    server = np.nan_to_num(t.server_s)
    np.testing.assert_allclose(issue_times(t, server), t.arrival_s, atol=1e-6)
    late = delayed(t, 30.0)
    assert np.all(late.arrival_s >= t.arrival_s - 1e-9)
    assert late.arrival_s.max() > t.arrival_s.max() + 30.0


@pytest.mark.parametrize("local", [False, True])
def test_delayed_tables_equal_the_block_simulation(local) -> None:
    """At a grid delay and a power-of-two N, the curve is the block LRU simulation of the
    retimed trace (its own replay), for hits and squared hits: the sessions keep their
    places in the cycle, so the trace's reuse structure serves the delayed replay."""
    t = synthetic_trace(seed=5, local=local)
    curve = hit_curve(t, sessions_grid=[1, 2, 3, 4, 8], delays_s=DELAY_GRID_S)
    assert curve.delay_sessions_grid.tolist() == [1.0, 2.0, 4.0, 8.0]
    bs = t.meta.block_size_tokens
    for delay in (30.0, 270.0):
        late = delayed(t, delay)
        for n in (2, 4):
            for cap in np.geomspace(4 * bs, t.hash_ids.size * bs, 6):
                sim = simulate(late, [cap], n)
                got = float(curve.hit_ratio(cap, n, delay))
                assert got == pytest.approx(sim.hit_ratio, abs=1e-9)
                sq = sim.hit_sq_tokens / sim.input_sq_tokens
                assert float(curve.hit_ratio(cap, n, delay, attention=True)) == pytest.approx(
                    sq, abs=1e-4
                )


def test_slower_responses_lose_hits_near_the_working_set(fleet) -> None:
    """The drop is zero at no delay, grows with the delay (interpolated between the grid's
    replays, held past its end) and is largest where the cache is short of the working
    set; a cache that holds everything loses nothing."""
    curve = hit_curve(fleet, sessions_grid=[8], delays_s=DELAY_GRID_S)
    caps = curve.capacity_grid_tokens
    h = curve.hit_ratio(caps, 8)
    short = float(caps[np.searchsorted(h, 0.9 * h[-1])])
    d = np.array([0.0, 10.0, 20.0, 30.0, 270.0, 5000.0])
    at = curve.hit_ratio(short, 8, d)
    assert at[0] == float(curve.hit_ratio(short, 8))
    assert np.all(np.diff(at) <= 1e-12) and at[4] < at[0] - 0.1
    assert at[2] == pytest.approx((at[1] + at[3]) / 2)
    assert at[5] == float(curve.hit_ratio(short, 8, DELAY_GRID_S[-1]))
    assert float(curve.hit_ratio(caps[-1] * 10, 8, 270.0)) == pytest.approx(h[-1], abs=1e-3)
    plain = hit_curve(fleet, sessions_grid=[8])  # built without delays: ignores them
    assert float(plain.hit_ratio(short, 8, 270.0)) == float(plain.hit_ratio(short, 8))
