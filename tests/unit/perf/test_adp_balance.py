"""TRT-LLM attention-DP context balancing (``codesign.serving.adp_balance``): the wait by
hand, through the closed- and open-loop serving models, the point estimate, the agent
evaluator's deployments, the export and the measured rows it was built for."""

from __future__ import annotations

import numpy as np
import pytest

from codesign.deployment import Deployment
from codesign.errors import SpecError
from codesign.perf.estimate import EstimateRequest, estimate
from codesign.perf.predict import predict_rows
from codesign.serving.adp_balance import (
    RECIPE_TIMEOUT_ITERS,
    balance_wait_quantile_s,
    balance_wait_s,
)
from codesign.serving.closed_loop import aggregated
from codesign.serving.open_loop import aggregated_open
from codesign.validation.silicon import SiliconRows

R1 = "deepseek-ai/DeepSeek-R1"


def test_wait_by_hand():
    # 8 ranks, 10 requests/s, 20 ms iterations, 60-iteration timeout: the cycle is 1.2 s,
    # the other 7 ranks fill in 0.7 s, E[min(U x 1.2, 0.7)] = 0.7 - 0.7^2 / 2.4
    w = balance_wait_s(8, 10.0, 0.02, 60)
    assert float(w) == pytest.approx(0.7 - 0.49 / 2.4, rel=1e-12)
    # too few arrivals to fill the ranks within a cycle: half a cycle on average
    assert float(balance_wait_s(8, 1.0, 0.02, 60)) == pytest.approx(0.6, rel=1e-12)
    # the two branches meet where the fill time equals the cycle
    at = float(balance_wait_s(8, 7.0 / 1.2, 0.02, 60))
    assert at == pytest.approx(0.6, rel=1e-9)
    # off, or one rank: no wait
    assert float(balance_wait_s(8, 10.0, 0.02, 0)) == 0.0
    assert float(balance_wait_s(1, 10.0, 0.02, 60)) == 0.0


def test_quantiles_of_the_hold():
    # min(U T, F): uniform up to the fill time, then a mass at F
    t_cycle, fill = np.array([1.2, 1.2, 0.0]), np.array([np.inf, 0.7, 0.7])
    assert np.allclose(balance_wait_quantile_s(0.5, t_cycle, fill), [0.6, 0.6, 0.0])
    assert np.allclose(balance_wait_quantile_s(0.9, t_cycle, fill), [1.08, 0.7, 0.0])


def test_wait_falls_with_load_and_grows_with_the_timeout():
    rates = np.array([0.5, 2.0, 8.0, 32.0, 128.0])
    w = balance_wait_s(8, rates, 0.02, 60)
    assert np.all(np.diff(w) <= 0) and np.all(w > 0)
    t = balance_wait_s(8, 4.0, 0.02, np.array([10, 30, 60, 120]))
    assert np.all(np.diff(t) >= 0)


def _agg(**kw):
    base = dict(
        clients_per_rank=np.array([8.0]),
        osl=np.array([1024.0]),
        t_decode_step=np.array([0.02]),
        t_own_prefill=np.array([0.05]),
        prefill_work_s=np.array([0.04]),
        ttft_overhead_s=np.array([0.1]),
        q=0.0,
    )
    return aggregated(**(base | kw))


def test_closed_loop_adds_the_wait_at_its_operating_point():
    off = _agg()
    on = _agg(adp_ranks=8.0, adp_timeout_iters=60.0)
    x = on["requests_per_s"]
    held = balance_wait_s(8.0, x * 8.0, on["tpot_s"], 60.0)
    assert float(held[0]) > 0.1
    # TTFT carries the wait at the (slightly lower) throughput it settles at
    assert float(on["ttft_s"][0] - off["ttft_s"][0]) == pytest.approx(float(held[0]), rel=0.02)
    # reported on its own (its quantiles are not the queue's), with what they need
    assert float(on["adp_wait_s"][0]) == pytest.approx(float(held[0]), rel=1e-12)
    assert float(on["queue_wait_s"][0]) == pytest.approx(float(off["queue_wait_s"][0]), abs=1e-6)
    t_cycle, fill = float(on["adp_cycle_s"][0]), float(on["adp_fill_s"][0])
    assert t_cycle == pytest.approx(60 * float(on["tpot_s"][0]), rel=1e-12)
    assert fill == pytest.approx(7.0 / (8.0 * float(x[0])), rel=1e-12)
    assert float(off["adp_wait_s"][0]) == 0.0 and float(off["adp_cycle_s"][0]) == 0.0
    assert float(on["requests_per_s"][0]) < float(off["requests_per_s"][0])
    # speculative decoding: an iteration yields several tokens, so it lasts longer
    spec = _agg(adp_ranks=8.0, adp_timeout_iters=60.0, tokens_per_iter=2.5)
    assert float(spec["ttft_s"][0]) > float(on["ttft_s"][0])


def test_open_loop_adds_the_wait():
    args = (
        np.array([2.0]),
        np.array([512.0]),
        np.array([0.01]),
        np.array([0.03]),
        np.array([1.0]),
        np.array([64.0]),
        np.array([0.05]),
        np.array([0.04]),
        np.array([0.1]),
        0.0,
    )
    off = aggregated_open(*args)
    on = aggregated_open(*args, adp_ranks=8.0, adp_timeout_iters=60.0)
    held = balance_wait_s(8.0, 16.0, on["tpot_s"], 60.0)
    assert float(on["ttft_s"][0] - off["ttft_s"][0]) == pytest.approx(float(held[0]), rel=1e-9)
    assert float(on["tpot_s"][0]) == float(off["tpot_s"][0])


def _req(**kw) -> EstimateRequest:
    base = dict(model=R1, system="b200_sxm", tp=1, dp=8, ep=8, batch=4, isl=1024, osl=1024)
    return EstimateRequest(**(base | kw))


def test_estimate_charges_the_wait_only_when_asked():
    off = estimate(_req())
    on = estimate(_req(adp_balance_iters=60))
    assert on["ttft_ms"] > off["ttft_ms"] + 50.0
    assert off["adp_balance_wait_ms"] == 0.0
    assert on["adp_balance_wait_ms"] == pytest.approx(on["ttft_ms"] - off["ttft_ms"], rel=0.05)
    assert on["tpot_ms"] == pytest.approx(off["tpot_ms"], rel=0.02)
    # no attention DP, nothing to balance
    tp8 = estimate(_req(tp=8, dp=1, adp_balance_iters=60))
    assert tp8["ttft_ms"] == pytest.approx(estimate(_req(tp=8, dp=1))["ttft_ms"], rel=1e-12)
    with pytest.raises(ValueError, match="TRT-LLM"):
        _req(engine="vllm", adp_balance_iters=60)


DEP = """
model: deepseek-ai/DeepSeek-R1
mode: agg
engine: {engine}
adp_balance_timeout_iters: {iters}
pools:
  - {{role: agg, system: b200_sxm, workers: 1, parallel: {{tp: 1, dp: 8, ep: 8}}}}
"""


def test_deployment_knob_validates_and_exports():
    from codesign.export import export

    dep = Deployment.from_yaml(DEP.format(engine="trtllm", iters=60))
    files = export(dep, "trtllm")
    text = "\n".join(files.files.values())
    assert "enable_balance: true" in text and "timeout_iters: 60" in text
    assert "batching_wait_iters: 0" in text
    plain = export(Deployment.from_yaml(DEP.format(engine="trtllm", iters=0)), "trtllm")
    assert "attention_dp_config" not in "\n".join(plain.files.values())
    with pytest.raises(SpecError, match="TRT-LLM"):
        Deployment.from_yaml(DEP.format(engine="vllm", iters=60))


def test_measured_trtllm_attention_dp_rows_get_closer(shared_dir):
    """The TRT-LLM DeepSeek rows served with attention DP measure TTFTs of 1-12 s at
    concurrencies where a plain prefill takes 0.1-3 s; the balancing wait (recipe:
    60-iteration timeout) accounts for most of it."""
    rows = SiliconRows.from_csv(shared_dir / "validation" / "silicon_dev.csv")
    sel = (rows.backend == "trtllm") & (rows.dp > 1) & (rows.mode == "agg")
    sel &= np.array(["DeepSeek" in m for m in rows.model])
    sub = rows.subset(sel)
    assert len(sub) >= 20
    ttft, _, _ = predict_rows(sub)
    ratio = ttft / sub.ttft_ms
    # without the wait these rows were predicted at a median 0.38x of the measured TTFT
    # (0.85x with it)
    assert 0.6 < float(np.median(ratio)) < 1.5
    assert RECIPE_TIMEOUT_ITERS == 60


def test_agent_evaluator_charges_the_wait_only_where_the_deployment_balances(shared_dir):
    from codesign.evaluate import evaluate
    from codesign.workload import load_trace
    from codesign.workload.agent_load import agent_load, session_gaps
    from codesign.workload.summary import summarize

    trace = load_trace(shared_dir / "traces" / "claude-code-weka" / "trace_0001.json.gz")
    load = agent_load(summarize(trace), session_gaps(trace), merge_tiers=True)
    base = (
        "model: deepseek-ai/DeepSeek-R1\nprecision: {gemm: nvfp4, moe: nvfp4, kv: fp8}\n"
        "pools: [{role: agg, system: gb200, workers: 1, parallel: {tp: 1, dp: 8, ep: 8}}]\n"
    )
    off = Deployment.from_yaml(base)
    on = Deployment.from_yaml(base + "adp_balance_timeout_iters: 60\n")
    out = evaluate([off, on], load, 32)
    assert out["feasible"].all(), out["reason"]
    # the median hold is at most half the 60-iteration cycle, the p90 at most 0.9 of it
    tpot_s = out["tpot_p50_ms"][1] / 1e3
    extra50 = out["ttft_p50_s"][1] - out["ttft_p50_s"][0]
    extra90 = out["ttft_p90_s"][1] - out["ttft_p90_s"][0]
    assert 0.0 < extra50 <= 0.5 * 60 * tpot_s * 1.1
    assert extra50 <= extra90 <= 0.9 * 60 * tpot_s * 1.1
    assert out["tpot_p50_ms"][1] == pytest.approx(out["tpot_p50_ms"][0], rel=0.05)
