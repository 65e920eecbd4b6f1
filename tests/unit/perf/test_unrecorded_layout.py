"""Worker counts assumed for disaggregated rows that do not record them, by hand."""

from __future__ import annotations

import numpy as np
import pytest

from codesign.perf import unrecorded
from codesign.perf.step import Layout


def test_decode_batch_per_rank_follows_the_recorded_sweeps() -> None:
    # 0.51 x 64^0.84: 64^0.84 = e^(0.84 ln 64) = e^3.4935 = 32.90 -> 16.78
    b = unrecorded.decode_batch_per_rank(np.array([64.0, 2048.0, 1.0]), np.array([1, 8, 1]))
    assert b[0] == pytest.approx(16.78, abs=0.01)
    # attention-DP workers: 0.20 x 2048^0.82 = 0.20 x 519.1 = 103.8
    assert b[1] == pytest.approx(103.8, abs=0.1)
    assert b[2] == 1.0  # never below one sequence


def test_decode_workers_spread_low_concurrency_and_hold_the_kv() -> None:
    # 15 clients: batch 0.51 x 15^0.84 = 4.96 per rank -> ceil(15 / 4.96) = 4 TP workers
    w = unrecorded.decode_workers(np.array([15.0]), np.array([1]), np.array([1.0]))
    assert w[0] == 4
    # 2048 clients on DP8 workers: ceil(2048 / 103.8) = 20 ranks -> ceil(20 / 8) = 3 workers
    w = unrecorded.decode_workers(np.array([2048.0]), np.array([8]), np.array([1.0]))
    assert w[0] == 3
    # the workers needed to hold every client's KV win when they are more
    w = unrecorded.decode_workers(np.array([15.0]), np.array([1]), np.array([7.0]))
    assert w[0] == 7


def test_prefill_workers_keep_up_with_the_unqueued_request_rate() -> None:
    # 64 clients, 1000 output tokens at 20 ms, 0.5 s prefill passes of one request:
    # rate = 64 / (0.5 + 20) = 3.12 req/s, busy 3.12 x 0.5 = 1.56 workers -> 2
    p = unrecorded.prefill_workers(
        np.array([64.0, 1.0]),
        np.array([1000.0, 1000.0]),
        np.array([0.5, 0.5]),
        np.array([0.02, 0.02]),
        np.array([1.0, 1.0]),
    )
    assert p.tolist() == [2.0, 1.0]
    # a worker that prefills 4 requests per pass needs a quarter as many
    p4 = unrecorded.prefill_workers(
        np.array([256.0]), np.array([1000.0]), np.array([0.5]), np.array([0.02]), np.array([4.0])
    )
    # 256 / 20.5 = 12.49 req/s x 0.5 / 4 = 1.56 -> 2
    assert p4[0] == 2.0


def _lay(tp: float, dp: float, moe_tp: float, moe_ep: float) -> Layout:
    one = np.ones(1)
    return Layout(tp=tp * one, dp=dp * one, moe_tp=moe_tp * one, moe_ep=moe_ep * one, pp=one)


@pytest.mark.parametrize(
    ("recorded", "domain", "read"),
    [
        # tp column holds tp x ep (id tp4_ep4): 4 GPUs, experts 4 ways
        ((16, 1, 4, 4), 8, (4, 1, 1, 4)),
        ((64, 1, 8, 8), 8, (8, 1, 1, 8)),
        # attention-DP column holds dp x ep: DEP8
        ((1, 64, 8, 8), 8, (1, 8, 1, 8)),
        # expert width = tp x dp of a tp-wide worker (vLLM tp4_ep4)
        ((4, 4, 1, 16), 8, (4, 1, 1, 4)),
        # possible as recorded: kept
        ((16, 1, 4, 4), 72, (16, 1, 4, 4)),  # fits an NVL72 domain
        ((4, 1, 2, 2), 8, (4, 1, 2, 2)),  # fits the node
        ((16, 1, 2, 8), 8, (16, 1, 2, 8)),  # ep > moe_tp: not that product (H100 TP16 runs)
    ],
)
def test_product_recorded_layouts_are_read_as_run(recorded, domain, read) -> None:
    got = unrecorded.product_recorded_layout(_lay(*recorded), np.array([float(domain)]))
    assert (got.tp[0], got.dp[0], got.moe_tp[0], got.moe_ep[0]) == read
    if read != recorded:
        assert got.gpus[0] <= domain


def test_measured_rows_are_read_as_run_and_only_they(shared_dir) -> None:
    from codesign.validation.silicon import SiliconRows

    rows = SiliconRows.from_csv(shared_dir / "validation" / "silicon_dev.csv")
    pick = np.flatnonzero(rows.id == "dsr1_b200_sglang_fp4_agg_8192x1024_c4_cfg202")
    row = rows.subset(pick)
    assert (row.tp[0], row.moe_tp[0], row.moe_ep[0]) == (16, 4, 4)  # as recorded
    read = unrecorded.read_product_layouts(row, np.array([8.0]))  # an 8-GPU B200 node
    assert (read.tp[0], read.dp[0], read.moe_tp[0], read.moe_ep[0]) == (4, 1, 1, 4)
    kept = unrecorded.read_product_layouts(row, np.array([72.0]))  # would fit NVL72
    assert (kept.tp[0], kept.moe_tp[0], kept.moe_ep[0]) == (16, 4, 4)


def test_row_precisions_read_benchmark_quant_names() -> None:
    """Quant-mode names of other benchmark tables resolve to formats, not to the native one."""
    from codesign.models import load_model
    from codesign.perf.group import row_precisions
    from codesign.perf.profile import build_profile

    prof = build_profile(load_model("openai/gpt-oss-120b"))
    assert row_precisions("float16", "w4a16_mxfp4", "", "vllm", prof) == ("fp16", "mxfp4", "bf16")
    assert row_precisions("fp8", "w4afp8", "", "trtllm", prof) == ("fp8", "nvfp4", "fp8")
    assert row_precisions("sq", "", "", "sglang", prof)[0] == "int8"
    assert row_precisions("int8_wo", "w4a8_mxfp4_mxfp8", "", "trtllm", prof)[:2] == (
        "int8_wo",
        "mxfp4",
    )
    assert row_precisions("fp8_ootb", "", "", "trtllm", prof)[0] == "fp8"
    # an unknown name keeps the checkpoint's own precision
    assert row_precisions("", "", "", "vllm", prof)[1] == prof.native_moe


def test_trtllm_caches_fp8_where_the_checkpoint_declares_it() -> None:
    """GLM-5.1 NVFP4 keeps attention and dense layers in BF16 (its exclude list) but its
    hf_quant_config declares kv_cache_quant_algo FP8, which TRT-LLM follows; vLLM and
    SGLang keep the model dtype unless told; a BF16 checkpoint stays BF16."""
    from codesign.models import load_model
    from codesign.perf.group import row_precisions
    from codesign.perf.profile import build_profile

    glm = build_profile(load_model("nvidia/GLM-5.1-NVFP4"))
    assert (glm.native_gemm, glm.native_moe, glm.native_kv) == ("bf16", "nvfp4", "fp8")
    assert row_precisions("", "", "", "trtllm", glm) == ("bf16", "nvfp4", "fp8")
    assert row_precisions("", "", "", "vllm", glm)[2] == "bf16"
    llama = build_profile(load_model("meta-llama/Llama-3.1-70B"))
    assert llama.native_kv is None
    assert row_precisions("", "", "", "trtllm", llama)[2] == "bf16"
    assert row_precisions("fp8", "", "", "trtllm", llama)[2] == "fp8"
