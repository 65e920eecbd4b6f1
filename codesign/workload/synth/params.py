"""`SynthParams`: every knob of the synthetic agent-session generator, documented.

A session is a primary (main) agent that re-sends its growing context every turn, plus
optional sub-agents on a smaller model tier. Token sizes are in tokens, times in seconds.

Main agent, per session: a *context class* is drawn (by ``weight``) — it fixes the model,
its context window and the compaction policy; then the number of turns, the first request's
context and, per turn, the growth of the context (previous output + tool result or user
message), the output tokens, the stop reason (``end_turn`` with ``end_turn_prob``, else
``tool_use``) and the client gap before the next request (tool gap after ``tool_use``,
human gap after ``end_turn``). With ``compaction_prob`` a session compacts: every time its
context reaches a threshold (a fresh one per compaction; a growth step never carries the
context more than 2% past it) the next request restarts at the post-compaction size on a
new prefix chain after the static tool/system prefix, and growth from then on is scaled
by ``post_compaction_growth_scale``. A session whose context would pass the window ends
there.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from codesign.errors import SpecError
from codesign.workload.synth.dist import Dist, const, lognormal


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ContextClass(_Strict):
    """A kind of main-agent session: model, context window, turns, growth and compaction."""

    name: str = Field("default", description="label, e.g. '200k' or '1m'")
    weight: float = Field(1.0, gt=0, description="relative share of sessions in this class")
    models: dict[str, float] = Field(
        default_factory=lambda: {"claude-opus-4-5": 1.0},
        description="main-agent model names → relative share of sessions",
    )
    context_window_tokens: int = Field(200_000, gt=0, description="session ends past this")
    turns: Dist = Field(default_factory=lambda: const(50), description="main turns per session")
    initial_context_tokens: Dist = Field(
        default_factory=lambda: const(20_000),
        description="input tokens of the first request (static prefix included)",
    )
    context_growth_tokens: Dist = Field(
        default_factory=lambda: const(1_500),
        description="tokens appended between consecutive main requests (output + tool result)",
    )
    copula_corr: list[list[float]] = Field(
        default_factory=lambda: [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]],
        description="Gaussian-copula correlation of (turns, initial context, growth scale) "
        "per session: long sessions start smaller and grow slower",
    )
    growth_scale: Dist = Field(
        default_factory=lambda: const(1.0),
        description="per-session multiplier of context_growth_tokens (its own mean growth "
        "over the pooled mean)",
    )
    compaction_prob: float = Field(
        0.0, ge=0, le=1, description="probability that a session compacts at its threshold"
    )
    compaction_threshold_tokens: Dist = Field(
        default_factory=lambda: const(155_000),
        description="context at which a compacting session summarises (the size before)",
    )
    post_compaction_tokens: Dist = Field(
        default_factory=lambda: const(20_000),
        description="context of the first request after a compaction",
    )
    post_compaction_growth_scale: float = Field(
        1.0,
        gt=0,
        description="multiplier of the growth after a compaction, applied again at each one "
        "(the agent re-reads the files and plans the summary dropped, so the context "
        "refills faster)",
    )

    @model_validator(mode="after")
    def _check(self) -> ContextClass:
        if not self.models or min(self.models.values()) <= 0:
            raise SpecError(f"context class {self.name!r}: models needs positive shares")
        corr = np.asarray(self.copula_corr, dtype=float)
        if corr.shape != (3, 3) or not np.allclose(corr, corr.T) or np.any(np.diag(corr) != 1):
            raise SpecError(
                f"context class {self.name!r}: copula_corr must be a 3x3 "
                "symmetric matrix with a unit diagonal"
            )
        if np.linalg.eigvalsh(corr).min() <= 0:
            raise SpecError(f"context class {self.name!r}: copula_corr is not positive definite")
        return self


class SubAgentParams(_Strict):
    """Sub-agents spawned by the main agent after a tool_use turn (e.g. Claude Code Task)."""

    session_prob: float = Field(0.0, ge=0, le=1, description="share of sessions with any")
    count: Dist = Field(default_factory=lambda: const(3), description="sub-agents per session")
    max_parallel: int = Field(3, ge=1, description="sub-agents spawned together (run at once)")
    kinds: dict[str, float] = Field(
        default_factory=lambda: {"Explore": 1.0}, description="kind name → relative share"
    )
    small_model_prob: float = Field(
        0.9, ge=0, le=1, description="share of sub-agents on the small tier (else main model)"
    )
    turns: Dist = Field(default_factory=lambda: const(10), description="requests per sub-agent")
    initial_context_tokens: Dist = Field(
        default_factory=lambda: const(10_000), description="input of a sub-agent's first call"
    )
    context_growth_tokens: Dist = Field(
        default_factory=lambda: const(6_000), description="growth between its calls"
    )
    gap_s: Dist = Field(default_factory=lambda: const(2.0), description="tool gap between calls")
    final_context_tokens: Dist | None = Field(
        None,
        description="input of a sub-agent's last call; when set, its calls grow from the first "
        "to this size (increments drawn from context_growth_tokens, rescaled) instead of "
        "adding iid growth, and its turns and final size are low-discrepancy draws across "
        "the trace's sub-agents",
    )
    growth_shape: float = Field(
        1.0,
        gt=0,
        description="with final_context_tokens: call i of n sits at (i/(n-1))**shape of the "
        "way from the first to the last size (< 1: most growth early, as Explore agents read "
        "files first)",
    )


class ArrivalParams(_Strict):
    """When the N concurrent sessions start."""

    process: Literal["all_at_zero", "poisson"] = Field(
        "all_at_zero", description="all sessions start at t=0, or Poisson session starts"
    )
    sessions_per_s: float = Field(0.01, gt=0, description="poisson: session start rate")


class SynthParams(_Strict):
    """All parameters of `codesign.workload.synth.generate` (presets are instances)."""

    name: str = "synthetic"
    description: str = ""
    sessions: int = Field(1, ge=1, le=1_000_000, description="sessions to generate")
    seed: int = Field(0, ge=0, description="seed of the numpy generator; same seed → same trace")
    block_size_tokens: int = Field(64, ge=1, description="tokens per prefix hash block")
    classes: list[ContextClass] = Field(default_factory=lambda: [ContextClass()], min_length=1)
    tool_tokens: Dist = Field(
        default_factory=lambda: const(12_000), description="static tool-definition prefix"
    )
    system_tokens: Dist = Field(
        default_factory=lambda: const(2_800), description="static system-prompt prefix"
    )
    output_tokens: Dist = Field(
        default_factory=lambda: lognormal(220, 1.1, min_value=1, integer=True),
        description="output tokens per request (main and sub-agents)",
    )
    end_turn_prob: float = Field(
        0.06, ge=0, le=1, description="share of turns ending in end_turn (human gap next)"
    )
    tool_gap_s: Dist = Field(
        default_factory=lambda: lognormal(9, 1.3), description="client wait after tool_use"
    )
    human_gap_s: Dist = Field(
        default_factory=lambda: lognormal(210, 2.0), description="client wait after end_turn"
    )
    server_s: Dist = Field(
        default_factory=lambda: lognormal(6.1, 0.8), description="server time per call"
    )
    gap_resolution_s: float = Field(
        0.0, ge=0, description="round client gaps to this step (the Claude Code logs use 1 s)"
    )
    prefix_break_prob: float = Field(
        0.0,
        ge=0,
        le=1,
        description="share of main turns whose context is rewritten from a random block on "
        "(edited history), so only the part before it is a prefix hit",
    )
    small_model: str = Field("claude-haiku-4-5", description="model name of the small tier")
    subagents: SubAgentParams = Field(default_factory=SubAgentParams)
    arrival: ArrivalParams = Field(default_factory=ArrivalParams)

    def with_overrides(self, **changes: object) -> SynthParams:
        """A validated copy with top-level fields replaced (sessions, seed, ...)."""
        data = self.model_dump()
        data.update({k: v for k, v in changes.items() if v is not None})
        return SynthParams.model_validate(data)
