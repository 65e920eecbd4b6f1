"""`codesign trace ...`: statistics, conversion, synthesis, comparison and cache hit ratios."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from codesign.cli.common import (
    JSON_OPTION,
    console,
    err_console,
    print_json,
    print_table,
    user_errors,
)
from codesign.errors import SpecError
from codesign.workload import Trace, load_trace, trace_stats
from codesign.workload.io import save_trace

trace_app = typer.Typer(
    help="Agent traces: statistics, conversion, synthetic sessions, comparison, KV-cache hits.",
    no_args_is_help=True,
)

FORMAT_HELP = "Input format (claude-code, mooncake, azure, native, parquet); sniffed when omitted."


@contextmanager
def _progress(label: str, quiet: bool) -> Iterator[Callable[[int, int], None] | None]:
    """A rich progress bar on stderr (files imported); silent for --json or tiny inputs."""
    if quiet:
        yield None
        return
    bar = Progress(
        TextColumn(label),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
    )
    task = None

    def update(done: int, total: int) -> None:
        nonlocal task
        if task is None:
            task = bar.add_task(label, total=total)
        bar.update(task, completed=done)

    with bar:
        yield update


def read_trace(path: Path, fmt: str | None, quiet: bool = False) -> Trace:
    with _progress(f"importing {path.name}", quiet) as cb:
        return load_trace(path, fmt, cb)


def _fmt_pct(block: dict[str, Any], keys: tuple[str, ...] = ("p10", "p50", "p90", "p99")) -> list:
    return [block.get(k) for k in keys]


def show_stats(s: dict[str, Any]) -> None:
    t = s["trace"]
    print_table(
        f"trace {t['name']} ({t['format']})",
        ["figure", "value"],
        [
            ["sessions", t["sessions"]],
            ["agents", t["agents"]],
            ["requests", t["requests"]],
            ["main-agent requests", t["main_agent_requests"]],
            ["sub-agent requests", t["sub_agent_requests"]],
            ["input tokens", t["input_tokens_total"]],
            ["output tokens", t["output_tokens_total"]],
            ["ideal prefix-hit ratio", s["prefix"]["ideal_hit_ratio"]],
            ["arrival rate mean /s", s["arrival_rate"]["mean_per_s"]],
            ["arrival rate peak /s", s["arrival_rate"]["peak_per_s"]],
        ],
    )
    rows = []
    for group, block in [("main agent", s["main_agent"]), ("sub-agent", s["sub_agent"])] + [
        (f"tier {k}", v) for k, v in s["tiers"].items()
    ]:
        if block["requests"]:
            rows.append(
                [
                    group,
                    "input",
                    block["requests"],
                    *_fmt_pct(block["input_tokens"]),
                    block["input_tokens"]["max"],
                ]
            )
            rows.append(
                [
                    group,
                    "output",
                    block["requests"],
                    *_fmt_pct(block["output_tokens"]),
                    block["output_tokens"]["max"],
                ]
            )
    print_table(
        "tokens per request",
        ["group", "tokens", "requests", "p10", "p50", "p90", "p99", "max"],
        rows,
    )
    rows = [[k, v["count"], *_fmt_pct(v)] for k, v in s["gaps_s"].items()]
    rows.append(["server time", s["server_s"]["count"], *_fmt_pct(s["server_s"])])
    print_table("gaps and server time (s)", ["kind", "count", "p10", "p50", "p90", "p99"], rows)
    se, c, sa = s["sessions"], s["compaction"], s["sub_agents"]
    print_table(
        "sessions, compaction, sub-agents",
        ["figure", "value"],
        [
            [
                "main turns p50 / p90 / max",
                f"{se['main_turns']['p50']:.0f} / "
                f"{se['main_turns']['p90']:.0f} / {se['main_turns']['max']:.0f}"
                if se["main_turns"]["count"]
                else "-",
            ],
            ["duration p50 (min)", se["duration_min"]["p50"]],
            [
                "tool / system prefix p50",
                f"{se['tool_tokens']['p50']} / {se['system_tokens']['p50']}",
            ],
            ["compactions (sessions)", f"{c['events']} ({c['sessions']})"],
            ["before p50 / p90", f"{c['before_tokens']['p50']} / {c['before_tokens']['p90']}"],
            ["after p50", c["after_tokens"]["p50"]],
            ["first after main turn p50", c["first_after_main_turn"]["p50"]],
            ["sub-agents (sessions)", f"{sa['agents']} ({sa['sessions']})"],
            ["sub-agent kinds", ", ".join(f"{k} {v}" for k, v in sa["by_kind"].items())],
            ["sub-agent calls (small tier)", f"{sa['requests']} ({sa['small_tier_requests']})"],
            [
                "max concurrent sub-agents (recorded durations only)",
                f"{sa['max_concurrent']} ({sa['max_concurrent_recorded_duration']})",
            ],
            [
                "sub-agent first / last input p50",
                f"{sa['first_input_tokens']['p50']} / {sa['last_input_tokens']['p50']}",
            ],
            [
                "per-session hit ratio p10/p50/p90",
                " / ".join(
                    f"{v:.3f}" if v is not None else "-"
                    for v in _fmt_pct(s["prefix"]["per_session_hit_ratio"], ("p10", "p50", "p90"))
                ),
            ],
        ],
    )


@trace_app.command("stats")
@user_errors
def stats_cmd(
    path: Path = typer.Argument(..., help="Trace file or folder of trace files."),
    fmt: str | None = typer.Option(None, "--format", "-f", help=FORMAT_HELP),
    as_json: bool = JSON_OPTION,
) -> None:
    """Sessions, requests, token percentiles per role and tier, gaps, compaction, sub-agents,
    ideal prefix-hit ratio and arrival rate of a trace."""
    trace = read_trace(path, fmt, quiet=as_json)
    s = trace_stats(trace)
    if as_json:
        print_json(s)
    else:
        show_stats(s)


@trace_app.command("convert")
@user_errors
def convert_cmd(
    src: Path = typer.Argument(..., help="Input trace file or folder."),
    dst: Path = typer.Argument(..., help="Output: *.jsonl, *.jsonl.gz (native) or *.parquet."),
    fmt: str | None = typer.Option(None, "--from", "-f", help=FORMAT_HELP),
    as_json: bool = JSON_OPTION,
) -> None:
    """Convert a trace to the native format (lossless JSONL or Parquet, by the file name)."""
    trace = read_trace(src, fmt, quiet=as_json)
    out = save_trace(trace, dst)
    info = {
        "out": str(out),
        "sessions": trace.n_sessions,
        "requests": trace.n_requests,
        "blocks": int(trace.hash_ids.size),
    }
    if as_json:
        print_json(info)
    else:
        console.print(f"wrote {out}: {trace.n_sessions:,} sessions, {trace.n_requests:,} requests")


def _parse_capacities(values: list[str]) -> np.ndarray:
    out = []
    for v in values:
        for part in v.split(","):
            part = part.strip().lower()
            if not part:
                continue
            mult = 1
            if part[-1] in "km":
                mult = 1_000 if part[-1] == "k" else 1_000_000
                part = part[:-1]
            try:
                out.append(float(part) * mult)
            except ValueError:
                raise SpecError(f"--capacity-tokens: not a number: {v!r}") from None
    if not out or min(out) < 0:
        raise SpecError("--capacity-tokens: give one or more non-negative token counts")
    return np.array(out)


def _sample_sessions(trace: Trace, max_sessions: int, seed: int) -> Trace:
    if max_sessions <= 0 or trace.n_sessions <= max_sessions:
        return trace
    pick = np.random.default_rng(seed).choice(trace.n_sessions, max_sessions, replace=False)
    return trace.select_sessions(np.sort(pick))


@trace_app.command("cache")
@user_errors
def cache_cmd(
    path: Path = typer.Argument(..., help="Trace file or folder (needs block hashes)."),
    capacity_tokens: list[str] = typer.Option(
        ...,
        "--capacity-tokens",
        "-c",
        help="Tier capacities in tokens, fastest first (HBM,host,storage); e.g. 2M,16M,128M.",
    ),
    sessions_per_cache: int = typer.Option(
        1, "--sessions-per-cache", "-n", min=1, help="Concurrent sessions sharing the cache."
    ),
    mode: str = typer.Option("exclusive", help="Tiering: exclusive (victim chain) or inclusive."),
    model_tier: str | None = typer.Option(
        None, "--model-tier", help="Only this model tier's requests (main, small); default all."
    ),
    pin_ttl_s: float | None = typer.Option(
        None,
        "--pin-ttl-s",
        help="Simulation only: pin a session's blocks for this long after a response.",
    ),
    sim_sessions: int = typer.Option(
        60,
        "--sim-sessions",
        help="Simulate a seeded sample of "
        "this many sessions (0 = all; the simulation is exact "
        "but slow: ~2 M blocks/s).",
    ),
    curve: bool = typer.Option(
        False,
        "--curve",
        help="Also print the hit ratio vs total capacity from both methods (single tier).",
    ),
    seed: int = typer.Option(0, help="Seed for session sampling and interleaving."),
    fmt: str | None = typer.Option(None, "--format", "-f", help=FORMAT_HELP),
    as_json: bool = JSON_OPTION,
) -> None:
    """Prefix-cache hit ratio per tier: exact block LRU simulation vs the analytic model."""
    from codesign.kvcache import hit_curve, replay_schedule, simulate

    caps = _parse_capacities(capacity_tokens)
    if mode not in ("exclusive", "inclusive"):
        raise SpecError(f"--mode: {mode!r} is not exclusive or inclusive")
    trace = read_trace(path, fmt, quiet=as_json)
    full_curve = hit_curve(trace, model_tier, seed)
    sample = _sample_sessions(trace, sim_sessions, seed)
    sample_curve = (
        full_curve
        if sample is trace
        else hit_curve(sample, model_tier, seed, sessions_grid=[sessions_per_cache])
    )
    mask = None if model_tier is None else sample.tier == sample.tier_code(model_tier)
    replay = replay_schedule(sample, sessions_per_cache, seed, mask)
    sim = simulate(
        sample,
        list(caps),
        sessions_per_cache,
        mode=mode,  # type: ignore[arg-type]
        pin_ttl_s=pin_ttl_s,
        tier=model_tier,
        replay=replay,
    )
    ana = sample_curve.tier_hit_ratios(caps, sessions_per_cache, mode)  # type: ignore[arg-type]
    ana_full = full_curve.tier_hit_ratios(caps, sessions_per_cache, mode)  # type: ignore[arg-type]
    names = ["hbm", "host", "storage"][: caps.size] + [f"tier{k}" for k in range(3, caps.size)]
    out: dict[str, Any] = {
        "sessions": trace.n_sessions,
        "simulated_sessions": sample.n_sessions,
        "sessions_per_cache": sessions_per_cache,
        "mode": mode,
        "pin_ttl_s": pin_ttl_s,
        "model_tier": model_tier or "all",
        "ideal_hit_ratio": full_curve.ideal_hit_ratio,
        "tiers": [
            {
                "tier": names[k],
                "capacity_tokens": float(caps[k]),
                "simulated": float(sim.hit_ratio_per_tier[k]),
                "analytic_same_sample": float(ana[k]),
                "analytic_full_trace": float(ana_full[k]),
            }
            for k in range(caps.size)
        ],
        "total": {
            "simulated": sim.hit_ratio,
            "analytic_same_sample": float(ana.sum()),
            "analytic_full_trace": float(ana_full.sum()),
        },
    }
    if curve:
        total = float(sample.hash_ids.size * sample.meta.block_size_tokens)
        points = []
        for cap in np.r_[0.0, np.geomspace(total * 1e-5 * sessions_per_cache, total * 2, 10)]:
            s = simulate(sample, [cap], sessions_per_cache, tier=model_tier, replay=replay)
            a = float(sample_curve.hit_ratio(cap, sessions_per_cache))
            points.append({"capacity_tokens": cap, "simulated": s.hit_ratio, "analytic": a})
        out["curve"] = points
        out["curve_max_abs_error_pp"] = 100 * max(
            abs(p["simulated"] - p["analytic"]) for p in points
        )
    if as_json:
        print_json(out)
        return
    print_table(
        f"prefix-cache hit ratio, {sessions_per_cache} sessions per cache ({mode}); "
        f"simulated on {sample.n_sessions} of {trace.n_sessions} sessions",
        ["tier", "capacity tokens", "simulated", "analytic (same sample)", "analytic (full)"],
        [
            [
                t["tier"],
                t["capacity_tokens"],
                t["simulated"],
                t["analytic_same_sample"],
                t["analytic_full_trace"],
            ]
            for t in out["tiers"]
        ]
        + [
            [
                "total",
                float(caps.sum()),
                out["total"]["simulated"],
                out["total"]["analytic_same_sample"],
                out["total"]["analytic_full_trace"],
            ]
        ],
    )
    if curve:
        print_table(
            "hit ratio vs capacity",
            ["capacity tokens", "simulated", "analytic"],
            [[p["capacity_tokens"], p["simulated"], p["analytic"]] for p in points],
        )
        console.print(f"max |analytic - simulated| = {out['curve_max_abs_error_pp']:.2f} pp")
