"""The error band of a deployment evaluated on an agent workload (`codesign evaluate`,
``POST /v1/estimate``): the calibration's measured / predicted spread for the
deployment's serving mode and engine (``perf.error_bands``), turned into a low-high
range around each latency the evaluation reports.

The bands come from fixed-length, closed-loop benchmark rows. An agent workload differs
from them in ways the band cannot have seen (mixed prompt lengths, tool-call gaps,
prefix-cache hits, ...); the band is still the best guide to how far the physics can be
off, and ``unmeasured`` says what the rows lacked, so that nobody reads it as tighter
than it is.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from codesign.deployment import Deployment
from codesign.perf.calibration import Calibration

# Latency metrics of ``codesign.evaluate.METRICS`` and which ratio scales them.
TTFT_METRICS = ("ttft_p50_s", "ttft_p90_s", "ttft_p99_s")
TPOT_METRICS = ("tpot_p50_ms", "tpot_p90_ms")


def deployment_unmeasured(
    dep: Deployment, metrics: Mapping[str, float | None], fixed_lengths: bool
) -> list[str]:
    """What this deployment and workload have that the measured rows did not."""
    out = [] if fixed_lengths else ["agent sessions (mixed prompt lengths, tool-call gaps)"]
    hit = metrics.get("cache_hit_ratio")
    if hit is not None and math.isfinite(hit) and hit > 0:
        out.append("prefix-cache hits")
    if dep.spec_decoding.method != "none":
        out.append("speculative decoding on record")
    pools = list(dep.pools) + (list(dep.subagents.pools) if dep.subagents else [])
    if len({p.system for p in pools}) > 1:
        out.append("mixed systems")
    if any(p.hardware for p in pools):
        out.append("hardware overrides")
    if not dep.cuda_graphs:
        out.append("eager (no CUDA graph) steps")
    return out


def deployment_error_band(
    dep: Deployment,
    metrics: Mapping[str, float | None],
    calib: Calibration,
    fixed_lengths: bool = False,
) -> dict[str, Any] | None:
    """``{band, source, rows, ttft_ratio, tpot_ratio, ranges, unmeasured}``: ``ranges``
    maps each finite latency metric to ``[low, high]`` = the metric times the band's 10th
    and 90th percentile measured / predicted ratio. None where the calibration carries no
    band for the deployment's mode (attention-FFN disaggregation has no measured rows)."""
    bands = calib.error_bands
    found = bands.lookup(dep.mode, dep.engine) if bands is not None else None
    if found is None or bands is None:
        return None
    key, band = found
    ranges: dict[str, list[float]] = {}
    for names, ratio in ((TTFT_METRICS, band.ttft_ratio), (TPOT_METRICS, band.tpot_ratio)):
        for name in names:
            v = metrics.get(name)
            if v is not None and math.isfinite(v):
                ranges[name] = [v * ratio[0], v * ratio[2]]
    return {
        "band": key,
        "source": bands.source,
        "rows": band.rows,
        "ttft_ratio": list(band.ttft_ratio),
        "tpot_ratio": list(band.tpot_ratio),
        "ranges": ranges,
        "unmeasured": deployment_unmeasured(dep, metrics, fixed_lengths),
    }


def band_text(band: Mapping[str, Any]) -> str:
    """One line for a terminal: which band, each latency's range, what the rows lacked."""
    spans = ", ".join(f"{m} {lo:.4g}-{hi:.4g}" for m, (lo, hi) in band["ranges"].items())
    lacks = f"; the rows had no {', '.join(band['unmeasured'])}" if band["unmeasured"] else ""
    return (
        f"error band {band['band']} ({band['source']}, {band['rows']} measured rows): "
        f"{spans}{lacks}"
    )
