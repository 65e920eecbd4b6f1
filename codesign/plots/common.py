"""Shared plotting plumbing: the Agg backend, readable log axes, saving, metric labels."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from codesign.errors import CodesignError

DPI = 120

# metric -> (axis label, log axis by default)
METRIC_LABELS: dict[str, str] = {
    "tokens_per_s_per_user": "interactivity (tokens/s per user)",
    "tokens_per_s_per_gpu": "throughput (tokens/s per GPU)",
    "output_tokens_per_s": "output tokens/s (fleet)",
    "input_tokens_per_s": "input tokens/s (fleet)",
    "usd_per_mtok_output": "cost ($ per M output tokens)",
    "usd_per_mtok_input_uncached": "$ per M uncached input tokens",
    "usd_per_mtok_input_cached": "$ per M cached input tokens",
    "usd_per_session": "$ per session",
    "usd_per_hour": "$ per hour",
    "ttft_p50_s": "TTFT p50 (s)",
    "ttft_p90_s": "TTFT p90 (s)",
    "ttft_p99_s": "TTFT p99 (s)",
    "tpot_p50_ms": "TPOT p50 (ms)",
    "tpot_p90_ms": "TPOT p90 (ms)",
    "session_time_p50_s": "session time p50 (s)",
    "subagent_ttft_p50_s": "sub-agent TTFT p50 (s)",
    "subagent_tpot_p50_ms": "sub-agent TPOT p50 (ms)",
    "sessions_per_hour": "sessions per hour",
    "cache_hit_ratio": "prefix-cache hit ratio",
    "chips": "chips",
    "power_kw": "power (kW)",
    "joules_per_output_token": "J per output token",
    "response_delay_s": "response delay beyond the trace's (s)",
    "kv_tokens_per_worker": "KV tokens per worker (decode / agg)",
    "prefill_kv_tokens_per_worker": "prefix-cache KV tokens per worker",
    "utilization": "utilization",
}


class PlotInputError(CodesignError):
    """Input a plot cannot be drawn from (missing file, malformed content)."""


def pyplot() -> Any:
    """matplotlib.pyplot on the non-interactive Agg backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def metric_label(metric: str) -> str:
    return METRIC_LABELS.get(metric, metric)


def wants_log(values: list[float]) -> bool:
    """Log axis when all values are positive and span more than a factor of 20."""
    vals = [v for v in values if v is not None and math.isfinite(v)]
    return bool(vals) and min(vals) > 0 and max(vals) / min(vals) > 20


def plain_log_ticks(axis: Any) -> None:
    """Log-axis tick labels as plain numbers (1k, 20, 0.5) instead of 10^x."""
    from matplotlib.ticker import FuncFormatter, LogLocator

    axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    axis.set_minor_formatter(FuncFormatter(lambda v, _: ""))
    axis.set_major_formatter(FuncFormatter(lambda v, _: short_num(v)))


def short_num(v: float) -> str:
    """1234 -> 1.2k, 2e6 -> 2M, 0.05 -> 0.05."""
    a = abs(v)
    for div, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if a >= div:
            return f"{v / div:.3g}{suffix}"
    return f"{v:.3g}"


def save_png(fig: Any, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI)
    pyplot().close(fig)
    return path


def save_html(fig: Any, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.write_html(str(path), include_plotlyjs=True, full_html=True)
    return path
