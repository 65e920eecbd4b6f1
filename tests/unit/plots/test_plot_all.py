"""Every plot renders from small inputs (PNG of sane size, HTML with the hover fields) and
the `codesign plot` commands fail on bad input with a one-line error."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest
from typer.testing import CliRunner

from codesign.cli.plot import plot_app
from codesign.plots import cache, hypervolume, pareto, pareto_html, trace
from codesign.plots.common import PlotInputError
from codesign.workload import load_trace, write_jsonl
from codesign.workload.synth import generate, preset


def _point(mode: str, user: float, gpu: float, usd: float, sim: bool = False) -> dict:
    p = {
        "params": {
            "mode": mode,
            "system": "gb200",
            "decode_system": "same",
            "gemm": "fp8",
            "kv": "fp8",
            "spec": "mtp3",
            "host": "none",
        },
        "metrics": {
            "tokens_per_s_per_user": user,
            "tokens_per_s_per_gpu": gpu,
            "usd_per_mtok_output": usd,
            "ttft_p90_s": 1.5,
            "chips": 72.0,
        },
        "hv_contribution": 0.001,
        "deployment": {
            "mode": mode,
            "pools": [
                {"role": "decode", "system": "gb200", "workers": 4, "parallel": {"tp": 8, "ep": 8}}
            ],
        },
    }
    if sim:
        p["simulated"] = {
            "tokens_per_s_per_user": user * 0.9,
            "tokens_per_s_per_gpu": gpu * 1.1,
            "usd_per_mtok_output": usd * 0.95,
        }
    return p


def _summary(n_obj: int = 3) -> dict:
    objs = ["max tokens_per_s_per_user", "max tokens_per_s_per_gpu", "min usd_per_mtok_output"]
    return {
        "name": "tiny",
        "objectives": objs[:n_obj],
        "constraints": {"tokens_per_s_per_user": {"min": 20.0}, "ttft_p90_s": {"max": 5.0}},
        "hypervolume": 0.16,
        "evaluations": 500,
        "recommended": 0,
        "pareto": [
            _point("disagg", 300.0, 20.0, 50.0, sim=True),
            _point("agg", 150.0, 90.0, 12.0),
            _point("agg", 60.0, 140.0, 7.0),
        ],
        "hypervolume_history": [
            {"evaluations": 100, "hypervolume": 0.1},
            {"evaluations": 500, "hypervolume": 0.16},
        ],
    }


def _png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", head[16:24])


def _check_png(path: Path, min_w: int = 500) -> None:
    w, h = _png_size(path)
    assert w >= min_w and 300 <= h <= 3000 and w <= 4000
    assert 10_000 < path.stat().st_size < 2_000_000


@pytest.fixture(scope="module")
def opt_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("opt")
    (d / "pareto.json").write_text(json.dumps(_summary()))
    rows = [
        {
            "phase": "screen",
            "evaluations": 256,
            "budget": 768,
            "feasible": 30,
            "pareto_size": 4,
            "hypervolume": 0.10,
            "elapsed_s": 0.1,
            "eta_s": 0.2,
        },
        {
            "phase": "nsga2",
            "evaluations": 512,
            "budget": 768,
            "feasible": 70,
            "pareto_size": 6,
            "hypervolume": 0.14,
            "elapsed_s": 0.2,
            "eta_s": 0.1,
        },
        {
            "phase": "nsga2",
            "evaluations": 768,
            "budget": 768,
            "feasible": 99,
            "pareto_size": 5,
            "hypervolume": 0.16,
            "elapsed_s": 0.3,
            "eta_s": 0.0,
        },
    ]
    (d / "progress.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return d


@pytest.fixture(scope="module")
def trace_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    params = preset("claude-code-session").model_copy(update={"sessions": 2, "seed": 1})
    path = tmp_path_factory.mktemp("trace") / "t.jsonl"
    write_jsonl(generate(params), path)
    return path


@pytest.mark.parametrize("n_obj", [2, 3])
def test_plot_pareto_png_and_html(tmp_path: Path, n_obj: int) -> None:
    data = pareto.pareto_data(_summary(n_obj))
    assert data.has_simulated and data.recommended == 0
    _check_png(pareto.write_png(data, tmp_path / "p.png"))
    html = pareto_html.write_html(data, tmp_path / "p.html").read_text()
    # hover: deployment summary and metrics, recommended tag, fidelity, SLO
    for field in (
        "decode: gb200 4",
        "tp8ep8",
        "tokens_per_s_per_gpu: 20",
        "ttft_p90_s: 1.5",
        "(recommended)",
        "simulation fidelity",
        "violates SLO",
        "spec mtp3",
    ):
        assert field in html, field


def test_plot_pareto_2d_front_is_the_trade_off() -> None:
    # max x, max y: (1, 3) and (3, 1) trade off; (2, 0.5) is dominated by (3, 1)
    assert pareto._front_2d([1, 3, 2], [3, 1, 0.5], "max", "max") == [0, 1]


def test_plot_pareto_bad_summary() -> None:
    with pytest.raises(PlotInputError, match="objectives"):
        pareto.pareto_data({"pareto": []})
    bad = _summary()
    del bad["pareto"][1]["metrics"]["usd_per_mtok_output"]
    with pytest.raises(PlotInputError, match="point 1"):
        pareto.pareto_data(bad)


def test_plot_hypervolume(opt_dir: Path, tmp_path: Path) -> None:
    name, rows = hypervolume.load_progress(opt_dir)
    assert name == "tiny" and [r["evaluations"] for r in rows] == [256, 512, 768]
    _check_png(hypervolume.write_png(rows, tmp_path / "h.png", name))
    html = hypervolume.write_html(rows, tmp_path / "h.html", name).read_text()
    assert "hypervolume: 0.14" in html and "pareto_size: 6" in html and "phase: nsga2" in html


def test_plot_hypervolume_falls_back_to_summary(tmp_path: Path) -> None:
    (tmp_path / "pareto.json").write_text(json.dumps(_summary()))
    _, rows = hypervolume.load_progress(tmp_path)
    assert [r["hypervolume"] for r in rows] == [0.1, 0.16]


def test_plot_cache(trace_file: Path, tmp_path: Path) -> None:
    c = cache.cache_curves(load_trace(trace_file), [1, 4], check_points=1)
    # a hit ratio grows with capacity and never beats the trace's ideal (infinite cache)
    for h in c.hit.values():
        assert (h[1:] >= h[:-1] - 1e-12).all()
        assert h[-1] <= c.ideal_hit_ratio + 1e-9
    # the analytic curve at N=1 is the block simulation's answer at the checked capacity
    _n, cap, sim = c.checks[0]
    i = int(abs(c.capacities_tokens - cap).argmin())
    assert abs(c.hit[1][i] - sim) < 0.05
    _check_png(cache.write_png(c, tmp_path / "c.png"))
    html = cache.write_html(c, tmp_path / "c.html").read_text()
    assert "sessions per cache" in html and "hit ratio" in html


def test_plot_trace(trace_file: Path, tmp_path: Path) -> None:
    t = load_trace(trace_file)
    v = trace.session_view(t, 1)
    assert v.t_min.size == int((t.req_session == 1).sum())
    assert (v.cached_tokens <= v.input_tokens).all()
    _check_png(trace.write_png(v, tmp_path / "t.png"))
    html = trace.write_html(v, tmp_path / "t.html").read_text()
    for field in ("input tokens:", "prefix already seen:", "agent: primary", "sub-agent"):
        assert field in html, field


def test_plot_cli_writes_files(opt_dir: Path, trace_file: Path, tmp_path: Path) -> None:
    r = CliRunner()
    cmds = [
        [
            "pareto",
            str(opt_dir),
            "--out",
            str(tmp_path / "p.png"),
            "--html",
            str(tmp_path / "p.html"),
        ],
        ["hypervolume", str(opt_dir), "--out", str(tmp_path / "h.png")],
        ["cache", str(trace_file), "--sessions-per-cache", "2", "--out", str(tmp_path / "c.png")],
        ["trace", str(trace_file), "--html", str(tmp_path / "t.html")],
    ]
    for args in cmds:
        res = r.invoke(plot_app, args)
        assert res.exit_code == 0, res.output
    for f in ("p.png", "p.html", "h.png", "c.png", "t.html"):
        assert (tmp_path / f).stat().st_size > 1000


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["pareto", "{missing}", "--out", "{tmp}/x.png"], "not found"),
        (["pareto", "{opt}"], "give --out"),
        (["pareto", "{opt}", "--out", "{tmp}/x.jpg"], "expected a .png"),
        (["pareto", "{badjson}", "--out", "{tmp}/x.png"], "not valid JSON"),
        (["hypervolume", "{missing}", "--out", "{tmp}/x.png"], "not found"),
        (["cache", "{missing}", "--out", "{tmp}/x.png"], "not found"),
        (["cache", "{trace}", "-n", "0", "--out", "{tmp}/x.png"], ">= 1"),
        (["trace", "{trace}", "--session", "7", "--out", "{tmp}/x.png"], "2 sessions"),
    ],
)
def test_plot_cli_bad_input_one_line(
    args: list[str], message: str, opt_dir: Path, trace_file: Path, tmp_path: Path
) -> None:
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "pareto.json").write_text("{not json")
    subs = {
        "missing": str(tmp_path / "nope"),
        "tmp": str(tmp_path),
        "opt": str(opt_dir),
        "badjson": str(bad),
        "trace": str(trace_file),
    }
    res = CliRunner().invoke(plot_app, [a.format(**subs) for a in args])
    assert res.exit_code == 2
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and message in lines[0], res.output
