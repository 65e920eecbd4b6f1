"""Native JSONL round trip (lossless) and `codesign trace convert`/`stats` on the CLI."""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from codesign.cli.trace import trace_app
from codesign.workload import Trace, TraceFormatError, load_trace, write_jsonl


def assert_same(a: Trace, b: Trace) -> None:
    assert a.meta == b.meta
    for f in fields(a):
        if f.name in ("meta", "_cache"):
            continue
        x, y = getattr(a, f.name), getattr(b, f.name)
        assert x.dtype == y.dtype, f.name
        np.testing.assert_array_equal(x, y, err_msg=f.name)


@pytest.mark.parametrize("suffix", [".jsonl", ".jsonl.gz"])
def test_round_trip_tiny(tiny_cc_dir: Path, tmp_path: Path, suffix: str) -> None:
    t = load_trace(tiny_cc_dir)
    out = write_jsonl(t, tmp_path / f"t{suffix}")
    assert_same(t, load_trace(out))


def test_round_trip_real_sessions(shared_dir: Path, tmp_path: Path) -> None:
    files = sorted((shared_dir / "traces" / "claude-code-weka").glob("trace_000*.json.gz"))
    t = load_trace(files[0].parent / files[2].name, "claude-code")  # has a sub-agent
    assert t.n_agents > 1
    assert_same(t, load_trace(write_jsonl(t, tmp_path / "x.jsonl.gz")))


def test_select_sessions_keeps_blocks(tiny_cc_dir: Path) -> None:
    t = load_trace(tiny_cc_dir)
    b = t.select_sessions([1])
    assert (b.n_sessions, b.n_agents, b.n_requests) == (1, 1, 2)
    np.testing.assert_array_equal(b.request_hashes(1), t.request_hashes(4))


def test_native_errors(tiny_cc_dir: Path, tmp_path: Path) -> None:
    p = write_jsonl(load_trace(tiny_cc_dir), tmp_path / "t.jsonl")
    lines = p.read_text().splitlines()
    rec = json.loads(lines[-1])
    rec["stop"] = "nope"
    p.write_text("\n".join([*lines[:-1], json.dumps(rec)]) + "\n")
    with pytest.raises(TraceFormatError, match=rf"t.jsonl: line {len(lines)}: field 'stop'"):
        load_trace(p)
    header = json.loads(lines[0])
    header["version"] = 99
    p.write_text("\n".join([json.dumps(header), *lines[1:]]) + "\n")
    with pytest.raises(TraceFormatError, match="field 'version'"):
        load_trace(p)


def test_cli_convert_and_stats(tiny_cc_dir: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "t.jsonl.gz"
    r = runner.invoke(trace_app, ["convert", str(tiny_cc_dir), str(out), "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["requests"] == 5
    r = runner.invoke(trace_app, ["stats", str(out), "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["prefix"]["ideal_hit_ratio"] == pytest.approx(384 / 908)
    r = runner.invoke(trace_app, ["stats", str(tmp_path / "missing.json")])
    assert r.exit_code != 0 and "not found" in r.output
