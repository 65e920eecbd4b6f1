"""The estimate and trace routes, in-process (`TestClient` runs the real app) on a real
SQLite file and, where marked, a real PostgreSQL server (a fresh schema per test)."""

from __future__ import annotations

import gzip
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from api_client_helpers import (
    DEPLOYMENT,
    FIXED,
    add_job,
    api_client,
    detail,
    sessions,
)
from fastapi.testclient import TestClient

from api.db.models import Job
from codesign.workload import write_jsonl
from codesign.workload.synth import generate, preset


# --- estimates ------------------------------------------------------------------------
def test_estimate_fixed_workload(client: TestClient) -> None:
    body = {"deployment": DEPLOYMENT, "workload": FIXED, "concurrent_sessions": 16}
    r = client.post("/v1/estimate", json=body)
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["feasible"] is True and out["reason"] == ""
    tps = out["metrics"]["tokens_per_s_per_user"]
    assert isinstance(tps, float) and math.isfinite(tps) and tps > 0
    assert out["metrics"]["chips"] == 2
    assert all(v is None or math.isfinite(v) for v in out["metrics"].values())
    # the packaged calibration's band for agg TRT-LLM, around each latency
    band = out["error_band"]
    assert band["band"] == "agg/trtllm" and band["rows"] >= 20
    lo, mid, hi = band["ttft_ratio"]
    assert 0 < lo < mid < hi
    ttft = out["metrics"]["ttft_p50_s"]
    assert band["ranges"]["ttft_p50_s"] == [ttft * lo, ttft * hi]
    assert band["unmeasured"] == []  # fixed lengths, no prefix hits: like the rows


def test_estimate_synth_and_stored_trace(client: TestClient) -> None:
    body = {"deployment": DEPLOYMENT, "workload": {"synth": {"sessions": 5, "seed": 1}}}
    r = client.post("/v1/estimate", json={**body, "concurrent_sessions": 8})
    assert r.status_code == 200, r.text
    assert r.json()["metrics"]["tokens_per_s_per_user"] > 0
    assert r.json()["error_band"]["unmeasured"][0].startswith("agent sessions")
    tid = client.post("/v1/traces/synth", json={"sessions": 4}).json()["id"]
    body = {"deployment": DEPLOYMENT, "workload": {"trace": f"trace:{tid}"}}
    r = client.post("/v1/estimate", json=body)
    assert r.status_code == 200, r.text
    assert r.json()["metrics"]["tokens_per_s_per_user"] > 0


def test_candidate_error_band(client: TestClient) -> None:
    """A stored candidate's band: metric x ratio for a feasible one; none for an infeasible
    one or one whose stored deployment no longer validates (and the route still answers)."""
    from api.db.models import Candidate

    job = add_job(client, "completed")
    metrics = {"ttft_p50_s": 0.5, "tpot_p50_ms": 20.0, "cache_hit_ratio": 0.0}
    docs = [(DEPLOYMENT, True), (DEPLOYMENT, False), ({"model": "m", "pools": []}, True)]
    with sessions(client)() as s:
        ids = []
        for k, (dep, feasible) in enumerate(docs):
            c = Candidate(
                job_id=job, batch=0, idx=k, phase="screen", key=str(k), params={},
                metrics=metrics, feasible=feasible, ok=feasible, deployment=dep,
            )  # fmt: skip
            s.add(c)
            s.flush()
            ids.append(c.id)
        s.commit()
    got = [client.get(f"/v1/jobs/{job}/candidates/{i}") for i in ids]
    assert all(r.status_code == 200 for r in got), [r.text for r in got]
    band = got[0].json()["error_band"]
    lo, _, hi = band["ttft_ratio"]
    assert band["band"] == "agg/trtllm"
    assert band["ranges"]["ttft_p50_s"] == [0.5 * lo, 0.5 * hi]
    assert band["unmeasured"] == []  # the job's workload is fixed-length, like the rows
    assert got[1].json()["error_band"] is None and got[2].json()["error_band"] is None


def test_estimate_rejects_bad_input(client: TestClient) -> None:
    def post(deployment: Any = DEPLOYMENT, workload: Any = FIXED, **extra: Any) -> Any:
        return client.post(
            "/v1/estimate", json={"deployment": deployment, "workload": workload, **extra}
        )

    cases: list[tuple[Any, str]] = [
        (post({**DEPLOYMENT, "pools": []}), "pools"),
        (post({"model": "Qwen/Qwen3-32B"}), "pools"),
        (post({**DEPLOYMENT, "router": "random"}), "router"),
        (post({**DEPLOYMENT, "model": "no/such-model"}), "unknown model"),
        (post({**DEPLOYMENT, "model": "/etc"}), "unknown model"),
        (post({**DEPLOYMENT, "pools": [{**DEPLOYMENT["pools"][0], "system": "nope"}]}), "nope"),
        (post(workload={"trace": "/tmp/trace.jsonl"}), "upload with POST /v1/traces"),
        (post(workload={"trace": "trace:999"}), "not found"),
        (post(workload={**FIXED, "synth": {}}), "exactly one"),
        (post(workload={}), "exactly one"),
        (post(workload={"synth": {"preset": "nope"}}), "claude-code-fleet"),
        (post(workload={"synth": {"sessions": 100_000}}), "2000"),
        (post(workload={"synth": {"seed": -1}}), "greater than"),
        (post(workload={"synth": {"sessions": 2000}}), "at most about"),  # too big a trace
        (post(workload={"trace": "trace:\u00b2"}), "trace:ID"),  # isdigit, not a number
        (post(workload={"trace": f"trace:{10**30}"}), "trace:ID"),
        (post(workload={"fixed": {"isl": 10**30, "osl": 1}}), "less than"),
        (post(workload={"fixed": {"isl": "many", "osl": 1}}), "integer"),
        (post(concurrent_sessions=0), "greater than"),
        (post(concurrent_sessions=1e300), "less than"),
        (post(deployment="model: x"), "dictionary"),
    ]
    for r, needle in cases:
        assert r.status_code == 422, r.text
        assert needle in detail(r), r.text
    r = client.post("/v1/estimate", content=b"[1,", headers={"Content-Type": "application/json"})
    assert r.status_code == 422
    r = client.post(
        "/v1/estimate",
        content=b'{"deployment": {}, "workload": {"fixed": {"isl": 1, "osl": 1}}, '
        b'"concurrent_sessions": NaN}',
        headers={"Content-Type": "application/json"},
    )
    assert r.status_code == 422


# --- traces ---------------------------------------------------------------------------
def _trace_file(tmp_path: Path, sessions: int = 5) -> tuple[Path, Any]:
    trace = generate(
        preset("claude-code-fleet").model_copy(update={"sessions": sessions, "seed": 2})
    )
    return write_jsonl(trace, tmp_path / "small.trace.jsonl"), trace


def test_trace_upload_round_trip(db_url: str, tmp_path: Path) -> None:
    path, trace = _trace_file(tmp_path)
    data = path.read_bytes()
    with api_client(db_url) as c:
        r = c.post("/v1/traces", params={"name": "small"}, content=data)
        assert r.status_code == 201, r.text
        t = r.json()
        assert (t["sessions"], t["requests"]) == (trace.n_sessions, trace.n_requests)
        assert t["name"] == "small" and t["owner"] == "local" and t["bytes"] > 0
        assert t["source_format"] == trace.meta.source_format
        assert t["created_at"].endswith("Z") and "stats" not in t
        assert r.headers["location"] == f"/v1/traces/{t['id']}"

        r = c.post("/v1/traces", params={"format": "native"}, content=data)
        assert r.status_code == 201, r.text
        assert r.json()["name"] == "upload" and r.json()["requests"] == trace.n_requests
        r = c.post("/v1/traces", params={"name": "gz"}, content=gzip.compress(data))
        assert r.status_code == 201, r.text  # gzip is detected and read
        assert r.json()["requests"] == trace.n_requests
        assert c.delete(f"/v1/traces/{r.json()['id']}").status_code == 204

        one = c.get(f"/v1/traces/{t['id']}").json()
        assert one["stats"] and one["sessions"] == trace.n_sessions
        page = c.get("/v1/traces").json()
        assert [x["id"] for x in page["items"]] == [t["id"] + 1, t["id"]]
        assert page["next"] is None and all("stats" not in x for x in page["items"])

        assert c.delete(f"/v1/traces/{t['id']}").status_code == 204
        assert c.get(f"/v1/traces/{t['id']}").status_code == 404
        assert c.delete(f"/v1/traces/{t['id']}").status_code == 404


def test_trace_upload_rejects_bad_input(client: TestClient, tmp_path: Path) -> None:
    path, _ = _trace_file(tmp_path, 2)
    data = path.read_bytes()
    r = client.post("/v1/traces", params={"format": "bogus"}, content=data)
    assert r.status_code == 422 and "native" in detail(r) and "mooncake" in detail(r)
    r = client.post("/v1/traces", content=b"\x00\x01garbage\xff" * 100)
    assert r.status_code == 422 and "format" in detail(r)
    r = client.post("/v1/traces", params={"format": "native"}, content=b"\x00\x01garbage\xff")
    assert r.status_code == 422
    r = client.post("/v1/traces", params={"format": "parquet"}, content=b"PAR1garbage")
    assert r.status_code == 422 and "/tmp" not in detail(r)
    r = client.post("/v1/traces", params={"format": "mooncake"}, content=b'{"timestamp": 1}\n')
    assert r.status_code == 422
    bad_line = data.splitlines()[0] + b"\n" + b'{"broken": \n'
    r = client.post("/v1/traces", content=bad_line)
    assert r.status_code == 422
    assert client.post("/v1/traces", content=b"").status_code == 422
    assert client.post("/v1/traces", params={"name": ""}, content=data).status_code == 422
    assert client.get("/v1/traces").json() == {"items": [], "next": None}


def test_trace_upload_over_the_limit_is_413(tmp_path: Path) -> None:
    path, _ = _trace_file(tmp_path, 2)
    data = path.read_bytes()
    assert len(data) > 100
    with api_client(f"sqlite:///{tmp_path / 't.db'}", max_trace_bytes=100) as c:
        r = c.post("/v1/traces", content=data)  # Content-Length says so
        assert r.status_code == 413 and "100" in r.json()["detail"]

        def chunks() -> Iterator[bytes]:  # chunked: no Content-Length, counted while read
            for i in range(0, len(data), 40):
                yield data[i : i + 40]

        r = c.post("/v1/traces", content=chunks())
        assert r.status_code == 413 and "100" in r.json()["detail"]
        assert c.get("/v1/traces").json()["items"] == []


def test_synth_traces_list_and_delete(client: TestClient) -> None:
    r = client.post("/v1/traces/synth", json={"preset": "chat", "sessions": 3, "seed": 7})
    assert r.status_code == 201, r.text
    first = r.json()
    assert first["sessions"] == 3 and first["name"] == "chat-3-seed7"
    assert r.headers["location"] == f"/v1/traces/{first['id']}"
    ids = [first["id"]]
    for k in range(2):
        body = {"sessions": 1, "seed": k, "name": f"t{k}"}
        ids.append(client.post("/v1/traces/synth", json=body).json()["id"])
    stats = client.get(f"/v1/traces/{first['id']}").json()["stats"]
    assert isinstance(stats, dict) and stats

    page = client.get("/v1/traces", params={"limit": 2}).json()
    assert [t["id"] for t in page["items"]] == ids[::-1][:2] and page["next"] == ids[1]
    rest = client.get("/v1/traces", params={"limit": 2, "after": page["next"]}).json()
    assert [t["id"] for t in rest["items"]] == [ids[0]] and rest["next"] is None

    for body in (
        {"preset": "nope"},
        {"sessions": 0},
        {"sessions": 10**30},
        {"seed": -1},
        {"name": ""},
        {"extra": 1},
        {"sessions": "many"},
    ):
        r = client.post("/v1/traces/synth", json=body)
        assert r.status_code == 422, (body, r.text)
    r = client.post("/v1/traces/synth", json={"preset": "nope"})
    assert "claude-code-fleet" in detail(r)
    # refused before generating: claude-code sessions are large (~150k block hashes each)
    r = client.post("/v1/traces/synth", json={"preset": "claude-code-fleet", "sessions": 5000})
    assert r.status_code == 422 and "at most about" in detail(r)
    assert client.get(f"/v1/traces/{10**30}").status_code == 422
    assert client.delete(f"/v1/traces/{10**30}").status_code == 422
    assert client.get("/v1/traces", params={"after": 10**30}).status_code == 422
    assert client.get("/v1/traces/abc").status_code == 422
    assert client.get("/v1/traces", params={"limit": 0}).status_code == 422

    # a trace a queued or running job uses cannot be deleted
    job = add_job(client, "queued", spec={"workload": {"trace": f"trace:{ids[0]}"}})
    r = client.delete(f"/v1/traces/{ids[0]}")
    assert r.status_code == 409 and str(job) in r.json()["detail"]
    with sessions(client)() as s:
        s.get(Job, job).status = "completed"
        s.commit()
    assert client.delete(f"/v1/traces/{ids[0]}").status_code == 204


def test_trace_plots(client: TestClient) -> None:
    body = {"preset": "claude-code-session", "sessions": 3, "seed": 0}
    tid = client.post("/v1/traces/synth", json=body).json()["id"]
    r = client.get(f"/v1/traces/{tid}/cache.png", params={"sessions_per_cache": [1, 8]})
    assert r.status_code == 200 and r.content[:4] == b"\x89PNG"
    r = client.get(f"/v1/traces/{tid}/overview.html")
    assert r.status_code == 200 and "plotly" in r.text
    r = client.get(f"/v1/traces/{tid}/overview.png", params={"session": 99})
    assert r.status_code == 422 and "the trace has 3 sessions" in detail(r)
    assert client.get(f"/v1/traces/{tid}/cache.svg").status_code == 422
    assert client.get("/v1/traces/999/cache.png").status_code == 404
