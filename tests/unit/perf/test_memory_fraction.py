"""A deployment's own engine memory setting (``Pool.memory_fraction``): the KV cache it
sizes, by hand, through each path that sizes a cache (the budget rule, ``codesign
estimate``, the agent evaluator, the simulator's pools)."""

from __future__ import annotations

import numpy as np
import pytest

from codesign.candidates import from_deployments
from codesign.deployment import Deployment
from codesign.errors import SpecError
from codesign.evaluate import evaluate
from codesign.perf.calibration import load_calibration
from codesign.perf.estimate import EstimateRequest, estimate
from codesign.perf.kv_budget import kv_budget_bytes
from codesign.simulate.stepmodel import build_pool_model
from codesign.workload import load_trace
from codesign.workload.agent_load import agent_load, session_gaps
from codesign.workload.summary import summarize

H100 = 85.521e9  # bytes nvidia-smi reports for an "80 GB" H100
# Llama-3.1-70B's FP8 KV: 80 layers x 8 KV heads x 128 x (K, V) x 1 byte, over tp 2
KV_BYTES_PER_TOKEN_TP2 = 80 * 8 * 128 * 2 / 2
LLAMA = """
model: meta-llama/Llama-3.1-70B
engine: vllm
precision: {gemm: fp8, kv: fp8}
pools: [{role: agg, system: h100_sxm, workers: 1, parallel: {tp: 2}%s}]
"""


def test_budget_at_a_given_fraction_by_hand() -> None:
    """35 GB of weights on an H100: the given fraction replaces each engine's default in
    its own rule (vLLM and SGLang: of the GPU; TRT-LLM: of what weights and runtime
    leave); NaN keeps the default; an engine without a setting keeps its 5 % reserve."""
    w, one = np.full(5, 35e9), np.ones(5)
    engines = ["vllm", "vllm", "sglang", "trtllm", "other"]
    fraction = np.array([0.95, np.nan, 0.8, 0.8, 0.5])
    got = kv_budget_bytes(engines, np.full(5, H100), w, one, one, one, fraction)
    want = [
        0.95 * H100 - 35e9,
        0.9 * H100 - 35e9,
        0.8 * H100 - 35e9,
        0.8 * (0.95 * H100 - 35e9),
        0.95 * H100 - 35e9,
    ]
    assert got == pytest.approx(want)


def test_estimate_sizes_the_cache_at_the_given_fraction() -> None:
    """vLLM at 0.95 instead of 0.9 gives each GPU 5 % of 85.5 GB more cache: 52,198 more
    tokens of 81,920 bytes (a token's KV is split over the two GPUs); SGLang at 0.8 holds
    (0.8 M - W) / 81,920 tokens. The estimate names the setting it used."""
    req = dict(model="meta-llama/Llama-3.1-70B", system="h100_sxm", tp=2, gemm_precision="fp8")
    base = estimate(EstimateRequest(**req, engine="vllm"))
    more = estimate(EstimateRequest(**req, engine="vllm", memory_fraction=0.95))
    extra = 0.05 * H100 / KV_BYTES_PER_TOKEN_TP2
    assert int(extra) == 52_197
    assert more["kv_tokens_per_worker"] - base["kv_tokens_per_worker"] == pytest.approx(
        extra, abs=1
    )
    assert more["kv_memory_setting"] == "gpu_memory_utilization=0.95"
    sg = estimate(EstimateRequest(**req, engine="sglang", memory_fraction=0.8))
    w = sg["weights_gb_per_gpu"] * 1e9
    assert sg["kv_tokens_per_worker"] == np.floor((0.8 * H100 - w) / KV_BYTES_PER_TOKEN_TP2)
    assert sg["kv_memory_setting"] == "mem_fraction_static=0.8"
    with pytest.raises(ValueError, match="memory_fraction"):
        EstimateRequest(**req, memory_fraction=0.0)


@pytest.mark.parametrize("value", ["0", "1.5", "-0.2"])
def test_out_of_range_fraction_is_refused(value: str) -> None:
    with pytest.raises(SpecError, match="memory_fraction"):
        Deployment.from_yaml(LLAMA % f", memory_fraction: {value}")


def test_evaluator_cache_follows_the_fraction(shared_dir) -> None:
    """Eight Claude Code sessions on one TP2 H100 worker of Llama-3.1-70B under vLLM: the
    cache (0.8 / 0.9 / 0.95 of 85.5 GB less 35.3 GB of weights per GPU: 33 / 41.7 / 46 GB)
    holds more of the sessions' prefixes as the fraction grows (measured hit ratios
    0.42 / 0.82 / 0.86); at 0.4 the 34.2 GB share does not hold the weights."""
    trace = load_trace(shared_dir / "traces" / "claude-code-weka" / "trace_0001.json.gz")
    load = agent_load(summarize(trace), session_gaps(trace), merge_tiers=True)
    settings = ("", ", memory_fraction: 0.8", ", memory_fraction: 0.95", ", memory_fraction: 0.4")
    deps = [Deployment.from_yaml(LLAMA % s) for s in settings]
    c = from_deployments(deps)
    np.testing.assert_array_equal(c.mem_fraction, [0.9, 0.8, 0.95, 0.4])  # vLLM's 0.9
    np.testing.assert_array_equal(c.p_mem_fraction, c.mem_fraction)  # agg: one pool
    out = evaluate(deps, load, 8)
    hit = out["cache_hit_ratio"]
    assert out["feasible"][:3].all()
    assert hit[1] < hit[0] < hit[2]
    assert hit[1] < 0.6 and hit[0] > 0.75  # the tight cache loses most of its hits
    # the capacity it reports: 0.05 of 85.5 GB more per GPU at 0.95, 52,198 tokens
    kv = out["kv_tokens_per_worker"]
    extra = 0.05 * H100 / KV_BYTES_PER_TOKEN_TP2
    assert kv[2] - kv[0] == pytest.approx(extra, abs=1)
    np.testing.assert_array_equal(out["prefill_kv_tokens_per_worker"][:3], kv[:3])  # agg
    assert not out["feasible"][3]
    assert out["reason"][3] == (
        "weights need 35.3 GB per GPU; vllm leaves weights and the KV cache 34.2 of the "
        "GPU's 85.5 GB"
    )


def test_simulator_pool_sizes_its_cache_by_the_same_rule() -> None:
    """The simulator's pool holds the tokens the estimate's rule gives: 52,198 more at
    0.95 than at vLLM's default."""
    dep = Deployment.from_yaml(LLAMA % "")
    calib = load_calibration()
    pools = [
        build_pool_model(dep.model, p, dep.precision, dep.engine, calib)
        for p in (dep.pools[0], dep.pools[0].model_copy(update={"memory_fraction": 0.95}))
    ]
    extra = pools[1].kv_tokens_per_worker - pools[0].kv_tokens_per_worker
    assert extra == pytest.approx(0.05 * H100 / KV_BYTES_PER_TOKEN_TP2, abs=1)


def test_sglang_reserves_for_a_draft_model() -> None:
    """SGLang leaves 2 GiB more for an EAGLE / MTP draft model: at tp 2 on H100s its
    default goes from 0.834 to 0.809 (13,568 + 2,048 MiB left), and the cache loses those
    2.5 % of 85.5 GB per GPU: 26,099 tokens of 81,920 bytes. A fraction the deployment
    sets is used as it is."""
    req = dict(
        model="meta-llama/Llama-3.1-70B",
        system="h100_sxm",
        tp=2,
        gemm_precision="fp8",
        engine="sglang",
    )
    base = estimate(EstimateRequest(**req))
    spec = dict(spec_method="eagle", draft_tokens=3)
    eagle = estimate(EstimateRequest(**req, **spec))
    assert base["kv_memory_setting"] == "mem_fraction_static=0.834"
    assert eagle["kv_memory_setting"] == "mem_fraction_static=0.809"
    lost = (0.834 - 0.809) * H100 / KV_BYTES_PER_TOKEN_TP2
    assert base["kv_tokens_per_worker"] - eagle["kv_tokens_per_worker"] == pytest.approx(
        lost, abs=1
    )
    own = estimate(EstimateRequest(**req, **spec, memory_fraction=0.834))
    assert own["kv_tokens_per_worker"] == base["kv_tokens_per_worker"]


def test_sglang_default_covers_the_pools_own_chunk_and_graphs() -> None:
    """A SGLang pool that sets its prefill chunk (``max_batch_tokens`` 16,384) and batch
    (``max_batch`` 512, its CUDA graphs) gets the default those give: 512 + 1.5 x 16,384
    + 2 x 512 + 256 = 26,368 MiB left of an H100 at tp 2, 0.677; the candidates, the
    simulator's pool and the export all take it."""
    from codesign.export import export

    dep = Deployment.from_yaml(
        (LLAMA % ", max_batch_tokens: 16384, max_batch: 512").replace("vllm", "sglang")
    )
    want = round(1 - 26_368 * 2**20 / H100, 3)
    assert want == 0.677
    c = from_deployments([dep])
    assert c.mem_fraction[0] == c.p_mem_fraction[0] == want
    plain = Deployment.from_yaml((LLAMA % "").replace("vllm", "sglang"))
    assert from_deployments([plain]).mem_fraction[0] == 0.834  # the layout's default
    calib = load_calibration()
    tokens = [
        build_pool_model(d.model, d.pools[0], d.precision, d.engine, calib).kv_tokens_per_worker
        for d in (plain, dep)
    ]
    lost = (0.834 - want) * H100 / KV_BYTES_PER_TOKEN_TP2
    assert tokens[0] - tokens[1] == pytest.approx(lost, abs=1)
    script = export(dep, "sglang").files["agg.sh"]
    assert "--mem-fraction-static 0.677" in script
