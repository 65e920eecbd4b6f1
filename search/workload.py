"""The job's workload: its trace and the agent load the analytic evaluator uses."""

from __future__ import annotations

from typing import Any

from codesign.workload.agent_load import AgentLoad
from search.spec import FixedWorkload, JobSpec

# sessions in a fixed-length trace: all requests are alike, so more adds nothing but time
FIXED_TRACE_SESSIONS = 256


def fixed_trace(fixed: FixedWorkload, sessions: int = FIXED_TRACE_SESSIONS) -> Any:
    """A fixed-length benchmark trace: ``sessions`` sessions of one request each of
    ``isl`` input and ``osl`` output tokens, no prefix hashes (no cache reuse), no client
    gaps. Under ``concurrent_sessions: C`` the evaluator then serves it as a closed-loop
    benchmark at fixed concurrency C (the next request is sent as one finishes), the
    question aiconfigurator and genai-perf answer."""
    import numpy as np

    from codesign.workload.builder import TraceBuilder
    from codesign.workload.schema import STOP_END_TURN, TraceMeta

    meta = TraceMeta(
        name=f"fixed-isl{fixed.isl}-osl{fixed.osl}",
        source_format="fixed",
        description=f"fixed-length requests: {fixed.isl} in / {fixed.osl} out, no reuse",
    )
    b = TraceBuilder(meta)
    n = max(int(sessions), 1)
    for i in range(n):
        b.add_agent(b.add_session(f"s{i}"))
    b.add_requests(
        np.arange(n),
        arrival_s=np.zeros(n),
        input_tokens=np.full(n, fixed.isl),
        output_tokens=np.full(n, fixed.osl),
        stop=np.full(n, STOP_END_TURN),
        shared_prefix_tokens=np.zeros(n, dtype=np.int64),
    )
    return b.build()


def build_trace(spec: JobSpec) -> Any:
    """The job's trace (synthetic preset, trace file or fixed-length requests); each
    branch imports only what it needs (the generator pulls in scipy)."""
    w = spec.workload
    if w.fixed is not None:
        return fixed_trace(w.fixed, min(round(w.concurrent_sessions), FIXED_TRACE_SESSIONS))
    if w.synth is not None:
        from codesign.workload.synth import generate, preset

        params = preset(w.synth.preset).model_copy(
            update={"sessions": w.synth.sessions, "seed": w.synth.seed}
        )
        return generate(params)
    from codesign.workload import load_trace

    return load_trace(w.trace, w.format)  # type: ignore[arg-type]


def build_load(spec: JobSpec, trace: Any = None) -> AgentLoad:
    """The agent load of the job's workload (synthetic preset, trace file or fixed): tiers
    merged into one, or "main" and "small" kept apart when the job has sub-agent pools
    (``subagent_model``: the small tier is served there)."""
    from codesign.workload.agent_load import agent_load, session_gaps
    from codesign.workload.summary import summarize

    trace = trace if trace is not None else build_trace(spec)
    merge = spec.subagent_model is None
    rr = "round_robin" in spec.space.routers  # its hit-curve streams double the build
    return agent_load(summarize(trace), session_gaps(trace), merge_tiers=merge, round_robin=rr)


def job_warnings(spec: JobSpec, load: AgentLoad) -> list[str]:
    """What the search cannot honour in the job as given (reported, not fatal)."""
    out = []
    if len(spec.space.kv_tiers.retention) > 1:
        out.append(
            "kv_tiers.retention: the analytic evaluator does not distinguish retention "
            f"policies; searched with {spec.space.kv_tiers.retention[0]} only"
        )
    if spec.subagent_model is not None and "small" not in load.tiers:
        out.append(
            "subagent_model: the workload has no sub-agent (small-tier) requests; the "
            "sub-agent pools serve nothing and only add chips and cost"
        )
    return out


__all__ = ["build_load", "build_trace", "fixed_trace", "job_warnings"]
