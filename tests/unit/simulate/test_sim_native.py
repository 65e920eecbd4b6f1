"""The compiled simulator (``codesign.simulate.native``) replays exactly as the pure-Python
modules: every request row and metric, on agg, disagg + sub-agent and round-robin runs."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest

from codesign.deployment import Deployment
from codesign.simulate import native, simulate
from codesign.simulate.bench import BENCH_DEPLOYMENT
from codesign.workload.synth import generate, preset

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]


def _replays() -> list[tuple[list, dict]]:
    """Three small replays: (request rows, metrics) each."""
    from sim_helpers import qwen_agg, tool_trace

    fleet = generate(preset("claude-code-fleet").with_overrides(sessions=12, seed=5))
    disagg = Deployment.from_yaml(
        (ROOT / "examples/deployment-r1-disagg-subagents.yaml").read_text()
    )
    runs = [
        (Deployment.from_yaml(BENCH_DEPLOYMENT), fleet, 8, 0),
        (disagg, fleet, 6, 1),
        (qwen_agg(2, "round_robin"), tool_trace(), 4, 2),
    ]
    out = []
    for dep, trace, sessions, seed in runs:
        res = simulate(dep, trace, sessions, seed=seed)
        cols = {k: v.tolist() for k, v in res.requests.items()}
        out.append((cols, dict(res.metrics)))
    return out


def _pure_replays(tmp_path: Path) -> list[tuple[list, dict]]:
    dump = tmp_path / "pure.pkl"
    code = (
        "import pickle, sys; sys.path.insert(0, sys.argv[1]);"
        "from test_sim_native import _replays; from codesign.simulate import native;"
        "assert native.implementation().startswith('pure Python'), native.implementation();"
        "pickle.dump(_replays(), open(sys.argv[2], 'wb'))"
    )
    env = {**os.environ, native.PURE_ENV: "1"}
    subprocess.run([sys.executable, "-c", code, str(HERE), str(dump)], check=True, env=env)
    return pickle.loads(dump.read_bytes())


@pytest.mark.skipif(
    not native.implementation().startswith("compiled"), reason="no compiled build (make native)"
)
def test_compiled_replays_equal_pure_python(tmp_path: Path) -> None:
    compiled = _replays()
    pure = _pure_replays(tmp_path)
    assert len(compiled) == len(pure) == 3
    for (c_rows, c_metrics), (p_rows, p_metrics) in zip(compiled, pure, strict=True):
        assert c_rows.keys() == p_rows.keys()
        for col in c_rows:
            assert c_rows[col] == p_rows[col], col  # exact, NaN-free columns
        assert pickle.dumps(c_metrics) == pickle.dumps(p_metrics)


def test_a_changed_source_makes_the_build_stale(tmp_path: Path, monkeypatch) -> None:
    for name in native.HOT_MODULES:
        (tmp_path / f"{name}.py").write_text(f"# {name}\n")
    monkeypatch.setattr(native, "HERE", tmp_path)
    monkeypatch.setattr(native, "STAMP", tmp_path / "_native_stamp.json")
    monkeypatch.delenv(native.PURE_ENV, raising=False)
    assert native._stale_reason() is None  # no build: nothing to guard
    suffix = native.importlib.machinery.EXTENSION_SUFFIXES[0]
    (tmp_path / f"engine{suffix}").write_bytes(b"")
    assert "no stamp" in str(native._stale_reason())
    (tmp_path / "_native_stamp.json").write_text(f'{{"digest": "{native.source_digest()}"}}')
    assert native._stale_reason() is None  # fresh
    (tmp_path / "worker.py").write_text("# worker, edited\n")
    assert "source changed" in str(native._stale_reason())
    (tmp_path / "worker.py").write_text("# worker\n")
    (tmp_path / "worker.pxd").write_text("cdef class Worker: pass\n")  # declarations count
    assert "source changed" in str(native._stale_reason())
    monkeypatch.setenv(native.PURE_ENV, "1")
    assert native.PURE_ENV in str(native._stale_reason())


def test_an_unknown_command_gets_a_one_line_usage(capsys) -> None:
    assert native.main(["rebuild"]) == 2  # nothing built or removed
    out = capsys.readouterr().out.strip()
    assert out.startswith("usage: python -m codesign.simulate.build [build | clean]")
    assert "\n" not in out
