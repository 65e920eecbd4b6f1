"""Small hand-made traces in the Claude Code format, written to tmp_path by the tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from cc_helpers import call, session, write


@pytest.fixture
def tiny_cc_dir(tmp_path: Path) -> Path:
    """Two sessions, counted by hand in test_workload_claude_code.py.

    Session A (ids local): r0 in=200 ids [1,2,3] (t=0), sub-agent spawned at t=5 with one
    call at t=5+1 in=130 ids [1,9], main r1 at t=20 in=300 ids [1,2,3,4] after a 14 s
    tool gap. Session B reuses the *same* local ids [1,2] but must not hit A's blocks:
    r0 in=128 ids [1,2] stop end_turn, r1 at t=100 in=150 ids [1,2] after a 90 s human gap.
    """
    d = tmp_path / "cc"
    d.mkdir()
    sub = {
        "t": 5.0,
        "type": "subagent",
        "agent_id": "agent_001",
        "subagent_type": "Explore",
        "duration_ms": 4000,
        "total_tokens": 0,
        "tool_use_count": 1,
        "status": "completed",
        "models": ["claude-haiku-4-5"],
        "tool_tokens": 30,
        "system_tokens": 20,
        "requests": [call(1.0, 130, [1, 9], stop="end_turn", model="claude-haiku-4-5")],
    }
    write(
        d / "trace_0001.json.gz",
        session("A", [call(0.0, 200, [1, 2, 3]), sub, call(20.0, 300, [1, 2, 3, 4], think=14.0)]),
    )
    write(
        d / "trace_0002.json",
        session(
            "B", [call(0.0, 128, [1, 2], stop="end_turn"), call(100.0, 150, [1, 2], think=90.0)]
        ),
        gz=False,
    )
    return d
