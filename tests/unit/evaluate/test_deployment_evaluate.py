"""The Deployment contract and the analytic agent evaluator."""

from __future__ import annotations

import numpy as np
import pytest

from codesign.deployment import Deployment
from codesign.errors import SpecError
from codesign.evaluate import METRICS, evaluate
from codesign.workload import load_trace
from codesign.workload.agent_load import agent_load, session_gaps
from codesign.workload.summary import summarize

AGG = """
model: deepseek-ai/DeepSeek-R1
precision: {gemm: nvfp4, moe: nvfp4, kv: fp8}
pools: [{role: agg, system: gb200, workers: 2, parallel: {tp: 8}}]
"""


@pytest.fixture(scope="module")
def load(shared_dir):
    trace = load_trace(shared_dir / "traces" / "claude-code-weka" / "trace_0001.json.gz")
    return agent_load(summarize(trace), session_gaps(trace), merge_tiers=True)


def test_yaml_round_trip_and_defaults() -> None:
    dep = Deployment.from_yaml(AGG)
    again = Deployment.from_yaml(dep.to_yaml())
    assert again == dep
    assert dep.chips == 16 and dep.router == "kv_aware" and dep.precision.kv == "fp8"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("model: m\nmode: disagg\npools: [{role: agg, system: gb200}]", "needs pools with roles"),
        (
            "model: m\npools: [{role: agg, system: gb200}]\nprecision: {gemm: fp5}",
            "unknown precision 'fp5'",
        ),
        ("model: m\npools: [{role: agg, system: gb200, workers: 0}]", "workers"),
        (
            "model: m\npools: [{role: agg, system: gb200}]\nspec_decoding: {method: mtp}",
            "needs draft_tokens",
        ),
        ("model: m\npools: [{role: agg, system: gb200}]\nrouter: random", "router"),
        ("model: [unclosed", "not valid YAML"),
        (
            "model: m\npools: [{role: agg, system: gb200}]\nkv_tiers: {storage_tb: 2}",
            "storage_tb is not read: a store shared by all workers is shared_storage_tb",
        ),
        (
            "model: m\npools: [{role: agg, system: gb200}]\nkv_tiers: {shared_storage_tb: 2}",
            "shared_storage_tb needs shared_storage_read_gb_s > 0",
        ),
        (
            "model: m\npools: [{role: agg, system: gb200}]\n"
            "kv_tiers: {shared_storage_read_gb_s: 50}",
            "shared_storage_read_gb_s is set but shared_storage_tb is 0",
        ),
        (
            "model: m\npools: [{role: agg, system: gb200}]\n"
            "kv_tiers: {shared_storage_usd_per_hour: 5}",
            "shared_storage_usd_per_hour is set but shared_storage_tb is 0",
        ),
    ],
)
def test_bad_deployments_get_clear_errors(text: str, message: str) -> None:
    with pytest.raises(SpecError, match=message):
        Deployment.from_yaml(text)


def test_evaluate_agg_and_cost_identities(load) -> None:
    out = evaluate([Deployment.from_yaml(AGG)], load, 16)
    assert out["feasible"][0], out["reason"][0]
    assert set(METRICS) <= set(out)
    assert out["chips"][0] == 16
    assert out["ttft_p50_s"][0] <= out["ttft_p90_s"][0] <= out["ttft_p99_s"][0]
    assert out["tpot_p50_ms"][0] <= out["tpot_p90_ms"][0]
    assert out["tokens_per_s_per_user"][0] == pytest.approx(1000 / out["tpot_p50_ms"][0])
    usd_per_tok = out["usd_per_hour"][0] / 3600 / out["output_tokens_per_s"][0]
    assert out["usd_per_mtok_output"][0] == pytest.approx(usd_per_tok * 1e6)
    assert out["tokens_per_s_per_gpu"][0] == pytest.approx(out["output_tokens_per_s"][0] / 16)
    assert 0.5 < out["cache_hit_ratio"][0] < 1.0  # an agent session: mostly prefix hits
    assert out["joules_per_output_token"][0] > 0 and 0 < out["utilization"][0] <= 1


def test_more_sessions_more_throughput_and_latency(load) -> None:
    dep = Deployment.from_yaml(AGG)
    few, many = (evaluate([dep], load, n) for n in (4, 256))
    assert many["output_tokens_per_s"][0] > few["output_tokens_per_s"][0]
    assert many["ttft_p50_s"][0] >= few["ttft_p50_s"][0]
    assert many["tpot_p50_ms"][0] >= few["tpot_p50_ms"][0]


def test_routing_matters_for_prefix_hits(load) -> None:
    dep = Deployment.from_yaml(AGG.replace("workers: 2", "workers: 4"))
    rr = dep.model_copy(update={"router": "round_robin"})
    out = evaluate([dep, rr], load, 64)
    assert out["cache_hit_ratio"][0] >= out["cache_hit_ratio"][1]


def test_infeasible_deployments_say_why(load) -> None:
    too_small = Deployment.from_yaml(
        AGG.replace("system: gb200", "system: h100_sxm").replace("nvfp4", "fp8")
    )
    bad_ep = Deployment.from_yaml(AGG.replace("{tp: 8}", "{tp: 8, dp: 3, ep: 24}"))
    unknown = Deployment.from_yaml(AGG.replace("gb200", "gb2000"))
    host = Deployment.from_yaml(AGG + "kv_tiers: {host_gb_per_worker: 100000}\n")
    out = evaluate([too_small, bad_ep, unknown, host], load, 8)
    assert not out["feasible"].any()
    assert "weights need" in out["reason"][0]
    assert "does not divide the 256 experts" in out["reason"][1]
    assert "unknown system 'gb2000'" in out["reason"][2]
    assert "exceeds" in out["reason"][3] and "host memory" in out["reason"][3]
    assert np.isnan(out["ttft_p50_s"]).all()
    with pytest.raises(SpecError, match="ep 7 does not divide tp x dp = 8"):
        Deployment.from_yaml(AGG.replace("{tp: 8}", "{tp: 8, ep: 7}"))


def test_disagg_and_subagents_on_a_small_model(shared_dir) -> None:
    trace = load_trace(shared_dir / "traces" / "claude-code-weka" / "trace_0001.json.gz")
    load = agent_load(summarize(trace), session_gaps(trace))  # main and small tiers apart
    dep = Deployment.from_yaml("""
model: deepseek-ai/DeepSeek-R1
mode: disagg
precision: {gemm: nvfp4, moe: nvfp4, kv: fp8}
pools:
  - {role: prefill, system: gb200, workers: 1, parallel: {tp: 8}}
  - {role: decode, system: gb200, workers: 1, parallel: {tp: 1, dp: 8, ep: 8}}
subagents:
  model: Qwen/Qwen3-32B
  pools: [{role: agg, system: h200_sxm, workers: 1, parallel: {tp: 2}}]
""")
    out = evaluate([dep], load, 8)
    assert out["feasible"][0], out["reason"][0]
    assert out["chips"][0] == 16 + 2


def test_evaluate_cli(shared_dir, tmp_path) -> None:
    import json

    from typer.testing import CliRunner

    from codesign.cli import app

    dep = tmp_path / "dep.yaml"
    dep.write_text(AGG)
    trace = shared_dir / "traces" / "claude-code-weka" / "trace_0001.json.gz"
    res = CliRunner().invoke(app, ["evaluate", str(dep), "-t", str(trace), "-n", "8", "--json"])
    assert res.exit_code == 0, res.stderr
    row = json.loads(res.stdout)[0]
    assert row["feasible"] and row["chips"] == 16
    band = row["error_band"]  # the packaged calibration's band around each latency
    lo, _, hi = band["ttft_ratio"]
    assert band["ranges"]["ttft_p50_s"] == pytest.approx(
        [row["ttft_p50_s"] * lo, row["ttft_p50_s"] * hi]
    )
    assert "agent sessions (mixed prompt lengths, tool-call gaps)" in band["unmeasured"]
    res = CliRunner().invoke(app, ["evaluate", str(dep), "-t", str(trace), "-n", "8"])
    assert res.exit_code == 0 and f"error band {band['band']}" in res.stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: m\nmode: afd\npools: [{role: agg, system: gb200}]\n")
    res = CliRunner().invoke(app, ["evaluate", str(bad), "-t", str(trace)])
    assert res.exit_code == 2 and "needs pools with roles attention, ffn" in res.stderr


def test_array_path_equals_object_path(load) -> None:
    from codesign.candidates import from_deployments
    from codesign.evaluate import evaluate_arrays

    deps = [Deployment.from_yaml(AGG.replace("workers: 2", f"workers: {w}")) for w in (1, 2, 4)]
    a = evaluate(deps, load, 32)
    b = evaluate_arrays(from_deployments(deps), load, 32)
    for key in METRICS:
        np.testing.assert_allclose(a[key], b[key], rtol=1e-12)
    # more workers never make latency worse at the same load (TTFT within 0.5%: the
    # decodes a prompt's step carries are an affine fit of the step, whose per-sequence
    # slope grows as the batch shrinks, ~1 ms of 210 here; the queue wait falls 0.41 s
    # -> 0.09 s, mean TTFT 1.01 s -> 0.70 s)
    for key in ("ttft_p50_s", "ttft_p90_s"):
        assert np.all(np.diff(a[key]) <= 0.005 * a[key][:-1])
    assert np.all(np.diff(a["tpot_p50_ms"]) <= 1e-9)


def test_fractional_sessions_are_not_rounded(load) -> None:
    """Half a session's worth of clients per worker (or a sub-agent tier's small share of
    the sessions) carries half the load, not a whole client's: throughput scales with the
    clients below one per worker."""
    dep = [Deployment.from_yaml(AGG)]  # two workers
    one = evaluate(dep, load, 2.0)["output_tokens_per_s"][0]
    half = evaluate(dep, load, 1.0)["output_tokens_per_s"][0]
    tenth = evaluate(dep, load, 0.2)["output_tokens_per_s"][0]
    assert half == pytest.approx(one / 2, rel=0.02)
    assert tenth == pytest.approx(one / 10, rel=0.02)


def test_ttft_percentiles_take_the_wait_quantile_by_hand() -> None:
    """rho = 0.3 of prefill capacity busy, mean wait 0.1 s: 70 % of requests wait nothing
    (M/G/1), the rest 0.1 / 0.3 s on average, spread like the residual life of the prefill
    work. Mean TTFT 1.0 s with 0.2 s of own prefill scaled by new-token quantile ratios
    0.5 / 2 / 5. Equal prefills: the residual is uniform on (0, S), mean S / 2, so the
    waiting requests' quantile at tail t is 2 (1 - t) times the mean; exponential ones:
    the residual is exponential, -ln t times the mean."""
    from codesign.evaluate import _ttft_percentiles
    from codesign.workload.agent_load import _tier_load

    def tier(new: np.ndarray):
        ones = np.ones_like(new)
        return _tier_load("main", new, new, ones, ones)  # nothing cacheable: work = new

    m = {
        "queue_wait_s": np.array([0.1]),
        "prefill_utilization": np.array([0.3]),
        "hit": np.array([0.5]),
    }
    q = np.array([[0.5, 2.0, 5.0]])
    equal = tier(np.full(1000, 4000.0))
    p50, p90, p99 = _ttft_percentiles(np.array([1.0]), np.array([0.2]), q, m, equal)
    assert p50[0] == pytest.approx(1.0 - 0.1 + 0.2 * (0.5 - 1))  # 50 % > 30 %: no wait
    # p90: tail (1 - 0.9) / 0.3 = 1/3 of the waiting -> 2 x (2/3) x the mean wait 0.1/0.3
    assert p90[0] == pytest.approx(0.9 + 0.2 + 0.1 / 0.3 * 2 * (1 - 1 / 3), rel=1e-3)
    assert p99[0] == pytest.approx(0.9 + 0.8 + 0.1 / 0.3 * 2 * (1 - 1 / 30), rel=1e-3)
    expo = tier(np.random.default_rng(0).exponential(4000.0, 400_000))
    _, p90, p99 = _ttft_percentiles(np.array([1.0]), np.array([0.2]), q, m, expo)
    assert p90[0] == pytest.approx(0.9 + 0.2 + 0.1 / 0.3 * np.log(3.0), rel=0.01)
    assert p99[0] == pytest.approx(0.9 + 0.8 + 0.1 / 0.3 * np.log(30.0), rel=0.01)


def test_eager_launches_slow_small_batches(load) -> None:
    # two sessions on 16 GB200s: small decode batches, where R1's 61 layers of eager
    # launches (16 ms per step) exceed the GPU time of a step (the simulator agrees:
    # test_fidelity_agreement)
    graphs = Deployment.from_yaml(AGG)
    eager = graphs.model_copy(update={"cuda_graphs": False})
    out = evaluate([graphs, eager], load, 2)
    assert out["feasible"].all(), out["reason"]
    assert out["tpot_p50_ms"][1] > 1.2 * out["tpot_p50_ms"][0]
    assert out["tpot_p50_ms"][1] >= 16.0  # 61 x 262.5 us of host launches per step
