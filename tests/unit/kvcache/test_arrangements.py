"""Hit curves averaged over session orders (`hit_curve(arrangements=K)`): the mean of the
single orders' curves, exactly at grid points, and what the evaluator builds per trace."""

from __future__ import annotations

import numpy as np
import pytest

from codesign.errors import SpecError
from codesign.kvcache import hit_curve
from codesign.kvcache.analytic import arrangements_for
from codesign.workload.summary import ALL, summarize
from codesign.workload.synth import generate, preset

DELAYS = (30.0, 90.0)


@pytest.fixture(scope="module")
def fleet():
    return generate(preset("claude-code-fleet").model_copy(update={"sessions": 24, "seed": 3}))


def test_orders_the_evaluator_averages() -> None:
    """Enough orders to hold 200 sessions between them, at most four: a 64-session
    sample gets 4, 128 gets 2, 200 or more one (its order is as steady as four of 64)."""
    assert [arrangements_for(s) for s in (1, 64, 65, 100, 128, 199, 200, 710)] == [
        4,
        4,
        4,
        2,
        2,
        2,
        1,
        1,
    ]


def test_the_mean_of_the_orders(fleet) -> None:
    """Three orders: the hit ratio, the attention hit ratio and the drop at a delay are
    the mean of seeds 0, 1 and 2's own curves (read at their own capacity grids, ~1%
    apart, so within interpolation error), and one order is seed 0's curve itself."""
    mean3 = hit_curve(fleet, delays_s=DELAYS, arrangements=3)
    singles = [hit_curve(fleet, seed=s, delays_s=DELAYS) for s in range(3)]
    one = hit_curve(fleet, delays_s=DELAYS, arrangements=1)
    np.testing.assert_array_equal(one.hit_table, singles[0].hit_table)
    np.testing.assert_array_equal(one.delay_drop_table, singles[0].delay_drop_table)
    caps = np.geomspace(2e4, 3e6, 25)
    for n in (1.0, 2.0, 4.0, 8.0, 16.0):  # the delayed replays' grid
        for d in (None, 30.0, 90.0):
            delay = None if d is None else np.full(caps.size, d)
            for attention in (False, True):
                want = np.mean(
                    [c.hit_ratio(caps, n, delay, attention=attention) for c in singles], axis=0
                )
                got = mean3.hit_ratio(caps, n, delay, attention=attention)
                np.testing.assert_allclose(got, want, atol=2e-3)
    # the orders differ (else the mean would prove nothing)
    spread = np.ptp([c.hit_ratio(caps, 8.0) for c in singles], axis=0)
    assert spread.max() > 0.01


def test_a_bad_count_is_refused(fleet) -> None:
    with pytest.raises(SpecError, match="arrangements"):
        hit_curve(fleet, arrangements=0)
    with pytest.raises(SpecError, match="got 1.5"):  # not silently one order
        hit_curve(fleet, arrangements=1.5)


def test_the_evaluators_curve_averages_orders() -> None:
    """A summary's curve averages `arrangements_for(sessions)` orders: for 12 sessions,
    four, so it matches a curve built with four (within the interpolation between their
    capacity grids: the summary's also spans the delayed replays) and not seed 0's alone."""
    trace = generate(preset("claude-code-fleet").model_copy(update={"sessions": 12, "seed": 1}))
    curve = summarize(trace).curve(ALL, round_robin=False)
    four = hit_curve(trace, arrangements=4)
    alone = hit_curve(trace)
    caps = np.geomspace(2e4, 2e6, 20)
    for n in (2.0, 4.0, 6.0):
        np.testing.assert_allclose(curve.hit_ratio(caps, n), four.hit_ratio(caps, n), atol=1e-4)
    diff = [np.abs(curve.hit_ratio(caps, n) - alone.hit_ratio(caps, n)).max() for n in (4.0, 6.0)]
    assert max(diff) > 1e-3
