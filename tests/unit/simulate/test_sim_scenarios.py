"""Hand-checkable replays: one session, one worker, step times set by hand."""

from __future__ import annotations

import numpy as np
import pytest
from sim_helpers import QWEN_AGG, FixedModel, block_trace, qwen_agg, use_fixed_model

from codesign.deployment import Deployment
from codesign.simulate import SimOptions, Simulator
from codesign.simulate.metrics import aggregate, request_table


def _qwen_with_subagents() -> Deployment:
    """One Qwen3-32B agg worker (kv_aware) with sub-agents on one Qwen3-8B H100 worker."""
    return Deployment.from_yaml(
        QWEN_AGG.replace("WORKERS", "1").replace("ROUTER", "kv_aware")
        + "subagents:\n  model: Qwen/Qwen3-8B\n"
        + "  pools: [{role: agg, system: h100_sxm, workers: 1, parallel: {tp: 1}}]\n"
    )


def run(trace, **kw):
    sim = Simulator(qwen_agg(1), trace, SimOptions(sessions=1, total_sessions=1, **kw))
    use_fixed_model(sim)
    sim.run()
    return sim, request_table(sim)


def two_turns():
    """r0: 1000 tokens (10 blocks), 11 out; r1 after a 5 s tool gap: 2000 tokens, first 10
    blocks shared with r0, 1 out."""
    return block_trace(
        [
            {"arrival": 0.0, "server": 1.0, "input": 1000, "output": 11, "blocks": range(10)},
            {
                "arrival": 6.0,
                "server": 1.0,
                "input": 2000,
                "output": 1,
                "gap": 5.0,
                "blocks": range(20),
            },
        ]
    )


def test_two_turns_exact_ttft_tpot_and_session_time():
    sim, r = run(two_turns())
    # r0: one 0.1 s prefill step gives the first token, then 10 decode steps of 10 ms
    assert r["ttft_s"][0] == pytest.approx(0.1)
    assert r["tpot_s"][0] == pytest.approx(0.010)
    assert r["t_finish"][0] == pytest.approx(0.2)
    # r1: sent 5 s after r0 ends; 1000 of its 2000 tokens are cached on the device
    assert r["t_issue"][1] == pytest.approx(5.2)
    assert r["cached"][1] == 1000 and r["host_tok"][1] == 0 and r["hit_tier"][1] == 1
    assert r["ttft_s"][1] == pytest.approx(0.1)
    assert np.isnan(r["tpot_s"][1])
    assert sim.copy_end[0] - sim.copy_start[0] == pytest.approx(5.3)
    m, _ = aggregate(sim, r)
    assert m["cache_hit_ratio"] == pytest.approx(1000 / 3000)


def test_request_handling_per_uncached_token_delays_the_prefill_queue():
    # the two turns above with 0.1 ms per uncached prompt token: r0 prefills 1000 new
    # tokens (0.1 s later), r1 has 1000 of its 2000 cached (0.1 s later as well, not 0.2)
    sim = Simulator(qwen_agg(1), two_turns(), SimOptions(sessions=1, total_sessions=1))
    use_fixed_model(sim)
    for part in sim.parts:
        part.overhead_per_token_s = 1e-4
    sim.run()
    r = request_table(sim)
    assert r["ttft_s"][0] == pytest.approx(0.1 + 0.1)
    assert r["t_finish"][0] == pytest.approx(0.3)
    assert r["cached"][1] == 1000
    assert r["ttft_s"][1] == pytest.approx(0.1 + 0.1)


def test_subagent_spawn_and_join():
    # parent r0 ends at 1 s (recorded); a sub-agent runs 1..4 s; the parent's next request
    # came 2 s after the sub-agent ended (recorded gap 5 s includes the wait).
    tr = block_trace(
        [
            {"arrival": 0.0, "server": 1.0, "input": 500, "output": 1, "blocks": range(5)},
            {
                "agent": 1,
                "arrival": 1.0,
                "server": 3.0,
                "input": 300,
                "output": 1,
                "blocks": range(100, 103),
            },
            {
                "arrival": 6.0,
                "server": 1.0,
                "input": 800,
                "output": 1,
                "gap": 5.0,
                "blocks": range(8),
            },
        ]
    )
    sim, r = run(tr)
    order = np.argsort(r["t_issue"])
    idx = r["trace_idx"][order]
    child = int(np.flatnonzero(tr.agent_parent[tr.req_agent] >= 0)[0])
    assert idx[1] == child
    t_issue, t_finish = r["t_issue"][order], r["t_finish"][order]
    assert t_finish[0] == pytest.approx(0.1)  # parent's one-step request
    assert t_issue[1] == pytest.approx(0.1)  # spawned right after (recorded delay 0)
    assert t_finish[1] == pytest.approx(0.2)
    assert t_issue[2] == pytest.approx(0.2 + 2.0)  # join + the recorded 2 s slack
    assert sim.copy_end[0] == pytest.approx(2.3)


def test_latency_percentiles_apart_for_the_sub_agent_pools():
    """The parent's two requests run on the main pool (prefill step 0.1 s, decode 10 ms),
    its two sub-agents' on the sub-agent pool (0.3 s, 20 ms): TTFT p50 is the main
    model's 0.1 s (pooling all four requests gave 0.2 s, where the evaluator reports the
    main model's), the sub-agents' 0.3 s and 20 ms apart."""
    rows = [
        {"arrival": 0.0, "server": 1.0, "input": 500, "output": 3, "blocks": range(5)},
        *(
            {
                "agent": a,
                "arrival": float(a),  # one after the other: no queueing
                "server": 0.5,
                "input": 300,
                "output": 3,
                "blocks": range(100 * a, 100 * a + 3),
                "model": "claude-haiku",
            }
            for a in (1, 2)
        ),
        {"arrival": 6.0, "server": 1.0, "input": 800, "output": 3, "gap": 5.0, "blocks": range(8)},
    ]
    sim = Simulator(
        _qwen_with_subagents(), block_trace(rows), SimOptions(sessions=1, total_sessions=1)
    )
    use_fixed_model(sim)
    slow = FixedModel(decode_step_s=0.020, prefill_step_s=0.300)
    for w in sim.parts[1].workers:
        w.model = slow
    sim.run()
    r = request_table(sim)
    assert sorted(r["part"].tolist()) == [0, 0, 1, 1]
    m, _ = aggregate(sim, r)
    assert m["ttft_p50_s"] == pytest.approx(0.1)
    assert m["tpot_p50_ms"] == pytest.approx(10.0)
    assert m["subagent_ttft_p50_s"] == pytest.approx(0.3)
    assert m["subagent_tpot_p50_ms"] == pytest.approx(20.0)


def test_a_new_prefill_cuts_a_decode_run_at_the_step_boundary():
    # two copies of a 1-request session (101 output tokens) on one worker
    tr = block_trace(
        [{"arrival": 0.0, "server": 1.0, "input": 1000, "output": 101, "blocks": range(10)}]
    )
    sim = Simulator(qwen_agg(1), tr, SimOptions(sessions=2, total_sessions=2))
    use_fixed_model(sim)
    sim.run()
    r = request_table(sim)
    # lane 0: prefill 0 -> 0.1, then a run of 100 decode steps planned to end at 1.1;
    # lane 1 starts at half the recorded session (0.5 s), which cuts the run after 40 steps;
    # a mixed step 0.5 -> 0.6 (lane 1's prefill + lane 0's 41st token); then both decode
    assert r["t_first"][0] == pytest.approx(0.1)
    assert r["t_issue"][1] == pytest.approx(0.5)
    assert r["t_first"][1] == pytest.approx(0.6)
    assert r["t_finish"][0] == pytest.approx(0.6 + 0.59)
    assert r["t_finish"][1] == pytest.approx(0.6 + 1.0)
    assert r["tpot_s"][0] == pytest.approx(1.09 / 100)
    assert r["cached"][1] == 0  # a second copy is a different user: no shared blocks


def test_sglang_prefills_while_the_decoding_sequences_wait():
    # the run above on SGLang, whose scheduler runs a prefill as a batch of its own: the
    # step 0.5 -> 0.6 carries lane 1's prompt and no token of lane 0, which then has 60
    # tokens left (1.2 s) where TRT-LLM's mixed step had given it its 41st (1.19 s)
    tr = block_trace(
        [{"arrival": 0.0, "server": 1.0, "input": 1000, "output": 101, "blocks": range(10)}]
    )
    dep = Deployment.from_yaml(QWEN_AGG.replace("WORKERS", "1").replace("ROUTER", "kv_aware")
                               .replace("engine: trtllm", "engine: sglang"))  # fmt: skip
    sim = Simulator(dep, tr, SimOptions(sessions=2, total_sessions=2))
    use_fixed_model(sim)
    sim.run()
    r = request_table(sim)
    assert r["t_first"][0] == pytest.approx(0.1)
    assert r["t_first"][1] == pytest.approx(0.6)
    assert r["t_finish"][0] == pytest.approx(0.6 + 0.60)
    assert r["t_finish"][1] == pytest.approx(0.6 + 1.0)
    assert r["tpot_s"][0] == pytest.approx(1.10 / 100)
    # steps: two prefill-only (lane 0's, lane 1's) and 140 decode steps (S)
    w = sim.parts[0].workers[0]
    assert w.steps == 142 and w.S == 140


def test_a_long_prompt_is_prefilled_in_chunks_then_decoded():
    # 20,000 uncached tokens in chunks of 8,192: three 0.1 s steps, then 10 decode steps
    tr = block_trace(
        [{"arrival": 0.0, "server": 1.0, "input": 20_000, "output": 11, "blocks": range(200)}]
    )
    sim, r = run(tr)
    assert r["ttft_s"][0] == pytest.approx(0.3)
    assert r["t_finish"][0] == pytest.approx(0.4)
    assert sim.parts[0].workers[0].steps == 3 + 10


def test_a_prefill_arriving_mid_chunks_shares_the_steps():
    # two copies of a 20,000-token request (1 decode step each); lane 1 arrives at 0.15 s,
    # in lane 0's second chunk step, and is admitted at 0.2 s: that step carries lane 0's
    # last 3,616 tokens and 4,576 of lane 1's; at 0.3 s lane 0 decodes (budget 8,191 while
    # it does) and finishes at 0.4 s; lane 1's last 7,233 tokens end at 0.5 s, then one
    # decode step of 10 ms
    tr = block_trace(
        [{"arrival": 0.0, "server": 0.3, "input": 20_000, "output": 2, "blocks": range(200)}]
    )
    sim = Simulator(qwen_agg(1), tr, SimOptions(sessions=2, total_sessions=2))
    use_fixed_model(sim)
    sim.run()
    r = request_table(sim)
    assert r["t_issue"][1] == pytest.approx(0.15)
    assert r["t_first"][0] == pytest.approx(0.3)
    assert r["t_finish"][0] == pytest.approx(0.4)
    assert r["t_first"][1] == pytest.approx(0.5)
    assert r["t_finish"][1] == pytest.approx(0.51)
    assert sim.parts[0].workers[0].steps == 6


def test_a_trace_of_small_tier_requests_only_runs_on_the_main_pools():
    """A trace whose only model is a haiku-class one is its own primary agent (the tier
    comes from the model name), not sub-agents of a missing main agent: the simulator
    serves it on the main pools, as the evaluator does (``sub_tier_apart``); the sub-agent
    pools idle and report no latency."""
    rows = [
        {"arrival": 0.0, "server": 1.0, "input": 500, "output": 3, "blocks": range(5)},
        {"arrival": 6.0, "server": 1.0, "input": 800, "output": 3, "gap": 5.0, "blocks": range(8)},
    ]
    for row in rows:
        row["model"] = "claude-haiku"
    sim = Simulator(
        _qwen_with_subagents(), block_trace(rows), SimOptions(sessions=1, total_sessions=1)
    )
    use_fixed_model(sim)
    sim.run()
    r = request_table(sim)
    assert r["part"].tolist() == [0, 0]
    m, _ = aggregate(sim, r)
    assert m["ttft_p50_s"] == pytest.approx(0.1)
    assert np.isnan(m["subagent_ttft_p50_s"])


def test_shared_store_serves_other_workers_only_what_has_been_computed():
    """Two round-robin workers and a shared KV store. The parent's 500-token request runs
    on worker 0 and is written to the store when it ends; its two sub-agents then start
    together with its 5 blocks plus 3 new ones each (the same 3). Sub-agent 1 lands on
    worker 1 and reads the parent's 5 blocks from the store; sub-agent 2 lands back on
    worker 0 and hits them on the device. Neither reads the other's 3 new blocks: neither
    has finished when both arrive."""
    sub = [
        {
            "agent": a,
            "arrival": 1.0,
            "server": 1.0,
            "input": 800,
            "output": 2,
            "blocks": [*range(5), *range(100, 103)],
        }
        for a in (1, 2)
    ]
    tr = block_trace(
        [{"arrival": 0.0, "server": 1.0, "input": 500, "output": 2, "blocks": range(5)}, *sub]
    )
    dep = Deployment.from_yaml(
        QWEN_AGG.replace("WORKERS", "2").replace("ROUTER", "round_robin")
        + "kv_tiers: {shared_storage_tb: 1, shared_storage_read_gb_s: 100}\n"
    )
    sim = Simulator(dep, tr, SimOptions(sessions=1, total_sessions=1))
    use_fixed_model(sim)
    sim.run()
    r = request_table(sim)
    order = np.argsort(r["t_issue"], kind="stable")
    worker, cached, shared = (r[k][order] for k in ("worker", "cached", "shared_tok"))
    assert worker.tolist() == [0, 1, 0]
    assert cached.tolist() == [0, 500, 500]  # not 800: the new blocks were not computed yet
    assert shared.tolist() == [0, 500, 0]
    assert r["hit_tier"][order].tolist() == [0, 4, 1]
    assert sim.parts[0].shared.lookup([100], [3]) == 3  # written once they ended
