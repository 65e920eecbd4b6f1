"""A prompt longer than one chunk: each chunk attends the cached prefix and the chunks
before it, so the request's own prefill is the sum of its chunk steps (it was costed as
if every chunk were the first, leaving out most of a long prompt's attention)."""

from __future__ import annotations

import numpy as np
import pytest

from codesign.models import kv_elements_per_token, load_model
from codesign.perf.calibration import load_calibration
from codesign.perf.engine import DEFAULT_CHUNK_TOKENS, byte_sizes, efficiency
from codesign.perf.estimate import EstimateRequest, _rows
from codesign.perf.hardware import hw_vectors
from codesign.perf.predict import Group, evaluate_group, make_layout, make_load
from codesign.perf.profile import build_profile
from codesign.perf.step import step_time

LLAMA8 = "meta-llama/Llama-3.1-8B-Instruct"


def _own_prefill_s(isl: int, prefix_hit: float) -> tuple[float, dict]:
    req = EstimateRequest(
        model=LLAMA8, system="h100_sxm", engine="vllm", batch=1, isl=isl, osl=2,
        prefix_hit=prefix_hit,
    )  # fmt: skip
    arch = load_model(LLAMA8)
    prof = build_profile(arch)
    hw = hw_vectors(["h100_sxm"], ["bf16"], ["bf16"])
    nb = byte_sizes(["bf16"], ["bf16"], ["bf16"])
    group = Group(
        index=np.array([0]),
        rows=_rows(req, False),
        prof=prof,
        kv_elems_per_token=float(kv_elements_per_token(arch)),
        hw=hw,
        nb=nb,
        prefix_hit=np.array([prefix_hit]),
    )
    out = evaluate_group(group, load_calibration())
    parts = {"prof": prof, "hw": hw, "nb": nb}
    return float(out["own_prefill_s"][0]), parts


@pytest.mark.parametrize(("isl", "hit"), [(3 * DEFAULT_CHUNK_TOKENS, 0.0), (100_000, 0.75)])
def test_own_prefill_is_the_sum_of_its_chunk_steps(isl: int, hit: float) -> None:
    got, p = _own_prefill_s(isl, hit)
    cached = np.floor(isl * hit)
    new = isl - cached
    n = int(np.ceil(new / DEFAULT_CHUNK_TOKENS))
    chunk = new / n
    lay = make_layout(*(np.array([v]) for v in (1.0, 1.0, 0.0, 0.0, 1.0)), False)
    eff = efficiency(load_calibration(), p["hw"], ["vllm"])
    ctx = isl + 1.0  # the request's own decoding sequence shares each step (osl 2)
    want = sum(
        float(
            step_time(
                p["prof"], p["hw"], lay, make_load(1, ctx, chunk, cached + k * chunk, 1),
                p["nb"], eff,
            )["total"][0]
        )
        for k in range(n)
    )  # fmt: skip
    # exact up to the attention-efficiency ramp (keys = offset + chunk / 2, pairs count
    # chunk (chunk + 1) / 2): a few parts per million
    assert got == pytest.approx(want, rel=1e-5)


def test_a_long_prompt_pays_its_attention_across_chunks() -> None:
    # 128K tokens in 16 chunks: chunk k attends k x 8K earlier tokens; the causal pairs
    # of the whole prompt are S^2 / 2, sixteen times those of 16 separate 8K chunks
    long_s, _ = _own_prefill_s(16 * DEFAULT_CHUNK_TOKENS, 0.0)
    one_s, _ = _own_prefill_s(DEFAULT_CHUNK_TOKENS, 0.0)
    assert long_s > 1.5 * 16 * one_s  # costed as 16 first chunks it was 1.0x
