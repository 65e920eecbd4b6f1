"""The job's workload: its trace and the agent load the analytic evaluator uses."""

from __future__ import annotations

from typing import Any

from codesign.workload.agent_load import AgentLoad
from search.spec import JobSpec


def build_trace(spec: JobSpec) -> Any:
    """The job's trace (synthetic preset or trace file)."""
    from codesign.workload import load_trace
    from codesign.workload.synth import generate, preset

    w = spec.workload
    if w.synth is not None:
        params = preset(w.synth.preset).model_copy(
            update={"sessions": w.synth.sessions, "seed": w.synth.seed}
        )
        return generate(params)
    return load_trace(w.trace, w.format)  # type: ignore[arg-type]


def build_load(spec: JobSpec, trace: Any = None) -> AgentLoad:
    """The agent load of the job's workload (synthetic preset or trace file)."""
    from codesign.workload.agent_load import agent_load, session_gaps
    from codesign.workload.summary import summarize

    trace = trace if trace is not None else build_trace(spec)
    return agent_load(summarize(trace), session_gaps(trace), merge_tiers=True)


__all__ = ["build_load", "build_trace"]
