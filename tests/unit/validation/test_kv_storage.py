"""A KV cache that stores FP8 entries and a kernel that reads them at the BF16 rate: the
capacity follows the stored format, the decode step the read one
(``perf.group.stored_kv_precision``, ``Bytes.kv_stored``)."""

from __future__ import annotations

import numpy as np
import pytest

from codesign.models import kv_elements_per_token, load_model
from codesign.perf.calibration import load_calibration
from codesign.perf.engine import byte_sizes, efficiency
from codesign.perf.estimate import EstimateRequest, estimate
from codesign.perf.group import make_layout, make_load, row_precisions, stored_kv_precision
from codesign.perf.hardware import hw_vectors
from codesign.perf.memory import memory_use
from codesign.perf.predict import predict_rows
from codesign.perf.profile import build_profile
from codesign.perf.step import step_time

LLAMA_70B = "meta-llama/Llama-3.1-70B"


def _prof(model: str = LLAMA_70B):
    arch = load_model(model)
    return arch, build_profile(arch)


def test_quantised_checkpoints_store_fp8_on_every_engine() -> None:
    _, prof = _prof()
    for engine in ("trtllm", "vllm", "sglang"):
        g, _, kv = row_precisions("fp8", "", "", engine, prof)
        assert stored_kv_precision(g, kv, prof) == "fp8"
    # what attention reads: TRT-LLM's kernels take the FP8 entries, vLLM and SGLang BF16
    assert row_precisions("fp8", "", "", "trtllm", prof)[2] == "fp8"
    assert row_precisions("fp8", "", "", "vllm", prof)[2] == "bf16"
    # a BF16 checkpoint keeps a BF16 cache
    g, _, kv = row_precisions("bf16", "", "", "vllm", prof)
    assert stored_kv_precision(g, kv, prof) == "bf16"


def test_capacity_follows_the_stored_format_by_hand() -> None:
    """Llama-3.1-70B FP8 on one H200: (141 GB x 0.95 - the weights) / (80 layers x 8 KV
    heads x 128 x 2 (K and V) elements x bytes per element); FP8 storage holds twice the
    tokens of BF16 whatever attention reads."""
    arch, prof = _prof()
    lay = make_layout([1], [1], [0], [0], [1], prof.is_moe)
    hw = hw_vectors(["h200_sxm"], ["fp8"], ["fp8"])
    elems = float(kv_elements_per_token(arch))
    assert elems == 80 * 8 * 128 * 2
    bf16 = memory_use(prof, lay, byte_sizes(["fp8"], ["fp8"], ["bf16"]), hw.mem_bytes, elems)
    fp8 = memory_use(
        prof, lay, byte_sizes(["fp8"], ["fp8"], ["bf16"], ["fp8"]), hw.mem_bytes, elems
    )
    by_hand = float(hw.mem_bytes[0] * 0.95 - bf16.weights_bytes_per_gpu[0]) / (elems * 2.0)
    assert bf16.kv_tokens_per_worker[0] == pytest.approx(by_hand, abs=1.0)
    assert fp8.kv_tokens_per_worker[0] == pytest.approx(2.0 * by_hand, abs=2.0)


def test_decode_step_follows_the_read_format() -> None:
    _, prof = _prof()
    lay = make_layout([1], [1], [0], [0], [1], prof.is_moe)
    hw = hw_vectors(["h200_sxm"], ["fp8"], ["fp8"])
    eff = efficiency(load_calibration(), hw, ["vllm"])
    load = make_load(32, 8192, 0, 0, 0)
    read = {
        name: step_time(prof, hw, lay, load, nb, eff)["attn_decode"][0]
        for name, nb in (
            ("bf16", byte_sizes(["fp8"], ["fp8"], ["bf16"])),
            ("bf16 stored fp8", byte_sizes(["fp8"], ["fp8"], ["bf16"], ["fp8"])),
            ("fp8", byte_sizes(["fp8"], ["fp8"], ["fp8"])),
        )
    }
    assert read["bf16 stored fp8"] == read["bf16"]
    assert read["fp8"] < read["bf16"]


def _row(rows_factory, model, system, backend, quant, tp, clients, isl, osl):
    return rows_factory(
        1,
        model=[model],
        system=[system],
        backend=[backend],
        gemm_quant=[quant],
        moe_quant=[quant],
        precision=[quant],
        tp=[tp],
        batch=[clients],
        concurrency=[clients],
        isl=[isl],
        osl=[osl],
    )


# measured rows (silicon_dev.csv) whose clients all decode at once, where a BF16 cache
# would hold a fraction of them: (model, system, engine, weights, tp, clients, isl, osl,
# measured TTFT ms)
FULL_CACHE_ROWS = [
    ("MiniMaxAI/MiniMax-M2.5", "b300_sxm", "vllm", "fp8", 4, 512, 8192, 1024, 3296.0),
    (LLAMA_70B, "b200_sxm", "vllm", "nvfp4", 1, 64, 8192, 1024, 1904.0),
    ("deepseek-ai/DeepSeek-R1", "b200_sxm", "sglang", "fp8", 4, 32, 8192, 1024, 1480.0),
]


@pytest.mark.parametrize("row", FULL_CACHE_ROWS, ids=lambda r: f"{r[0]}-{r[2]}")
def test_measured_rows_that_hold_every_client(rows_factory, monkeypatch, row) -> None:
    """With the FP8 cache these rows' first tokens come without a long wait for a slot,
    as measured; with a BF16 cache the model queued most clients (v16: 25.7 s, 13.4 s
    and 10.5 s TTFT against 3.3, 1.9 and 1.5 s measured)."""
    *spec, measured_ms = row
    rows = _row(rows_factory, *spec)
    ttft_ms, tpot_ms, why = predict_rows(rows)
    assert why[0] == "" and np.isfinite(tpot_ms[0])
    assert measured_ms / 2 < ttft_ms[0] < measured_ms * 2
    # the same row with the cache stored as attention reads it (BF16 on these engines)
    import codesign.perf.prepare as prepare

    monkeypatch.setattr(prepare, "stored_kv_precision", lambda gemm, kv, prof: kv)
    bf16_ms, _, _ = predict_rows(rows)
    assert bf16_ms[0] > 3 * measured_ms


def _fp8_tokens(out: dict, engine: str, mem_bytes: float) -> float:
    """KV tokens an FP8-stored Llama-3.1-70B cache holds on one GPU, by hand: the engine's
    share of the memory (vLLM 90 % of it; TRT-LLM 90 % of what the weights and a 5 %
    runtime leave) after the weights, at 1 byte per element of 80 layers x 8 KV heads x
    128 x (K, V) = 163,840 elements a token."""
    w = out["weights_gb_per_gpu"] * 1e9
    budget = {"vllm": 0.9 * mem_bytes - w, "trtllm": 0.9 * (0.95 * mem_bytes - w)}[engine]
    return float(np.floor(budget / 163_840))


def test_estimate_reports_both_formats() -> None:
    """``codesign estimate`` names what the cache stores and what attention reads; the
    capacity is the stored format's: vLLM's cache (stored FP8, read BF16) and TRT-LLM's
    (FP8 both) hold 1 byte per element of the engine's share of the memory."""
    mem = hw_vectors(["h200_sxm"], ["fp8"], ["fp8"]).mem_bytes[0]
    req = dict(model=LLAMA_70B, system="h200_sxm", tp=1, batch=16, gemm_precision="fp8")
    vllm = estimate(EstimateRequest(**req, engine="vllm"))
    assert (vllm["kv_precision"], vllm["kv_stored_precision"]) == ("bf16", "fp8")
    trt = estimate(EstimateRequest(**req, engine="trtllm"))
    assert (trt["kv_precision"], trt["kv_stored_precision"]) == ("fp8", "fp8")
    for out, engine in ((vllm, "vllm"), (trt, "trtllm")):
        assert out["kv_tokens_per_worker"] == pytest.approx(_fp8_tokens(out, engine, mem), abs=1)


def test_afd_estimate_stores_the_cache_as_the_aggregated_one() -> None:
    """The attention pool of an attention-FFN estimate holds the cache the same way."""
    mem = hw_vectors(["h200_sxm"], ["fp8"], ["fp8"]).mem_bytes[0]
    req = dict(model=LLAMA_70B, system="h200_sxm", tp=1, batch=16, gemm_precision="fp8")
    for engine in ("vllm", "trtllm"):
        afd = estimate(EstimateRequest(**req, engine=engine, mode="afd", ffn_chips=2))
        assert afd["kv_stored_precision"] == "fp8"
        assert afd["kv_precision"] == ("bf16" if engine == "vllm" else "fp8")
        # the attention pool holds no FFN weights: its cache is the rest of its share
        assert afd["kv_tokens_per_worker"] == pytest.approx(_fp8_tokens(afd, engine, mem), abs=1)
