"""The prefill-work statistics the analytic evaluator queues with, by hand."""

from __future__ import annotations

import numpy as np
import pytest

from codesign.workload.agent_load import WAIT_TAIL_GRID, _residual_quantiles, _tier_load


def _tier(new: np.ndarray):
    ones = np.ones_like(new)
    return _tier_load("main", new, new, ones, ones)  # context = new: nothing cacheable


def test_prefill_scv_is_the_new_tokens_squared_cv() -> None:
    # 1000 and 3000 new tokens: mean 2000, variance 1e6 -> SCV 1e6 / 2000^2 = 0.25, so the
    # M/G/1 wait is (1 + 0.25) / 2 = 0.625 of rho / (1 - rho) x the mean prefill
    t = _tier(np.array([1000.0, 3000.0]))
    assert t.prefill_scv(np.array([0.0, 0.5, 1.0])) == pytest.approx([0.25, 0.25, 0.25])
    assert _tier(np.full(10, 500.0)).prefill_scv(np.array([0.3]))[0] == pytest.approx(0.0)


def test_residual_life_quantiles() -> None:
    # equal work S: the residual is uniform on (0, S), mean S / 2: quantile at tail t is
    # (1 - t) S, i.e. 2 (1 - t) times the mean
    r = _residual_quantiles(np.full(100, 7.0))
    np.testing.assert_allclose(r, 2 * (1 - WAIT_TAIL_GRID), atol=1e-12)
    # exponential work: the residual is exponential with the same mean: -ln t
    r = _residual_quantiles(np.random.default_rng(1).exponential(3.0, 300_000))
    keep = WAIT_TAIL_GRID >= 1e-3
    np.testing.assert_allclose(r[keep], -np.log(WAIT_TAIL_GRID[keep]), rtol=0.03, atol=0.01)


def test_heavy_tailed_work_makes_most_waits_short_and_a_few_long() -> None:
    # 99 requests of 1,000 new tokens and one of 150,000 (a compaction): an arrival that
    # waits almost surely sits behind the big one (its share of the work is 60 %), so the
    # median wait is far above the small jobs' residual and the tail reaches the whole job
    new = np.array([1000.0] * 99 + [150_000.0])
    t = _tier(new)
    mean_r = (new**2).sum() / (2 * new.sum())  # E[R] = E[S^2] / (2 E[S])
    q50 = t.wait_ratio(np.array([1.0]), np.array([0.5]))[0] * mean_r
    q01 = t.wait_ratio(np.array([1.0]), np.array([0.01]))[0] * mean_r
    assert 20_000 < q50 < 150_000
    assert q01 == pytest.approx(150_000 * (1 - 0.01 / 0.6), rel=0.03)


def test_misses_below_the_ideal_are_whole_contexts() -> None:
    """Two 100-token contexts with 10 new tokens each (ideal hit 0.9). At hit 0.8 the
    cache misses 40 tokens per two requests, 20 beyond the new ones: a share
    p = 20 / 180 = 0.111 of the requests prefills its whole context (100 tokens) and the
    rest only their 10 new ones. Mean 0.889 x 10 + 0.111 x 100 = 20 = (1 - 0.8) x 100;
    the median request computes 10 (half the mean), the p90 and p99 ones 100 (5x: more
    than a tenth of the requests miss); SCV
    (0.889 x 10^2 + 0.111 x 100^2) / 20^2 - 1 = 2.0. Spreading the misses over every
    request, as before, made each compute 20 (all quantiles at the mean, SCV 0)."""
    context, new = np.array([100.0, 100.0]), np.array([10.0, 10.0])
    ones = np.ones(2)
    t = _tier_load("main", context, new, ones, ones)
    q = t.quantile_ratio(np.array([0.8]))[0]
    assert q == pytest.approx([0.5, 5.0, 5.0])
    assert t.prefill_scv(np.array([0.8]))[0] == pytest.approx(2.0, rel=1e-9)
    assert t.new_tokens(np.array([0.8]))[0] == pytest.approx(20.0)
    # at and above the ideal, only the new tokens: every request computes 10
    assert t.quantile_ratio(np.array([0.9]))[0] == pytest.approx([1.0, 1.0, 1.0])


def test_weighted_residual_quantiles_equal_repeated_samples() -> None:
    work = np.array([1.0, 5.0, 40.0])
    weighted = _residual_quantiles(work, np.array([3.0, 1.0, 2.0]))
    repeated = _residual_quantiles(np.array([1.0, 1.0, 1.0, 5.0, 40.0, 40.0]))
    np.testing.assert_allclose(weighted, repeated, rtol=1e-12)
