"""Skewed expert routing: the share of experts a decode step's tokens hit, by hand."""

from __future__ import annotations

import numpy as np
import pytest

from codesign.models import load_model
from codesign.perf.calibration import Calibration
from codesign.perf.engine import byte_sizes, efficiency
from codesign.perf.group import make_layout, make_load
from codesign.perf.hardware import hw_vectors
from codesign.perf.profile import build_profile
from codesign.perf.step import distinct_expert_share, step_time


def _lognormal_mean(a: float, sigma: float) -> float:
    """E[1 - exp(-a q)] for log-normal q (mean 1) by a fine trapezoid over z."""
    z = np.linspace(-10.0, 10.0, 400_001)
    pdf = np.exp(-0.5 * z * z) / np.sqrt(2.0 * np.pi)
    q = np.exp(sigma * z - 0.5 * sigma * sigma)
    return float(np.trapezoid(-np.expm1(-a * q) * pdf, z))


def test_uniform_routing_is_poisson() -> None:
    # 32 assignments over 128 experts: 1 - exp(-1/4) = 0.2212 of them hit
    a = np.array([0.25, 1.0, 8.0])
    assert distinct_expert_share(a, 0.0) == pytest.approx(-np.expm1(-a), rel=1e-12)
    assert distinct_expert_share(np.array([0.25]), 0.0)[0] == pytest.approx(0.22120, abs=1e-5)


@pytest.mark.parametrize("a", [0.05, 0.25, 1.0, 4.0, 16.0, 100.0])
@pytest.mark.parametrize("sigma", [0.5, 1.0, 1.5])
def test_skewed_share_is_the_log_normal_mean(a: float, sigma: float) -> None:
    got = float(distinct_expert_share(np.array([a]), sigma)[0])
    assert got == pytest.approx(_lognormal_mean(a, sigma), rel=1e-3)


def test_skew_hits_fewer_experts_at_moderate_batches_and_all_at_large_ones() -> None:
    a = np.geomspace(0.01, 1000.0, 50)
    lo, hi = distinct_expert_share(a, 0.5), distinct_expert_share(a, 1.5)
    assert np.all(np.diff(hi) > 0)  # more assignments never hit fewer experts
    assert np.all(hi <= lo + 1e-12) and np.all(lo <= -np.expm1(-a) + 1e-12)
    # one assignment per expert: uniform 63 %, sigma 1 about 49 %
    assert distinct_expert_share(np.array([1.0]), 1.0)[0] == pytest.approx(0.488, abs=0.001)
    # few assignments: almost every one hits an expert of its own, whatever the skew
    assert 0.009 < distinct_expert_share(np.array([0.01]), 1.5)[0] < 0.01
    assert distinct_expert_share(np.array([1000.0]), 1.5)[0] == pytest.approx(1.0, abs=1e-3)


def test_decode_streams_only_the_experts_hit() -> None:
    """Qwen3-235B-A22B FP8 on 4 H100s (EP4), 16 decoding sequences: 16 x 8 = 128
    assignments over 128 experts. The memory-bound expert time is the bytes of the
    experts hit / (bandwidth x memory efficiency); skew 1 streams 0.488 / 0.632 of
    uniform routing's bytes, and a 4K-token prefill reads every expert either way."""
    prof = build_profile(load_model("Qwen/Qwen3-235B-A22B-FP8"))
    hw = hw_vectors(["h100_sxm"], ["fp8"], ["fp8"])
    nb = byte_sizes(["fp8"], ["fp8"], ["fp8"])
    lay = make_layout([4], [1], [1], [4], [1], True)
    dec = make_load(16, 1024, 0, 0, 0)
    pf = make_load(0, 0, 4096, 0, 1)
    base = Calibration(moe_m_half_tokens=1e-6, expert_skew=0.0)

    def moe(load, skew: float) -> float:
        eff = efficiency(base.model_copy(update={"expert_skew": skew}), hw, ["vllm"])
        return float(step_time(prof, hw, lay, load, nb, eff)["moe"][0])

    share = float(distinct_expert_share(np.array([1.0]), 1.0)[0])
    experts_bytes = 32 * prof.p_expert * 1.0 * prof.moe_layers  # 32 local experts, 1 B each
    bw = float(hw.mem_bw[0]) * base.mem_eff
    assert moe(dec, 0.0) == pytest.approx(-np.expm1(-1.0) * experts_bytes / bw, rel=1e-6)
    assert moe(dec, 1.0) == pytest.approx(share * experts_bytes / bw, rel=1e-6)
    assert moe(pf, 1.0) == pytest.approx(moe(pf, 0.0), rel=1e-3)


def test_files_before_v15_route_uniformly(tmp_path) -> None:
    old = tmp_path / "v14.json"
    old.write_text('{"version": 14}')
    assert Calibration.model_validate_json(old.read_text()).expert_skew == 0.0
    assert Calibration().expert_skew == 0.5  # the prior a fit starts from
