"""The agent evaluator charges the prefill's causal attention at the mean of the requests'
own pairs, (L^2 - h^2) / 2 for L tokens with h cached, not at the mean prompt's: a hand
example, the curve against the block simulation, and what it changes."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import codesign.evaluate_core as ec
from codesign.deployment import Deployment
from codesign.evaluate import evaluate
from codesign.kvcache import hit_curve, simulate
from codesign.kvcache.analytic import arrangements_for
from codesign.models import load_model
from codesign.perf.group import Group
from codesign.perf.predict import evaluate_group
from codesign.perf.profile import build_profile
from codesign.workload.agent_load import agent_load, session_gaps
from codesign.workload.summary import summarize
from codesign.workload.synth import generate, preset

QWEN = """
model: Qwen/Qwen3-32B
precision: {gemm: fp8, kv: fp8}
pools: [{role: agg, system: h100_sxm, workers: 1, parallel: {tp: 1}}]
router: session_affinity
"""


@pytest.fixture(scope="module")
def fleet():
    return generate(preset("claude-code-fleet").model_copy(update={"sessions": 24, "seed": 3}))


def _group_of(dep_yaml: str, load, sessions: float, monkeypatch) -> tuple[Group, dict]:
    """The perf-model group the evaluator builds for one deployment, and its outputs."""
    seen: dict[str, object] = {}
    inner = ec.evaluate_group

    def spy(g, calib):
        seen["group"], seen["calib"] = g, calib
        return inner(g, calib)

    monkeypatch.setattr(ec, "evaluate_group", spy)
    out = evaluate([Deployment.from_yaml(dep_yaml)], load, sessions)
    assert out["feasible"][0], out["reason"][0]
    return seen["group"], {**out, "calib": seen["calib"]}


def test_attention_prefix_by_hand() -> None:
    """Two prompts: 10,000 tokens with 9,000 cached (1,000 x 9,500 = 9.5e6 pairs) and a
    30,000-token miss (4.5e8 pairs): mean 2.2975e8 pairs, where the mean prompt (20,000
    tokens, 4,500 cached, 15,500 new) has 15,500 x (4,500 + 7,750) = 1.899e8. The prefix
    that gives the mean pairs is 2.2975e8 / 15,500 - 7,750 = 7,072.6 tokens, and the
    attention FLOPs at it are the mean of the two prompts' FLOPs."""
    pairs = (1000 * 9500 + 30000**2 / 2) / 2
    assert pairs == pytest.approx(2.2975e8)
    g = Group.__new__(Group)
    object.__setattr__(g, "prefill_pairs", np.array([pairs]))
    prefix = g.attention_prefix(np.array([0]), np.array([4500.0]), np.array([15500.0]))
    assert prefix[0] == pytest.approx(pairs / 15500 - 7750) and prefix[0] == pytest.approx(
        7072.58, abs=0.01
    )
    prof = build_profile(load_model("Qwen/Qwen3-32B"))
    mean = prof.prefill_attn_flops(np.array([15500.0]), prefix)[0]
    each = prof.prefill_attn_flops(np.array([1000.0, 30000.0]), np.array([9000.0, 0.0]))
    assert mean == pytest.approx(each.mean(), rel=1e-9)
    object.__setattr__(g, "prefill_pairs", None)
    assert g.attention_prefix(np.array([0]), np.array([4500.0]), np.array([15500.0]))[0] == 4500


def test_pairs_equal_the_block_simulation(fleet, monkeypatch, at_trace_timing) -> None:
    """The mean pairs the evaluator charges are the block LRU simulation's mean of
    (L^2 - h^2) / 2 at the worker's capacity and sessions, and above the mean prompt's
    where the cache is short of the working set: the long contexts are the ones that miss
    (with room to spare, the misses are first turns and compactions, and the two agree
    within ~10%)."""
    load = agent_load(summarize(fleet), session_gaps(fleet), merge_tiers=True)
    g, _ = _group_of(QWEN, load, 8, monkeypatch)
    seen: dict[str, object] = {}
    inner = ec._hit

    def spy(*args, **kw):
        seen["cap"] = float(np.asarray(args[2])[0])
        return inner(*args, **kw)

    monkeypatch.setattr(ec, "_hit", spy)
    evaluate([Deployment.from_yaml(QWEN)], load, 8)
    # over the session orders the evaluator's curve averages (4 for these 24 sessions)
    sims = [simulate(fleet, [seen["cap"]], 8, seed=k) for k in range(arrangements_for(24))]
    exact = np.mean([(r.input_sq_tokens - r.hit_sq_tokens) / 2 / r.requests for r in sims])
    assert g.prefill_pairs[0] == pytest.approx(exact, rel=0.01)
    sim = sims[0]
    isl = float(g.rows.isl[0])
    cached = np.floor(isl * g.prefix_hit[0])
    new = isl - cached
    mean_prompt = new * (cached + new / 2)
    assert 0.5 < sim.hit_ratio < 0.99
    assert g.prefill_pairs[0] > 1.2 * mean_prompt  # 1.38x: hit 0.88 on a 333K-token cache
    # the curve at the replay's N is exact there (N = 8 is a grid row)
    curve = hit_curve(fleet, sessions_grid=[8])
    a = float(curve.hit_ratio(seen["cap"], 8, attention=True))
    assert a == pytest.approx(sim.hit_sq_tokens / sim.input_sq_tokens, abs=1e-4)


def test_the_work_rises_but_not_the_median_request(fleet, monkeypatch, at_trace_timing) -> None:
    """With the exact pairs the prefill work, utilisation and mean TTFT rise over the mean
    prompt's, while the median request's TTFT (a typical prompt's prefill scaled by its
    new tokens, no wait) stays: the extra work is the long contexts' misses."""
    load = agent_load(summarize(fleet), session_gaps(fleet), merge_tiers=True)
    g, out = _group_of(QWEN, load, 8, monkeypatch)
    exact = evaluate_group(g, out["calib"])
    flat = evaluate_group(dataclasses.replace(g, prefill_pairs=None), out["calib"])
    assert exact["prefill_utilization"][0] > 1.1 * flat["prefill_utilization"][0]
    assert exact["ttft_s"][0] > flat["ttft_s"][0]
    assert exact["own_prefill_typical_s"][0] == pytest.approx(flat["own_prefill_alone_s"][0])
    assert exact["own_prefill_alone_s"][0] > 1.2 * flat["own_prefill_alone_s"][0]
    monkeypatch.setattr(
        ec,
        "evaluate_group",
        lambda g, c: evaluate_group(dataclasses.replace(g, prefill_pairs=None), c),
    )
    before = evaluate([Deployment.from_yaml(QWEN)], load, 8)
    assert out["ttft_p50_s"][0] == pytest.approx(before["ttft_p50_s"][0], rel=0.05)
    assert out["sessions_per_hour"][0] < before["sessions_per_hour"][0]
