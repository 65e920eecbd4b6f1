"""A finished search as files: ``pareto.csv``, ``pareto.json``, ``pareto.png`` and the
recommended deployment (``recommended.yaml``).

Recommendation rule: every Pareto point already satisfies the job's constraints; among
them take the best value of the first objective, ties (within 0.1 %) broken by the lower
``usd_per_mtok_output``, then by fewer chips.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from search.driver import SearchResult

TIE_REL = 1e-3


def recommend(result: SearchResult) -> int | None:
    """Index into ``result.front`` of the recommended point (None: empty front)."""
    if not result.front:
        return None
    o = result.spec.objectives[0]
    sign = -1.0 if o.direction == "max" else 1.0
    best = min(sign * p.metrics[o.metric] for p in result.front)
    tol = abs(best) * TIE_REL
    tied = [i for i, p in enumerate(result.front) if sign * p.metrics[o.metric] <= best + tol]
    return min(
        tied,
        key=lambda i: (
            result.front[i].metrics["usd_per_mtok_output"],
            result.front[i].metrics["chips"],
        ),
    )


def error_bands(result: SearchResult) -> list[dict[str, Any] | None]:
    """Each front point's error band (``codesign.perf.deployment_band``): the packaged
    calibration's measured / predicted spread for its mode and engine around its latency
    metrics; None where the calibration has none (afd)."""
    from codesign.perf.calibration import load_calibration
    from codesign.perf.deployment_band import deployment_error_band

    calib = load_calibration()
    fixed = result.spec.workload.fixed is not None
    return [deployment_error_band(p.deployment, p.metrics, calib, fixed) for p in result.front]


def summary(result: SearchResult) -> dict[str, Any]:
    """JSON-ready description of the result (what ``pareto.json`` holds)."""
    rec = recommend(result)
    bands = error_bands(result)
    return {
        "name": result.spec.name,
        "objectives": [str(o) for o in result.spec.objectives],
        "constraints": {
            k: v.model_dump(exclude_none=True) for k, v in result.spec.constraints.items()
        },
        "reference_point": result.reference,
        "hypervolume": result.hypervolume,
        "evaluations": result.evaluations,
        "feasible": result.feasible,
        "space_size": result.space_size,
        "elapsed_s": result.elapsed_s,
        "stopped": result.stopped,
        "warnings": result.warnings,
        "resumed_batches": result.resumed_batches,
        "verification": result.verification,
        "recommended": rec,
        "recommendation_rule": "best first objective among the Pareto points (all satisfy "
        "the constraints); ties within 0.1% by lower usd_per_mtok_output, then fewer chips",
        "hypervolume_history": [
            {"evaluations": h.evaluations, "hypervolume": h.hypervolume} for h in result.history
        ],
        "pareto": [
            {
                "params": p.params,
                "metrics": p.metrics,
                "hv_contribution": p.hv_contribution,
                "metrics_simulated": p.metrics_simulated,
                "pareto_simulated": p.pareto_simulated,
                "deployment": p.deployment.model_dump(mode="json", exclude_defaults=True),
                "error_band": band,
            }
            for p, band in zip(result.front, bands, strict=True)
        ],
    }


def write_csv(result: SearchResult, path: Path) -> None:
    from codesign.evaluate import METRICS

    keys = sorted({k for p in result.front for k in p.params})
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        sim = [f"sim_{m}" for m in METRICS]  # simulated values (verify_top; else empty)
        w.writerow(["rank", *keys, *METRICS, "hv_contribution", "pareto_simulated", *sim])
        for i, p in enumerate(result.front):
            ms = p.metrics_simulated or {}
            w.writerow(
                [i, *(p.params.get(k, "") for k in keys)]
                + [f"{p.metrics[m]:.6g}" for m in METRICS]
                + [
                    f"{p.hv_contribution:.6g}",
                    "" if p.pareto_simulated is None else p.pareto_simulated,
                ]
                + [f"{ms[m]:.6g}" if m in ms else "" for m in METRICS]
            )


def write_outputs(
    result: SearchResult, out: str | Path, data: dict[str, Any] | None = None
) -> dict[str, Path]:
    """Write the result files into ``out``; returns name -> path. ``data``: the result's
    ``summary``, where the caller has it already (it reads the calibration for the error
    bands)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    files = {"pareto.csv": out / "pareto.csv", "pareto.json": out / "pareto.json"}
    write_csv(result, files["pareto.csv"])
    data = summary(result) if data is None else data
    files["pareto.json"].write_text(json.dumps(_finite(data), indent=2))
    if result.front:
        from codesign.plots.pareto import write_png  # pairwise panels of the objectives

        files["pareto.png"] = out / "pareto.png"
        write_png(data, files["pareto.png"])
        rec = data["recommended"]
        files["recommended.yaml"] = out / "recommended.yaml"
        files["recommended.yaml"].write_text(result.front[rec].deployment.to_yaml())  # type: ignore[index]
    return files


def _finite(data: Any) -> Any:
    if isinstance(data, float):
        return data if data == data and abs(data) != float("inf") else None
    if isinstance(data, dict):
        return {k: _finite(v) for k, v in data.items()}
    if isinstance(data, list | tuple):
        return [_finite(v) for v in data]
    return data
