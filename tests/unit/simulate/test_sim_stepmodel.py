"""The tabulated step model answers what ``perf.step.step_time`` answers."""

from __future__ import annotations

import numpy as np
import pytest

from codesign.deployment import Deployment, DeploymentPrecision, Pool
from codesign.models import kv_elements_per_token, load_model
from codesign.perf.calibration import load_calibration
from codesign.perf.engine import byte_sizes, efficiency
from codesign.perf.hardware import hw_vectors_indexed
from codesign.perf.memory import memory_use
from codesign.perf.predict import make_layout, make_load
from codesign.perf.profile import build_profile
from codesign.perf.step import step_time, verify_and_draft_s
from codesign.simulate.stepmodel import build_pool_model

R1 = Deployment.from_file("examples/deployment-r1-gb200-agg.yaml")


def _analytic_r1(system, eager: bool = False):
    """The analytic step model's inputs for R1's pool (nvfp4, TP8/EP8 on ``system``)."""
    prof = build_profile(load_model(R1.model))
    hw = hw_vectors_indexed(
        [system], np.zeros(1, np.int64), np.array(["nvfp4"]), np.array(["nvfp4"])
    )
    nb = byte_sizes(["nvfp4"], ["nvfp4"], ["fp8"])
    lay = make_layout(
        np.array([8.0]), np.array([1.0]), np.array([1.0]), np.array([8.0]), np.array([1.0]), True
    )
    return prof, hw, nb, lay, efficiency(load_calibration(), hw, ["trtllm"], eager)


def test_step_s_matches_step_time_at_random_loads():
    calib = load_calibration()
    pool = R1.pools[0]
    m = build_pool_model(R1.model, pool, R1.precision, R1.engine, calib, 200.0)
    prof, hw, nb, lay, eff = _analytic_r1(m.system)
    rng = np.random.default_rng(0)
    for _ in range(40):
        n_dec = int(rng.integers(0, 200))
        ctx = float(rng.integers(1000, 200_000))
        n_pf = int(rng.integers(0, 8192)) * int(rng.random() < 0.5)
        before = float(rng.integers(0, 150_000))
        host = float(rng.integers(0, 50_000)) * int(n_pf > 0)
        seqs = 1 if n_pf else 0
        want = step_time(prof, hw, lay, make_load(n_dec, ctx, n_pf, before, seqs, host), nb, eff)[
            "total"
        ][0]
        load = m.load_s(host, 0.0, 0.0)
        got = m.step_s(n_dec, ctx, n_pf, m.prefill_attn_s(n_pf, before), seqs, load)
        assert got == pytest.approx(float(want), rel=0.01)


def test_kv_capacity_and_host_tier_from_memory_model():
    m = build_pool_model(R1.model, R1.pools[0], R1.precision, R1.engine, load_calibration(), 200.0)
    # 200 GB of host memory at the KV bytes of one token
    assert m.host_tokens_per_worker == int(200e9 / m.kv_bytes_per_token)
    assert m.kv_tokens_per_worker > 1_000_000  # ~130 GB per GB200 left for an MLA cache
    assert m.chips_per_worker == 8


@pytest.mark.parametrize("spec_k", [0, 2])
def test_run_and_chunk_step_times_are_step_s_exactly(spec_k):
    # the worker times decode runs and one-chunk steps with these shortcuts (a table of
    # the decode step less its attention; remembered one-chunk steps): they must be the
    # same floats as the general step_s, not approximations
    m = build_pool_model(
        R1.model, R1.pools[0], R1.precision, R1.engine, load_calibration(), 200.0, spec_k, 0.8
    )
    rng = np.random.default_rng(1)
    for _ in range(200):
        n = int(rng.integers(0, 2 * len(m.dec_base_s) + 40))
        ctx = float(rng.integers(0, 300_000)) + 0.5 * int(rng.integers(0, 2))
        assert m.run_step_s(n, ctx) == m.step_s(n, ctx)
        c = int(rng.integers(1, m.chunk_tokens + 1))
        done = int(rng.integers(0, 200_000))
        host = float(rng.integers(0, 50_000)) * int(rng.random() < 0.5)
        want = m.step_s(0, 0.0, c, 0.0 + m.prefill_attn_s(c, done), 1, host)
        assert m.chunk_step_s(c, done, host) == want
        assert m.chunk_step_s(c, done, host) == want  # remembered: the same answer


@pytest.mark.parametrize("eager", [False, True])
def test_speculative_step_is_the_analytic_verify_plus_drafts(eager):
    # a verify step reads each sequence's KV once for its k + 1 queries (the analytic
    # model read it a second time for the k drafts: 20% over at 64 sequences of 20K)
    calib, k = load_calibration(), 2
    pool = R1.pools[0]
    m = build_pool_model(
        R1.model, pool, R1.precision, R1.engine, calib, 200.0, k, 0.8, 262_144, eager
    )
    prof, hw, nb, lay, eff = _analytic_r1(m.system, eager)
    for n, ctx in ((1, 2000.0), (8, 20_000.0), (64, 20_000.0), (256, 100_000.0)):
        one = np.array([1.0])
        _, verify, draft = verify_and_draft_s(prof, hw, lay, n * one, ctx * one, k * one, nb, eff)
        assert m.step_s(n, ctx) == pytest.approx(float(verify[0] + k * draft[0]), rel=0.005)


def test_a_hybrid_models_state_is_held_with_its_kv():
    """Nemotron-H's Mamba state (~460 MB a sequence) takes cache room in the simulator as
    in the analytic model (``perf.memory``): a request holds its KV plus the state in token
    equivalents, and an attention-only model holds none."""
    hybrid = "nvidia/Nemotron-H-56B-Base-8K"
    pool = Pool.model_validate(
        {"role": "agg", "system": "h100_sxm", "workers": 1, "parallel": {"tp": 2}}
    )
    bf16 = DeploymentPrecision(gemm="bf16", moe="bf16", kv="bf16")
    m = build_pool_model(hybrid, pool, bf16, "vllm", load_calibration())
    arch = load_model(hybrid)
    hw = hw_vectors_indexed(
        [m.system], np.zeros(1, np.int64), np.array(["bf16"]), np.array(["bf16"])
    )
    lay = make_layout(*(np.array([v]) for v in (2.0, 1.0, 1.0, 1.0, 1.0)), False)
    nb = byte_sizes(["bf16"], ["bf16"], ["bf16"])
    use = memory_use(build_profile(arch), lay, nb, hw.mem_bytes, float(kv_elements_per_token(arch)))
    assert m.state_tokens == int(np.ceil(use.state_tokens_per_seq[0])) > 5000
    assert m.kv_held(1024, 256) == 1024 + 128 + m.state_tokens  # paged: half the output
    dense = build_pool_model(R1.model, R1.pools[0], R1.precision, R1.engine, load_calibration())
    assert dense.state_tokens == 0
