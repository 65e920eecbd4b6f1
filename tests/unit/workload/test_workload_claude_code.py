"""Claude Code importer and statistics: a hand-counted example and the 710 real sessions."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from cc_helpers import call, session, write

from codesign.workload import TraceFormatError, load_trace, trace_stats
from codesign.workload.prefix import ideal_hit_tokens
from codesign.workload.schema import GAP_HUMAN, GAP_NONE, GAP_TOOL


def test_tiny_sessions_counted_by_hand(tiny_cc_dir: Path) -> None:
    t = load_trace(tiny_cc_dir)
    assert (t.n_sessions, t.n_agents, t.n_requests) == (2, 3, 5)
    # time order inside session A: main r0 (t=0), sub-agent call (t=6), main r1 (t=20)
    np.testing.assert_array_equal(t.arrival_s, [0.0, 6.0, 20.0, 0.0, 100.0])
    np.testing.assert_array_equal(t.req_is_primary, [True, False, True, True, True])
    # hits: A r0 nothing; sub [1,9] → block 1 seen (64); A r1 [1,2,3] seen → 192 (block 4 new);
    # B r0 nothing (ids are local: A's 1,2 are different blocks); B r1 both blocks → 128
    np.testing.assert_array_equal(ideal_hit_tokens(t), [0, 64, 192, 0, 128])
    s = trace_stats(t)
    assert s["prefix"]["ideal_hit_ratio"] == pytest.approx((64 + 192 + 128) / 908)
    # gaps: the tool gap before A r1 (its agent's previous stop was tool_use), the human gap
    # before B r1; first requests of every agent have none
    np.testing.assert_array_equal(t.gap_kind, [GAP_NONE, GAP_NONE, GAP_TOOL, GAP_NONE, GAP_HUMAN])
    assert s["gaps_s"]["tool"]["p50"] == 14.0 and s["gaps_s"]["human"]["p50"] == 90.0
    assert s["trace"]["main_agent_requests"] == 4 and s["trace"]["sub_agent_requests"] == 1
    assert s["sub_agents"]["by_kind"] == {"Explore": 1}
    assert s["sub_agents"]["small_tier_requests"] == 1  # haiku → "small" tier
    assert s["sessions"]["main_turns"]["max"] == 2


def test_compaction_marker_rule(tmp_path: Path) -> None:
    # 50K → 100K → 30K (< 0.5 x 100K, 100K >= 40K) is a compaction; 30K → 10K is not
    # (previous < 40K); 100K → 60K is not (not below half)
    reqs = [call(i * 10.0, n, [i]) for i, n in enumerate([50_000, 100_000, 30_000, 10_000])]
    reqs += [call(100.0, 100_000, [9]), call(110.0, 60_000, [10])]
    t = load_trace(write(tmp_path / "trace_0001.json", session("c", reqs)))
    np.testing.assert_array_equal(t.compaction, [0, 0, 1, 0, 0, 0])
    c = trace_stats(t)["compaction"]
    assert c["events"] == 1 and c["before_tokens"]["p50"] == 100_000
    assert c["after_tokens"]["p50"] == 30_000 and c["first_after_main_turn"]["p50"] == 2


@pytest.mark.parametrize(
    ("mutate", "where", "field"),
    [
        (lambda d: d["requests"][1].__setitem__("in", "many"), "requests[1]", "'in'"),
        (lambda d: d["requests"][0].pop("t"), "requests[0]", "'t'"),
        (lambda d: d["requests"][1]["hash_ids"].append("x"), "requests[1]", "hash_ids[2]"),
        (lambda d: d["requests"][0].__setitem__("stop", "weird"), "requests[0]", "'stop'"),
        (lambda d: d.__setitem__("block_size", 0), "session", "'block_size'"),
    ],
)
def test_malformed_file_names_file_record_field(tmp_path: Path, mutate, where, field) -> None:
    doc = session("bad", [call(0.0, 128, [1, 2]), call(5.0, 128, [1, 2])])
    mutate(doc)
    write(tmp_path / "trace_0001.json.gz", session("ok", [call(0.0, 64, [1])]))
    bad = write(tmp_path / "trace_0002.json.gz", doc)
    with pytest.raises(TraceFormatError) as exc:
        load_trace(tmp_path, "claude-code")
    msg = str(exc.value)
    assert str(bad) in msg and where in msg and field in msg


def test_truncated_gzip_and_bad_json(tmp_path: Path) -> None:
    p = write(tmp_path / "trace_0001.json.gz", session("a", [call(0.0, 64, [1])]))
    p.write_bytes(p.read_bytes()[:-10])
    with pytest.raises(TraceFormatError, match="trace_0001"):
        load_trace(p, "claude-code")
    q = tmp_path / "trace_0002.json"
    q.write_text('{"block_size": 64,\n "requests": [}')
    with pytest.raises(TraceFormatError, match=r"trace_0002.json: line 2"):
        load_trace(q, "claude-code")


@pytest.fixture(scope="module")
def real_cc(shared_dir: Path) -> tuple[dict, float]:
    t0 = time.perf_counter()
    trace = load_trace(shared_dir / "traces" / "claude-code-weka")
    stats = trace_stats(trace)
    return stats, time.perf_counter() - t0


def test_real_sessions_reproduce_readme_figures(real_cc: tuple[dict, float]) -> None:
    """Every figure of the table in ../shared/traces/README.md (claude-code-weka)."""
    s, _ = real_cc
    tr = s["trace"]
    assert (tr["sessions"], tr["main_agent_requests"], tr["sub_agent_requests"]) == (
        710,
        48_658,
        676,
    )
    assert tr["input_tokens_total"] / 1e9 == pytest.approx(6.04, abs=0.005)
    p = s["prefix"]
    assert p["ideal_hit_ratio"] == pytest.approx(0.963, abs=0.0005)
    hs = p["per_session_hit_ratio"]
    assert (round(hs["p10"], 2), round(hs["p50"], 2), round(hs["p90"], 2)) == (0.83, 0.95, 0.98)
    m = s["main_agent"]["input_tokens"]
    assert [round(m[k] / 1e3) for k in ("p10", "p50", "p90", "max")] == [43, 105, 236, 894]
    o = s["main_agent"]["output_tokens"]
    assert [round(o[k]) for k in ("p10", "p50", "p90", "p99")] == [105, 216, 899, 3663]
    g = s["gaps_s"]
    assert [g["tool"][k] for k in ("p10", "p50", "p90")] == [4, 9, 71]
    assert round(g["human"]["p50"]) == 210 and round(g["human"]["p90"]) == 2980
    assert s["server_s"]["p50"] == pytest.approx(6.1, abs=0.05)
    assert s["server_s"]["p90"] == pytest.approx(18.4, abs=0.06)  # 18.35 measured
    se = s["sessions"]
    assert (se["main_turns"]["p50"], round(se["main_turns"]["p90"]), se["main_turns"]["max"]) == (
        45,
        155,
        514,
    )
    assert round(se["duration_min"]["p50"]) == 60
    assert (
        round(se["tool_tokens"]["p50"] / 1e2) == 123
        and round(se["system_tokens"]["p50"] / 1e2) == 28
    )
    c = s["compaction"]
    assert (c["events"], c["sessions"]) == (198, 120)
    assert (
        round(c["before_tokens"]["p50"] / 100) == 1515
        and round(c["before_tokens"]["p90"] / 1e3) == 165
    )
    assert round(c["after_tokens"]["p50"] / 1e3) == 33
    assert c["first_after_main_turn"]["p50"] == pytest.approx(77, abs=0.5)
    sa = s["sub_agents"]
    assert (sa["agents"], sa["sessions"]) == (63, 17)
    assert sa["by_kind"] == {"Explore": 55, "general-purpose": 6, "Plan": 2}
    assert sa["small_tier_requests"] == 591
    # README: "up to 3 running at once" counts sub-agents with a recorded duration; four
    # async-launched ones (no duration_ms) overlap in trace_0295
    assert sa["max_concurrent_recorded_duration"] == 3 and sa["max_concurrent"] == 4
    assert round(sa["first_input_tokens"]["p50"] / 100) == 103
    assert round(sa["last_input_tokens"]["p50"] / 1e3) == 70


def test_real_sessions_stats_under_a_minute(real_cc: tuple[dict, float]) -> None:
    assert real_cc[1] < 60.0
