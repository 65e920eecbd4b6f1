"""Mooncake and Azure importers on the shared traces, and their malformed-input errors."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from codesign.workload import TraceFormatError, load_trace, trace_stats


@pytest.mark.parametrize(
    ("name", "requests", "block_hit", "span_s"),
    [
        ("conversation_trace.jsonl.gz", 12_031, 0.366, 3_600),
        ("synthetic_trace.jsonl.gz", 3_993, 0.640, 1_022),
    ],
)
def test_mooncake_readme_figures(
    shared_dir: Path, name: str, requests: int, block_hit: float, span_s: float
) -> None:
    t = load_trace(shared_dir / "traces" / "mooncake" / name)
    s = trace_stats(t)
    assert s["trace"]["requests"] == requests and t.meta.block_size_tokens == 512
    # README "ideal prefix hit" is block-weighted (36.6%, 64%)
    assert s["prefix"]["ideal_block_hit_ratio"] == pytest.approx(block_hit, abs=0.0006)
    assert t.arrival_s[-1] == pytest.approx(span_s, rel=0.03)  # ms → s (conversation: 1 h)


@pytest.mark.parametrize(("name", "requests"), [("code", 8_819), ("conv", 19_366)])
def test_azure_counts(shared_dir: Path, name: str, requests: int) -> None:
    t = load_trace(shared_dir / "traces" / "azure-2023" / f"AzureLLMInferenceTrace_{name}.csv")
    assert t.n_requests == requests and not t.has_hashes
    assert t.arrival_s[0] == 0.0 and t.arrival_s[-1] < 3_700


def test_mooncake_bad_line_names_line_and_field(tmp_path: Path) -> None:
    p = tmp_path / "m.jsonl.gz"
    p.write_bytes(
        gzip.compress(
            b'{"timestamp": 0, "input_length": 600, "output_length": 5, "hash_ids": [0, 1]}\n'
            b'{"timestamp": 10, "input_length": -3, "output_length": 5, "hash_ids": [0]}\n'
        )
    )
    with pytest.raises(TraceFormatError, match=r"m.jsonl.gz: line 2: field 'input_length'"):
        load_trace(p)


def test_azure_bad_count(tmp_path: Path) -> None:
    p = tmp_path / "a.csv"
    p.write_text(
        "TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:17:03.97,10,2\n"
        "2023-11-16 18:17:04.00,ten,2\n"
    )
    with pytest.raises(TraceFormatError, match=r"a.csv: line 3: field 'ContextTokens'"):
        load_trace(p)
    p.write_text("TIMESTAMP,ContextTokens,GeneratedTokens\nyesterday,10,2\n")
    with pytest.raises(TraceFormatError, match=r"line 2: field 'TIMESTAMP'"):
        load_trace(p, "azure")
