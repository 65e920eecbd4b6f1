"""The two fidelities agree on the bundled deployments (issue: within 15% on throughput and
TPOT): the simulator replays a 100-session synthetic fleet with 32 concurrent sessions and
the analytic evaluator serves the same trace's summary (``codesign simulate
--compare-analytic``). Measured (throughput / TPOT): agg +2% / -2%, disagg with sub-agent
pools +2% / +1%, eager agg +2% / -1%; +4% and +10% on TPOT before the analytic verify
step stopped reading the KV cache twice."""

from __future__ import annotations

from pathlib import Path

import pytest

from codesign.deployment import Deployment
from codesign.simulate import simulate
from codesign.simulate.compare import compare_analytic
from codesign.workload.synth import generate, preset

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"


@pytest.fixture(scope="module")
def fleet():
    return generate(preset("claude-code-fleet").with_overrides(sessions=100, seed=0))


@pytest.mark.parametrize(
    ("example", "cuda_graphs"),
    [
        ("deployment-r1-gb200-agg.yaml", True),
        ("deployment-r1-disagg-subagents.yaml", True),
        # eager launches: TPOT ~3x (host-bound steps)
        ("deployment-r1-gb200-agg.yaml", False),
    ],
)
def test_simulation_and_analytic_agree(fleet, example: str, cuda_graphs: bool) -> None:
    dep = Deployment.from_file(EXAMPLES / example).model_copy(update={"cuda_graphs": cuda_graphs})
    res = simulate(dep, fleet, 32, seed=0)
    report = compare_analytic(res, dep, fleet, 32)
    assert report["analytic_feasible"], report["analytic_reason"]
    rel = {r["metric"]: r["rel_diff"] for r in report["rows"]}
    assert abs(rel["output_tokens_per_s"]) <= 0.15, rel
    assert abs(rel["tpot_p50_ms"]) <= 0.15, rel
    assert abs(rel["cache_hit_ratio"]) <= 0.03, rel
    # one memory rule: both hold the same KV capacity in each pool
    assert rel["kv_tokens_per_worker"] == rel["prefill_kv_tokens_per_worker"] == 0.0, rel
