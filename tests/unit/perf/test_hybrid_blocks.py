"""Models whose blocks hold a mixer OR an MLP (Nemotron-H, DeciLM blocks that skip one)
pay the per-block costs once per block: one fused residual add + norm, one TP all-reduce
and half a transformer layer's fixed engine cost, not a whole layer's."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from codesign.models import load_model
from codesign.perf.calibration import load_calibration
from codesign.perf.engine import byte_sizes, efficiency, ttft_overhead_s
from codesign.perf.hardware import hw_vectors
from codesign.perf.predict import make_layout, make_load
from codesign.perf.profile import build_profile
from codesign.perf.step import NORM_ELEMS_PER_LAYER, layer_fixed_s, step_time

SUPER = "nvidia/NVIDIA-Nemotron-3-Super-120B-A12B-FP8"


def test_block_counts_by_hand():
    # Nemotron-3 Super: 88 blocks, each a Mamba-2 mixer, an attention mixer or a MoE MLP
    arch = load_model(SUPER)
    prof = build_profile(arch)
    mixers = sum(m != "none" for m in arch.layer_mixers)
    ffns = sum(f != "none" for f in arch.layer_ffns)
    assert (prof.layers, mixers + ffns) == (88, 88)
    assert prof.units == 44.0 and prof.moe_layers == 40
    # a transformer holds both in every layer: its units are its layers
    r1 = build_profile(load_model("deepseek-ai/DeepSeek-R1"))
    assert r1.layer_units is None and r1.units == 61.0


def _step(prof, tp: float = 8.0):
    calib = load_calibration()
    hw = hw_vectors(["b200_sxm"], ["fp8"], ["fp8"])
    lay = make_layout(*(np.array([v]) for v in (tp, 1.0, 0.0, 0.0, 1.0)), prof.is_moe)
    eff = efficiency(calib, hw, ["trtllm"])
    nb = byte_sizes(["fp8"], ["fp8"], ["fp8"])
    return step_time(prof, hw, lay, make_load(4.0, 2048.0, 0, 0, 0), nb, eff), eff, calib


def test_per_block_costs_are_paid_once_per_block():
    prof = build_profile(load_model(SUPER))
    as_layers = dataclasses.replace(prof, layer_units=None)  # every block a full layer
    st, eff, calib = _step(prof)
    st2, _, _ = _step(as_layers)
    # one all-reduce per block: half the count of 88 two-block layers
    assert float(st["comm"][0]) == pytest.approx(0.5 * float(st2["comm"][0]), rel=1e-12)
    # fixed cost: 44 layers' engine cost + 40 MoE blocks' extra + the step's
    hand = (
        44 * calib.layer_overhead_us["trtllm"]
        + 40 * calib.moe_layer_overhead_us
        + 1e3 * calib.step_overhead_ms["trtllm"]
    ) * 1e-6
    assert float(st["fixed"][0]) == pytest.approx(hand, rel=1e-12)
    assert float(layer_fixed_s(prof, eff)[0]) * 88 == pytest.approx(
        hand - calib.step_overhead_ms["trtllm"] * 1e-3, rel=1e-12
    )
    # norms: one fused add + norm per block (4 passes of the hidden state, NORM_ELEMS_PER_LAYER
    # for the two of a transformer layer): counting 88 layers adds 44 layers' worth for the
    # 4 sequences, in 16-bit activations
    extra_bytes = 4 * NORM_ELEMS_PER_LAYER * prof.hidden * 44 * 2.0
    bw = float(hw_vectors(["b200_sxm"], ["fp8"], ["fp8"]).mem_bw[0]) * calib.mem_eff
    diff = float(st2["elementwise"][0] - st["elementwise"][0])
    assert diff == pytest.approx(extra_bytes / bw, rel=1e-9)


def test_ttft_request_handling_counts_layer_equivalents():
    calib = load_calibration()
    prof = build_profile(load_model(SUPER))
    per_layer = calib.ttft_per_layer_us * 1e-6
    full = ttft_overhead_s(calib, ["vllm"], prof.layers)[0]
    units = ttft_overhead_s(calib, ["vllm"], prof.units)[0]
    assert full - units == pytest.approx(44 * per_layer, rel=1e-12)
