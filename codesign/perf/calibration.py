"""Calibration: the few interpretable parameters the step model cannot derive from specs.

They are fitted to measured serving rows (``codesign calibrate``) and stored, versioned,
in ``calibration.json`` beside this module. Every parameter is physical and shared across
chips, so a system never seen in calibration is predicted from its spec sheet alone:

- ``gemm_eff_max``: the fraction of dense peak a large GEMM reaches, per format class
  (narrow formats reach less: scale handling, epilogues).
- ``gemm_m_half_tokens``: tokens per GEMM at which it reaches half of that (small-M GEMMs
  are weight-streaming bound; this shapes the transition), on a chip whose ridge is
  H100 BF16's; each chip scales it by its own ridge (``step.ridge_scale``).
- ``moe_m_half_tokens``: the same for the grouped expert GEMMs, in tokens per expert.
- ``attn_eff``: fraction of the 16-bit peak that flash-style prefill attention reaches on
  long sequences. Not fitted: a kernel measurement, FlashAttention-3 on an H100 SXM (head
  dim 128, BF16) at 621 of 989 TFLOPs with 16K keys (pytorch/benchmark, FA3 vs Triton,
  2024); ``attn_half_tokens``: the mean keys a query attends at which it reaches half
  that, eff(S) = attn_eff x S / (S + S_half). FA3's own ramp reaches half by ~250 keys
  (430 TFLOPs at 512). The dev rows (prompts up to 8K) put more time into short prefills
  than the kernels explain, and the fit puts it here (~8K keys: 0.2 of peak at 8K-token
  prompts), so short prompts get the time the rows show while long contexts approach
  kernel speed (0.57 at 64K keys). Bounded at 16K keys so they always do. The constant
  fitted efficiency before (0.20) made a 128K-token prefill 2.3x the kernel figure and
  grew Llama-3.1-405B's TTFT 7.4x from 32K to 123K tokens, where NVIDIA measured 4.7x
  (``tests/unit/perf/test_long_context.py``).
- ``decode_attn_eff``: the same for decode attention when it is compute-bound (an MLA
  latent read once for all heads makes decode attention compute-heavy).
- ``mem_eff``: fraction of the memory bandwidth that streaming kernels reach.
- ``comm_eff`` and ``comm_latency_us``: collective bandwidth efficiency and fixed cost.
- ``layer_overhead_us`` (per engine): fixed per-layer cost (kernel launches, small ops).
- ``moe_layer_overhead_us``: the extra fixed cost of an MoE layer (router GEMM, top-k,
  token permute, grouped-GEMM setup, combine: several more kernels than a dense MLP). One
  fixed cost for every layer had made dense models' small-batch TPOT grow too little with
  tensor parallelism (Llama-3.1-70B FP8 on B200, batch 4: TP8 predicted 7.4 ms, measured
  5.9); with it the fit streams weights at 0.93 of the bandwidth instead of 0.98
  (calibration v11: TPOT median 14.7% -> 13.6% in sample).
- ``step_overhead_ms`` (per engine): scheduler, sampling and launch cost per engine step.
- ``ttft_overhead_ms`` (per engine): request handling outside the engine step (tokenise,
  route, first-token return); ``ttft_per_layer_us``: the part of it that grows with depth;
  ``ttft_per_input_token_us``: the part that grows with the prompt, per uncached prompt
  token. The dev rows have no prefix hits, so they cannot tell frontend work on the whole
  prompt (tokenising: ~1 us per token) from work on the tokens to prefill; the fitted
  value (5-8 us) is several times a tokeniser's cost, so it is charged on uncached tokens
  (charged on every token, a 156K-token agent context would wait ~1.2 s more).
- ``moe_imbalance``: scale of the expected max-over-ranks token excess under EP.
- ``expert_skew``: how unevenly a router spreads a step's tokens over the experts, as the
  sigma of a log-normal expert popularity (0: uniform). A decode step streams the weights
  of the distinct experts its tokens hit; with skew the popular experts take repeat hits,
  so a moderate batch touches fewer of them than uniform routing says
  (``step.distinct_expert_share``). Prefill batches touch every expert either way. The
  prior 0.5 lets a fit move it (its effect starts at second order in sigma).
- ``queue_factor``: scale of the random-arrival queueing wait (1 = M/D/1-like).
- ``sync_factor`` (per engine): closed-loop clients with equal output lengths finish, and
  so return, together: the fraction of the other clients' prefills a request typically
  queues behind. It is a property of the engine's scheduler (how it orders a cohort's
  prefills against running decodes), so it is fitted per engine.
- ``kernel_pins``: parameters set from kernel measurements on a device rather than fitted
  (``codesign calibrate --kernels FILE``; keys ``mem_eff``, ``gemm_eff_max.fp8``,
  ``gemm_m_half_tokens``, ``attn_eff``, ``attn_half_tokens`` ...); every later fit keeps
  them fixed. ``kernel_sources``: the measurement files' provenance.
- ``error_bands``: not a model parameter but the spread of measured / predicted that the
  fitted model leaves, per serving mode and engine (``codesign.perf.error_bands``), so
  each estimate carries the range its kind of prediction has shown.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from codesign.perf.error_bands import ErrorBands

DEFAULT_CALIBRATION_PATH = Path(__file__).resolve().parent / "calibration.json"
ENGINES = ("trtllm", "vllm", "sglang")
FORMAT_CLASSES = ("bf16", "fp8", "fp4")


class Calibration(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int = 1
    fitted_on: str = "priors (not fitted)"
    fitted_at: str | None = None
    gemm_eff_max: dict[str, float] = Field(
        default_factory=lambda: {"bf16": 0.75, "fp8": 0.70, "fp4": 0.55}
    )
    gemm_m_half_tokens: float = 48.0
    moe_m_half_tokens: float = 16.0
    attn_eff: float = Field(0.64, gt=0.0, le=1.0)
    attn_half_tokens: float = Field(2048.0, ge=0.0)
    decode_attn_eff: float = 0.5
    mem_eff: float = 0.80
    comm_eff: float = 0.70
    comm_latency_us: float = 8.0
    layer_overhead_us: dict[str, float] = Field(
        default_factory=lambda: {"trtllm": 10.0, "vllm": 14.0, "sglang": 12.0}
    )
    moe_layer_overhead_us: float = Field(20.0, ge=0.0)
    step_overhead_ms: dict[str, float] = Field(
        default_factory=lambda: {"trtllm": 1.0, "vllm": 2.0, "sglang": 2.0}
    )
    ttft_overhead_ms: dict[str, float] = Field(
        default_factory=lambda: {"trtllm": 20.0, "vllm": 25.0, "sglang": 25.0}
    )
    ttft_per_layer_us: float = Field(0.0, ge=0.0)
    ttft_per_input_token_us: float = Field(0.0, ge=0.0)
    moe_imbalance: float = 1.0  # unidentified by the dev rows; bounded to [0.5, 2] in fits
    expert_skew: float = Field(0.5, ge=0.0)
    queue_factor: float = 1.0
    sync_factor: dict[str, float] = Field(
        default_factory=lambda: {"trtllm": 0.3, "vllm": 0.3, "sglang": 0.3}
    )
    fit_summary: dict[str, float] = Field(default_factory=dict)
    kernel_pins: dict[str, float] = Field(default_factory=dict)
    kernel_sources: list[dict[str, str]] = Field(default_factory=list)
    # measured / predicted spread of this calibration's predictions (``error_bands``); a
    # refit drops it, since it described the calibration before
    error_bands: ErrorBands | None = None

    @model_validator(mode="before")
    @classmethod
    def _constant_attention_before_v10(cls, data: object) -> object:
        """Files before version 10 fitted a constant prefill-attention efficiency; files
        before version 11 had no MoE-layer overhead; files before version 15 routed
        tokens to experts uniformly."""
        version = int(data.get("version", 11)) if isinstance(data, dict) else 11
        if version < 10 and "attn_half_tokens" not in data:  # type: ignore[operator]
            data = {**data, "attn_half_tokens": 0.0}  # type: ignore[dict-item]
        if version < 11 and "moe_layer_overhead_us" not in data:  # type: ignore[operator]
            data = {**data, "moe_layer_overhead_us": 0.0}  # type: ignore[dict-item]
        # (a file that records its version: the priors, constructed without one, keep 0.5)
        stored = isinstance(data, dict) and "version" in data
        if stored and version < 15 and "expert_skew" not in data:  # type: ignore[operator]
            data = {**data, "expert_skew": 0.0}  # type: ignore[dict-item]  # uniform routing
        return data

    @field_validator("sync_factor", mode="before")
    @classmethod
    def _one_for_all_engines(cls, v: object) -> object:
        """A single number (calibration files before version 3) applies to every engine."""
        return {e: float(v) for e in ENGINES} if isinstance(v, int | float) else v

    @field_validator("sync_factor")
    @classmethod
    def _a_fraction(cls, v: dict[str, float]) -> dict[str, float]:
        """The fraction of a returning cohort a request waits behind: 0 to 1."""
        bad = {e: x for e, x in v.items() if not 0.0 <= x <= 1.0}
        if bad:
            raise ValueError(f"each engine's value must be between 0 and 1, got {bad}")
        return v

    def engine(self, table: dict[str, float], engine: str) -> float:
        return table.get(engine, sum(table.values()) / len(table))

    def save(self, path: str | Path | None = None) -> Path:
        out = Path(path) if path else DEFAULT_CALIBRATION_PATH
        out.write_text(json.dumps(self.model_dump(), indent=2) + "\n")
        return out

    def with_error_bands(self, bands: ErrorBands) -> Calibration:
        return self.model_copy(update={"error_bands": bands})

    def stamped(self, fitted_on: str) -> Calibration:
        return self.model_copy(
            update={"fitted_on": fitted_on, "fitted_at": datetime.now(UTC).isoformat()}
        )


def load_calibration(path: str | Path | None = None) -> Calibration:
    """The calibration at ``path``, else the packaged one, else the priors."""
    p = Path(path) if path else DEFAULT_CALIBRATION_PATH
    if not p.exists():
        if path:
            from codesign.errors import NotFoundError

            raise NotFoundError(f"calibration file not found: {p}")
        return Calibration()
    return Calibration.model_validate_json(p.read_text())
