"""Hierarchical collectives (codesign.perf.collectives) against hand computations, and
their effect on a step that spans two scale-up domains."""

from __future__ import annotations

import numpy as np
import pytest

from codesign.models import kv_elements_per_token, load_model
from codesign.perf.collectives import (
    Links,
    all_to_all_s,
    allreduce_s,
    kv_paths,
    kv_transfer_s,
    members_per_domain,
    pipeline_hops_s,
)
from codesign.perf.hardware import HwVec
from codesign.perf.profile import build_profile
from codesign.perf.step import Layout, StepLoad, step_time
from tests.unit.perf.test_step_roofline import BF16, eff, hw, one, profile

UP, OUT = 450e9, 50e9  # H100: NVLink per direction, one 400 Gb/s NIC per GPU
LAT_UP, LAT_OUT = 1e-6, 5e-6
S = 64e6  # bytes all-reduced: 4,096 tokens x 8,192 hidden x 2 bytes


def a(x: float) -> np.ndarray:
    return np.array([float(x)])


H100 = Links(bw_up=a(UP), bw_out=a(OUT), lat_up=a(LAT_UP), lat_out=a(LAT_OUT))


def ar(n: int, per_domain: int) -> float:
    return float(allreduce_s(a(n), a(S), a(per_domain), H100)[0])


def test_allreduce_inside_one_domain_is_the_ring() -> None:
    assert ar(8, 8) == pytest.approx(2 * 7 / 8 * S / UP + LAT_UP)
    assert ar(1, 1) == 0.0


def test_allreduce_over_two_nodes_is_hierarchical_by_hand() -> None:
    # TP16 on two 8-GPU nodes: reduce-scatter and all-gather over NVLink (2 x 7/8 S),
    # then each GPU's S/8 shard all-reduced with its peer node over its own NIC
    # (2 x 1/2 x S/8)
    hand = 2 * 7 / 8 * S / UP + 2 * (1 / 2) * (S / 8) / OUT + 2 * LAT_UP + 2 * LAT_OUT
    assert ar(16, 8) == pytest.approx(hand)
    # the flat ring over the NICs it replaces is several times slower
    flat_ring = 2 * 15 / 16 * S / OUT
    assert flat_ring / hand > 5


def test_allreduce_one_gpu_per_domain_is_the_ring_over_the_nics() -> None:
    assert ar(4, 1) == pytest.approx(2 * 3 / 4 * S / OUT + 2 * 3 * LAT_OUT)  # 6 ring steps


def test_all_to_all_splits_peers_between_links_by_hand() -> None:
    def a2a(n: int, per_domain: int) -> float:
        return float(all_to_all_s(a(n), a(S), a(per_domain), H100)[0])

    assert a2a(8, 8) == pytest.approx(S / UP + LAT_UP)
    # EP16 over two nodes: 7 of 15 peers over NVLink, 8 over the NIC, concurrently
    assert a2a(16, 8) == pytest.approx(max(7 / 15 * S / UP, 8 / 15 * S / OUT) + LAT_OUT)


def test_members_per_domain_packs_the_inner_dimension_first() -> None:
    got = members_per_domain(np.array([16.0, 16, 4, 2]), np.array([8.0, 8, 8, 72]), 2.0)
    assert got.tolist() == [4.0, 4.0, 4.0, 2.0]


def test_collectives_never_slower_with_more_bandwidth() -> None:
    n = np.array([2.0, 8, 16, 32, 64])
    d = np.minimum(n, 8)
    for up, out in ((UP * 2, OUT), (UP, OUT * 2)):
        faster = Links(bw_up=a(up), bw_out=a(out), lat_up=a(LAT_UP), lat_out=a(LAT_OUT))
        for fn in (allreduce_s, all_to_all_s):
            assert np.all(fn(n, S + 0 * n, d, faster) <= fn(n, S + 0 * n, d, H100) + 1e-15)


def test_a_step_spanning_two_nodes_pays_the_hierarchical_all_reduce() -> None:
    prof = profile()  # 2 layers, hidden 1,024
    lay = Layout(tp=one(16), dp=one(1), moe_tp=one(16), moe_ep=one(1), pp=one(1))
    load = StepLoad(n_dec=one(0), ctx_dec=one(0), n_pf=one(4096), ctx_pf=one(0), pf_seqs=one(1))
    t = step_time(prof, hw(), lay, load, BF16, eff())
    act = 4096 * 1024 * 2
    per = 2 * 7 / 8 * act / UP + 2 * (1 / 2) * (act / 8) / OUT + 2 * LAT_UP + 2 * LAT_OUT
    assert t["comm"][0] == pytest.approx(2 * 2 * per)  # 2 all-reduces x 2 layers
    # a chip with a 16-GPU scale-up domain keeps it all on the fast links
    wide = HwVec(**{**hw().__dict__, "su_domain": one(16)})
    t16 = step_time(prof, wide, lay, load, BF16, eff())
    assert t16["comm"][0] == pytest.approx(2 * 2 * (2 * 15 / 16 * act / UP + LAT_UP))


def test_pipeline_stages_in_other_domains_keep_their_all_reduce_local() -> None:
    # TP8 x PP4 on 8-GPU domains: 32 GPUs span four domains, but each stage's all-reduce
    # stays inside its own domain (the stage-to-stage hand-off is the PP term)
    prof = profile()
    lay = Layout(tp=one(8), dp=one(1), moe_tp=one(8), moe_ep=one(1), pp=one(4))
    load = StepLoad(n_dec=one(64), ctx_dec=one(1000), n_pf=one(0), ctx_pf=one(0), pf_seqs=one(0))
    t = step_time(prof, hw(), lay, load, BF16, eff())
    act = 64 * 1024 * 2
    ar = 2 * 7 / 8 * act / UP + LAT_UP
    pp = 3 * (act / OUT + LAT_OUT)  # every stage fills a domain: each hand-off is a NIC hop
    assert t["comm"][0] == pytest.approx(2 * 2 * ar + pp)


def pp_hops(pp: int, stage_gpus: int, domain: int) -> float:
    return float(pipeline_hops_s(a(pp), a(stage_gpus), a(domain), a(S), H100)[0])


def test_pipeline_hand_offs_cross_the_nics_only_between_domains() -> None:
    up, out = S / UP + LAT_UP, S / OUT + LAT_OUT
    assert pp_hops(1, 8, 8) == 0.0
    assert pp_hops(4, 2, 8) == pytest.approx(3 * up)  # four TP2 stages share one node
    assert pp_hops(4, 4, 8) == pytest.approx(2 * up + out)  # two per node: one NIC hop
    assert pp_hops(2, 8, 8) == pytest.approx(out)  # TP8 x PP2 on two H100 nodes
    assert pp_hops(3, 16, 8) == pytest.approx(2 * out)  # stages wider than a node
    assert pp_hops(4, 4, 72) == pytest.approx(3 * up)  # an NVL72 rack holds all 16 GPUs
    # a NIC hop is slower than an NVLink hop, so more stages per domain never hurts
    assert pp_hops(8, 2, 8) <= pp_hops(8, 4, 8) <= pp_hops(8, 8, 8)


def test_kv_transfer_moves_over_the_gpus_that_hold_distinct_parts() -> None:
    llama = load_model("meta-llama/Llama-3.1-70B")  # 80 layers, 8 KV heads of dim 128
    r1 = load_model("deepseek-ai/DeepSeek-R1")  # MLA: a 576-wide latent, 61 layers
    gqa, mla = build_profile(llama), build_profile(r1)
    # one token's KV, one copy: 80 x 2 x 8 x 128 elements; 61 x 576 for the latent
    assert kv_elements_per_token(llama) == 80 * 2 * 8 * 128
    assert kv_elements_per_token(r1) == 61 * 576
    tp = np.array([1.0, 4, 8, 16])
    # KV heads split over tp up to the 8 heads; the latent is replicated on every rank
    assert kv_paths(gqa.kv_split(tp), 1.0 + 0 * tp).tolist() == [1, 4, 8, 8]
    assert kv_paths(mla.kv_split(tp), 1.0 + 0 * tp).tolist() == [1, 1, 1, 1]
    assert kv_paths(gqa.kv_split(a(4)), a(2))[0] == 8  # pipeline stages hold their layers

    kv = 8192 * 80 * 2 * 8 * 128 * 1.0  # 8K tokens of FP8 KV: 1.34 GB
    # TP8 -> TP8 over 50 GB/s NICs: eight shards in parallel
    assert kv_transfer_s(a(kv), a(8), a(8), a(OUT), a(LAT_OUT))[0] == pytest.approx(
        kv / 8 / OUT + LAT_OUT
    )
    # TP8 prefill -> TP4 decode: each decode GPU receives two shards
    assert kv_transfer_s(a(kv), a(8), a(4), a(OUT))[0] == pytest.approx(kv / 4 / OUT)
    # an MLA latent (or a decode rank of one GPU) goes through one link whole: 8x slower
    one = kv_transfer_s(a(kv), a(1), a(8), a(OUT))[0]
    assert one == pytest.approx(kv / OUT)
    assert one == pytest.approx(8 * kv_transfer_s(a(kv), a(8), a(8), a(OUT))[0])


def test_a_faster_nic_speeds_up_pipeline_stages_across_nodes() -> None:
    # TP8 x PP2 on 8-GPU domains: the stage hand-off is the only NIC traffic, so a faster
    # NIC helps by exactly the hop's bandwidth term; a larger domain moves it to NVLink
    prof = profile()
    lay = Layout(tp=one(8), dp=one(1), moe_tp=one(8), moe_ep=one(1), pp=one(2))
    load = StepLoad(n_dec=one(64), ctx_dec=one(1000), n_pf=one(0), ctx_pf=one(0), pf_seqs=one(0))
    base = hw()
    act = 64 * 1024 * 2
    t0 = step_time(prof, base, lay, load, BF16, eff())["comm"][0]
    nic2 = HwVec(**{**base.__dict__, "so_bw": base.so_bw * 2})
    t1 = step_time(prof, nic2, lay, load, BF16, eff())["comm"][0]
    assert t0 - t1 == pytest.approx(act / OUT - act / (2 * OUT))
    rack = HwVec(**{**base.__dict__, "su_domain": one(16)})
    t2 = step_time(prof, rack, lay, load, BF16, eff())["comm"][0]
    assert t0 - t2 == pytest.approx(act / OUT + LAT_OUT - act / UP - LAT_UP)
