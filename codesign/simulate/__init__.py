"""Discrete-event replay of agent traces on a deployment (the simulation fidelity).

``simulate(deployment, trace, sessions=N)`` replays the trace's sessions as N concurrent
closed-loop clients on the deployment's workers, with the same step-latency model as the
analytic evaluator (``codesign.evaluate``), and returns per-request records and the
evaluator's metrics. See ``engine`` (clients, router, loop), ``worker`` (continuous
batching), ``kvstore`` (prefix cache), ``plan`` (sub-agent spawn and join rules).
"""

from __future__ import annotations

from codesign.simulate import native

native.select_implementation()  # compiled or pure Python, before a hot module is imported

from codesign.deployment import Deployment  # noqa: E402
from codesign.simulate.engine import SimOptions, Simulator  # noqa: E402
from codesign.simulate.metrics import SimResult, aggregate, diagnostics, request_table  # noqa: E402
from codesign.workload.schema import Trace  # noqa: E402


def simulate(
    deployment: Deployment,
    trace: Trace,
    sessions: int = 64,
    *,
    total_sessions: int | None = None,
    seed: int = 0,
    options: SimOptions | None = None,
) -> SimResult:
    """Replay ``trace`` on ``deployment`` with ``sessions`` concurrent sessions."""
    opts = options or SimOptions(sessions=sessions, total_sessions=total_sessions, seed=seed)
    sim = Simulator(deployment, trace, opts)
    sim.run()
    reqs = request_table(sim)
    metrics, notes = aggregate(sim, reqs)
    return SimResult(
        reqs,
        metrics,
        (sim.window[0], sim.window[1]),
        sim.started,
        sim.seq,
        notes,
        diagnostics(sim, reqs),
    )


__all__ = ["SimOptions", "SimResult", "Simulator", "simulate"]
