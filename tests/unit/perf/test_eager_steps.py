"""CUDA graphs vs eager launches: an eager step cannot finish before the host has launched
its kernels (``perf.step``), checked by hand, through the point estimate, the agent
evaluator and the simulator."""

from __future__ import annotations

import numpy as np
import pytest

from codesign.deployment import Deployment
from codesign.models import load_model
from codesign.perf.calibration import load_calibration
from codesign.perf.engine import EAGER_HOST_US_PER_LAYER, byte_sizes, efficiency
from codesign.perf.estimate import EstimateRequest, estimate
from codesign.perf.hardware import hw_vectors
from codesign.perf.predict import make_layout, make_load
from codesign.perf.profile import build_profile
from codesign.perf.step import step_time
from codesign.simulate.stepmodel import build_pool_model

LLAMA8 = "meta-llama/Llama-3.1-8B-Instruct"


def _step(eager: bool, n_dec: float, n_pf: float = 0.0) -> dict[str, np.ndarray]:
    calib = load_calibration()
    prof = build_profile(load_model(LLAMA8))
    hw = hw_vectors(["h100_sxm"], ["bf16"], ["bf16"])
    lay = make_layout(*(np.array([v]) for v in (1.0, 1.0, 0.0, 0.0, 1.0)), False)
    eff = efficiency(calib, hw, ["vllm"], eager)
    load = make_load(n_dec, 2048.0, n_pf, 0.0, 1.0 if n_pf else 0.0)
    return step_time(prof, hw, lay, load, byte_sizes(["bf16"], ["bf16"], ["bf16"]), eff)


def test_a_small_eager_step_is_host_bound_by_hand():
    graphs, eager = _step(False, 1.0), _step(True, 1.0)
    calib = load_calibration()
    host = calib.step_overhead_ms["vllm"] * 1e-3 + 32 * EAGER_HOST_US_PER_LAYER * 1e-6
    # one token through 8B BF16 weights on an H100 is ~5-7 ms of GPU time < 8.4 ms of host
    assert float(graphs["total"][0]) < host
    assert float(eager["total"][0]) == pytest.approx(host, rel=1e-12)
    assert float(eager["eager_wait"][0]) == pytest.approx(host - float(graphs["total"][0]))
    assert float(graphs["eager_wait"][0]) == 0.0
    # the GPU components are the same either way; only the wait differs
    for key in ("gemm", "attn_decode", "comm", "fixed", "elementwise"):
        assert float(eager[key][0]) == float(graphs[key][0])


def test_a_large_step_hides_the_launches():
    # an 8K-token prefill keeps the GPU busy far longer than the host needs to launch it
    graphs, eager = _step(False, 0.0, 8192.0), _step(True, 0.0, 8192.0)
    assert float(eager["total"][0]) == float(graphs["total"][0])
    assert float(eager["eager_wait"][0]) == 0.0


def test_estimate_eager_decode_is_slower_at_batch_one_only():
    def tpot(batch: int, graphs: bool) -> float:
        req = EstimateRequest(
            model=LLAMA8,
            system="h100_sxm",
            engine="vllm",
            batch=batch,
            isl=512,
            osl=128,
            cuda_graphs=graphs,
        )
        return estimate(req)["tpot_ms"]

    assert tpot(1, False) > 1.15 * tpot(1, True)
    assert tpot(1, False) == pytest.approx(8.4, rel=0.05)  # the source's eager step
    # at 256 sequences the decode step is GPU-bound: the launches hide behind it
    assert tpot(256, False) == pytest.approx(tpot(256, True), rel=0.01)


def test_deployment_field_round_trips_and_defaults_to_graphs():
    base = Deployment.from_file("examples/deployment-r1-gb200-agg.yaml")
    assert base.cuda_graphs is True
    assert "cuda_graphs" not in base.to_yaml()  # the default stays implicit
    eager = base.model_copy(update={"cuda_graphs": False})
    back = Deployment.from_yaml(eager.to_yaml())
    assert back.cuda_graphs is False


def test_simulator_floor_matches_step_time():
    dep = Deployment.from_file("examples/deployment-r1-gb200-agg.yaml")
    calib = load_calibration()
    pool = dep.pools[0]
    graphs = build_pool_model(dep.model, pool, dep.precision, dep.engine, calib)
    eager = build_pool_model(
        dep.model, pool, dep.precision, dep.engine, calib, 0.0, 0, 0.0, 262_144, True
    )
    layers = build_profile(load_model(dep.model)).layers
    floor = calib.step_overhead_ms["trtllm"] * 1e-3 + layers * EAGER_HOST_US_PER_LAYER * 1e-6
    assert eager.eager_floor_s == pytest.approx(floor)
    assert graphs.eager_floor_s == 0.0
    for n in (1, 4, 64, 512):
        g, e = graphs.run_step_s(n, 8192.0), eager.run_step_s(n, 8192.0)
        assert e == pytest.approx(max(g, floor), rel=1e-12)
        assert eager.step_s(n, 8192.0) == e


def test_eager_afd_is_refused_with_the_reason():
    from codesign.errors import SpecError

    req = EstimateRequest(model=LLAMA8, system="h100_sxm", mode="afd", cuda_graphs=False)
    with pytest.raises(SpecError, match="--eager is not modelled for afd"):
        estimate(req)
