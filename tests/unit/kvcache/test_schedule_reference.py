"""`replay_schedule` (array operations over all (lane, round) windows) against a scalar
reference that walks the lanes one by one, as the module docstring states the schedule:
the same stream, element for element. Both place the requests on the cycle with
`lane_coordinates`; what is checked is the windows, the warm-up and the order."""

from __future__ import annotations

import numpy as np
import pytest

from codesign.kvcache.delay import delayed
from codesign.kvcache.schedule import lane_coordinates, replay_schedule
from codesign.workload.synth import generate, preset
from tests.unit.kvcache.test_kvcache_model import _sessions


def reference_schedule(trace, n: int, seed: int = 0, requests=None):
    """Lane by lane: lane i measures the requests in [i + 1, i + 2) of the unrolled cycle
    (in periods; round k shifts that window by -k n) and plays from the earliest previous
    turn of a request measured in any of its rounds."""
    idx, u, u_start, period, rounds = lane_coordinates(trace, n, seed, requests)
    req, cp, wall, meas = [], [], [], []
    for lane in range(n):
        windows = []
        for k in range(rounds):
            inside = [j for j in range(u.size) if lane + 1 - k * n <= u[j] < lane + 2 - k * n]
            first = min((u_start[j] for j in inside), default=np.inf)
            windows.append((inside, first))
        for k, (inside, _) in enumerate(windows):
            lo = min([float(lane - k * n)] + [f + (j - k) * n for j, (_, f) in enumerate(windows)])
            for j in range(u.size):
                if lo <= u[j] < lane + 2 - k * n:
                    req.append(idx[j])
                    cp.append(lane * rounds + k)
                    wall.append((u[j] + k * n - lane) * period)
                    meas.append(j in inside)
    o = np.lexsort((np.asarray(cp), np.asarray(wall)))
    return (np.asarray(req)[o], np.asarray(cp)[o], np.asarray(wall)[o], np.asarray(meas)[o])


def _same(trace, n, seed, mask=None) -> None:
    got = replay_schedule(trace, n, seed, mask)
    want = reference_schedule(trace, n, seed, mask)
    if got.request.size == 0:
        assert want[0].size == 0
        return
    for field, ref in zip(("request", "copy", "wall_s", "measured"), want, strict=True):
        np.testing.assert_array_equal(getattr(got, field), ref, err_msg=field)


@pytest.mark.parametrize("n", [1, 2, 3, 7, 40])
@pytest.mark.parametrize("seed", [0, 5])
def test_vectorised_schedule_equals_the_lane_by_lane_reference(n, seed) -> None:
    trace = generate(preset("claude-code-fleet").with_overrides(sessions=3, seed=2))
    _same(trace, n, seed)
    _same(delayed(trace, 45.0), n, seed)  # the cache feedback's retimed replays
    mask = np.random.default_rng(seed).random(trace.n_requests) < 0.4  # a round-robin worker
    _same(trace, n, seed, mask)


@pytest.mark.parametrize(
    "arrivals",
    [[[0.0, 49.0]], [[0.0, 1.0]] * 3, [[0.0] * 4, [0.0], [0.3, 1.1, 1.7, 2.4]]],
)
@pytest.mark.parametrize("n", [1, 2, 6])
def test_boundary_positions_schedule_like_the_reference(arrivals, n) -> None:
    """Positions on period boundaries and zero-length sessions (`test_kvcache_model`)."""
    _same(_sessions(arrivals), n, 0)
    _same(_sessions(arrivals), n, 1, np.zeros(sum(map(len, arrivals)), dtype=bool))
