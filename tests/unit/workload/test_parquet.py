"""Native Parquet: lossless round trip, JSONL <-> Parquet, version check, `convert`."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from test_workload_native import assert_same
from typer.testing import CliRunner

from codesign.cli.trace import trace_app
from codesign.workload import TraceFormatError, load_trace, write_jsonl
from codesign.workload.io import save_trace
from codesign.workload.parquet import read_parquet, write_parquet
from codesign.workload.synth import generate, preset


def test_round_trip_tiny(tiny_cc_dir: Path, tmp_path: Path) -> None:
    t = load_trace(tiny_cc_dir)
    assert_same(t, read_parquet(write_parquet(t, tmp_path / "t.parquet")))


def test_round_trip_synthetic_and_jsonl(tmp_path: Path) -> None:
    """Synthetic trace (sub-agents, NaN-free floats, 1.2M blocks) through both formats."""
    t = generate(preset("claude-code-session"))
    pq_path = save_trace(t, tmp_path / "s.parquet")
    from_pq = load_trace(pq_path)  # sniffed by the PAR1 magic
    assert_same(t, from_pq)
    js = save_trace(from_pq, tmp_path / "s.jsonl.gz")
    assert_same(t, load_trace(js))
    assert_same(t, load_trace(save_trace(load_trace(js), tmp_path / "again.parquet")))


def test_version_is_checked(tiny_cc_dir: Path, tmp_path: Path) -> None:
    p = write_parquet(load_trace(tiny_cc_dir), tmp_path / "t.parquet")
    table = pq.read_table(p)
    md = dict(table.schema.metadata)
    md[b"codesign.version"] = b"99"
    pq.write_table(table.replace_schema_metadata(md), p)
    with pytest.raises(TraceFormatError, match="'99' unsupported"):
        read_parquet(p)


def test_cli_convert_to_parquet(tiny_cc_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "t.parquet"
    r = CliRunner().invoke(trace_app, ["convert", str(tiny_cc_dir), str(out), "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["requests"] == 5
    assert_same(load_trace(tiny_cc_dir), load_trace(out))
    assert_same(load_trace(out), load_trace(write_jsonl(load_trace(out), tmp_path / "t.jsonl")))
