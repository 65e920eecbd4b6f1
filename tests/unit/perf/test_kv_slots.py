"""How many sequences a worker's KV cache holds, and what happens when it is full: the
engines' admission policies, the slot-bound closed loop, and the measured rows whose
recorded layout or concurrency cannot be what ran (wide expert parallelism, replicas)."""

from __future__ import annotations

import numpy as np
import pytest

from codesign.perf import unrecorded
from codesign.perf.memory import kv_tokens_held_per_seq
from codesign.perf.step import Layout
from codesign.serving.closed_loop import aggregated


def test_trtllm_reserves_the_whole_request_and_paged_engines_hold_the_mean() -> None:
    engines = ["trtllm", "vllm", "sglang"]
    held = kv_tokens_held_per_seq(engines, np.full(3, 1024.0), np.full(3, 8192.0))
    # GUARANTEED_NO_EVICT: prompt + max new tokens; paged: prompt + half the output
    assert held.tolist() == [1024 + 8192, 1024 + 4096, 1024 + 4096]


def test_slot_bound_closed_loop_by_hand() -> None:
    """1,000 clients, 10 KV slots: with every slot decoding, X (osl - 1) TPOT = slots and
    TPOT = t_dec / (1 - X w), so X = slots / ((osl - 1) t_dec + slots w). Before, the
    bound ignored the stretch, X ran up to the prefill limit 1 / w and TPOT blew up."""
    slots, osl, t_dec, w = 10.0, 101.0, 0.020, 0.050
    out = aggregated(
        np.array([1000.0]),
        np.array([osl]),
        np.array([t_dec]),
        np.array([w]),
        np.array([w]),
        np.array([0.0]),
        q=0.0,
        s=0.0,
        slots=np.array([slots]),
    )
    x_bound = slots / ((osl - 1) * t_dec + slots * w)  # 10 / 2.5 = 4 requests/s
    x = out["requests_per_s"][0]
    assert x == pytest.approx(x_bound, rel=1e-6)
    tpot = t_dec / (1 - x_bound * w)  # 0.020 / 0.8 = 25 ms
    assert out["tpot_s"][0] == pytest.approx(tpot, rel=1e-6)
    assert x * (osl - 1) * out["tpot_s"][0] == pytest.approx(slots, rel=1e-6)
    # the clients that cannot hold a slot wait: Little's law sets TTFT
    assert out["ttft_s"][0] == pytest.approx(1000.0 / x - (osl - 1) * tpot, rel=1e-6)


def _lay(tp: float, dp: float, moe_tp: float, moe_ep: float) -> Layout:
    one = np.array([1.0])
    return Layout(tp=tp * one, dp=dp * one, moe_tp=moe_tp * one, moe_ep=moe_ep * one, pp=one)


@pytest.mark.parametrize(
    ("recorded", "heads", "moe", "read"),
    [
        # DeepSeek-R1 (128 heads) recorded as tp 72 on a GB200 NVL72: DEP72
        ((72, 1, 72, 1), 128, True, (1, 72, 1, 72)),
        ((28, 1, 28, 1), 128, True, (1, 28, 1, 28)),
        # possible as recorded: kept
        ((8, 1, 1, 8), 128, True, (8, 1, 1, 8)),
        ((16, 1, 1, 16), 128, True, (16, 1, 1, 16)),
        ((1, 8, 1, 8), 128, True, (1, 8, 1, 8)),  # attention-DP already recorded
        ((6, 1, 6, 1), 64, False, (6, 1, 6, 1)),  # a dense model: no experts to spread
    ],
)
def test_tp_that_cannot_split_the_heads_is_read_as_wide_ep(recorded, heads, moe, read) -> None:
    got = unrecorded.wide_ep_recorded_layout(_lay(*recorded), heads, moe)
    assert (got.tp[0], got.dp[0], got.moe_tp[0], got.moe_ep[0]) == read
    assert got.gpus[0] == _lay(*recorded).gpus[0]  # the same GPUs, read another way


def test_measured_wide_ep_row_is_read_as_dep(shared_dir) -> None:
    from codesign.models import load_model
    from codesign.perf.profile import build_profile
    from codesign.validation.silicon import SiliconRows

    rows = SiliconRows.from_csv(shared_dir / "validation" / "silicon_dev.csv")
    rid = "2026_04_06_deepseek_r1_gb200_sglang_fp8_agg_1024x1024_c2048_tp72_ep1_46"
    row = rows.subset(np.flatnonzero(rows.id == rid))
    assert (row.tp[0], row.dp[0], row.moe_tp[0], row.moe_ep[0]) == (72, 1, 72, 1)
    prof = build_profile(load_model("deepseek-ai/DeepSeek-R1"))
    read = unrecorded.read_product_layouts(row, np.array([72.0]), prof.num_heads, prof.is_moe)
    assert (read.tp[0], read.dp[0], read.moe_tp[0], read.moe_ep[0]) == (1, 72, 1, 72)


def test_replicas_only_where_the_recorded_clients_cannot_fit() -> None:
    c = np.array([448.0, 448.0, 448.0, 64.0, 96.0])
    batch = np.array([14.0, 14.0, 0.0, 16.0, 40.0])
    slots = np.array([74.0, 500.0, 74.0, 10.0, 74.0])
    got = unrecorded.replica_clients(c, batch, slots)
    # 448 = 32 x 14 and 448 > 74 slots >= 14: 32 replicas of 14 clients
    # fits as recorded (500 slots), no batch recorded, the batch itself does not fit,
    # and 96 is no whole multiple of 40: kept
    assert got.tolist() == [14.0, 448.0, 448.0, 64.0, 96.0]


@pytest.mark.parametrize(("engine", "admitted"), [("trtllm", 1), ("vllm", 2), ("sglang", 2)])
def test_simulator_admits_as_the_engine_does(engine, admitted) -> None:
    """Three waiting requests of 1,000 prompt + 1,000 output tokens, 3,000 KV tokens free
    beside one running sequence's: TRT-LLM reserves 2,000 a request (one more fits), a
    paged engine 1,500 (two more)."""
    from collections import deque
    from types import SimpleNamespace

    from codesign.perf.memory import RESERVES_MAX_TOKENS
    from codesign.simulate.batching import admit
    from codesign.simulate.requests import COLUMNS, N_IN, N_OUT
    from tests.unit.simulate.sim_helpers import FixedModel

    rows = []
    for _ in range(3):
        row = [0] * len(COLUMNS)
        row[N_IN], row[N_OUT] = 1000, 1000
        rows.append(row)
    halves = 2 if engine in RESERVES_MAX_TOKENS else 1
    w = SimpleNamespace(
        rows=rows,
        model=FixedModel(max_seqs=64, kv_out_halves=halves),
        waiting=deque([0, 1, 2]),
        pf_active=[],
        n_dec=1,  # one sequence decoding already
        role="agg",
        kv_cap=5000,
        kv_used=2000,
        dec_wait=deque(),
    )
    admit(w)
    assert len(w.pf_active) == admitted
    assert w.kv_used == 2000 + admitted * (1000 + 1000 * halves // 2)


def test_estimate_reports_the_slots_each_engine_admits(shared_dir) -> None:
    """Llama-3.1-70B FP8 on one B200 at 1K/8K (the measured example above): vLLM holds
    kv_tokens / (1,024 + 4,096) sequences and its 64 clients fit; TRT-LLM (an FP8 KV
    cache) holds kv_tokens / 9,216 and 128 clients queue for a slot."""
    from codesign.perf.estimate import EstimateRequest, estimate

    def point(engine: str, clients: int) -> dict:
        req = EstimateRequest(
            model="meta-llama/Llama-3.1-70B",
            system="b200_sxm",
            mode="agg",
            tp=1,
            batch=clients,
            isl=1024,
            osl=8192,
            engine=engine,
            gemm_precision="fp8",
        )
        return estimate(req)

    vllm, trt = point("vllm", 64), point("trtllm", 128)
    assert vllm["kv_slots_per_rank"] == vllm["kv_tokens_per_worker"] // (1024 + 4096)
    assert trt["kv_slots_per_rank"] == trt["kv_tokens_per_worker"] // (1024 + 8192)
    assert vllm["kv_slots_per_rank"] >= 64 and vllm["ttft_ms"] < 2_000  # measured 0.38 s
    assert trt["kv_slots_per_rank"] < 128 and trt["ttft_ms"] > 30_000  # measured 137 s
