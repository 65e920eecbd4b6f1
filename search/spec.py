"""The job spec: one YAML/JSON document that the CLI (and later the REST API) accepts.

Example (``examples/agentic-coding.yaml``)::

    name: agentic-coding
    model: deepseek-ai/DeepSeek-R1
    subagent_model: Qwen/Qwen3-32B           # optional: sub-agents on their own pools
    workload:
      synth: {preset: claude-code-fleet, sessions: 200, seed: 0}  # or trace: PATH or fixed: ISL/OSL
      concurrent_sessions: 1000
    space:
      systems: [h200_sxm, gb200, vera_rubin_nvl72]
      decode_systems: [same, groq3_lpx]      # disagg only; "same" = the prefill system
      modes: [agg, disagg]
      precision: {gemm: [fp8, nvfp4], kv: [fp8]}
      parallelism: {tp: [1, 2, 4, 8], ep: [8, 32], dp: [1, 8, 32], workers: [1, 4, 16]}
      spec_decoding: [none, mtp1, mtp3]
      kv_tiers: {host: [none, host_memory], retention: [lru]}
      hardware: {base: vera_rubin_nvl72, hbm_bandwidth_tb_s: [13, 30]}   # co-design
      subagents: {systems: [h100_sxm], tp: [1, 2]}  # with subagent_model (search.subagents)
    objectives: [max tokens_per_s_per_user, max tokens_per_s_per_gpu, min usd_per_mtok_output]
    constraints: {ttft_p90_s: {max: 2.0}, chips: {max: 576}}
    strategy: {sampler: auto, budget: 20000, batch: 256, seed: 0}

Every error names the offending field (``space.systems: unknown system ...``).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal, Self

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from codesign.errors import SpecError
from codesign.specio import load_yaml_mapping, validate_spec
from search.spec_base import (
    CUSTOM,
    SAME,
    PrecisionSpace,
    _nonempty_unique,
    _Strict,
    resolve_systems,
)
from search.subagents import SubAgentSpace, check_subagents

SAMPLERS = ("auto", "exhaustive", "random", "qmc", "tpe", "nsga2", "nsga3")
SPEC_RE = re.compile(r"^(none|(mtp|eagle)(\d+))$")


class SynthWorkload(_Strict):
    preset: str = "claude-code-fleet"
    sessions: int = Field(200, ge=1)
    seed: int = 0

    @field_validator("preset")
    @classmethod
    def _known(cls, v: str) -> str:
        from codesign.workload.synth import PRESETS

        if v not in PRESETS:
            raise ValueError(f"unknown synth preset {v!r} (known: {', '.join(PRESETS)})")
        return v


class FixedWorkload(_Strict):  # one isl-in/osl-out request per session (search.workload)
    isl: int = Field(ge=1)
    osl: int = Field(ge=1)


class WorkloadSpec(_Strict):
    synth: SynthWorkload | None = None
    trace: str | None = None
    fixed: FixedWorkload | None = None
    format: str | None = Field(None, description="trace format (default: detected)")
    concurrent_sessions: float = Field(1000, gt=0)

    @model_validator(mode="after")
    def _one(self) -> Self:
        if sum(x is not None for x in (self.synth, self.trace, self.fixed)) != 1:
            raise ValueError("give exactly one of workload.synth, workload.trace, workload.fixed")
        return self


class ParallelLists(_Strict):
    tp: list[int] = Field(default_factory=lambda: [8])
    ep: list[int] = Field(default_factory=lambda: [0], description="0: ep = tp x dp (MoE)")
    dp: list[int] = Field(default_factory=lambda: [1])
    workers: list[int] = Field(default_factory=lambda: [1, 2, 4, 8])
    pp: list[int] = Field(default_factory=lambda: [1], description="pipeline stages")

    @field_validator("tp", "dp", "workers", "pp")
    @classmethod
    def _pos(cls, v: list[int]) -> list[int]:
        if any(x < 1 for x in v):
            raise ValueError(f"values must be >= 1, got {v}")
        return _nonempty_unique(v)

    @field_validator("ep")
    @classmethod
    def _ep(cls, v: list[int]) -> list[int]:
        if any(x < 0 for x in v):
            raise ValueError(f"values must be >= 0 (0: tp x dp), got {v}")
        return _nonempty_unique(v)


class ParallelSpace(ParallelLists):
    prefill: ParallelLists | None = Field(
        None, description="prefill pool lists for disagg (default: the same lists)"
    )


class KVTierSpace(_Strict):
    host: list[str | float] = Field(
        default_factory=lambda: ["none"],
        description="none | host_memory (all host DRAM of the worker) | GB per worker",
    )
    storage: list[str | float] = Field(
        default_factory=lambda: ["none"],
        description="none | nvme (the worker's share of its node's NVMe) | GB per worker",
    )
    retention: list[Literal["lru", "pin_during_tool_gaps"]] = Field(default_factory=lambda: ["lru"])

    @field_validator("host", "storage")
    @classmethod
    def _tier(cls, v: list[str | float], info: ValidationInfo) -> list[str | float]:
        whole = {"host": "host_memory", "storage": "nvme"}[info.field_name]
        for x in v:
            if isinstance(x, str) and x not in ("none", whole):
                raise ValueError(
                    f"unknown {info.field_name} tier {x!r} (none, {whole} or GB per worker)"
                )
            if not isinstance(x, str) and x < 0:
                raise ValueError(f"{info.field_name} GB must be >= 0, got {x}")
        return _nonempty_unique(v)

    @field_validator("retention")
    @classmethod
    def _ret(cls, v: list) -> list:
        return _nonempty_unique(v)


class HardwareSpace(BaseModel):
    """Continuous co-design knobs on a base system: ``knob: [low, high]`` (or one value)."""

    model_config = ConfigDict(extra="allow")
    base: str
    pricing: Literal["model", "base"] = Field(
        "model", description="model: price the knobs (hwmodels.knob_cost); base: keep the rate"
    )

    @field_validator("base")
    @classmethod
    def _base(cls, v: str) -> str:
        from hwmodels import get_system

        try:
            return get_system(v).name
        except Exception as exc:
            raise ValueError(str(exc)) from None

    @model_validator(mode="after")
    def _knobs(self) -> Self:
        from hwmodels.derive import KNOBS

        if not self.knobs:
            raise ValueError("hardware needs at least one knob range, e.g. hbm_bandwidth_tb_s")
        for k, v in (self.model_extra or {}).items():
            if k not in KNOBS:
                raise ValueError(f"{k}: unknown hardware knob (known: {', '.join(KNOBS)})")
            lo, hi = _bounds(v, k)
            if lo > hi:
                raise ValueError(f"{k}: low {lo:g} > high {hi:g}")
            if lo < 0:
                raise ValueError(f"{k}: must be >= 0")
        return self

    @property
    def knobs(self) -> dict[str, tuple[float, float]]:
        return {k: _bounds(v, k) for k, v in (self.model_extra or {}).items()}


def _bounds(v: Any, name: str) -> tuple[float, float]:
    if isinstance(v, int | float):
        return float(v), float(v)
    if (
        isinstance(v, list | tuple)
        and len(v) in (1, 2)
        and all(isinstance(x, int | float) for x in v)
    ):
        return float(v[0]), float(v[-1])
    raise ValueError(f"{name}: expected [low, high] or one number, got {v!r}")


class SpaceSpec(_Strict):
    systems: list[str]
    decode_systems: list[str] = Field(default_factory=lambda: [SAME])
    modes: list[str] = Field(default_factory=lambda: ["agg", "disagg"])
    precision: PrecisionSpace = Field(default_factory=PrecisionSpace)
    parallelism: ParallelSpace = Field(default_factory=ParallelSpace)
    spec_decoding: list[str] = Field(default_factory=lambda: ["none"])
    kv_tiers: KVTierSpace = Field(default_factory=KVTierSpace)
    routers: list[Literal["round_robin", "session_affinity", "kv_aware"]] = Field(
        default_factory=lambda: ["kv_aware"]
    )
    engine: Literal["trtllm", "vllm", "sglang"] = "trtllm"
    memory_fraction: float | None = Field(
        None,
        gt=0,
        le=1,
        description="the engine's memory setting for every pool the search builds (vLLM "
        "--gpu-memory-utilization, SGLang --mem-fraction-static, TRT-LLM "
        "free_gpu_memory_fraction; default: the engine's own): Pool.memory_fraction",
    )
    hardware: HardwareSpace | None = None
    subagents: SubAgentSpace | None = Field(
        None, description="sub-agent pool lists (needs subagent_model; search.subagents)"
    )

    @field_validator("systems", "decode_systems")
    @classmethod
    def _systems(cls, v: list[str]) -> list[str]:
        return resolve_systems(v)

    @field_validator("modes")
    @classmethod
    def _modes(cls, v: list[str]) -> list[str]:
        for m in v:
            if m == "afd":
                raise ValueError(
                    "afd (attention-FFN disaggregation) is not in the agent evaluator yet; "
                    "use agg and/or disagg"
                )
            if m not in ("agg", "disagg"):
                raise ValueError(f"unknown mode {m!r} (agg, disagg)")
        return _nonempty_unique(v)

    @field_validator("spec_decoding")
    @classmethod
    def _spec(cls, v: list[str]) -> list[str]:
        for s in v:
            if not SPEC_RE.match(s) or s in ("mtp0", "eagle0"):
                raise ValueError(f"unknown spec_decoding {s!r} (none, mtpK or eagleK, K >= 1)")
        return _nonempty_unique(v)

    @field_validator("routers")
    @classmethod
    def _routers(cls, v: list) -> list:
        return _nonempty_unique(v)

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if (CUSTOM in self.systems or CUSTOM in self.decode_systems) and self.hardware is None:
            raise ValueError("'custom' system listed but space.hardware (the knobs) is missing")
        if self.hardware is not None and CUSTOM not in (*self.systems, *self.decode_systems):
            self.systems = [*self.systems, CUSTOM]
        if self.decode_systems != [SAME] and "disagg" not in self.modes:
            raise ValueError("decode_systems apply to disagg only; add disagg to space.modes")
        return self


class Objective(_Strict):
    metric: str
    direction: Literal["max", "min"]

    def __str__(self) -> str:
        return f"{self.direction} {self.metric}"


class Bound(_Strict):
    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _order(self) -> Self:
        if self.min is None and self.max is None:
            raise ValueError("give min and/or max")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"contradictory bounds: min {self.min:g} > max {self.max:g}")
        return self


class StrategySpec(_Strict):
    sampler: Literal[SAMPLERS] = "auto"  # type: ignore[valid-type]
    budget: int = Field(20_000, ge=1, description="evaluations (candidates) at most")
    batch: int = Field(256, ge=1, le=65_536, description="candidates per ask/tell batch")
    seed: int = 0
    executor: Literal["inline", "ray"] = "inline"
    ray_address: str | None = Field(None, description="ray cluster (default: RAY_ADDRESS)")
    verify_top: int = Field(0, ge=0, description="simulate the top K front points")
    fidelity: Literal["analytic", "simulate"] = "analytic"
    patience: int = Field(0, ge=0, description="stop after N batches without HV gain (0: off)")
    screen_fraction: float = Field(0.25, gt=0, le=1, description="auto: budget share screened")
    knob_levels: int = Field(5, ge=2, le=64, description="grid levels per knob when screening")
    exhaustive_limit: int = Field(2_000_000, ge=1, description="largest space enumerated")
    reference: dict[str, float] = Field(
        default_factory=dict, description="hypervolume reference value per objective metric"
    )


class JobSpec(_Strict):
    name: str = Field("search", min_length=1)
    model: str = Field(min_length=1)
    subagent_model: str | None = None
    workload: WorkloadSpec
    space: SpaceSpec
    objectives: list[Objective] = Field(min_length=1)
    constraints: dict[str, Bound] = Field(default_factory=dict)
    strategy: StrategySpec = Field(default_factory=StrategySpec)

    @field_validator("objectives", mode="before")
    @classmethod
    def _parse_objectives(cls, v: Any) -> Any:
        if not isinstance(v, list):
            return v
        out = []
        for o in v:
            if isinstance(o, str):
                parts = o.split()
                if len(parts) != 2 or parts[0] not in ("max", "min"):
                    raise ValueError(f"{o!r}: write objectives as 'max METRIC' or 'min METRIC'")
                o = {"direction": parts[0], "metric": parts[1]}
            out.append(o)
        return out

    @field_validator("objectives")
    @classmethod
    def _metrics(cls, v: list[Objective]) -> list[Objective]:
        from codesign.evaluate import METRICS

        for o in v:
            if o.metric not in METRICS:
                raise ValueError(f"unknown metric {o.metric!r} (known: {', '.join(METRICS)})")
        if len({o.metric for o in v}) != len(v):
            raise ValueError("an objective metric is listed twice")
        return v

    @field_validator("constraints")
    @classmethod
    def _cons(cls, v: dict[str, Bound]) -> dict[str, Bound]:
        from codesign.evaluate import METRICS

        for k in v:
            if k not in METRICS:
                raise ValueError(f"{k}: unknown metric (known: {', '.join(METRICS)})")
        return v

    @model_validator(mode="after")
    def _checks(self) -> Self:
        st = self.strategy
        check_subagents(self)
        if st.sampler == "nsga3" and len(self.objectives) < 4:
            raise ValueError("strategy.sampler: nsga3 is for >= 4 objectives; use nsga2 or auto")
        if st.fidelity != "analytic":
            raise ValueError("strategy.fidelity: search at analytic; verify_top: K simulates")
        names = {o.metric for o in self.objectives}
        for k in st.reference:
            if k not in names:
                raise ValueError(f"strategy.reference: {k} is not an objective")
        return self

    # --- YAML/JSON --------------------------------------------------------------------
    @classmethod
    def from_data(cls, data: Any, where: str = "job spec") -> JobSpec:
        return validate_spec(cls, data, where)

    @classmethod
    def from_yaml(cls, text: str, where: str = "job spec") -> JobSpec:
        return cls.from_data(load_yaml_mapping(text, where), where)

    @classmethod
    def from_file(cls, path: str | Path) -> JobSpec:
        p = Path(path)
        if not p.is_file():
            raise SpecError(f"job spec file not found: {p}")
        return cls.from_yaml(p.read_text(), str(p))

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(mode="json", exclude_defaults=True), sort_keys=False)
