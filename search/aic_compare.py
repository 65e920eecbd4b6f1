"""Side by side with NVIDIA aiconfigurator: the same fixed-length question, both fronts.

aiconfigurator is not a dependency: its output folder is read (``agg/pareto.csv`` and
``disagg/pareto.csv`` under the ``--save-dir`` of ``aiconfigurator cli default``), and it
is only run (``run_aiconfigurator``) from a separate virtual environment when one is given.
codesign answers the question by sweeping the job's fixed-length workload over
concurrencies (aiconfigurator sweeps the batch size per replica the same way): one
search per concurrency on one shared load; the merged front is tokens/s/user vs
tokens/s/gpu over all (configuration, concurrency) points that meet the constraints.
"""

from __future__ import annotations

import csv
import subprocess
import time
from pathlib import Path
from typing import Any

from codesign.errors import SpecError
from search.spec import JobSpec

X, Y = "tokens_per_s_per_user", "tokens_per_s_per_gpu"
CONCURRENCIES = (1, 2, 4, 8, 12, 16, 24, 32, 48, 64, 80, 96, 128, 160, 192, 256, 320, 384, 512)
AIC_COLUMNS = {"tokens/s/user": X, "tokens/s/gpu": Y, "ttft": "ttft_ms", "tpot": "tpot_ms"}


def pareto_2d(points: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The points not dominated in (X, Y), both maximised; sorted by X ascending."""
    pts = sorted(points, key=lambda p: (-p[X], -p[Y]))
    front, best_y = [], float("-inf")
    for p in pts:
        if p[Y] > best_y:
            front.append(p)
            best_y = p[Y]
    return front[::-1]


def read_aic_front(
    path: str | Path, ttft_ms: float | None = None, tpot_ms: float | None = None
) -> list[dict[str, Any]]:
    """aiconfigurator's Pareto rows (agg and disagg) under ``path`` (its --save-dir, a
    result folder, or one pareto.csv), as dicts with X, Y, ttft_ms, tpot_ms, mode,
    concurrency and config; rows over the given SLA are dropped."""
    p = Path(path)
    files = [p] if p.is_file() else sorted(p.rglob("pareto.csv"))
    if not files:
        raise SpecError(f"{p}: no aiconfigurator pareto.csv found (agg/ or disagg/ folders)")
    rows: list[dict[str, Any]] = []
    for f in files:
        mode = f.parent.name if f.parent.name in ("agg", "disagg") else "agg"
        with f.open(newline="") as fh:
            for r in csv.DictReader(fh):
                missing = [c for c in AIC_COLUMNS if c not in r]
                if missing:
                    raise SpecError(f"{f}: not an aiconfigurator pareto.csv (no {missing})")
                d: dict[str, Any] = {v: float(r[k]) for k, v in AIC_COLUMNS.items()}
                if ttft_ms is not None and d["ttft_ms"] > ttft_ms:
                    continue
                if tpot_ms is not None and d["tpot_ms"] > tpot_ms:
                    continue
                cfg = r.get("parallel") or f"p:{r.get('(p)parallel')}x{r.get('(p)workers')} " + (
                    f"d:{r.get('(d)parallel')}x{r.get('(d)workers')}"
                )
                d.update(mode=mode, concurrency=float(r.get("concurrency") or 0), config=cfg)
                rows.append(d)
    return rows


def run_aiconfigurator(
    venv: str | Path, save_dir: str | Path, args: list[str], timeout_s: float = 900
) -> float:
    """Run ``aiconfigurator cli default ARGS --save-dir SAVE_DIR`` from ``venv``; its wall s."""
    exe = Path(venv) / "bin" / "aiconfigurator"
    if not exe.is_file():
        raise SpecError(f"{exe}: aiconfigurator is not installed in that venv")
    cmd = [str(exe), "cli", "default", *args, "--save-dir", str(save_dir)]
    t0 = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, check=False)
    dt = time.perf_counter() - t0
    if r.returncode != 0:
        raise SpecError(f"aiconfigurator failed ({r.returncode}): {r.stderr[-2000:]}")
    return dt


def aic_args(spec: JobSpec) -> list[str]:
    """aiconfigurator's arguments for the job's question (fixed workload, SLA, chips)."""
    w, c = spec.workload.fixed, spec.constraints
    if w is None:
        raise SpecError("workload.fixed: the aiconfigurator comparison needs a fixed workload")
    args = ["--model-path", spec.model, "--system", spec.space.systems[0]]
    args += ["--isl", str(w.isl), "--osl", str(w.osl)]
    if "chips" in c and c["chips"].max is not None:
        args += ["--total-gpus", str(int(c["chips"].max))]
    ttft = c.get("ttft_p90_s") or c.get("ttft_p50_s")
    if ttft is not None and ttft.max is not None:
        args += ["--ttft", f"{ttft.max * 1000:g}"]
    tpot = c.get("tpot_p50_ms") or c.get("tpot_p90_ms")
    if tpot is not None and tpot.max is not None:
        args += ["--tpot", f"{tpot.max:g}"]
    return args


def _point(metrics: dict[str, float], dep: Any, concurrency: float) -> dict[str, Any]:
    cfg = " + ".join(f"{q.role[0]}:tp{q.parallel.tp}x{q.workers}" for q in dep.pools)
    return {
        X: metrics[X],
        Y: metrics[Y],
        "ttft_ms": metrics["ttft_p90_s"] * 1000,
        "tpot_ms": metrics["tpot_p50_ms"],
        "mode": dep.mode,
        "concurrency": float(concurrency),
        "config": cfg,
    }


def _sweep_batched(search: Any, load: Any, concurrencies: tuple[float, ...]) -> tuple:
    """Every configuration at every concurrency in one vectorised evaluation (an
    exhaustive job on a knob-free space; ``search`` is a `Search` of it, used for its space,
    decoder and objectives): the per-concurrency fronts, as the loop of searches finds
    them, without a search per concurrency."""
    import numpy as np

    from codesign.evaluate import METRICS, evaluate_arrays
    from search.pareto import nondominated

    t0 = time.perf_counter()
    pts = search.space.enumerate()
    dec = search.decoder.candidates(pts)
    n, k = len(dec.main), len(concurrencies)
    idx = np.tile(np.arange(n), k)
    sessions = np.repeat(np.asarray(concurrencies, dtype=np.float64), n)
    sub = dec.sub.subset(idx) if dec.sub is not None else None
    res = evaluate_arrays(dec.main.subset(idx), load, sessions, search.calib, sub=sub)
    bad = np.tile(dec.invalid != "", k)
    ok = search.obj.ok(res) & ~bad
    f = search.obj.matrix(res)
    points = []
    for j, c in enumerate(concurrencies):
        rows = np.flatnonzero(ok[j * n : (j + 1) * n]) + j * n
        for r in rows[nondominated(f[rows])]:
            metrics = {m: float(res[m][r]) for m in METRICS}
            points.append(_point(metrics, search.decoder.deployment(pts, int(r % n)), c))
    return points, n * k, time.perf_counter() - t0


def codesign_sweep(
    spec: JobSpec, concurrencies: tuple[float, ...] = CONCURRENCIES
) -> dict[str, Any]:
    """One search per concurrency on one shared load (one vectorised evaluation of all
    of them for an exhaustive job); the merged front and the times."""
    from search.driver import Search
    from search.workload import build_load

    t0 = time.perf_counter()
    load = build_load(spec)
    search_s, points, evaluations = 0.0, [], 0
    probe = Search(spec, load=load)
    if spec.strategy.sampler == "exhaustive" and not probe.space.has_knobs:
        points, evaluations, search_s = _sweep_batched(probe, load, concurrencies)
        concurrencies = ()
    for c in concurrencies:
        w = spec.workload.model_copy(update={"concurrent_sessions": float(c)})
        res = Search(spec.model_copy(update={"workload": w}), load=load).run()
        search_s += res.elapsed_s
        evaluations += res.evaluations
        points += [_point(p.metrics, p.deployment, c) for p in res.front]
    return {
        "front": pareto_2d(points),
        "points": points,
        "evaluations": evaluations,
        "search_s": search_s,
        "wall_s": time.perf_counter() - t0,
    }


def plot_fronts(
    aic: list[dict[str, Any]], ours: list[dict[str, Any]], path: str | Path, title: str = ""
) -> Path:
    """Both fronts (tokens/s/user vs tokens/s/gpu) on one PNG; agg/disagg marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5.5))
    for name, pts, color in (("aiconfigurator", aic, "tab:green"), ("codesign", ours, "tab:blue")):
        front = pareto_2d(pts)
        ax.plot([p[X] for p in front], [p[Y] for p in front], "-", color=color, lw=1.5,
                label=f"{name} front ({len(front)})")  # fmt: skip
        for mode, marker in (("agg", "o"), ("disagg", "^")):
            sel = [p for p in pts if p["mode"] == mode]
            ax.scatter([p[X] for p in sel], [p[Y] for p in sel], marker=marker, s=22,
                       color=color, alpha=0.45, label=f"{name} {mode} ({len(sel)})")  # fmt: skip
    ax.set_xlabel("tokens/s/user")
    ax.set_ylabel("tokens/s/gpu")
    ax.set_title(title or "aiconfigurator vs codesign")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out


def compare_fronts(
    spec: JobSpec | str | Path,
    aic_dir: str | Path,
    out: str | Path = "aiconfigurator-compare",
    concurrencies: tuple[float, ...] = CONCURRENCIES,
    aic_venv: str | Path | None = None,
    aic_wall_s: float | None = None,
) -> dict[str, Any]:
    """Time codesign on the job's question, read (or, given ``aic_venv``, first run and
    time) aiconfigurator's answer in ``aic_dir``, plot both fronts into OUT/fronts.png."""
    job = spec if isinstance(spec, JobSpec) else JobSpec.from_file(spec)
    if aic_venv is not None:
        aic_wall_s = run_aiconfigurator(aic_venv, aic_dir, aic_args(job))
    ours = codesign_sweep(job, concurrencies)
    c = job.constraints
    ttft = c.get("ttft_p90_s") or c.get("ttft_p50_s")
    tpot = c.get("tpot_p50_ms") or c.get("tpot_p90_ms")
    aic = read_aic_front(
        aic_dir,
        ttft.max * 1000 if ttft and ttft.max is not None else None,
        tpot.max if tpot else None,
    )
    w = job.workload.fixed
    title = f"{job.model} " + (f"ISL {w.isl} / OSL {w.osl}" if w else "")
    png = plot_fronts(aic, ours["points"], Path(out) / "fronts.png", title)
    result = {
        "aiconfigurator": {"wall_s": aic_wall_s, "points": len(aic), "front": pareto_2d(aic)},
        "codesign": {k: ours[k] for k in ("wall_s", "search_s", "evaluations", "front")},
        "concurrencies": list(concurrencies),
        "png": str(png),
    }
    if aic_wall_s:
        result["speedup_wall"] = aic_wall_s / ours["wall_s"]
        result["speedup_search"] = aic_wall_s / max(ours["search_s"], 1e-9)
    return result


__all__ = ["codesign_sweep", "compare_fronts", "plot_fronts", "read_aic_front"]
