"""The cache feedback (`evaluate_delay`): slower responses stretch the sessions' turns and
lose prefix hits; near a cache's working set the evaluator settles in the thrashing state
the simulator falls into, where it used to keep the trace timing's hits."""

from __future__ import annotations

import numpy as np
import pytest

import codesign.evaluate_core as evaluate_core
import codesign.evaluate_delay as evaluate_delay
from codesign.deployment import Deployment
from codesign.evaluate import evaluate
from codesign.simulate import simulate

# ~925K KV tokens per worker (vLLM's 90 % of the memory); 64 fleet sessions of contexts up
# to ~900K tokens
QWEN = """
model: Qwen/Qwen3-32B
engine: vllm
precision: {gemm: fp8, kv: fp8}
pools: [{role: agg, system: h100_sxm, workers: 2, parallel: {tp: 2}}]
router: session_affinity
"""


SEEDS = range(4)  # the simulation's outcome near a working set depends on the session mix
METRICS = ("cache_hit_ratio", "sessions_per_hour", "response_delay_s", "output_tokens_per_s")


def _both(fleet64, load64, sessions: int) -> tuple[dict[str, float], dict[str, float]]:
    """(simulation over SEEDS, mean; evaluator) metrics of QWEN at ``sessions``."""
    dep = Deployment.from_yaml(QWEN)
    runs = [simulate(dep, fleet64, sessions, seed=s).metrics for s in SEEDS]
    sim = {k: float(np.mean([r[k] for r in runs])) for k in (*METRICS, "ttft_p50_s")}
    out = evaluate([dep], load64, sessions)
    assert out["feasible"][0], out["reason"][0]
    return sim, {k: float(out[k][0]) for k in (*METRICS, "ttft_p50_s")}


def _rel(sim: dict[str, float], ev: dict[str, float], k: str) -> float:
    return ev[k] / sim[k] - 1.0


def test_light_load_keeps_most_hits(fleet64, load64) -> None:
    """16 sessions (8 a worker): the simulations (4 session mixes) lose little (hit 0.91,
    3.87 sessions an hour, responses 19 s late), and so does the evaluator (hit 0.93, 3.83
    an hour, 19 s late). Its curve averages four session orders
    (`analytic.arrangements_for`); with one order, whose hit ratio happened to dip at 8
    sessions a cache, it claimed 3.49 an hour against the simulations' 4.20 (measured
    when every engine kept a flat 5% memory reserve)."""
    sim, ev = _both(fleet64, load64, 16)
    assert ev["cache_hit_ratio"] == pytest.approx(sim["cache_hit_ratio"], abs=0.03)
    assert abs(_rel(sim, ev, "sessions_per_hour")) < 0.1
    # misses below the ideal are whole contexts of a few requests: the median request
    # prefills only its own new tokens (measured: TTFT p50 0.26 vs 0.22 s simulated)
    assert ev["ttft_p50_s"] < 2 * sim["ttft_p50_s"]


def test_the_knee_follows_the_simulation(fleet64, load64, monkeypatch) -> None:
    """24 sessions: the simulations slide into thrashing (hit 0.64, 3.26 sessions an hour,
    responses 191 s late, over 4 mixes from 2.25 to 4.51 an hour). A whole long context
    that misses prefills its attention pairs, the square of its length, and every request
    behind it waits (M/G/1 with the work's variability, `TierLoad.prefill_scv`): the
    evaluator settles at 2.92 an hour, 201 s late. Its hit ratio is lower (0.52): it
    reads the hits at the mean delay, where the simulation's long waits fall on few
    requests. With the variability of the tokens alone it claimed 4.76 an hour, 46% more,
    at hit 0.77."""
    sim, ev = _both(fleet64, load64, 24)
    assert sim["response_delay_s"] > 100 and ev["response_delay_s"] > 100
    assert ev["cache_hit_ratio"] == pytest.approx(sim["cache_hit_ratio"], abs=0.12)
    for k in ("sessions_per_hour", "output_tokens_per_s"):
        assert abs(_rel(sim, ev, k)) < 0.15, (k, sim[k], ev[k])
    monkeypatch.setattr(evaluate_core, "pair_tokens", lambda *a: 0.0)  # tokens alone
    tokens = evaluate([Deployment.from_yaml(QWEN)], load64, 24)
    assert tokens["sessions_per_hour"][0] > 1.4 * sim["sessions_per_hour"]
    assert tokens["cache_hit_ratio"][0] > ev["cache_hit_ratio"] + 0.2


def test_the_collapse_the_simulator_falls_into(fleet64, load64, monkeypatch) -> None:
    """32 sessions: the simulations thrash (hit 0.45, 2.44 sessions an hour, responses
    444 s late). At the trace's timing the evaluator kept a 0.90 hit ratio and claimed
    6.2 sessions an hour; with the feedback it settles at responses minutes late and
    serves as many sessions (2.45 an hour, 414 s late). Its hit ratio overshoots the
    collapse (0.13): every request takes the mean delay, where the simulation's long
    waits fall on few."""
    sim, ev = _both(fleet64, load64, 32)
    assert sim["cache_hit_ratio"] < 0.6 and ev["cache_hit_ratio"] < 0.6
    assert sim["response_delay_s"] > 100 and ev["response_delay_s"] > 100
    for k in ("sessions_per_hour", "output_tokens_per_s"):
        assert abs(_rel(sim, ev, k)) < 0.2, (k, sim[k], ev[k])
    monkeypatch.setattr(evaluate_delay, "MIN_DELAY_S", np.inf)  # the trace's timing
    old = evaluate([Deployment.from_yaml(QWEN)], load64, 32)
    assert old["cache_hit_ratio"][0] > 0.85
    assert old["sessions_per_hour"][0] > 2 * sim["sessions_per_hour"]


def test_the_settled_delay_is_a_root(load64, monkeypatch) -> None:
    """At the reported delay d the responses come back d late (within 2 s or 10%), from
    the last pass the evaluator made; with a cache past its working set that takes
    several passes, each on the candidates still moving."""
    passes: list[tuple[np.ndarray, dict]] = []
    inner = evaluate_delay.evaluate_candidates

    def spy(c, load, tier, clients, calib, sessions, delay=None):
        out = inner(c, load, tier, clients, calib, sessions, delay)
        if delay is not None:
            passes.append((np.asarray(delay), out, tier.server_mean_s))
        return out

    monkeypatch.setattr(evaluate_delay, "evaluate_candidates", spy)
    deps = [
        Deployment.from_yaml(QWEN),
        Deployment.from_yaml(QWEN.replace("workers: 2", "workers: 8")),
    ]
    out = evaluate(deps, load64, 32)
    assert out["feasible"].all(), out["reason"]
    delay, last, server = passes[-1]
    assert len(passes) >= 3 and len(delay) == 1  # only the crowded cache kept moving
    excess = float(last["ttft_s"][0] + (last["osl"][0] - 1) * last["tpot_s"][0] - server)
    assert float(delay[0]) == pytest.approx(out["response_delay_s"][0])
    assert abs(excess - delay[0]) <= max(2.0, 0.1 * delay[0])
    assert out["response_delay_s"][0] > 100 and out["cache_hit_ratio"][0] < 0.5
    # eight workers hold four sessions each: their hits stay near the trace timing's
    assert out["response_delay_s"][1] < 10 and out["cache_hit_ratio"][1] > 0.9
