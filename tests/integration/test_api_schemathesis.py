"""Property-based API checks with schemathesis over the served OpenAPI schema (real uvicorn
on a loopback port, SQLite, bounded examples): no server errors, and every response
matches the schema (status codes documented, bodies of the documented shape)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    response_schema_conformance,
    status_code_conformance,
)
from service_helpers import SPEC, server

CHECKS = [not_a_server_error, response_schema_conformance, status_code_conformance]


@pytest.fixture(scope="module")
def api_url(tmp_path_factory: pytest.TempPathFactory):
    tmp: Path = tmp_path_factory.mktemp("schemathesis")
    with server(f"sqlite:///{tmp / 'st.db'}", tmp / "server.log", workers=0) as url:
        # something to find: a queued job and a synthetic trace
        job = httpx.post(f"{url}/v1/jobs", json=SPEC)
        assert job.status_code == 202  # cancelled, so that its event stream ends
        assert httpx.post(f"{url}/v1/jobs/{job.json()['id']}/cancel").status_code == 202
        synth = {"preset": "claude-code-session", "sessions": 2, "seed": 0}
        assert httpx.post(f"{url}/v1/traces/synth", json=synth).status_code == 201
        yield url


def test_api_conforms(api_url: str) -> None:
    """Every operation: up to 10 generated requests each (derandomized: reproducible)."""
    schema = schemathesis.openapi.from_url(f"{api_url}/openapi.json")
    failures: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        op = result.ok()
        operations += 1

        @given(case=op.as_strategy())
        @settings(
            max_examples=10,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def run(case) -> None:
            case.call_and_validate(checks=CHECKS, timeout=20)

        try:
            run()
        except BaseException as exc:  # collect every failing operation, then report
            failures.append(f"{op.method.upper()} {op.path}: {str(exc)[:1500]}")
    assert operations >= 20
    assert not failures, "\n\n".join(failures)
