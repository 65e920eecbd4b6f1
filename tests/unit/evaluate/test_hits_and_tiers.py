"""Prefix hits and the sub-agent tier in the agent evaluator: round robin and merged tiers
against the block LRU simulation, tiers tied to one session rate, the hit split by hand."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import codesign.evaluate as ev
import codesign.evaluate_core as ec
from codesign.deployment import Deployment
from codesign.evaluate import evaluate, session_time_s, tier_clients
from codesign.kvcache import hit_curve, simulate
from codesign.kvcache.analytic import arrangements_for
from codesign.kvcache.delay import DELAY_GRID_S, delayed
from codesign.workload import TraceBuilder, TraceMeta
from codesign.workload.agent_load import _tier_groups, agent_load, session_gaps, sub_tier_apart
from codesign.workload.summary import critical_weights, summarize
from codesign.workload.synth import generate, preset
from hwmodels import get_system
from tests.unit.kvcache.test_round_robin import all_workers_simulated

R1_AGG = """
model: deepseek-ai/DeepSeek-R1
precision: {gemm: nvfp4, moe: nvfp4, kv: fp8}
pools: [{role: agg, system: gb200, workers: WORKERS, parallel: {tp: 8}}]
kv_tiers: {host_gb_per_worker: 200}
router: round_robin
"""
QWEN_ONE_GPU = """
model: Qwen/Qwen3-32B
precision: {gemm: bf16, kv: bf16}
pools: [{role: agg, system: h200_sxm, workers: 1, parallel: {tp: 1}}]
"""
R1_SUBAGENTS = """
model: deepseek-ai/DeepSeek-R1
mode: disagg
precision: {gemm: nvfp4, moe: nvfp4, kv: fp8}
pools:
  - {role: prefill, system: gb200, workers: 1, parallel: {tp: 8}}
  - {role: decode, system: gb200, workers: 1, parallel: {tp: 1, dp: 8, ep: 8}, max_batch: 128}
kv_tiers: {host_gb_per_worker: 100}
subagents:
  model: Qwen/Qwen3-32B
  pools: [{role: agg, system: h200_sxm, workers: 1, parallel: {tp: 2}}]
"""


def _synth(name: str, sessions: int, seed: int):
    return generate(preset(name).model_copy(update={"sessions": sessions, "seed": seed}))


@pytest.fixture(scope="module")
def fleet():
    return _synth("claude-code-fleet", 24, 3)


@pytest.fixture(scope="module")
def sessions_trace():
    """Claude Code sessions with ~4 sub-agent requests per main-agent request."""
    return _synth("claude-code-session", 4, 1)


def _with_capacity(monkeypatch) -> dict[str, object]:
    """Record the worker capacities and sessions the evaluator reads its curve at."""
    seen: dict[str, object] = {}
    inner = ec._hit

    def spy(*args, **kw):
        seen["cap_hbm"], seen["cap_all"], seen["sessions"] = args[-4], args[-3], args[-2]
        return inner(*args, **kw)

    monkeypatch.setattr(ec, "_hit", spy)
    return seen


@pytest.mark.parametrize("workers", [4, 8])
def test_round_robin_keeps_the_prefix_of_the_last_visit(fleet, monkeypatch, workers) -> None:
    """Every worker's cache holds all sessions: a request hits what its session's last
    visit to that worker cached (the old evaluator divided the hit ratio by the workers:
    0.24 at 4 workers, 0.12 at 8, where the simulation of the workers gives ~0.88, 0.80)."""
    load = agent_load(summarize(fleet), session_gaps(fleet), merge_tiers=True)
    seen = _with_capacity(monkeypatch)
    dep = Deployment.from_yaml(R1_AGG.replace("WORKERS", str(workers)))
    out = evaluate([dep], load, 16)
    assert out["feasible"][0], out["reason"][0]
    assert seen["sessions"] == 16  # every worker sees every session
    cap = float(np.asarray(seen["cap_all"])[0])
    sim = all_workers_simulated(fleet, cap, 16, workers, seed=2)
    assert out["cache_hit_ratio"][0] == pytest.approx(sim, abs=0.03)
    assert sim > 0.75


def test_merged_tiers_share_one_cache(sessions_trace, monkeypatch) -> None:
    """Main and sub-agent requests on one GPU compete for its KV cache: the curve over all
    requests at the full capacity, which the block simulation of all tiers on one cache
    gives, at the responses' delay (~71 s here; the old evaluator read each tier's own
    curve at the full capacity, ~15 pp high on this trace)."""
    s = summarize(sessions_trace)
    load = agent_load(s, session_gaps(sessions_trace), merge_tiers=True)
    seen = _with_capacity(monkeypatch)
    out = evaluate([Deployment.from_yaml(QWEN_ONE_GPU)], load, 8)
    cap = float(np.asarray(seen["cap_all"])[0])
    assert cap < 1e6  # a capacity-limited cache
    # read where the responses settle, slower than the trace's (`evaluate_delay`)
    delay = float(out["response_delay_s"][0])
    # over the session orders the evaluator averages (4 for these 4 sessions)
    orders = arrangements_for(sessions_trace.n_sessions)
    every = hit_curve(sessions_trace, sessions_grid=[8], delays_s=DELAY_GRID_S, arrangements=orders)
    # the same curve (its capacity grid, ~1% steps, spans the round-robin streams too)
    hit = out["cache_hit_ratio"][0]
    assert hit == pytest.approx(float(every.hit_ratio(cap, 8, delay)), abs=1e-4)
    late = delayed(sessions_trace, delay)
    sims = [simulate(late, [cap], 8, seed=k).hit_ratio for k in range(orders)]
    assert hit == pytest.approx(float(np.mean(sims)), abs=0.01)
    block = simulate(sessions_trace, [cap], 8).hit_ratio
    w = {t: float(ts.context_tokens.sum()) for t, ts in s.tiers.items()}
    apart = sum(
        w[t] * float(hit_curve(sessions_trace, t, sessions_grid=[8]).hit_ratio(cap, 8)) for t in w
    ) / sum(w.values())
    assert apart > block + 0.05  # what the tiers read apart would have claimed


def test_sub_agents_follow_the_session_rate(sessions_trace, monkeypatch) -> None:
    """Sub-agent pools serve the trace's sub-agent requests per session: the two parts'
    request rates stand in the trace's ratio (the old split by requests x gap gave ~1 to 1
    where the trace has ~4 to 1), and sessions end at N / T, T the session time at the
    parts' response times (`session_time_s`)."""
    load = agent_load(summarize(sessions_trace), session_gaps(sessions_trace))
    parts: dict[str, dict[str, np.ndarray]] = {}
    inner = ev.evaluate_candidates

    def spy(c, ld, tier, *args):
        out = inner(c, ld, tier, *args)
        parts[tier.name] = out  # the last pass of each part
        return out

    monkeypatch.setattr(ev, "evaluate_candidates", spy)
    out = evaluate([Deployment.from_yaml(R1_SUBAGENTS)], load, 16)
    assert out["feasible"][0], out["reason"][0]
    main, small = load.tiers["main"], load.tiers["small"]
    ratio = parts["small"]["requests_per_s"][0] / parts["main"]["requests_per_s"][0]
    assert ratio == pytest.approx(small.requests / main.requests, rel=0.02)
    assert small.requests / main.requests > 3
    resp = [p["ttft_s"] + (p["osl"] - 1) * p["tpot_s"] for p in (parts["main"], parts["small"])]
    t = session_time_s([main, small], resp)[0]
    assert out["sessions_per_hour"][0] == pytest.approx(3600 * 16 / t, rel=0.02)
    # the device/host split covers both parts' input tokens
    m, s = parts["main"], parts["small"]
    tok_m, tok_s = (p["requests_per_s"] * p["isl"] for p in (m, s))
    hbm = tok_m * m["hit"] * (1 - m["host_share"]) + tok_s * s["hit"] * (1 - s["host_share"])
    host = tok_m * m["hit"] * m["host_share"] + tok_s * s["hit"] * s["host_share"]
    np.testing.assert_allclose(out["cache_hit_ratio_hbm"], hbm / (tok_m + tok_s), rtol=1e-9)
    np.testing.assert_allclose(out["cache_hit_ratio_host"], host / (tok_m + tok_s), rtol=1e-9)
    assert out["cache_hit_ratio_hbm"][0] + out["cache_hit_ratio_host"][0] == pytest.approx(
        out["cache_hit_ratio"][0], abs=1e-12
    )
    assert abs(s["hit"][0] - m["hit"][0]) > 0.005  # the parts' hits differ: the split matters
    # the session time takes both parts' responses; the sub-agent latencies are reported
    np.testing.assert_allclose(
        out["session_time_p50_s"], load.session_time_p50_s(resp[0], resp[1]), rtol=1e-12
    )
    assert load.session_time_p50_s(resp[0], 10 * resp[1])[0] > out["session_time_p50_s"][0]
    assert out["subagent_tpot_p50_ms"][0] == pytest.approx(s["tpot_mid_s"][0] * 1e3)
    assert 0 < out["subagent_ttft_p50_s"][0] < 2 * s["ttft_s"][0]


QWEN_DISAGG = """
model: Qwen/Qwen3-32B
mode: disagg
precision: {gemm: fp8, kv: fp8}
pools:
  - {role: prefill, system: h100_sxm, workers: 2, parallel: {tp: 2}}
  - {role: decode, system: h200_sxm, workers: DECODERS, parallel: {tp: 4}}
router: session_affinity
"""


def test_disaggregated_prefix_cache_is_the_prefill_workers(fleet, monkeypatch) -> None:
    """The engines look prefixes up on the prefill workers (Dynamo's prefill router,
    SGLang's prefill radix cache, TRT-LLM's context servers) and send the whole context's
    KV to a decode worker: the curve is read at a prefill worker's capacity (the same as an
    agg worker of that layout) for the sessions a prefill worker serves (16 / 2). The
    decode pool (its size, its system's larger memory) changes no hit."""
    load = agent_load(summarize(fleet), session_gaps(fleet), merge_tiers=True)
    seen = _with_capacity(monkeypatch)
    two, three = (Deployment.from_yaml(QWEN_DISAGG.replace("DECODERS", n)) for n in "23")
    agg = Deployment.from_yaml(
        "model: Qwen/Qwen3-32B\nprecision: {gemm: fp8, kv: fp8}\n"
        "pools: [{role: agg, system: h100_sxm, workers: 2, parallel: {tp: 2}}]\n"
        "router: session_affinity\n"
    )
    caps, hits = [], []
    for dep in (two, three, agg):
        out = evaluate([dep], load, 16)
        assert out["feasible"][0], out["reason"][0]
        caps.append(float(np.asarray(seen["cap_hbm"])[0]))
        hits.append(float(out["cache_hit_ratio"][0]))
        assert float(np.asarray(seen["sessions"])[0]) == 16  # the router's share: 16 / 2 below
    assert caps[0] == caps[1] == caps[2] > 0
    assert hits[0] == hits[1] == hits[2]
    (tier,) = load.tiers.values()  # one merged tier
    assert tier.curve is not None
    assert hits[0] == pytest.approx(float(tier.curve.hit_ratio(caps[0], 8)), abs=1e-9)
    # the host tier is the prefill workers': its cap is the prefill system's host memory
    cap_gb = 2 * get_system("h100_sxm").host_kv_gb_per_chip
    tiers = two.kv_tiers.model_copy(update={"host_gb_per_worker": cap_gb + 1})
    out = evaluate([two.model_copy(update={"kv_tiers": tiers})], load, 16)
    assert not out["feasible"][0]
    assert "prefill pool: kv_tiers.host_gb_per_worker" in out["reason"][0]
    assert "h100_sxm" in out["reason"][0]


def test_a_small_tier_only_trace_is_served_on_the_main_pools(sessions_trace) -> None:
    """Every request relabelled small-tier (a trace recorded with a mini model as its
    primary agent): one tier group, evaluated on the main pools as the simulator serves it
    (``sub_tier_apart``); the sub-agent pools idle, cost, and report no latency."""
    small = sessions_trace.tier_code("small")
    only_small = dataclasses.replace(
        sessions_trace, tier=np.full_like(sessions_trace.tier, small), _cache={}
    )
    summary = summarize(only_small)
    assert list(summary.tiers) == ["small"]
    assert _tier_groups(summary, merge_tiers=False) == [["small"]]
    assert not sub_tier_apart(["small"], merge_tiers=False)
    assert sub_tier_apart(["main", "small"], merge_tiers=False)
    assert not sub_tier_apart(["main", "small"], merge_tiers=True)
    load = agent_load(summary, session_gaps(only_small))
    dep = Deployment.from_yaml(R1_SUBAGENTS)
    out = evaluate([dep], load, 4)
    assert out["feasible"][0], out["reason"][0]
    assert np.isfinite(out["ttft_p50_s"][0])
    assert np.isnan(out["subagent_ttft_p50_s"][0])
    alone = evaluate([dep.model_copy(update={"subagents": None})], load, 4)
    assert out["ttft_p50_s"][0] == pytest.approx(alone["ttft_p50_s"][0], rel=1e-9)
    assert out["usd_per_hour"][0] > alone["usd_per_hour"][0]  # the idle pools still cost


def test_critical_path_weights_by_hand() -> None:
    """Session 0: a primary agent (requests at 0 and 100 s) and two sub-agents whose spans
    are [10, 30] and [20, 40] s: their union (30 s) is 3/4 of their sum (40 s), so a
    sub-agent response lengthens the session by 3/4 of itself. Session 1: one sub-agent
    alone counts whole."""
    b = TraceBuilder(TraceMeta(block_size_tokens=0))
    s0 = b.add_session("s0")
    p0 = b.add_agent(s0)
    b.add_requests(
        p0,
        arrival_s=[0.0, 100.0],
        input_tokens=[10, 10],
        output_tokens=[1, 1],
        server_s=[5.0, 5.0],
        gap_s=[0.0, 95.0],
    )
    for start in (10.0, 20.0):
        a = b.add_agent(s0, p0, "Explore", "x", start)
        b.add_requests(
            a,
            arrival_s=[start, start + 15.0],
            input_tokens=[10, 10],
            output_tokens=[1, 1],
            server_s=[5.0, 5.0],
            gap_s=[0.0, 10.0],
        )
    s1 = b.add_session("s1")
    p1 = b.add_agent(s1)
    b.add_requests(p1, arrival_s=[0.0], input_tokens=[10], output_tokens=[1], server_s=[1.0])
    a1 = b.add_agent(s1, p1, "Explore", "x", 2.0)
    b.add_requests(a1, arrival_s=[2.0], input_tokens=[10], output_tokens=[1], server_s=[3.0])
    t = b.build()
    w = critical_weights(t)
    primary = t.req_is_primary
    np.testing.assert_allclose(w[primary], 1.0)
    np.testing.assert_allclose(w[~primary & (t.req_session == 0)], 0.75)
    np.testing.assert_allclose(w[~primary & (t.req_session == 1)], 1.0)


def test_session_time_and_clients_by_hand() -> None:
    """Per session: 10 main requests with 30 s gaps (holding the sub-agents' recorded 2 s
    responses), 40 sub-agent requests with 1 s gaps, half of them on the critical path.
    At responses 3 s (main) and 4 s (sub-agents): T = 10 (3 + 30) + 20 (4 - 2) = 370 s;
    N = 37 sessions give 1 session/10 s, 1 main request/s and 4 sub-agent requests/s,
    carried by 1 x (3 + 30) = 33 and 4 x (4 + 1) = 20 clients (Little's law)."""
    load = _two_tier_load()
    main, small = load.tiers["main"], load.tiers["small"]
    assert (main.critical_requests, main.critical_fixed_s) == (10.0, 300.0)
    assert small.critical_requests == 20.0 and small.critical_fixed_s == pytest.approx(-40.0)
    assert main.serial and not small.serial
    resp = [np.array([3.0]), np.array([4.0])]
    assert session_time_s([main, small], resp)[0] == pytest.approx(370.0)
    np.testing.assert_allclose(tier_clients([main, small], 37.0, resp), [[33.0], [20.0]])
    # without sub-agents the clients are the sessions
    assert tier_clients([main], 37.0, resp[:1])[0][0] == 37.0


def test_session_time_p50_per_session_by_hand() -> None:
    """Three sessions, T = a_main r_main + a_sub r_sub + b each (critical path):
    A: 5 primary requests, 20 s gaps: T = 5 r + 100;
    B: `_two_tier_load`'s session: T = 10 r + 20 r_sub + 260 (two sub-agents side by
    side count half each; their recorded 2 s responses come out of the gaps);
    C: 2 primary requests, the second 40 s after the first response, one sub-agent of 3
    requests (2 s each) in between: T = 2 r + 3 r_sub + 34.
    At (3, 4) s: 115, 370, 52 -> median 115; at (3, 40) s: 115, 1090, 160 -> 160 (adding
    every response and gap in series ignored the sub-agents' responses and gave 115, as
    the main part's response was all it saw)."""
    b = TraceBuilder(TraceMeta(block_size_tokens=0))
    big, small = b.model_code("big-model"), b.model_code("small-haiku")
    a = b.add_agent(b.add_session("A"))
    b.add_requests(
        a,
        arrival_s=np.arange(5) * 25.0,
        input_tokens=[100] * 5,
        output_tokens=[10] * 5,
        server_s=[5.0] * 5,
        gap_s=[20.0] * 5,
        model=big,
    )
    _add_two_subagent_session(b, big, small)
    c = b.add_session("C")
    pc = b.add_agent(c)
    b.add_requests(
        pc,
        arrival_s=[0.0, 50.0],
        input_tokens=[100, 100],
        output_tokens=[10, 10],
        server_s=[10.0, 10.0],
        gap_s=[0.0, 40.0],
        model=big,
    )
    sc = b.add_agent(c, pc, "Explore", "x", 12.0)
    b.add_requests(
        sc,
        arrival_s=[12.0, 15.0, 18.0],
        input_tokens=[50] * 3,
        output_tokens=[5] * 3,
        server_s=[2.0] * 3,
        gap_s=[0.0, 1.0, 1.0],
        model=small,
    )
    tr = b.build()
    load = agent_load(summarize(tr), session_gaps(tr))
    assert load.session_time_p50_table.ndim == 2  # main and sub-agent responses apart
    r = np.array([3.0, 3.0])
    got = load.session_time_p50_s(r, np.array([4.0, 40.0]))
    np.testing.assert_allclose(got, [115.0, 160.0], rtol=0.01)
    # one deployment for both tiers: one response time for all
    merged = agent_load(summarize(tr), session_gaps(tr), merge_tiers=True)
    assert merged.session_time_p50_table.ndim == 1
    # at 3 s: A 115, B 10 x 3 + 20 x 3 + 260 = 350, C 6 + 9 + 34 = 49
    assert merged.session_time_p50_s(np.array([3.0]))[0] == pytest.approx(115.0, rel=0.01)


def _add_two_subagent_session(b, big, small) -> None:
    s = b.add_session("s")
    p = b.add_agent(s)
    b.add_requests(
        p,
        arrival_s=np.arange(10) * 32.0,
        input_tokens=[100] * 10,
        output_tokens=[10] * 10,
        server_s=[2.0] * 10,
        gap_s=[30.0] * 10,
        model=big,
    )
    for _ in range(2):  # two sub-agents side by side, 20 requests each
        a = b.add_agent(s, p, "Explore", "x", 1.0)
        b.add_requests(
            a,
            arrival_s=1.0 + np.arange(20) * 3.0,
            input_tokens=[50] * 20,
            output_tokens=[5] * 20,
            server_s=[2.0] * 20,
            gap_s=[1.0] * 20,
            model=small,
        )


def _two_tier_load():
    b = TraceBuilder(TraceMeta(block_size_tokens=0))
    big, small = b.model_code("big-model"), b.model_code("small-haiku")
    _add_two_subagent_session(b, big, small)
    return agent_load(summarize(b.build()))
