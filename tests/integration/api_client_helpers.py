"""Shared pieces of the in-process API route tests (TestClient on the real app)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import delete

from api.app import create_app
from api.db.models import HardwareRecord, Job
from api.db.traces import sync_catalog
from api.settings import Settings

DEPLOYMENT = {
    "model": "Qwen/Qwen3-32B",
    "mode": "agg",
    "precision": {"gemm": "fp8", "kv": "fp8"},
    "pools": [{"role": "agg", "system": "h200_sxm", "workers": 1, "parallel": {"tp": 2}}],
}
FIXED = {"fixed": {"isl": 1000, "osl": 200}}
SAMPLE = re.compile(
    r"^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[a-zA-Z_]+=\"[^\"]*\"(,[a-zA-Z_]+=\"[^\"]*\")*\})? \S+$"
)


# --- databases and clients ------------------------------------------------------------
@contextmanager
def api_client(url: str, **settings: Any) -> Iterator[TestClient]:
    app = create_app(Settings(database_url=url, **settings))
    st = app.state.codesign
    try:
        with TestClient(app) as c:
            yield c
    finally:  # leave the process catalog as the built-in one for the tests after this
        with st.S() as s:
            s.execute(delete(HardwareRecord))
            s.commit()
        sync_catalog(st.S)
        st.engine.dispose()


def sessions(c: TestClient) -> Any:
    return c.app.state.codesign.S  # type: ignore[attr-defined]


def add_job(c: TestClient, status: str, **fields: Any) -> int:
    spec = fields.pop("spec", {"name": "j", "workload": FIXED})
    with sessions(c)() as s:
        job = Job(name="j", status=status, spec=spec, spec_hash="x" * 64, **fields)
        s.add(job)
        s.commit()
        return job.id


def detail(r: Any) -> str:
    d = r.json()["detail"]
    return d if isinstance(d, str) else " ".join(e["msg"] for e in d)
