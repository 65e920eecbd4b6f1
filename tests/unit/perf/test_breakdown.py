"""`estimate --breakdown`: the step components behind an estimate's TPOT and TTFT."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from codesign.cli import app
from codesign.perf.estimate import EstimateRequest, estimate

runner = CliRunner()


def _point(**over: object) -> dict:
    spec: dict[str, object] = {
        "model": "Qwen/Qwen3-32B",
        "system": "h200_sxm",
        "tp": 1,
        "batch": 4,
        "isl": 512,
        "osl": 4096,
        "breakdown": True,
    }
    return estimate(EstimateRequest.model_validate({**spec, **over}))


def test_parts_add_up(shared_dir) -> None:
    r = _point()
    b = r["breakdown"]
    assert set(b) == {"decode_step", "prefill", "ttft"}
    for group in b.values():
        parts = sum(v for k, v in group.items() if k != "total")
        assert parts == pytest.approx(group["total"])
    assert b["ttft"]["total"] == pytest.approx(r["ttft_ms"])
    # one GPU: no communication; decode streams weights and KV, the prompt is GEMM-heavy
    assert "comm" not in b["decode_step"] and "comm" not in b["prefill"]
    assert b["prefill"]["gemm"] > b["prefill"]["attn_prefill"] > 0
    assert b["decode_step"]["attn_decode"] > 0


def test_decode_step_is_tpot_when_prefill_is_rare(shared_dir) -> None:
    # 512-token prompts, 4K outputs: the prefill carried in the decode steps is <1% of the
    # time, so TPOT is one plain decode step at the running batch (a 32B model's ~64 GB
    # of BF16 weights streamed at ~4.4 TB/s: ~15 ms)
    r = _point()
    step = r["breakdown"]["decode_step"]["total"]
    assert r["tpot_ms"] >= step * 0.999
    assert r["tpot_ms"] == pytest.approx(step, rel=0.02)
    assert 10 < step < 25


def test_tensor_parallel_shows_its_all_reduce(shared_dir) -> None:
    b = _point(tp=2)["breakdown"]
    assert b["decode_step"]["comm"] > 0 and b["prefill"]["comm"] > 0


def test_disagg_breaks_down_both_pools(shared_dir) -> None:
    r = estimate(
        EstimateRequest(
            model="Qwen/Qwen3-32B",
            system="h200_sxm",
            mode="disagg",
            tp=2,
            batch=8,
            isl=4096,
            osl=512,
            breakdown=True,
        )
    )
    b = r["breakdown"]
    assert b["ttft"]["total"] == pytest.approx(r["ttft_ms"])
    assert b["ttft"]["prefill"] > 0 and b["prefill"]["total"] > 0
    # the prompt's BF16 KV (64 layers x 2 x 8 KV heads x 128 per token) moves from the TP2
    # prefill worker to the TP2 decode worker in the same NVLink domain, each GPU sending
    # its 4 KV heads over its own 450 GB/s, plus the 1 us link latency
    kv_bytes = 4096 * 64 * 2 * 8 * 128 * 2
    assert r["gpus"] == 4
    assert b["ttft"]["kv_transfer"] == pytest.approx((kv_bytes / 2 / 450e9 + 1e-6) * 1e3)


def test_open_loop_reports_prefill_and_queue_together(shared_dir) -> None:
    r = _point(arrival_rate=0.5)
    t = r["breakdown"]["ttft"]
    assert set(t) == {"request_handling", "prefill_and_queue", "total"}
    assert t["total"] == pytest.approx(r["ttft_ms"]) and t["prefill_and_queue"] > 0


def _afd(micro_batches: int) -> dict:
    return estimate(
        EstimateRequest(
            model="deepseek-ai/DeepSeek-R1",
            system="gb200",
            mode="afd",
            dp=8,
            batch=64,
            isl=8192,
            osl=1024,
            micro_batches=micro_batches,
            breakdown=True,
        )
    )


def test_afd_shows_both_pools_and_how_the_step_is_composed(shared_dir) -> None:
    one, two = _afd(1), _afd(2)
    for r in (one, two):
        b = r["breakdown"]
        assert set(b) == {"attention_step", "ffn_step", "decode_step", "prefill", "ttft"}
        for group in b.values():
            parts = sum(v for k, v in group.items() if k != "total")
            assert parts == pytest.approx(group["total"])
        assert b["decode_step"]["total"] == pytest.approx(r["tpot_ms"])
        assert b["ttft"]["total"] == pytest.approx(r["ttft_ms"])
        # the attention pool reads the KV cache; the FFN pool runs the experts
        assert b["attention_step"]["attn_decode"] > 0 and "moe" not in b["attention_step"]
        assert b["ffn_step"]["moe"] > 0 and "attn_decode" not in b["ffn_step"]
    # one micro-batch: every layer runs attention, the two hops and the FFN in turn
    layers = 61
    d1 = one["breakdown"]["decode_step"]
    assert d1["attention"] == pytest.approx(layers * one["attention_layer_ms"])
    assert d1["ffn"] == pytest.approx(layers * one["ffn_layer_ms"])
    assert d1["transfer"] == pytest.approx(layers * 2 * one["transfer_ms"])
    # two: each layer takes twice its slowest stage plus the fill of the other
    d2, t = two["breakdown"]["decode_step"], two
    slowest = max(t["attention_layer_ms"], t["ffn_layer_ms"], 2 * t["transfer_ms"])
    assert d2["micro_batches_at_slowest"] == pytest.approx(layers * 2 * slowest)


def test_cli_prints_the_parts(shared_dir) -> None:
    args = ["estimate", "-m", "Qwen/Qwen3-32B", "-s", "h200_sxm", "--tp", "2", "--breakdown"]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.stderr
    assert "where the time goes (ms)" in res.stdout and "attn_decode" in res.stdout
    res = runner.invoke(app, [*args, "--json"])
    assert res.exit_code == 0, res.stderr
    assert '"decode_step"' in res.stdout
