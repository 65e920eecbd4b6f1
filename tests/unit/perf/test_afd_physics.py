"""Attention-FFN disaggregation: the ping-pong schedule and the physics of both pools."""

from __future__ import annotations

import numpy as np
import pytest

from codesign.perf.calibration import load_calibration
from codesign.perf.estimate import EstimateRequest, estimate
from codesign.serving.afd import afd_step_time

R1 = "deepseek-ai/DeepSeek-R1"


def _simulate(layers: int, m: int, t_a: float, t_f: float, t_x: float, t_link: float) -> float:
    """The ping-pong step event by event: the attention pool, the FFN pool and each link
    direction serve the micro-batches in order, one at a time; a hop holds its link for
    t_link and delivers after t_x. Returns when the last micro-batch is back."""
    ready = [0.0] * m  # when each micro-batch may start its next layer's attention
    a_free = f_free = out_free = back_free = 0.0
    for _ in range(layers):
        for i in range(m):
            a_end = max(ready[i], a_free) + t_a
            a_free = a_end
            sent = max(a_end, out_free)
            out_free = sent + t_link
            f_end = max(sent + t_x, f_free) + t_f
            f_free = f_end
            back = max(f_end, back_free)
            back_free = back + t_link
            ready[i] = back + t_x
    return max(ready)


def _step(layers: int, m: int, t_a: float, t_f: float, t_x: float, t_link: float) -> float:
    args = (np.array([t_a]), np.array([t_f]), np.array([t_x]))
    return float(afd_step_time(layers, *args, m, np.array([t_link]))[0])


def test_ping_pong_by_hand() -> None:
    # t_a = t_f = 0.1 ms, hops 0.01 ms, 61 layers, 2 micro-batches. Micro-batch 1 never
    # waits: 0.1 + 0.01 + 0.1 + 0.01 = 0.22 ms a layer. Micro-batch 2 starts its attention
    # when the first's ends (0.1 ms) and then never waits either (each pool serves the two
    # in 0.2 ms < 0.22), so it ends 0.1 ms after the first: 61 x 0.22 + 0.1 = 13.52 ms.
    assert _step(61, 2, 0.1e-3, 0.1e-3, 0.01e-3, 0.01e-3) == pytest.approx(13.52e-3)
    assert _simulate(61, 2, 0.1e-3, 0.1e-3, 0.01e-3, 0.01e-3) == pytest.approx(13.52e-3)
    # one micro-batch is the serial sum
    assert _step(61, 1, 0.1e-3, 0.1e-3, 0.01e-3, 0.01e-3) == pytest.approx(61 * 0.22e-3)


def test_the_step_formula_is_the_schedule() -> None:
    rng = np.random.default_rng(7)
    for _ in range(200):
        m = int(rng.integers(1, 9))
        layers = int(rng.integers(1, 40))
        t_a, t_f = rng.uniform(0.01, 1.0, 2)
        t_x = float(rng.uniform(0.0, 0.6))
        t_link = float(rng.uniform(0.0, 1.0) * t_x)
        hand = _simulate(layers, m, t_a, t_f, t_x, t_link)
        assert _step(layers, m, t_a, t_f, t_x, t_link) == pytest.approx(hand, rel=1e-9)


def test_more_micro_batches_help_when_the_pools_are_balanced() -> None:
    # a whole batch takes 0.2 ms of attention and of FFN, 0.02 ms a hop; m micro-batches
    # of it take 1/m of each. Serially 61 x 0.44 = 26.8 ms
    times = [_step(61, m, 0.2e-3 / m, 0.2e-3 / m, 0.02e-3 / m, 0.02e-3 / m) for m in (1, 2, 4)]
    assert times[0] == pytest.approx(61 * 0.44e-3)
    assert times[2] < times[1] < 0.55 * times[0]


def _afd(**kw) -> dict:
    base = {"model": R1, "mode": "afd", "breakdown": True, **kw}
    return estimate(EstimateRequest(**base))


def _step_ms(r: dict) -> float:
    """The decode step alone, without the stretch of the prefills it waits for."""
    d = r["breakdown"]["decode_step"]
    return d["total"] - d.get("prefill_stretch", 0.0)


def test_two_micro_batches_beat_one_on_r1(shared_dir) -> None:
    # H200 TP8 attention, 8 FFN chips, 256 sequences: attention and FFN within ~3x of each
    # other, hops short. It had been 79 -> 90 -> 121 -> 176 ms for m = 1, 2, 4, 8 (the fill
    # charged every layer)
    one, two = (
        _afd(system="h200_sxm", tp=8, ffn_chips=8, batch=256, micro_batches=m) for m in (1, 2)
    )
    assert _step_ms(two) < 0.92 * _step_ms(one)
    assert two["tpot_ms"] < one["tpot_ms"]


def test_attention_pays_one_all_reduce_per_layer_and_the_ffn_pool_none(shared_dir) -> None:
    from codesign.perf.engine import efficiency
    from codesign.perf.hardware import hw_vectors
    from hwmodels import get_system

    calib = load_calibration()
    rows = [_afd(system="h200_sxm", tp=8, ffn_chips=f, batch=16, micro_batches=1) for f in (8, 64)]
    hw = hw_vectors([get_system("h200_sxm")], ["fp8"], ["fp8"])
    eff = efficiency(calib, hw, ["trtllm"])
    # one all-reduce of 16 tokens x 7,168 x 2 bytes over the 8 NVLink-connected chips
    nbytes = 16 * 7168 * 2.0
    one = 2 * 7 / 8 * nbytes / (450e9 * calib.comm_eff) + 1e-6 + calib.comm_latency_us * 1e-6
    hand = 61 * one * (1.0 - eff.comm_overlap)
    for r in rows:
        assert r["breakdown"]["attention_step"]["comm"] == pytest.approx(hand * 1e3)
        # dispatch and combine are the hops between the pools, not FFN collectives
        assert "comm" not in r["breakdown"]["ffn_step"]
    # more FFN chips: less expert work per chip, and no all-reduce growing with them
    # (it had been 24 -> 49 ms from 8 to 64 FFN chips)
    assert rows[1]["ffn_layer_ms"] < rows[0]["ffn_layer_ms"]
    assert _step_ms(rows[1]) < _step_ms(rows[0])


def test_the_ffn_pool_splits_dense_and_shared_expert_work(shared_dir) -> None:
    # GB200, 8 attention-DP ranks of 256: the dense layers and shared experts ran on every
    # token on every FFN chip (2.2 ms of GEMMs at any F); each chip now takes tokens / F
    gemm = [
        _afd(system="gb200", dp=8, ffn_chips=f, batch=256)["breakdown"]["ffn_step"]["gemm"]
        for f in (1, 8, 32)
    ]
    assert gemm[2] <= gemm[1] < 0.5 * gemm[0]


def test_memory_bounds_both_pools(shared_dir) -> None:
    # DeepSeek-R1's experts (~650 GB in FP8) do not fit one 141 GB H200
    r = _afd(system="h200_sxm", tp=8, ffn_chips=1, batch=16)
    assert not r["fits"] and r["ffn_weights_gb_per_gpu"] > 600
    assert _afd(system="h200_sxm", tp=8, ffn_chips=8, batch=16)["fits"]
    # 4,096 clients per rank of 8K + 128 tokens: far more KV than a GB200 rank holds. A rank
    # runs what its cache holds (TRT-LLM reserves isl + osl per sequence)
    r = _afd(system="gb200", dp=8, ffn_chips=32, batch=4096, isl=8192, osl=128)
    slots = np.floor(r["kv_tokens_per_worker"] / 8 / (8192 + 128))
    assert r["kv_slots_per_rank"] == slots < 4096
    assert r["decode_batch_per_rank"] == slots


def test_prefill_bounds_throughput_and_stretches_decode(shared_dir) -> None:
    # TTFT had stayed 435 ms from 16 to 512 clients per rank while each rank was asked to
    # prefill 3x more than it could (requests/s x prefill time up to 25 over 8 ranks)
    rows = [_afd(system="gb200", dp=8, ffn_chips=32, batch=b) for b in (16, 128, 512)]
    for r in rows:
        prefill_s = r["breakdown"]["prefill"]["total"] * 1e-3
        rho = r["requests_per_s"] / 8 * prefill_s
        assert rho == pytest.approx(r["prefill_utilization"]) and rho < 1.0
        assert r["tpot_ms"] == pytest.approx(_step_ms(r) / (1.0 - rho))
    assert rows[0]["ttft_ms"] < rows[1]["ttft_ms"] < rows[2]["ttft_ms"]
    assert rows[2]["prefill_utilization"] > 0.8


def test_same_domain_counts_the_pipeline_stages(shared_dir) -> None:
    # TP4 x DP8 attention with 32 FFN chips fits one 72-chip NVL domain; with PP2 the
    # attention pool is 64 chips and the hops go over the NICs
    one, two = (_afd(system="gb200", tp=4, dp=8, pp=pp, ffn_chips=32, batch=32) for pp in (1, 2))
    assert two["attention_chips"] == 64
    assert two["transfer_ms"] > 2 * one["transfer_ms"]


def test_prefill_is_split_between_the_pools_like_decode(shared_dir) -> None:
    """The attention pool holds no FFN weights, so a prompt's FFN runs on the FFN pool
    too: GB200, 8 attention-DP ranks of one chip, 8 FFN chips in the same NVLink domain,
    an 8K prompt. Each of the 61 layers sends the prompt's 8,192 x 7,168 BF16 hidden
    states to the 5.25 FFN chips its tokens' experts sit on (8 (1 - (7/8)^8)) and back,
    from the one chip of its rank: 2 x 61 x (616.6 MB / NVLink + latency). The prefill
    had run the whole model on the attention rank, whose memory check counted attention
    weights only."""
    from codesign.perf.engine import efficiency
    from codesign.perf.hardware import hw_vectors
    from hwmodels import get_system

    r = _afd(system="gb200", dp=8, ffn_chips=8, batch=8, isl=8192, osl=256)
    assert r["fits"] and r["weights_gb_per_gpu"] < 20 < r["ffn_weights_gb_per_gpu"]
    pf = r["breakdown"]["prefill"]
    assert pf["moe"] > 0 and pf["attn_prefill"] > 0  # both pools' work
    calib = load_calibration()
    hw = hw_vectors([get_system("gb200")], ["fp8"], ["fp8"])
    eff = efficiency(calib, hw, ["trtllm"])
    copies = 8 * (1 - (7 / 8) ** 8)
    hop = 8192 * 7168 * 2.0 * copies / (float(hw.su_bw[0]) * calib.comm_eff)
    hop += float(hw.su_lat[0]) + calib.comm_latency_us * 1e-6
    # one chip per attention rank: no all-reduce there; the FFN pool runs none
    assert pf["comm"] == pytest.approx(2 * 61 * hop * 1e3, rel=1e-6)
    assert float(np.asarray(eff.comm).ravel()[0]) == pytest.approx(calib.comm_eff)


def test_a_hybrid_models_state_takes_the_attention_pools_cache_room(shared_dir) -> None:
    """Nemotron-H-56B's Mamba layers run on the attention pool and keep ~460 MB of state
    per sequence there: a rank holds what its cache holds with that state, as the
    aggregated path counts it (the AFD path had counted the KV tokens alone)."""
    from codesign.models import load_model
    from codesign.models.derived import kv_bytes_per_token, kv_state_bytes_per_sequence

    model = "nvidia/Nemotron-H-56B-Base-8K"
    r = _afd(model=model, system="h200_sxm", tp=2, ffn_chips=2, batch=512, isl=1024, osl=256)
    arch = load_model(model)
    state_tokens = kv_state_bytes_per_sequence(arch) / kv_bytes_per_token(arch)
    held = 1024 + 256 + state_tokens  # TRT-LLM reserves isl + osl
    assert r["kv_slots_per_rank"] == np.floor(r["kv_tokens_per_worker"] / held)
    # ~11,000 token equivalents of state per sequence: ~10x fewer than the tokens alone
    assert r["kv_slots_per_rank"] < 0.2 * r["kv_tokens_per_worker"] / (1024 + 256)


def test_the_shared_ffn_pool_bounds_every_ranks_prefills(shared_dir) -> None:
    """Llama-3.1-70B FP8 on GB200, 8 attention ranks and one FFN chip, 8K prompts: the
    one chip runs the MLP of all 8 ranks' prefills, so per rank a prefill occupies the
    loop 8 times its FFN part. The utilisation had been the rank's own prefill alone
    (0.23 here, where the FFN chip is ~95% busy); with 4 FFN chips the bound relaxes."""
    rows = [
        _afd(
            model="meta-llama/Llama-3.1-70B",
            system="gb200",
            dp=8,
            ffn_chips=f,
            batch=64,
            isl=8192,
            osl=256,
            gemm_precision="fp8",
        )
        for f in (1, 4)
    ]
    own = [r["requests_per_s"] / 8 * r["breakdown"]["prefill"]["total"] * 1e-3 for r in rows]
    assert rows[0]["prefill_utilization"] > 3 * own[0]
    assert rows[0]["prefill_utilization"] < 1.0
    assert rows[1]["tpot_ms"] < 0.5 * rows[0]["tpot_ms"]
