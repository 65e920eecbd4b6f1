"""The catalog, custom-hardware and operations routes, in-process (`TestClient` runs the
real app) on a real SQLite file and, where marked, a real PostgreSQL server (a fresh
schema per test)."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from api_client_helpers import (
    DEPLOYMENT,
    FIXED,
    SAMPLE,
    add_job,
    api_client,
    detail,
    sessions,
)
from fastapi.testclient import TestClient
from sqlalchemy import create_engine

from api.auth import create_key
from api.db.models import utcnow
from codesign import __version__
from codesign.errors import NotFoundError
from hwmodels.catalog import get_chip, get_system, list_chips, list_systems


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
    add_job(client, "queued")
    add_job(client, "queued")
    progress = {"evaluations": 100, "elapsed_s": 2.0}
    add_job(client, "running", worker="w1", heartbeat_at=now, progress=progress)
    add_job(client, "running", worker="w2", heartbeat_at=now - timedelta(minutes=5))
    add_job(client, "completed")
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
    read = create_key(sessions(client), "reader", "read")
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
    with api_client(db_url) as c:
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
        assert r.status_code == 422 and "longer than 200" in detail(r)
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
        assert r.status_code == 422 and "differs" in detail(r)
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
    assert r.status_code == 422 and "bandwidth_gb_s" in detail(r)
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
