"""Closed-loop serving arithmetic, memory fit, point estimates and the accuracy guard."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from codesign.cli import app
from codesign.perf.calibration import Calibration, load_calibration
from codesign.perf.estimate import EstimateRequest, estimate
from codesign.serving.closed_loop import aggregated, disaggregated

runner = CliRunner()


def test_aggregated_single_client_by_hand() -> None:
    # one client: no queueing; TTFT = overhead + own prefill; TPOT stretched by rho = X w
    out = aggregated(
        np.array([1.0]),
        np.array([101.0]),
        np.array([0.010]),
        np.array([0.050]),
        np.array([0.040]),
        np.array([0.020]),
        q=0.0,
        s=0.0,
    )
    x = out["requests_per_s"][0]
    rho = x * 0.040
    assert out["tpot_s"][0] == pytest.approx(0.010 / (1 - rho))
    assert out["ttft_s"][0] == pytest.approx(0.070)
    # Little's law: X (TTFT + (osl - 1) TPOT) = clients
    assert x * (out["ttft_s"][0] + 100 * out["tpot_s"][0]) == pytest.approx(1.0, rel=1e-6)


def test_aggregated_more_clients_more_throughput_and_latency() -> None:
    c = np.array([1.0, 4, 16, 64, 256])
    n = len(c)
    out = aggregated(
        c,
        np.full(n, 500.0),
        0.008 + 0.0001 * c,
        np.full(n, 0.05),
        np.full(n, 0.03),
        np.full(n, 0.02),
        q=1.0,
        s=0.3,
    )
    assert np.all(np.diff(out["requests_per_s"]) > 0)
    assert np.all(np.diff(out["ttft_s"]) > 0) and np.all(np.diff(out["tpot_s"]) > 0)
    assert np.all(out["prefill_utilization"] < 1)


def test_disaggregated_saturated_prefill_pool_absorbs_clients_in_ttft() -> None:
    # prefill pool serves 10 req/s; 1,000 clients, 100 output tokens at 20 ms
    out = disaggregated(
        np.array([1000.0]),
        np.array([101.0]),
        np.array([0.02]),
        np.array([0.1]),
        np.array([10.0]),
        np.array([1e6]),
        np.array([0.0]),
        np.array([0.0]),
        q=1.0,
    )
    x = out["requests_per_s"][0]
    assert x == pytest.approx(10.0, rel=0.01)  # the bottleneck
    assert out["ttft_s"][0] == pytest.approx(1000 / x - 100 * 0.02, rel=0.01)  # ~98 s


def test_estimate_dense_model_point(shared_dir) -> None:
    r = estimate(
        EstimateRequest(
            model="Qwen/Qwen3-32B", system="h200_sxm", tp=2, batch=16, isl=4000, osl=500
        )
    )
    assert r["fits"] and r["gpus"] == 2
    assert 0 < r["ttft_ms"] < 5000 and 5 < r["tpot_ms"] < 100
    assert r["tokens_per_s_per_user"] == pytest.approx(1000 / r["tpot_ms"])
    assert r["usd_per_mtok_output"] > 0


def test_more_bandwidth_and_prefix_hits_never_hurt(shared_dir) -> None:
    base = EstimateRequest(
        model="deepseek-ai/DeepSeek-R1",
        system="gb200",
        tp=8,
        batch=32,
        isl=8192,
        osl=1024,
        gemm_precision="nvfp4",
    )
    r0 = estimate(base)
    r1 = estimate(base.model_copy(update={"hardware_overrides": {"hbm_bandwidth_tb_s": 16}}))
    r2 = estimate(base.model_copy(update={"prefix_hit": 0.9}))
    assert r1["tpot_ms"] < r0["tpot_ms"] and r1["ttft_ms"] <= r0["ttft_ms"]
    assert r2["ttft_ms"] < r0["ttft_ms"]


def test_model_that_does_not_fit_is_flagged(shared_dir) -> None:
    r = estimate(
        EstimateRequest(
            model="meta-llama/Llama-3.1-70B", system="h100_sxm", tp=1, batch=1, isl=100, osl=10
        )
    )
    assert not r["fits"]  # 141 GB of bf16 weights on one 80 GB GPU


def test_estimate_cli_json_and_errors(shared_dir) -> None:
    res = runner.invoke(
        app, ["estimate", "-m", "Qwen/Qwen3-32B", "-s", "h100_sxm", "--tp", "2", "--json"]
    )
    assert res.exit_code == 0, res.stderr
    assert json.loads(res.stdout)["gpus"] == 2
    res = runner.invoke(app, ["estimate", "-m", "Qwen/Qwen3-32B", "-s", "h100_sxm", "--tp", "3"])
    assert res.exit_code == 2 and "does not divide the 64 heads" in res.stderr
    res = runner.invoke(app, ["estimate", "-m", "Qwen/Qwen3-32B", "-s", "nope"])
    assert res.exit_code == 2 and "unknown system" in res.stderr
    res = runner.invoke(
        app, ["estimate", "-m", "Qwen/Qwen3-32B", "-s", "h100_sxm", "--decode-system", "gb200"]
    )
    assert res.exit_code == 2 and "needs --mode disagg" in res.stderr


def test_calibration_round_trip(tmp_path) -> None:
    c = load_calibration()
    path = c.save(tmp_path / "cal.json")
    assert load_calibration(path) == c
    assert Calibration().fitted_on == "priors (not fitted)"


def test_open_loop_latency_grows_with_rate_until_overload(shared_dir) -> None:
    base = EstimateRequest(model="Qwen/Qwen3-32B", system="h200_sxm", tp=2, isl=4000, osl=500)
    rates = [0.25, 1.0, 2.0]
    res = [estimate(base.model_copy(update={"arrival_rate": r})) for r in rates]
    assert all(r["stable"] for r in res)
    tpots = [r["tpot_ms"] for r in res]
    assert tpots == sorted(tpots)
    # Poisson arrivals queue for prefill (M/D/1): TTFT grows with the rate, faster as the
    # prefill work fills the time (rho / (1 - rho) is convex). The calibrated queue factor
    # (~0, fitted on closed-loop rows) had left TTFT flat up to overload
    ttfts = [r["ttft_ms"] for r in res]
    assert ttfts[0] < ttfts[1] < ttfts[2]
    assert (ttfts[2] - ttfts[1]) / 1.0 > (ttfts[1] - ttfts[0]) / 0.75
    assert ttfts[2] > 1.15 * ttfts[0]  # 4000-token prefills at 2 req/s: a real wait
    # output tokens/s equals the offered rate x osl while stable
    assert res[1]["output_tokens_per_s"] == pytest.approx(1.0 * 500)
    over = estimate(base.model_copy(update={"arrival_rate": 50.0}))
    assert not over["stable"] and over["output_tokens_per_s"] == 0.0


def test_open_loop_affine_decode_by_hand() -> None:
    from codesign.serving.open_loop import aggregated_open

    # t(B) = 10 ms + 0.1 ms x B; X = 2 req/s, osl = 101, no prefill work; a token's step
    # holds its own sequence plus B others: TPOT = t(1 + B), B = X (osl - 1) TPOT
    # => TPOT = (a + b) / (1 - b X (osl - 1)) = 0.0101 / (1 - 0.0001 * 2 * 100) = 0.0101 / 0.98
    out = aggregated_open(
        np.array([2.0]),
        np.array([101.0]),
        np.array([0.0101]),
        np.array([0.0200]),
        np.array([1.0]),
        np.array([100.0]),
        np.array([0.05]),
        np.array([0.0]),
        np.array([0.0]),
        q=1.0,
    )
    assert out["tpot_s"][0] == pytest.approx(0.0101 / 0.98)
    assert out["decode_batch"][0] == pytest.approx(2 * 100 * 0.0101 / 0.98)


def test_closed_loop_token_shares_its_step_with_itself() -> None:
    """t(B) = 10 ms + 1 ms x B for 8 clients of a rank. With 1,000 s of think time two
    clients almost never decode together, so a token's step holds its own sequence: TPOT ~
    t(1) = 11 ms (not a = 10 ms, the step of an empty batch). With no think time every
    client decodes and the step holds all 8: t(8) = 18 ms."""
    from codesign.serving.closed_loop import aggregated

    def run(think_s: float) -> float:
        out = aggregated(
            np.array([8.0]),
            np.array([101.0]),
            np.array([0.018]),
            np.array([0.0]),
            np.array([1e-9]),
            np.array([0.0]),
            q=0.0,
            think_s=think_s,
            decode_per_seq_s=np.array([0.001]),
        )
        return float(out["tpot_s"][0])

    assert run(1000.0) == pytest.approx(0.011, rel=1e-3)
    assert run(0.0) == pytest.approx(0.018, rel=1e-6)


def _r1_long_context(**update: object) -> EstimateRequest:
    """DeepSeek-R1 NVFP4 on a GB200 TP8 worker, 100K-token prompts 95% cached."""
    base = EstimateRequest(
        model="deepseek-ai/DeepSeek-R1",
        system="gb200",
        tp=8,
        batch=4,
        isl=100_000,
        osl=200,
        gemm_precision="nvfp4",
        prefix_hit=0.95,
    )
    return base.model_copy(update=update)


def test_host_memory_hits_cost_transfer_time(shared_dir) -> None:
    base = _r1_long_context()
    hbm = estimate(base)
    host = estimate(base.model_copy(update={"host_share": 1.0}))
    assert host["ttft_ms"] > hbm["ttft_ms"]
    res = runner.invoke(
        app,
        [
            "estimate",
            "-m",
            "Qwen/Qwen3-32B",
            "-s",
            "tpu_v7",
            "--prefix-hit",
            "0.5",
            "--host-share",
            "0.5",
        ],
    )
    assert res.exit_code == 2 and "no host-memory KV tier" in res.stderr


def test_think_time_shrinks_the_running_batch_by_hand() -> None:
    # 64 clients, decode step 10 ms + 1 ms per running sequence, 100 output tokens.
    c, osl = np.array([64.0]), np.array([101.0])
    t_full = np.array([0.010 + 0.001 * 64])
    args = (c, osl, t_full, np.array([0.02]), np.array([0.0]), np.array([0.0]))
    busy = aggregated(*args, q=0.0, s=0.0, decode_per_seq_s=0.001)
    idle = aggregated(*args, q=0.0, s=0.0, think_s=60.0, decode_per_seq_s=0.001)
    # no think time: nearly every client decodes; TPOT near the full-batch step
    assert busy["decode_batch"][0] > 60
    # a minute of think time: Little's law B = X (osl - 1) TPOT, and a token's step holds
    # its own sequence plus the others decoding, 1 + 63/64 B: TPOT = 10 ms + 1 ms x that
    x, tpot, b = idle["requests_per_s"][0], idle["tpot_s"][0], idle["decode_batch"][0]
    assert b == pytest.approx(x * 100 * tpot)
    assert tpot == pytest.approx(0.010 + 0.001 * (1 + 63 / 64 * b))
    assert b < 16 and tpot < busy["tpot_s"][0]


def test_an_unknown_precision_is_refused_not_ignored() -> None:
    """A measured row with an unknown quant name keeps the checkpoint's precision (rows
    must all be predicted); a request naming one is a typo, and says which names exist."""
    with pytest.raises(ValueError, match=r"--precision 'int9': choose one of .*int8_wo"):
        EstimateRequest(model="x", system="h100_sxm", gemm_precision="int9")
    with pytest.raises(ValueError, match=r"--moe-precision 'fp3'"):
        EstimateRequest(model="x", system="h100_sxm", moe_precision="fp3")
    assert EstimateRequest(model="x", system="h100_sxm", gemm_precision="int8_wo")


def test_a_disagg_decode_worker_runs_no_more_sequences_than_its_kv_holds(shared_dir) -> None:
    """Llama-3.1-70B prefilled on H100s, decoded on an SRAM-first system whose worker
    (the chips that hold the weights in SRAM) has room for one 4.6K-token sequence's KV:
    16 clients allowed per decode worker still decode one at a time; the others wait for
    the slot (Little's law sets their TTFT), and more decode workers serve more."""
    base = EstimateRequest(
        model="meta-llama/Llama-3.1-70B",
        system="h100_sxm",
        mode="disagg",
        decode_system="groq3_lpx",
        tp=8,
        batch=16,
        isl=4096,
        osl=512,
    )
    one = estimate(base)
    assert one["kv_slots_per_rank"] == 1.0 and one["decode_batch_per_rank"] == 1.0
    # one sequence at a time: at most 1 / ((osl - 1) x TPOT) requests a second
    assert one["requests_per_s"] <= 1.0 / (511 * one["tpot_ms"] / 1e3) * 1.001
    four = estimate(base.model_copy(update={"decode_workers": 4}))
    assert four["requests_per_s"] > 3.5 * one["requests_per_s"]
    assert four["ttft_ms"] < one["ttft_ms"]
    # an HBM decode pool holds all 16: unchanged by the KV bound
    hbm = estimate(base.model_copy(update={"decode_system": "h100_sxm"}))
    assert hbm["decode_batch_per_rank"] == 16.0 and hbm["kv_slots_per_rank"] >= 16


def test_nvme_hits_cost_their_read_time_by_hand(shared_dir) -> None:
    """DeepSeek-R1 on 8 GB200s, 95,000 cached tokens. MLA keeps one 576-element latent per
    token and layer, FP8: 61 x 576 = 35,136 bytes per token, replicated on every rank. A
    GB200 tray's 4 NVMe drives (25 GB/s) give each of its 4 chips 6.25 GB/s, so reading
    them all adds 95,000 x 35,136 / 6.25e9 = 0.534 s to the prefill, in the estimate and in
    its breakdown alike."""
    base = _r1_long_context(batch=1, breakdown=True)
    hbm = estimate(base)
    nvme = estimate(base.model_copy(update={"storage_share": 1.0}))
    read_s = 95_000 * 61 * 576 / 6.25e9
    load = nvme["breakdown"]["prefill"]["kv_load"] - hbm["breakdown"]["prefill"].get("kv_load", 0)
    assert load == pytest.approx(read_s * 1e3, rel=0.01)
    assert nvme["ttft_ms"] - hbm["ttft_ms"] == pytest.approx(read_s * 1e3, rel=0.05)
    res = runner.invoke(
        app,
        ["estimate", "-m", "Qwen/Qwen3-32B", "-s", "tpu_v7", "--prefix-hit", "0.5",
         "--storage-share", "0.5"],
    )  # fmt: skip
    assert res.exit_code == 2 and "no NVMe storage KV tier" in res.stderr


def test_shared_store_reads_cost_their_share_of_its_bandwidth_by_hand(shared_dir) -> None:
    """The R1 case above read from a store shared by the worker's 8 GPUs at 100 GB/s in
    all: 12.5 GB/s per GPU (below a GB200's NIC), 95,000 x 35,136 B / 12.5 GB/s = 0.267 s."""
    base = _r1_long_context(batch=1, shared_read_gb_s=100.0)
    hbm = estimate(base)
    store = estimate(base.model_copy(update={"shared_share": 1.0}))
    read_s = 95_000 * 61 * 576 / 12.5e9
    assert store["ttft_ms"] - hbm["ttft_ms"] == pytest.approx(read_s * 1e3, rel=0.05)
    with pytest.raises(ValueError, match="needs --shared-read-gb-s > 0"):
        EstimateRequest(model="m", system="gb200", prefix_hit=0.5, shared_share=0.5)
    with pytest.raises(ValueError, match="needs --shared-share > 0"):
        EstimateRequest(model="m", system="gb200", shared_read_gb_s=10.0)
