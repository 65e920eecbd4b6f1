"""The catalog, custom-hardware, estimate, trace and operations routes, in-process
(`TestClient` runs the real app) on a real SQLite file and, where marked, a real
PostgreSQL server (a fresh schema per test)."""

from __future__ import annotations

import gzip
import json
import math
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from service_helpers import database as _database
from sqlalchemy import create_engine, delete

from api.app import create_app
from api.auth import create_key
from api.db.models import HardwareRecord, Job, utcnow
from api.db.traces import sync_catalog
from api.settings import Settings
from codesign import __version__
from codesign.errors import NotFoundError
from codesign.workload import write_jsonl
from codesign.workload.synth import generate, preset
from hwmodels.catalog import get_chip, get_system, list_chips, list_systems

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
def _client(url: str, **settings: Any) -> Iterator[TestClient]:
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


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    pg = request.getfixturevalue("postgres_url") if request.param == "postgresql" else None
    with _database(request.param, tmp_path, pg) as url:
        yield url


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    with _client(f"sqlite:///{tmp_path / 't.db'}") as c:
        yield c


def _S(c: TestClient) -> Any:
    return c.app.state.codesign.S  # type: ignore[attr-defined]


def _add_job(c: TestClient, status: str, **fields: Any) -> int:
    spec = fields.pop("spec", {"name": "j", "workload": FIXED})
    with _S(c)() as s:
        job = Job(name="j", status=status, spec=spec, spec_hash="x" * 64, **fields)
        s.add(job)
        s.commit()
        return job.id


def _detail(r: Any) -> str:
    d = r.json()["detail"]
    return d if isinstance(d, str) else " ".join(e["msg"] for e in d)


# --- operations -----------------------------------------------------------------------
def test_healthz(client: TestClient) -> None:
    r = client.get("/healthz")
    assert r.status_code == 200
    assert r.json() == {"status": "ok", "version": __version__, "database": "sqlite"}


def test_healthz_is_503_when_the_database_is_unreachable(client: TestClient) -> None:
    st = client.app.state.codesign  # type: ignore[attr-defined]
    good = st.engine
    st.engine = create_engine("postgresql+psycopg://nobody@127.0.0.1:1/none")
    try:
        r = client.get("/healthz")
    finally:
        st.engine.dispose()
        st.engine = good
    assert r.status_code == 503
    assert "database unreachable" in r.json()["detail"]


def test_metrics_is_prometheus_text_with_job_counts(client: TestClient) -> None:
    now = utcnow()
    _add_job(client, "queued")
    _add_job(client, "queued")
    progress = {"evaluations": 100, "elapsed_s": 2.0}
    _add_job(client, "running", worker="w1", heartbeat_at=now, progress=progress)
    _add_job(client, "running", worker="w2", heartbeat_at=now - timedelta(minutes=5))
    _add_job(client, "completed")
    r = client.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
    values: dict[str, float] = {}
    for line in r.text.splitlines():
        if line.startswith("#"):
            assert line.startswith(("# HELP ", "# TYPE ")), line
            continue
        assert SAMPLE.match(line), line
        name, value = line.rsplit(" ", 1)
        values[name] = float(value)
    assert values['codesign_jobs{status="queued"}'] == 2
    assert values['codesign_jobs{status="running"}'] == 2
    assert values['codesign_jobs{status="completed"}'] == 1
    assert values['codesign_jobs{status="failed"}'] == 0
    assert values['codesign_jobs{status="cancelled"}'] == 0
    assert values["codesign_queue_depth"] == 2
    assert values["codesign_evaluations_per_second"] == pytest.approx(50.0)
    assert values["codesign_workers_alive"] == 1  # w2's heartbeat is stale
    assert "# TYPE codesign_jobs gauge" in r.text


def test_auth_read_and_write_keys(client: TestClient) -> None:
    read = create_key(_S(client), "reader", "read")
    client.app.state.codesign.keys._configured = (0.0, False)  # type: ignore[attr-defined]
    assert client.get("/healthz").status_code == 200
    assert client.get("/metrics").status_code == 401
    assert client.get("/v1/systems").status_code == 401
    hdr = {"Authorization": f"Bearer {read}"}
    assert client.get("/v1/chips", headers=hdr).status_code == 200
    assert client.get("/metrics", headers=hdr).status_code == 200
    body = {"kind": "chip", "spec": {"name": "x"}}
    assert client.post("/v1/hardware", json=body, headers=hdr).status_code == 403
    assert client.post("/v1/traces", content=b"x", headers=hdr).status_code == 403
    assert client.delete("/v1/traces/1", headers=hdr).status_code == 403


def test_openapi_documents_the_error_codes(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert {"401"} <= set(paths["/v1/systems"]["get"]["responses"])
    assert {"401", "403", "409", "422"} <= set(paths["/v1/hardware"]["post"]["responses"])
    assert {"401", "403", "404", "409"} <= set(
        paths["/v1/hardware/{kind}/{name}"]["delete"]["responses"]
    )
    assert {"401", "403", "413", "422"} <= set(paths["/v1/traces"]["post"]["responses"])
    assert {"401", "403", "404", "409"} <= set(
        paths["/v1/traces/{trace_id}"]["delete"]["responses"]
    )
    assert "503" in paths["/healthz"]["get"]["responses"]
    for path, ops in paths.items():
        for op in ops.values():
            assert op.get("description"), f"{path} has no description"


# --- catalog --------------------------------------------------------------------------
def test_catalog_lists(client: TestClient) -> None:
    systems = client.get("/v1/systems").json()
    names = {s["name"] for s in systems}
    assert {s.name for s in list_systems()} <= names
    assert {"gb200", "h100_sxm", "vera_rubin_nvl72"} <= names
    gb200 = next(s for s in systems if s["name"] == "gb200")
    assert gb200["custom"] is False and gb200["summary"]["chip"] == "gb200"
    chips = client.get("/v1/chips").json()
    assert {c.name for c in list_chips()} <= {c["name"] for c in chips}
    h100 = next(c for c in chips if c["name"] == "h100_sxm")
    assert h100["summary"]["hbm_capacity_gb"] == get_chip("h100_sxm").hbm_capacity_gb
    models = client.get("/v1/models").json()
    assert models and "Qwen/Qwen3-32B" in {m["id"] for m in models}
    assert {"id", "supported", "total_params"} <= set(models[0])


# --- custom hardware ------------------------------------------------------------------
def _chip_doc(name: str, **update: Any) -> dict[str, Any]:
    doc = get_chip("h100_sxm").model_dump(mode="json")
    return {**doc, "name": name, **update}


def _system_doc(name: str, chip: str) -> dict[str, Any]:
    doc = get_system("h100_sxm").model_dump(mode="json")
    return {**doc, "name": name, "aliases": [], "chip": chip, "host_cpu": "xeon_8480c"}


def test_custom_hardware_round_trip(db_url: str) -> None:
    with _client(db_url) as c:
        chip = _chip_doc("test_h100_fast")
        chip["memory"][0]["bandwidth_gb_s"] = 2 * chip["memory"][0]["bandwidth_gb_s"]
        r = c.post("/v1/hardware", json={"kind": "chip", "spec": chip})
        assert r.status_code == 201, r.text
        assert r.json()["name"] == "test_h100_fast" and r.json()["owner"] == "local"
        assert r.headers["location"] == "/v1/hardware/chip/test_h100_fast"
        r = c.post(
            "/v1/hardware",
            json={"kind": "system", "spec": _system_doc("test_hgx", "test_h100_fast")},
        )
        assert r.status_code == 201, r.text

        systems = {s["name"]: s for s in c.get("/v1/systems").json()}
        assert systems["test_hgx"]["custom"] is True
        assert systems["test_hgx"]["chip"]["name"] == "test_h100_fast"
        assert systems["h100_sxm"]["custom"] is False
        chips = {x["name"]: x for x in c.get("/v1/chips").json()}
        assert chips["test_h100_fast"]["custom"] is True
        assert get_system("test_hgx").chip.hbm_bandwidth_tb_s == pytest.approx(
            2 * get_chip("h100_sxm").hbm_bandwidth_tb_s
        )
        listed = c.get("/v1/hardware").json()
        assert [(h["kind"], h["name"]) for h in listed] == [
            ("chip", "test_h100_fast"),
            ("system", "test_hgx"),
        ]

        # the custom system serves an estimate like a built-in one
        dep = {**DEPLOYMENT, "pools": [{**DEPLOYMENT["pools"][0], "system": "test_hgx"}]}
        r = c.post("/v1/estimate", json={"deployment": dep, "workload": FIXED})
        assert r.status_code == 200, r.text
        assert r.json()["feasible"] is True

        # conflicts
        r = c.post("/v1/hardware", json={"kind": "chip", "spec": chip})
        assert r.status_code == 409 and "use PUT" in r.json()["detail"]
        r = c.post("/v1/hardware", json={"kind": "chip", "spec": _chip_doc("h100_sxm")})
        assert r.status_code == 409 and "built-in" in r.json()["detail"]
        for name in ("h200_sxm", "hgx_h100"):  # a built-in system, a built-in alias
            spec = _system_doc(name, "h100_sxm")
            r = c.post("/v1/hardware", json={"kind": "system", "spec": spec})
            assert r.status_code == 409, r.text
        spec = {**_system_doc("test_other", "h100_sxm"), "aliases": ["dgx_h100"]}
        r = c.post("/v1/hardware", json={"kind": "system", "spec": spec})
        assert r.status_code == 409 and "dgx_h100" in r.json()["detail"]

        # strings PostgreSQL's columns would refuse are 422 on both databases
        r = c.post("/v1/hardware", json={"kind": "chip", "spec": _chip_doc("x" * 250)})
        assert r.status_code == 422 and "longer than 200" in _detail(r)
        assert c.delete("/v1/hardware/chip/a%00b").status_code == 422
        r = c.post("/v1/traces/synth", json={"preset": "chat", "sessions": 1, "name": "a\x00b"})
        assert r.status_code == 422

        # replace
        faster = _chip_doc("test_h100_fast", tdp_w=650.0)
        r = c.put("/v1/hardware/chip/test_h100_fast", json=faster)
        assert r.status_code == 200, r.text
        assert get_chip("test_h100_fast").tdp_w == 650.0
        assert get_system("test_hgx").chip.tdp_w == 650.0
        r = c.put("/v1/hardware/chip/test_h100_fast", json=_chip_doc("test_renamed"))
        assert r.status_code == 422 and "differs" in _detail(r)
        r = c.put("/v1/hardware/chip/h100_sxm", json=_chip_doc("h100_sxm"))
        assert r.status_code == 404
        cpu = _chip_doc("test_h100_fast", kind="cpu")  # would break test_hgx
        r = c.put("/v1/hardware/chip/test_h100_fast", json=cpu)
        assert r.status_code == 409 and "test_hgx" in r.json()["detail"]

        # delete: a chip in use first
        r = c.delete("/v1/hardware/chip/test_h100_fast")
        assert r.status_code == 409 and "test_hgx" in r.json()["detail"]
        assert c.delete("/v1/hardware/system/test_hgx").status_code == 204
        assert c.delete("/v1/hardware/chip/test_h100_fast").status_code == 204
        assert c.delete("/v1/hardware/chip/test_h100_fast").status_code == 404
        assert c.delete("/v1/hardware/chip/h100_sxm").status_code == 404
        with pytest.raises(NotFoundError):
            get_system("test_hgx")
        assert c.get("/v1/hardware").json() == []
        assert "test_hgx" not in {s["name"] for s in c.get("/v1/systems").json()}


def test_custom_hardware_rejects_bad_documents(client: TestClient) -> None:
    chip = _chip_doc("test_bad")
    chip["memory"][0]["bandwidth_gb_s"] = -1
    r = client.post("/v1/hardware", json={"kind": "chip", "spec": chip})
    assert r.status_code == 422 and "bandwidth_gb_s" in _detail(r)
    bad_bodies: list[Any] = [
        {"kind": "gpu", "spec": _chip_doc("test_x")},
        {"kind": "chip"},
        {"kind": "chip", "spec": "h100"},
        {"kind": "chip", "spec": {}},
        {"kind": "chip", "spec": {"name": ""}},
        {"kind": "chip", "spec": {"name": 5}},
        {"kind": "chip", "spec": _chip_doc("Not A Name")},
        {"kind": "system", "spec": _system_doc("test_sys", "no_such_chip")},
        {"kind": "system", "spec": {**_system_doc("test_sys", "h100_sxm"), "chips_per_node": "x"}},
        [],
    ]
    for body in bad_bodies:
        r = client.post("/v1/hardware", json=body)
        assert r.status_code == 422, (body, r.text)
    r = client.post(
        "/v1/hardware", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 422
    for number in (b"1e400", b"NaN", b"-Infinity"):  # Python's JSON parser reads these
        doc = json.dumps(_chip_doc("test_x", tdp_w=123456.0)).encode()
        doc = b'{"kind": "chip", "spec": ' + doc.replace(b"123456.0", number) + b"}"
        r = client.post("/v1/hardware", content=doc, headers={"Content-Type": "application/json"})
        assert r.status_code == 422, r.text
    assert client.put("/v1/hardware/gpu/x", json={"name": "x"}).status_code == 422
    assert client.delete("/v1/hardware/gpu/x").status_code == 422
    assert client.get("/v1/hardware").json() == []


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


def test_estimate_synth_and_stored_trace(client: TestClient) -> None:
    body = {"deployment": DEPLOYMENT, "workload": {"synth": {"sessions": 5, "seed": 1}}}
    r = client.post("/v1/estimate", json={**body, "concurrent_sessions": 8})
    assert r.status_code == 200, r.text
    assert r.json()["metrics"]["tokens_per_s_per_user"] > 0
    tid = client.post("/v1/traces/synth", json={"sessions": 4}).json()["id"]
    body = {"deployment": DEPLOYMENT, "workload": {"trace": f"trace:{tid}"}}
    r = client.post("/v1/estimate", json=body)
    assert r.status_code == 200, r.text
    assert r.json()["metrics"]["tokens_per_s_per_user"] > 0


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
        (post(workload={"trace": "/tmp/trace.jsonl"}), "upload the trace with POST /v1/traces"),
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
        assert needle in _detail(r), r.text
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
    with _client(db_url) as c:
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
    assert r.status_code == 422 and "native" in _detail(r) and "mooncake" in _detail(r)
    r = client.post("/v1/traces", content=b"\x00\x01garbage\xff" * 100)
    assert r.status_code == 422 and "format" in _detail(r)
    r = client.post("/v1/traces", params={"format": "native"}, content=b"\x00\x01garbage\xff")
    assert r.status_code == 422
    r = client.post("/v1/traces", params={"format": "parquet"}, content=b"PAR1garbage")
    assert r.status_code == 422 and "/tmp" not in _detail(r)
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
    with _client(f"sqlite:///{tmp_path / 't.db'}", max_trace_bytes=100) as c:
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
    assert "claude-code-fleet" in _detail(r)
    # refused before generating: claude-code sessions are large (~150k block hashes each)
    r = client.post("/v1/traces/synth", json={"preset": "claude-code-fleet", "sessions": 5000})
    assert r.status_code == 422 and "at most about" in _detail(r)
    assert client.get(f"/v1/traces/{10**30}").status_code == 422
    assert client.delete(f"/v1/traces/{10**30}").status_code == 422
    assert client.get("/v1/traces", params={"after": 10**30}).status_code == 422
    assert client.get("/v1/traces/abc").status_code == 422
    assert client.get("/v1/traces", params={"limit": 0}).status_code == 422

    # a trace a queued or running job uses cannot be deleted
    job = _add_job(client, "queued", spec={"workload": {"trace": f"trace:{ids[0]}"}})
    r = client.delete(f"/v1/traces/{ids[0]}")
    assert r.status_code == 409 and str(job) in r.json()["detail"]
    with _S(client)() as s:
        s.get(Job, job).status = "completed"
        s.commit()
    assert client.delete(f"/v1/traces/{ids[0]}").status_code == 204
