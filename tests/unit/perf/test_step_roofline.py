"""The step model against hand-computed rooflines, and its physical monotonicity."""

from __future__ import annotations

import numpy as np
import pytest

from codesign.models.arch import AttentionSpec, IndexerSpec
from codesign.models.attn_layers import AttnGroup
from codesign.perf.hardware import HwVec
from codesign.perf.predict import take
from codesign.perf.profile import ModelProfile
from codesign.perf.step import Bytes, Efficiency, Layout, StepLoad, step_time

GQA_8_2 = AttentionSpec(kind="gqa", num_heads=8, num_kv_heads=2, head_dim=128, v_head_dim=128)


def profile(**over: object) -> ModelProfile:
    """A tiny dense GQA model: 2 layers, hidden 1024, 8 heads / 2 KV heads of dim 128."""
    base = dict(
        id="tiny",
        hidden=1024,
        vocab=32000,
        layers=2,
        attn=(AttnGroup(GQA_8_2, "full_attention", 2),),
        moe_layers=0,
        p_attn=2 * 2_621_440.0,
        p_recurrent=0.0,
        p_dense=2 * 12_582_912.0,
        p_shared=0.0,
        p_router=0.0,
        p_routed_total=0.0,
        p_expert=0.0,
        p_lm_head=32000 * 1024.0,
        num_experts=0,
        top_k=0,
        num_heads=8,
        recurrent_flops_per_token=0.0,
        state_bytes_per_seq=0.0,
        native_gemm="bf16",
        native_moe="bf16",
        native_attn="bf16",
    )
    base.update(over)
    return ModelProfile(**base)  # type: ignore[arg-type]


def mla(indexer: IndexerSpec | None = None) -> AttentionSpec:
    """DeepSeek-V3.2-shaped MLA with 8 heads: latent 512 + rope 64."""
    return AttentionSpec(
        kind="mla",
        num_heads=8,
        num_kv_heads=8,
        head_dim=192,
        v_head_dim=128,
        kv_lora_rank=512,
        qk_nope_head_dim=128,
        qk_rope_head_dim=64,
        indexer=indexer,
    )


def hw(n: int = 1, bw: float = 1e12, peak: float = 1e15) -> HwVec:
    a = lambda v: np.full(n, float(v))  # noqa: E731
    cls = np.array(["bf16"] * n, dtype=object)
    return HwVec(
        peak_gemm=a(peak),
        peak_moe=a(peak),
        peak_attn=a(peak),
        gemm_class=cls,
        moe_class=cls,
        mem_bw=a(bw),
        mem_bytes=a(80e9),
        su_bw=a(450e9),
        su_lat=a(1e-6),
        su_domain=a(8),
        so_bw=a(50e9),
        so_lat=a(5e-6),
        host_bw=a(63e9),
        storage_bw=a(6.25e9),
    )


def eff(n: int = 1, **over: object) -> Efficiency:
    base = dict(
        gemm_max=np.full(n, 1.0),
        moe_max=np.full(n, 1.0),
        m_half=0.0,
        moe_m_half=0.0,
        attn=1.0,
        decode_attn=1.0,
        mem=1.0,
        comm=1.0,
        comm_latency_s=0.0,
        layer_overhead_s=np.zeros(n),
        step_overhead_s=np.zeros(n),
        moe_imbalance=1.0,
    )
    base.update(over)
    return Efficiency(**base)  # type: ignore[arg-type]


def one(x: float, n: int = 1) -> np.ndarray:
    return np.full(n, float(x))


LAY1 = Layout(tp=one(1), dp=one(1), moe_tp=one(1), moe_ep=one(1), pp=one(1))
BF16 = Bytes(gemm=one(2), moe=one(2), kv=one(2))


def test_decode_step_is_weight_and_kv_streaming_by_hand() -> None:
    prof = profile()
    load = StepLoad(n_dec=one(4), ctx_dec=one(999), n_pf=one(0), ctx_pf=one(0), pf_seqs=one(0))
    t = step_time(prof, hw(), LAY1, load, BF16, eff())
    # dense weights: (attn 5.24M + mlp 25.2M params) x 2 B / 1 TB/s; plus activations
    # 4 x tokens x hidden x 2 B x layers = 4*4*1024*2*2 bytes
    dense_bytes = (2 * 2_621_440 + 2 * 12_582_912) * 2 + 4 * 4 * 1024 * 2 * 2
    assert t["gemm"][0] == pytest.approx(dense_bytes / 1e12 + 32000 * 1024 * 2 / 1e12)
    # KV: 4 seqs x 1000 keys x 2 layers x 512 elements x 2 B, heads split min(tp=1, 2) = 1
    kv_bytes = 4 * 1000 * 2 * 512 * 2
    assert t["attn_decode"][0] == pytest.approx(kv_bytes / 1e12)
    assert t["comm"][0] == 0 and t["moe"][0] == 0
    # element-wise: 4 tokens x (2 fused add+RMSNorm x 4 passes x 1024 hidden x 2 layers
    # + the MLP activation, read 2 x 4096 write 4096 per layer = 25.2M params / 1024) x 2 B
    elems = 4 * (8 * 1024 * 2 + 2 * 3 * 4096)
    assert t["elementwise"][0] == pytest.approx(elems * 2 / 1e12)
    parts = ("gemm", "moe", "attn_decode", "attn_prefill", "comm", "fixed", "elementwise")
    assert t["total"][0] == pytest.approx(sum(t[k][0] for k in parts))


def test_dsa_decode_reads_top_k_latents_and_every_indexer_key_by_hand() -> None:
    """DeepSeek-V3.2-style MLA + DSA: the latent (512 + 64) is read for the top-k keys
    only, the 128-element indexer key for every cached key."""
    dsa = mla(IndexerSpec(num_heads=64, head_dim=128, topk_tokens=2048))
    prof = profile(attn=(AttnGroup(dsa, "full_attention", 2),))
    ctx = 65_535.0
    load = StepLoad(n_dec=one(4), ctx_dec=one(ctx), n_pf=one(0), ctx_pf=one(0), pf_seqs=one(0))
    t = step_time(prof, hw(peak=1e18), LAY1, load, BF16, eff())  # memory-bound on purpose
    latent = 4 * 2 * 2048 * 576 * 2  # 4 seqs x 2 layers x top-k keys x 576 x 2 B
    index = 4 * 2 * (ctx + 1) * 128 * 2  # every key's indexer entry
    assert t["attn_decode"][0] == pytest.approx((latent + index) / 1e12)
    # dense MLA (V3) reads every latent: 4 x 2 x 65,536 x 576 x 2 B, 2.8x the DSA step
    plain = profile(attn=(AttnGroup(mla(), "full_attention", 2),))
    t0 = step_time(plain, hw(peak=1e18), LAY1, load, BF16, eff())
    assert t0["attn_decode"][0] == pytest.approx(4 * 2 * (ctx + 1) * 576 * 2 / 1e12)


def test_prefill_is_compute_bound_by_hand() -> None:
    prof = profile()
    n = 4096
    load = StepLoad(n_dec=one(0), ctx_dec=one(0), n_pf=one(n), ctx_pf=one(0), pf_seqs=one(1))
    t = step_time(prof, hw(), LAY1, load, BF16, eff())
    gemm_flops = 2 * n * (2 * 2_621_440 + 2 * 12_582_912)
    head_flops = 2 * 1 * 32000 * 1024
    assert t["gemm"][0] == pytest.approx(
        gemm_flops / 1e15 + max(head_flops / 1e15, 32000 * 1024 * 2 / 1e12)
    )
    # causal pairs n(n+1)/2 per layer x 2 layers, 2 x 8 heads x (128 + 128) FLOPs per pair
    pairs = n * (n + 1) / 2 * 2
    assert t["attn_prefill"][0] == pytest.approx(pairs * 2 * 8 * 256 / 1e15, rel=1e-6)


def test_prefill_attention_efficiency_rises_with_the_keys_attended_by_hand() -> None:
    # 1,024 new tokens after 3,072 cached: a query attends 3,072 + 512 keys on average, so
    # at S_half = 2,048 the kernel runs at 0.64 x 3,584 / 5,632 of peak
    prof = profile()
    load = StepLoad(n_dec=one(0), ctx_dec=one(0), n_pf=one(1024), ctx_pf=one(3072), pf_seqs=one(1))
    t = step_time(prof, hw(), LAY1, load, BF16, eff(attn=0.64, attn_half_tokens=2048.0))
    pairs = (1024 * 3072 + 1024 * 1025 / 2) * 2  # per layer x 2 layers
    flops = pairs * 2 * 8 * 256
    assert t["attn_prefill"][0] == pytest.approx(flops / (1e15 * 0.64 * 3584 / 5632), rel=1e-6)
    # the same request's cost per pair falls as the prefix grows (and never below 1 / 0.64)
    longer = StepLoad(
        n_dec=one(0), ctx_dec=one(0), n_pf=one(1024), ctx_pf=one(100_000), pf_seqs=one(1)
    )
    t_long = step_time(prof, hw(), LAY1, longer, BF16, eff(attn=0.64, attn_half_tokens=2048.0))
    pairs_long = (1024 * 100_000 + 1024 * 1025 / 2) * 2
    per_pair = t["attn_prefill"][0] / pairs, t_long["attn_prefill"][0] / pairs_long
    assert per_pair[1] < per_pair[0]
    assert per_pair[1] >= 2 * 8 * 256 / (1e15 * 0.64)


def test_tensor_parallel_adds_allreduce_by_hand() -> None:
    prof = profile()
    lay = Layout(tp=one(2), dp=one(1), moe_tp=one(2), moe_ep=one(1), pp=one(1))
    load = StepLoad(n_dec=one(8), ctx_dec=one(100), n_pf=one(0), ctx_pf=one(0), pf_seqs=one(0))
    t = step_time(prof, hw(), lay, load, BF16, eff())
    act = 8 * 1024 * 2
    per = 2 * (2 - 1) / 2 * act / 450e9 + 1e-6  # ring all-reduce + link latency
    assert t["comm"][0] == pytest.approx(2 * 2 * per)  # 2 all-reduces x 2 layers


def test_vectorised_equals_one_at_a_time() -> None:
    prof = profile()
    rng = np.random.default_rng(0)
    n = 64
    tp = rng.choice([1, 2], n).astype(float)
    lay = Layout(tp=tp, dp=one(1, n), moe_tp=tp, moe_ep=one(1, n), pp=one(1, n))
    load = StepLoad(
        n_dec=rng.integers(1, 256, n).astype(float),
        ctx_dec=rng.integers(1, 8000, n).astype(float),
        n_pf=rng.integers(0, 4096, n).astype(float),
        ctx_pf=one(0, n),
        pf_seqs=one(1, n),
    )
    bw = rng.uniform(1e12, 8e12, n)
    h = hw(n)
    h = HwVec(**{**h.__dict__, "mem_bw": bw})
    nb = Bytes(gemm=one(2, n), moe=one(2, n), kv=one(1, n))
    e = eff(n, m_half=64.0)
    batch = step_time(prof, h, lay, load, nb, e)["total"]
    for i in range(n):
        idx = np.array([i])
        single = step_time(
            prof, take(h, idx), take(lay, idx), take(load, idx), take(nb, idx), take(e, idx)
        )["total"]
        assert single[0] == pytest.approx(batch[i])


@pytest.mark.parametrize("field", ["mem_bw", "peak_gemm", "peak_attn", "su_bw"])
def test_more_hardware_is_never_slower(field: str) -> None:
    prof = profile()
    n = 5
    lay = Layout(tp=one(2, n), dp=one(1, n), moe_tp=one(2, n), moe_ep=one(1, n), pp=one(1, n))
    load = StepLoad(
        n_dec=np.array([1, 8, 64, 256, 16.0]),
        ctx_dec=np.array([10, 1e3, 4e3, 3e4, 1e5]),
        n_pf=np.array([0, 512, 0, 8192, 100.0]),
        ctx_pf=one(0, n),
        pf_seqs=one(1, n),
    )
    base = hw(n)
    faster = HwVec(**{**base.__dict__, field: getattr(base, field) * 2})
    e = eff(n, m_half=64.0, mem=0.8, gemm_max=one(0.7, n), attn=0.5)
    nb = Bytes(gemm=one(1, n), moe=one(1, n), kv=one(1, n))
    t0 = step_time(prof, base, lay, load, nb, e)["total"]
    t1 = step_time(prof, faster, lay, load, nb, e)["total"]
    assert np.all(t1 <= t0 + 1e-15)


def test_gemm_efficiency_rises_with_tokens() -> None:
    prof = profile()
    n = 3
    load = StepLoad(
        n_dec=np.array([1.0, 64, 4096]),
        ctx_dec=one(0, n),
        n_pf=one(0, n),
        ctx_pf=one(0, n),
        pf_seqs=one(0, n),
    )
    lay = Layout(tp=one(1, n), dp=one(1, n), moe_tp=one(1, n), moe_ep=one(1, n), pp=one(1, n))
    t = step_time(
        prof,
        hw(n, bw=1e15, peak=1e12),
        lay,
        load,
        BF16.__class__(gemm=one(2, n), moe=one(2, n), kv=one(2, n)),
        eff(n, m_half=64.0),
    )
    per_token = t["gemm"] / load.n_dec
    assert per_token[0] > per_token[1] > per_token[2]


def _prefill_after_cached_prefix(**tiers: np.ndarray) -> StepLoad:
    """100 new tokens after a 9,900-token cached prefix (``tiers``: where it is loaded
    from, e.g. ``host_kv_tokens``)."""
    return StepLoad(
        n_dec=one(0), ctx_dec=one(0), n_pf=one(100), ctx_pf=one(9900), pf_seqs=one(1), **tiers
    )


def test_host_memory_prefix_hits_are_loaded_over_the_host_link_by_hand() -> None:
    prof = profile()
    load = _prefill_after_cached_prefix(host_kv_tokens=one(9900))
    t = step_time(prof, hw(), LAY1, load, BF16, eff())
    # 9,900 tokens x 2 layers x 512 elements x 2 bytes over a 63 GB/s host link, at the
    # 55.6 GB/s a pinned bulk copy reaches on PCIe Gen5 x16 (NVbandwidth)
    assert t["kv_load"][0] == pytest.approx(9900 * 2 * 512 * 2 / 55.6e9)
    no_host = _prefill_after_cached_prefix()
    assert step_time(prof, hw(), LAY1, no_host, BF16, eff())["kv_load"][0] == 0


def test_storage_prefix_hits_are_read_at_the_drives_bandwidth_by_hand() -> None:
    """A node's NVMe tier: 8 Gen4 drives, 50 GB/s in all, shared by 8 chips give each
    chip 6.25 GB/s; 4,000 host tokens and 6,000 storage tokens load one after the other."""
    prof = profile()
    load = _prefill_after_cached_prefix(host_kv_tokens=one(4000), storage_kv_tokens=one(6000))
    t = step_time(prof, hw(), LAY1, load, BF16, eff())
    per_token = 2 * 512 * 2  # bytes: 2 layers x 512 elements x 2 bytes
    expected = 4000 * per_token / 55.6e9 + 6000 * per_token / 6.25e9
    assert t["kv_load"][0] == pytest.approx(expected)
    # the drives bound it: ten times the host link's time per token
    assert 6000 * per_token / 6.25e9 > 5 * 6000 * per_token / 55.6e9
