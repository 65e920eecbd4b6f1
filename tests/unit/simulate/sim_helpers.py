"""Helpers of the simulator tests: small deployments, traces and a fixed-time model."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from codesign.deployment import Deployment
from codesign.simulate.stepmodel import PoolModel
from codesign.workload import TraceBuilder, TraceMeta
from codesign.workload.synth import generate, preset

QWEN_AGG = """
model: Qwen/Qwen3-32B
mode: agg
engine: trtllm
precision: {kv: fp8}
pools: [{role: agg, system: h200_sxm, workers: WORKERS, parallel: {tp: 2}}]
router: ROUTER
"""


def qwen_agg(workers: int = 1, router: str = "kv_aware") -> Deployment:
    return Deployment.from_yaml(QWEN_AGG.replace("WORKERS", str(workers)).replace("ROUTER", router))


def tool_trace():
    return generate(preset("tool-agent").with_overrides(sessions=30, seed=3))


@dataclass
class FixedModel:
    """Step times by hand: a step with prefill takes ``prefill_step_s``, else ``decode_step_s``."""

    decode_step_s: float = 0.010
    prefill_step_s: float = 0.100
    chunk_tokens: int = 8192
    dp: int = 1
    max_seqs: int = 1024
    spec_tokens_per_step: float = 1.0
    kv_tokens_per_worker: int = 10**9
    role: str = "agg"
    kv_out_halves: int = 2  # reserves prompt + output, as TRT-LLM
    state_tokens: int = 0  # no recurrent state
    kv_held = PoolModel.kv_held  # the pool model's admission rule on these fields

    def step_s(self, n_dec, ctx, n_pf=0, pf_attn_s=0.0, pf_seqs=0, load_s=0.0):
        return self.prefill_step_s if n_pf else self.decode_step_s

    def prefill_attn_s(self, new, before):
        return 0.0

    def run_step_s(self, n_dec, ctx):
        return self.step_s(n_dec, ctx)

    def chunk_step_s(self, c, done, load_s):
        return self.step_s(0, 0.0, c, 0.0, 1, load_s)


def use_fixed_model(sim, model: FixedModel | None = None) -> FixedModel:
    """Swap every worker's step model for hand-set step times and drop request overhead."""
    m = model or FixedModel()
    sim.overhead_s = [0.0] * len(sim.overhead_s)
    for part in sim.parts:
        part.overhead_s = 0.0
        part.overhead_per_token_s = 0.0
        for w in (*part.workers, *part.pf_workers):
            w.model = m
            w.E = 1.0
            w.kv_cap = m.kv_tokens_per_worker
    return m


def block_trace(requests: list[dict], block: int = 100):
    """One session; ``requests`` rows: agent (0 primary, >0 children of 0), arrival, server,
    input, output, gap, blocks (list of ids), model (optional name: its tier)."""
    b = TraceBuilder(TraceMeta(block_size_tokens=block, hash_scope="global"))
    s = b.add_session("s0")
    agents = {0: b.add_agent(s)}
    for row in requests:
        a = row.get("agent", 0)
        if a not in agents:
            agents[a] = b.add_agent(s, agents[0], "Explore", f"sub{a}", row["arrival"])
        blocks = np.asarray(row["blocks"], dtype=np.int64)
        b.add_requests(
            agents[a],
            arrival_s=[row["arrival"]],
            input_tokens=[row["input"]],
            output_tokens=[row["output"]],
            server_s=[row["server"]],
            gap_s=[row.get("gap", np.nan)],
            hash_counts=[blocks.size],
            hash_ids=blocks,
            **({"model": b.model_code(row["model"])} if "model" in row else {}),
        )
    return b.build()
