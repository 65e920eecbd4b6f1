"""Named parameter sets of the session generator (`codesign trace synth --preset NAME`).

* ``claude-code-session``: the source article's single session — 33 min, 283 requests
  (58 main turns, 9 Explore sub-agents x 25 calls on the small tier), context 15K → ~158K,
  compaction to 20K, ~83K average main context over the first 40 turns, ~3.6M main input
  before the compaction and ~1M after (the context refills 1.62x faster after it), 95.6%
  prefix hits (every figure within ±10% of the article's for seeds 0-11).
* ``claude-code-fleet``: distributions fitted to the 710 real Claude Code sessions
  (`fleet_params`, recomputed by `fit_fleet_params`).
* ``chat``: short human-paced conversations shaped like the Azure 2023 conversation trace
  (mean input ~1.2K, output ~210 tokens) with the Mooncake conversation trace's prefix
  reuse (ideal hit 37.4% token-weighted; 0.34-0.39 over seeds 0-9): most conversations
  are one or two turns.
* ``tool-agent``: short tool-calling agents shaped like the Mooncake tool-agent figures
  (mean input ~8.6K, output ~180 tokens, ~59% cached).
"""

from __future__ import annotations

from collections.abc import Callable

from codesign.errors import NotFoundError
from codesign.workload.synth.dist import const, lognormal
from codesign.workload.synth.fleet_params import FLEET_PARAMS_JSON
from codesign.workload.synth.params import (
    ArrivalParams,
    ContextClass,
    SubAgentParams,
    SynthParams,
)


def claude_code_session() -> SynthParams:
    return SynthParams(
        name="claude-code-session",
        description="the source article's Claude Code session (one session)",
        sessions=1,
        classes=[
            ContextClass(
                name="200k",
                models={"claude-opus-4-5": 1.0},
                context_window_tokens=200_000,
                turns=const(58),
                initial_context_tokens=const(15_000),
                context_growth_tokens=lognormal(3_500, 0.05),
                compaction_prob=1.0,
                compaction_threshold_tokens=const(158_500),
                post_compaction_tokens=const(20_000),
                post_compaction_growth_scale=1.62,
            )
        ],
        tool_tokens=const(12_000),
        system_tokens=const(2_800),
        output_tokens=lognormal(220, 0.9, min_value=1, integer=True),
        end_turn_prob=0.05,
        tool_gap_s=lognormal(14, 0.4),
        human_gap_s=lognormal(45, 0.3),
        server_s=lognormal(6.1, 0.4),
        gap_resolution_s=1.0,
        subagents=SubAgentParams(
            session_prob=1.0,
            count=const(9),
            max_parallel=3,
            kinds={"Explore": 1.0},
            small_model_prob=1.0,
            turns=const(25),
            initial_context_tokens=const(10_300),
            context_growth_tokens=lognormal(450, 0.3),
            gap_s=lognormal(1.5, 0.5),
        ),
    )


def claude_code_fleet() -> SynthParams:
    return SynthParams.model_validate_json(FLEET_PARAMS_JSON)


def chat() -> SynthParams:
    return SynthParams(
        name="chat",
        description="human-paced chat conversations (Azure conv lengths, Mooncake-like reuse)",
        sessions=400,
        classes=[
            ContextClass(
                name="chat",
                models={"gpt-4": 1.0},
                context_window_tokens=32_000,
                turns=lognormal(1.3, 0.6, min_value=1, integer=True),
                initial_context_tokens=lognormal(600, 0.9, min_value=70, integer=True),
                context_growth_tokens=lognormal(260, 0.8, integer=True),
            )
        ],
        tool_tokens=const(0),
        system_tokens=const(0),
        output_tokens=lognormal(140, 0.9, min_value=1, integer=True),
        end_turn_prob=1.0,
        human_gap_s=lognormal(30, 1.0),
        server_s=lognormal(3.0, 0.6),
        small_model="gpt-4o-mini",
        arrival=ArrivalParams(process="poisson", sessions_per_s=2.0),
    )


def tool_agent() -> SynthParams:
    return SynthParams(
        name="tool-agent",
        description="short tool-calling agents (Mooncake tool-agent lengths and reuse)",
        sessions=200,
        classes=[
            ContextClass(
                name="agent",
                models={"kimi-k2": 1.0},
                context_window_tokens=128_000,
                turns=lognormal(2.3, 0.6, min_value=1, integer=True),
                initial_context_tokens=lognormal(3_900, 0.6, integer=True),
                context_growth_tokens=lognormal(1_900, 0.9, integer=True),
            )
        ],
        tool_tokens=const(1_500),
        system_tokens=const(500),
        output_tokens=lognormal(120, 0.9, min_value=1, integer=True),
        end_turn_prob=0.25,
        tool_gap_s=lognormal(2.0, 0.8),
        human_gap_s=lognormal(60, 1.0),
        server_s=lognormal(2.0, 0.6),
        arrival=ArrivalParams(process="poisson", sessions_per_s=1.0),
    )


PRESETS: dict[str, Callable[[], SynthParams]] = {
    "claude-code-session": claude_code_session,
    "claude-code-fleet": claude_code_fleet,
    "chat": chat,
    "tool-agent": tool_agent,
}


def preset(name: str) -> SynthParams:
    """The parameter set of preset ``name`` (NotFoundError names the known ones)."""
    if name not in PRESETS:
        raise NotFoundError(f"unknown synth preset '{name}' (known: {', '.join(PRESETS)})")
    return PRESETS[name]()
