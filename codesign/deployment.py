"""The deployment description shared by evaluation, search, storage and export.

A `Deployment` round-trips through YAML/JSON, e.g.::

    model: deepseek-ai/DeepSeek-R1
    mode: disagg                   # agg | disagg | afd
    engine: trtllm
    precision: {gemm: nvfp4, moe: nvfp4, kv: fp8}
    pools:
      - {role: prefill, system: gb200, workers: 4, parallel: {tp: 1, dp: 8, ep: 8}}
      - {role: decode, system: gb200, workers: 1, parallel: {tp: 1, dp: 32, ep: 32},
         max_batch: 256}
    kv_tiers: {host_gb_per_worker: 480, retention: pin_during_tool_gaps}
    router: kv_aware
    spec_decoding: {method: mtp, draft_tokens: 3}

Structural rules are checked on construction (pool roles per mode, names, ranges);
rules that need the model and the catalog (heads and experts divide, the model fits, the
decode pool keeps room for KV) are checked by ``check(deployment)``, which the evaluator
runs and whose messages name the pool and field.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Self

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from codesign.errors import SpecError

Mode = Literal["agg", "disagg", "afd"]
Role = Literal["agg", "prefill", "decode", "attention", "ffn"]
ROLES_BY_MODE: dict[str, tuple[str, ...]] = {
    "agg": ("agg",),
    "disagg": ("prefill", "decode"),
    "afd": ("attention", "ffn"),
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Parallel(_Strict):
    tp: int = Field(1, ge=1, description="tensor parallel size per attention-DP rank")
    pp: int = Field(1, ge=1, description="pipeline stages")
    dp: int = Field(1, ge=1, description="attention data-parallel ranks per worker")
    ep: int = Field(0, ge=0, description="expert parallel size (0: tp x dp for MoE models)")

    @model_validator(mode="after")
    def _ep_divides(self) -> Self:
        if self.ep and (self.tp * self.dp) % self.ep:
            raise ValueError(
                f"ep {self.ep} does not divide tp x dp = {self.tp * self.dp} (the experts are "
                "sharded over the pool's tp x dp ranks of one pipeline stage)"
            )
        return self

    @property
    def chips(self) -> int:
        return self.tp * self.dp * self.pp


class Pool(_Strict):
    role: Role
    system: str = Field(min_length=1)
    workers: int = Field(1, ge=1)
    parallel: Parallel = Field(default_factory=Parallel)
    max_batch: int | None = Field(None, ge=1, description="running sequences per DP rank")
    max_batch_tokens: int | None = Field(None, ge=1, description="tokens per engine step")
    memory_fraction: float | None = Field(
        None,
        gt=0,
        le=1,
        description="the engine's memory setting, which sizes the KV cache: vLLM "
        "--gpu-memory-utilization and SGLang --mem-fraction-static (the share of the GPU for "
        "weights and KV cache), TRT-LLM kv_cache_config.free_gpu_memory_fraction (the share "
        "of what the weights and runtime leave). Default: the engine's own (vLLM 0.9, "
        "TRT-LLM 0.9, SGLang's for the GPU and layout)",
    )
    hardware: dict[str, float] = Field(
        default_factory=dict, description="hypothetical overrides of the system (knobs)"
    )

    @property
    def chips(self) -> int:
        return self.workers * self.parallel.chips


class DeploymentPrecision(_Strict):
    gemm: str | None = Field(None, description="dense GEMM weights (default: checkpoint)")
    moe: str | None = Field(None, description="expert weights (default: checkpoint)")
    kv: str = "fp8"

    @field_validator("gemm", "moe", "kv")
    @classmethod
    def _known(cls, v: str | None) -> str | None:
        if v is not None:
            from hwmodels.precision import get_precision

            try:
                get_precision(v)
            except Exception as exc:
                raise ValueError(str(exc)) from None
        return v


class KVTiers(_Strict):
    host_gb_per_worker: float = Field(
        0.0,
        ge=0,
        description="host-memory KV per worker that holds the prefix cache (agg, or the "
        "prefill pool in disagg), GB",
    )
    storage_gb_per_worker: float = Field(
        0.0,
        ge=0,
        description="KV on the node's local NVMe per worker that holds the prefix cache "
        "(agg, or the prefill pool in disagg), GB (after host memory: blocks evicted from "
        "the host tier move here; hits are read at the drives' bandwidth)",
    )
    shared_storage_tb: float = Field(
        0.0,
        ge=0,
        description="a KV store shared by every worker of the main model (Mooncake Store, "
        "an LMCache server, 3FS), TB: every computed block is written through, any worker "
        "reads its hits",
    )
    shared_storage_read_gb_s: float = Field(
        0.0,
        ge=0,
        description="the shared store's aggregate read bandwidth, GB/s (shared by the "
        "chips that prefill; each reads at most at its NIC's rate)",
    )
    shared_storage_usd_per_hour: float = Field(
        0.0,
        ge=0,
        description="the shared store's all-in cost, $/hour, added to the deployment's "
        "(0: not priced)",
    )
    storage_tb: float = Field(
        0.0, ge=0, description="replaced by shared_storage_tb; only 0 is accepted"
    )
    retention: Literal["lru", "pin_during_tool_gaps"] = "lru"

    @field_validator("storage_tb")
    @classmethod
    def _storage_renamed(cls, v: float) -> float:
        if v > 0:
            raise ValueError(
                "storage_tb is not read: a store shared by all workers is shared_storage_tb "
                "(with shared_storage_read_gb_s), the node's local NVMe "
                "storage_gb_per_worker"
            )
        return v

    @model_validator(mode="after")
    def _shared_store_bandwidth(self) -> Self:
        for name in ("shared_storage_read_gb_s", "shared_storage_usd_per_hour"):
            if getattr(self, name) > 0 and self.shared_storage_tb <= 0:
                raise ValueError(
                    f"{name} is set but shared_storage_tb is 0: give the store's size too, "
                    f"or drop {name}"
                )
        if self.shared_storage_tb > 0 and self.shared_storage_read_gb_s <= 0:
            raise ValueError(
                "shared_storage_tb needs shared_storage_read_gb_s > 0 (the store's aggregate "
                "read bandwidth, GB/s: from its spec sheet or a measurement)"
            )
        return self


class SpecDecoding(_Strict):
    method: Literal["none", "mtp", "eagle"] = "none"
    draft_tokens: int = Field(0, ge=0, le=16)
    acceptance: float = Field(0.7, ge=0, lt=1)

    @model_validator(mode="after")
    def _k(self) -> Self:
        if self.method != "none" and self.draft_tokens == 0:
            raise ValueError(f"spec_decoding.method {self.method} needs draft_tokens >= 1")
        return self


class SubAgents(_Strict):
    model: str = Field(min_length=1)
    pools: list[Pool] = Field(min_length=1)
    precision: DeploymentPrecision = Field(default_factory=DeploymentPrecision)


class Deployment(_Strict):
    model: str = Field(min_length=1)
    mode: Mode = "agg"
    engine: Literal["trtllm", "vllm", "sglang"] = "trtllm"
    precision: DeploymentPrecision = Field(default_factory=DeploymentPrecision)
    pools: list[Pool] = Field(min_length=1)
    kv_tiers: KVTiers = Field(default_factory=KVTiers)
    router: Literal["round_robin", "session_affinity", "kv_aware"] = "kv_aware"
    spec_decoding: SpecDecoding = Field(default_factory=SpecDecoding)
    cuda_graphs: bool = Field(
        True,
        description="replay decode steps as captured CUDA graphs (every engine's default); "
        "false: every step is launched kernel by kernel (vLLM --enforce-eager, SGLang "
        "--disable-cuda-graph, TRT-LLM without cuda_graph_config), host-bound at small "
        "batches",
    )
    adp_balance_timeout_iters: int = Field(
        0,
        ge=0,
        le=100_000,
        description="TRT-LLM attention-DP context balancing (attention_dp_config."
        "enable_balance, TRT-LLM's default off): 0 off; N holds new prefills until every "
        "attention-DP rank has one or N iterations pass (the DEP serving recipes use 60), "
        "which adds up to N decode iterations to TTFT",
    )
    subagents: SubAgents | None = None

    @model_validator(mode="after")
    def _balance_engine(self) -> Self:
        if self.adp_balance_timeout_iters and self.engine != "trtllm":
            raise ValueError(
                "adp_balance_timeout_iters is TRT-LLM's attention-DP balancing; engine "
                f"{self.engine} has no such scheduler option (set it to 0)"
            )
        return self

    @model_validator(mode="after")
    def _roles(self) -> Self:
        want = ROLES_BY_MODE[self.mode]
        got = tuple(p.role for p in self.pools)
        if sorted(got) != sorted(want):
            raise ValueError(
                f"mode {self.mode} needs pools with roles {', '.join(want)}; got "
                f"{', '.join(got) or 'none'}"
            )
        if self.subagents is not None:
            roles = [p.role for p in self.subagents.pools]
            if roles not in (["agg"],) and sorted(roles) not in (["decode", "prefill"],):
                raise ValueError("subagents.pools must be one agg pool or prefill + decode")
        return self

    def pool(self, role: str) -> Pool:
        for p in self.pools:
            if p.role == role:
                return p
        raise SpecError(f"deployment has no {role} pool")

    @property
    def chips(self) -> int:
        extra = sum(p.chips for p in self.subagents.pools) if self.subagents else 0
        return sum(p.chips for p in self.pools) + extra

    # --- YAML/JSON --------------------------------------------------------------------
    def to_yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(mode="json", exclude_defaults=True), sort_keys=False)

    @classmethod
    def from_yaml(cls, text: str, where: str = "deployment") -> Deployment:
        from codesign.specio import load_yaml_mapping, validate_spec

        return validate_spec(cls, load_yaml_mapping(text, where), where)

    @classmethod
    def from_file(cls, path: str | Path) -> Deployment:
        p = Path(path)
        if not p.is_file():
            raise SpecError(f"deployment file not found: {p}")
        return cls.from_yaml(p.read_text(), str(p))
