"""Round-robin routing in the analytic hit-ratio model, against the block LRU simulation:
the replayed worker stream exactly, and all workers of a round-robin router statistically."""

from __future__ import annotations

import numpy as np
import pytest

from codesign.errors import SpecError
from codesign.kvcache import Replay, hit_curve, replay_schedule, simulate
from codesign.kvcache.analytic import ROUND_ROBIN_WORKERS
from codesign.workload.synth import generate, preset


@pytest.fixture(scope="module")
def fleet():
    return generate(preset("claude-code-fleet").model_copy(update={"sessions": 24, "seed": 3}))


def all_workers_simulated(trace, cap_tokens: float, n: int, workers: int, seed: int = 1) -> float:
    """Block LRU simulation of a round-robin router: the N-session stream, every request on
    a random worker, each worker's cache simulated on its share of the stream."""
    rep = replay_schedule(trace, n, 0)
    w = np.random.default_rng(seed).integers(0, workers, rep.request.size)
    hit = tokens = 0.0
    for k in range(workers):
        m = w == k
        part = Replay(rep.request[m], rep.copy[m], rep.wall_s[m], rep.measured[m], rep.period_s, n)
        r = simulate(trace, [cap_tokens], n, replay=part)
        hit += float(r.hit_tokens_per_tier.sum())
        tokens += r.input_tokens
    return hit / tokens


def test_a_worker_stream_equals_its_block_simulation(fleet) -> None:
    """At a replayed W the table is the block simulation of the one worker's stream it
    replays (the requests drawn below 1 / W), exactly, as the single cache's is."""
    n, w = 6, 4
    curve = hit_curve(fleet, sessions_grid=[n], round_robin=[2, w])
    keep = np.random.default_rng([0, 1]).random(fleet.n_requests) < 1.0 / w
    rep = replay_schedule(fleet, n, 0, keep)
    for cap in (5e4, 2e5, 1e6, 1e9):
        r = simulate(fleet, [cap], n, replay=rep)
        assert float(curve.round_robin_hit_ratio(cap, n, w)) == pytest.approx(r.hit_ratio, abs=1e-9)
        # squared hit lengths are quadratic in the capacity between the grid's points
        # (~1% apart), which the table interpolates linearly
        sq = r.hit_sq_tokens / r.input_sq_tokens
        attn = float(curve.round_robin_hit_ratio(cap, n, w, attention=True))
        assert attn == pytest.approx(sq, abs=1e-4)
    assert float(curve.round_robin_hit_ratio(2e5, n, 1)) == float(curve.hit_ratio(2e5, n))
    assert float(curve.round_robin_hit_ratio(2e5, n, 1, attention=True)) == float(
        curve.hit_ratio(2e5, n, attention=True)
    )


@pytest.mark.parametrize(("workers", "n", "tol"), [(2, 4, 0.02), (4, 12, 0.03), (8, 12, 0.05)])
def test_round_robin_hits_match_all_simulated_workers(fleet, workers, n, tol) -> None:
    """Where the single cache keeps 95% and 70% of its infinite-capacity hits: within a few
    pp of the simulated workers (one sampled worker's share of 24 sessions is noisy at 8
    workers). The old model, the single cache's ratio over the workers, was 30-75 pp low."""
    curve = hit_curve(fleet, sessions_grid=[n], round_robin=ROUND_ROBIN_WORKERS)
    caps = curve.capacity_grid_tokens
    h = curve.hit_ratio(caps, n)
    for keep in (0.95, 0.7):
        cap = float(caps[np.searchsorted(h, keep * h[-1])])
        model = float(curve.round_robin_hit_ratio(cap, n, workers))
        sim = all_workers_simulated(fleet, cap, n, workers)
        assert model == pytest.approx(sim, abs=tol), (keep, model, sim)
        assert float(curve.hit_ratio(cap, n)) / workers < sim - 0.3  # the old model
        assert model < float(curve.hit_ratio(cap, n))  # spreading loses the grown context


def test_worker_interpolation_and_limits(fleet) -> None:
    curve = hit_curve(fleet, sessions_grid=[2, 8], round_robin=[2, 4, 8])
    w = np.array([1, 2, 3, 4, 6, 8, 16, 1000, 1e9])
    h = curve.round_robin_hit_ratio(3e5, 5.0, w)
    assert np.all(np.diff(h) <= 1e-12) and h[-1] == 0.0  # fewer hits with more workers
    lg = np.log([2, 4])
    f = (np.log(3) - lg[0]) / (lg[1] - lg[0])
    assert h[2] == pytest.approx((1 - f) * h[1] + f * h[3])  # linear in log W
    with pytest.raises(SpecError, match="without round-robin"):
        hit_curve(fleet, sessions_grid=[2]).round_robin_hit_ratio(3e5, 2, 4)


def test_vectorised_lookup_equals_the_row_interpolation(fleet) -> None:
    """Capacities and N as arrays give what one N at a time gave (np.interp on the rows)."""
    curve = hit_curve(fleet, sessions_grid=[1, 2, 4, 8])
    caps = np.r_[0.0, np.geomspace(10, 1.2 * curve.capacity_grid_tokens[-1], 200)]
    sg, grid, t = curve.sessions_grid, curve.capacity_grid_tokens, curve.hit_table
    for n in (0.5, 1.0, 2.0, 3.0, 7.9, 8.0, 20.0):
        c = np.floor(caps / curve.block_size_tokens) * curve.block_size_tokens
        nc = min(max(n, sg[0]), sg[-1])
        i = int(np.clip(np.searchsorted(sg, nc, side="right") - 1, 0, sg.size - 2))
        f = (np.log(nc) - np.log(sg[i])) / (np.log(sg[i + 1]) - np.log(sg[i]))
        ref = (1 - f) * np.interp(c, grid, t[i]) + f * np.interp(c, grid, t[i + 1])
        np.testing.assert_allclose(curve.hit_ratio(caps, n), ref, atol=1e-12)
        np.testing.assert_allclose(curve.hit_ratio(caps, np.full(caps.size, n)), ref, atol=1e-12)
