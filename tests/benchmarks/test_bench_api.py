"""The API load test runs against a real server (numbers reported, never asserted): Pareto
queries at 50 concurrent clients for a short, fixed duration on loopback."""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))

from service_helpers import SPEC, server

from api.loadtest import run_load
from codesign.client import Client


def test_pareto_queries_under_load(tmp_path: Path) -> None:
    with server(f"sqlite:///{tmp_path / 'load.db'}", tmp_path / "server.log") as url:
        with Client(url) as c:
            job = c.submit(SPEC).wait()
        result = run_load(url, job.id, clients=50, duration_s=3.0)
    print("\nbench api:", json.dumps(result))
    assert result["errors"] == 0
    assert result["requests"] > 50  # every client completed at least one query
