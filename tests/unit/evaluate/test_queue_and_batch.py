"""Queueing for a pool of prefill servers, an aggregated pool's batch limit, and what a
prefill worker's power follows."""

from __future__ import annotations

import numpy as np
import pytest

from codesign.deployment import Deployment
from codesign.evaluate import evaluate
from codesign.serving.closed_loop import queue_wait, wait_probability
from codesign.workload import load_trace
from codesign.workload.agent_load import agent_load, session_gaps
from codesign.workload.summary import summarize


def _erlang_c(c: int, rho: float) -> float:
    """Erlang C by the Erlang B recursion, exactly."""
    a, b = c * rho, 1.0
    for k in range(1, c + 1):
        b = a * b / (k + a * b)
    return b / (1.0 - rho * (1.0 - b))


@pytest.mark.parametrize(
    ("c", "rho"), [(1, 0.3), (2, 0.5), (4, 0.1), (4, 0.7), (8, 0.5), (16, 0.8), (32, 0.9)]
)
def test_the_share_that_waits_follows_erlang_c(c: int, rho: float) -> None:
    exact = _erlang_c(c, rho)
    got = float(wait_probability(np.array([rho]), np.array([c]))[0])
    # Sakasegawa's approximation: exact for one server; within 12 % where a quarter or
    # more of the requests wait, within 0.05 where few do (it overstates rare, short waits)
    assert got == pytest.approx(exact, rel=0.12 if exact >= 0.25 else 0.0, abs=0.05)
    if c == 1:
        assert got == pytest.approx(rho)


def test_a_pool_of_prefill_servers_queues_less_than_one() -> None:
    service, rho = np.array([0.27]), np.array([0.103])
    one = float(queue_wait(rho, service, 0.5)[0])
    four = float(queue_wait(rho, service, 0.5, np.array([4.0]))[0])
    assert one == pytest.approx(0.5 * 0.103 / 0.897 * 0.27)  # M/G/1
    # M/G/c: q P(wait) / (c (1 - rho)) service, P(wait) = 0.103^(sqrt(10) - 1) = 0.0074
    assert four == pytest.approx(0.5 * 0.103 ** (10**0.5 - 1) / (4 * 0.897) * 0.27)
    assert four < one / 10  # the review's probe: simulator 0.43 s mean TTFT, not 0.80


@pytest.fixture(scope="module")
def load(shared_dir):
    trace = load_trace(shared_dir / "traces" / "claude-code-weka" / "trace_0001.json.gz")
    return agent_load(summarize(trace), session_gaps(trace), merge_tiers=True)


AGG = """
model: Qwen/Qwen3-32B
precision: {gemm: fp8, moe: fp8, kv: fp8}
pools: [{role: agg, system: h200_sxm, workers: 1, parallel: {tp: 2}%s}]
"""


def test_an_aggregated_pools_max_batch_caps_its_running_sequences(load) -> None:
    free = evaluate([Deployment.from_yaml(AGG % "")], load, 64)
    one = evaluate([Deployment.from_yaml(AGG % ", max_batch: 1")], load, 64)
    # one sequence at a time: the output rate is at most 1 / TPOT of one stream, and the
    # other sessions wait for the slot
    assert one["output_tokens_per_s"][0] <= 1e3 / one["tpot_p50_ms"][0] * 1.05
    assert one["output_tokens_per_s"][0] < free["output_tokens_per_s"][0]
    assert one["ttft_p90_s"][0] > free["ttft_p90_s"][0]
    # nearly every request waits for the slot, so the wait shows at the median too (an
    # exponential wait: p50 0.69 x and p99 4.6 x its mean), not only in the tail
    assert one["ttft_p50_s"][0] > free["ttft_p50_s"][0]
    assert one["ttft_p99_s"][0] < 8 * one["ttft_p50_s"][0]


DISAGG = """
model: Qwen/Qwen3-32B
precision: {gemm: fp8, moe: fp8, kv: fp8}
mode: disagg
pools:
  - {role: prefill, system: h200_sxm, workers: 8, parallel: {tp: 2}}
  - {role: decode, system: h200_sxm, workers: 1, parallel: {tp: 2}}
"""


def test_a_prefill_worker_is_busy_only_while_it_prefills(load) -> None:
    out = evaluate([Deployment.from_yaml(DISAGG)], load, 64)
    assert out["feasible"][0], out["reason"][0]
    # 16 prefill GPUs and 2 decode GPUs: the decode pool always has sessions in flight,
    # the prefill pool is busy only its prefill utilisation (~0.43 here). Counting a
    # prefill worker busy for its requests' whole response, as before, made all 18 busy
    assert out["utilization"][0] < 0.7


def test_ttft_percentiles_rescale_the_work_that_grows_with_the_new_tokens(load) -> None:
    """A TTFT percentile is the mean request's TTFT with the work that grows with its new
    tokens rescaled by their quantile ratio: the prefill alone and the request handling
    per uncached token (not the decodes its steps carry). At one session (no queueing)
    the p50 -> p90 spread grows by new x per-token handling x (q90 - q50) when that
    handling is switched on (to 0.1%: the slower mean request changes the loop a little).
    Before, the handling stayed at the mean's, and the spread did not grow at all."""
    from codesign.perf.calibration import load_calibration

    calib = load_calibration()
    off = calib.model_copy(update={"ttft_per_input_token_us": 0.0})
    dep = Deployment.from_yaml(AGG % "")
    on_out, off_out = (evaluate([dep], load, 1, c) for c in (calib, off))
    tier = load.tiers["all"]
    hit = float(on_out["cache_hit_ratio"][0])
    q = tier.quantile_ratio(np.array([hit]))[0]
    new = float(tier.new_tokens(np.array([hit]))[0])
    per_token_s = calib.ttft_per_input_token_us * 1e-6
    spread = [o["ttft_p90_s"][0] - o["ttft_p50_s"][0] for o in (on_out, off_out)]
    assert per_token_s > 0 and q[1] > q[0]
    assert spread[0] - spread[1] == pytest.approx(new * per_token_s * (q[1] - q[0]), rel=1e-3)
