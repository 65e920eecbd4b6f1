"""The service end to end through real HTTP: `codesign serve` (uvicorn + worker processes)
on SQLite and on PostgreSQL, driven with the SDK and raw httpx."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest
from service_helpers import SPEC, database, server, start_worker, with_strategy

from api.auth import create_key
from api.db.engine import create_db_engine
from api.db.jobs import session_factory
from api.db.migrate import upgrade
from codesign.client import AuthError, Client, Conflict, ValidationFailed
from search.driver import Search
from search.spec import JobSpec

DBS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


@pytest.fixture(params=DBS)
def db_url(request, tmp_path: Path):
    pg = None
    if request.param == "postgresql":
        pg = request.getfixturevalue("postgres_url")
    with database(request.param, tmp_path, pg) as url:
        yield url


@pytest.fixture
def api(db_url: str, tmp_path: Path):
    with server(db_url, tmp_path / "server.log", workers=1) as url:
        yield url


def _front_keys(points: list[dict]) -> set[tuple]:
    return {tuple(sorted(p["params"].items())) for p in points}


def test_submit_events_pareto_export(api: str) -> None:
    with Client(api) as c:
        job = c.submit(SPEC)
        assert job.status in ("queued", "running")
        seen = [t for _, t, _ in job.events()]
        assert seen[-1] == "completed"
        assert "progress" in seen and "pareto" in seen
        job.refresh()
        assert job.status == "completed" and job.data["evaluations"] == 1200
        df = job.pareto()
        assert len(df) == job.data["pareto_size"] > 0
        assert df["recommended"].sum() == 1
        assert (df["tokens_per_s_per_user"] > 0).all()
        best = job.best("tokens_per_s_per_gpu")
        assert best["metrics"]["tokens_per_s_per_gpu"] == df["tokens_per_s_per_gpu"].max()
        files = job.export(best, "vllm")
        assert any("vllm serve" in text for text in files.values())
        assert job.plot_png()[:8] == b"\x89PNG\r\n\x1a\n"
        assert "plotly" in job.plot_html()
        hv = httpx.get(f"{api}/v1/jobs/{job.id}/hypervolume.png")
        assert hv.status_code == 200 and hv.content[:4] == b"\x89PNG"
        csv = job.pareto_csv()
        assert csv.splitlines()[0].startswith("id,rank,recommended")
        # filters: a bound every point meets keeps all, an impossible one keeps none
        lo = df["tokens_per_s_per_user"].min()
        assert len(job.pareto(where={"tokens_per_s_per_user": (lo, None)})) == len(df)
        assert job.pareto(where={"tokens_per_s_per_user": (1e12, None)}).empty
        # resumable stream: after the last id only nothing new, and the stream ends
        events = list(job.events())
        last_id = events[-2][0]
        assert [t for _, t, _ in job.events(after=last_id)] == ["completed"]
        # any candidate, not only Pareto points, with its decoded deployment
        r = httpx.get(f"{api}/v1/jobs/{job.id}/candidates/{int(df['id'].iloc[0])}")
        assert r.status_code == 200 and r.json()["pareto"] is True
        # with the calibration's error band around its latencies
        got = r.json()
        band, ttft = got["error_band"], got["metrics"]["ttft_p50_s"]
        assert band["ranges"]["ttft_p50_s"] == pytest.approx(
            [ttft * band["ttft_ratio"][0], ttft * band["ttft_ratio"][2]]
        )


def test_idempotency_and_errors(api: str) -> None:
    with Client(api) as c:
        a = c.submit(SPEC, idempotency_key="k-1")
        b = c.submit(SPEC, idempotency_key="k-1")
        assert a.id == b.id
        with pytest.raises(Conflict, match="different spec"):
            c.submit(with_strategy(seed=4), idempotency_key="k-1")
        with pytest.raises(ValidationFailed, match="unknown metric"):
            c.submit({**SPEC, "objectives": ["max speed"]})
        with pytest.raises(ValidationFailed, match="trace:ID"):
            c.submit({**SPEC, "workload": {"trace": "/etc/passwd"}})
    r = httpx.get(f"{api}/v1/jobs/999999")
    assert r.status_code == 404 and "not found" in r.json()["detail"]
    bad = {"content-type": "application/json"}
    r = httpx.post(f"{api}/v1/jobs", content=b"{not json", headers=bad)
    assert r.status_code == 422


def test_cancel_queued_and_running(api: str) -> None:
    with Client(api) as c:
        slow = c.submit(with_strategy(budget=200_000, batch=8))
        queued = c.submit(SPEC)
        queued.cancel()
        assert queued.refresh().status == "cancelled"
        deadline = time.monotonic() + 30
        while slow.refresh().status != "running" and time.monotonic() < deadline:
            time.sleep(0.1)
        while (slow.refresh().data["progress"] or {}).get("feasible", 0) < 50:
            assert time.monotonic() < deadline, "no feasible candidates yet"
            time.sleep(0.1)
        interim = slow.pareto_points()  # the front so far, while it runs
        assert interim and all(p["interim"] for p in interim)
        values = [p["metrics"]["tokens_per_s_per_user"] for p in interim]
        assert values == sorted(values, reverse=True)  # best first by the first objective
        first = slow.candidate(interim[0]["id"])
        assert first["deployment"]["model"] == SPEC["model"]  # decoded on request
        slow.cancel()
        types = [t for _, t, _ in slow.events()]
        assert types[-1] == "cancelled"
        assert slow.refresh().data["stopped"] == "cancelled"
        with pytest.raises(Conflict):
            slow.cancel()
        slow.delete()
        assert httpx.get(f"{api}/v1/jobs/{slow.id}").status_code == 404


def test_auth_scopes_and_owner(db_url: str, tmp_path: Path) -> None:
    engine = create_db_engine(db_url)
    upgrade(engine)
    S = session_factory(engine)
    read, write = create_key(S, "reader", "read"), create_key(S, "alice", "write")
    engine.dispose()
    with server(db_url, tmp_path / "server.log", workers=0) as api:
        assert httpx.get(f"{api}/healthz").status_code == 200
        assert httpx.get(f"{api}/v1/jobs").status_code == 401
        with pytest.raises(AuthError):
            Client(api, api_key="cs_wrong").jobs()
        with Client(api, api_key=read) as c:
            assert c.jobs() == []
            with pytest.raises(AuthError) as err:
                c.submit(SPEC)
            assert err.value.status == 403
        with Client(api, api_key=write) as c:
            job = c.submit(SPEC)
            assert job.data["owner"] == "alice"


def test_limits(db_url: str, tmp_path: Path) -> None:
    env = {
        "CODESIGN_MAX_BUDGET": "5000",
        "CODESIGN_MAX_SPEC_BYTES": "4096",
        "CODESIGN_MAX_JOBS_PER_KEY": "2",
    }
    with server(db_url, tmp_path / "server.log", workers=0, env=env) as api:
        big = {**SPEC, "name": "x" * 5000}
        r = httpx.post(f"{api}/v1/jobs", json=big)
        assert r.status_code == 413 and "4,096" in r.json()["detail"]
        r = httpx.post(f"{api}/v1/jobs", json=with_strategy(budget=6000))
        assert r.status_code == 422 and "limit of 5,000" in str(r.json()["detail"])
        assert httpx.post(f"{api}/v1/jobs", json=SPEC).status_code == 202
        assert httpx.post(f"{api}/v1/jobs", json=SPEC).status_code == 202
        r = httpx.post(f"{api}/v1/jobs", json=SPEC)
        assert r.status_code == 429 and "limit" in r.json()["detail"]


def test_worker_killed_mid_job_resumes_to_the_same_front(db_url: str, tmp_path: Path) -> None:
    spec = with_strategy(budget=2400)
    expected = Search(JobSpec.from_data(spec)).run()
    log = tmp_path / "worker.log"
    with server(db_url, tmp_path / "server.log", workers=0) as api, Client(api) as c:
        job = c.submit(spec)
        w1 = start_worker(db_url, log)
        try:
            deadline = time.monotonic() + 60
            while (job.refresh().data["progress"] or {}).get("evaluations", 0) < 400:
                assert time.monotonic() < deadline, "the job made no progress"
                time.sleep(0.02)
        finally:
            w1.kill()  # SIGKILL: no chance to release the job
            w1.wait()
        done = job.refresh().data["evaluations"]
        assert job.status == "running" and 400 <= done < 2400
        w2 = start_worker(db_url, log)
        try:
            job.wait(timeout=120)
        finally:
            w2.terminate()
            w2.wait()
        assert job.status == "completed" and job.data["attempts"] == 2
        assert job.data["evaluations"] == 2400
        got = job.pareto_points()
    want = [{k: v for k, v in p.params.items()} for p in expected.front]
    assert _front_keys(got) == _front_keys([{"params": p} for p in want])
    assert job.data["hypervolume"] == pytest.approx(expected.hypervolume, rel=1e-12)
    # nothing lost or duplicated: every batch position stored exactly once
    from sqlalchemy import func, select

    from api.db.models import Candidate

    engine = create_db_engine(db_url)
    with engine.connect() as conn:
        q = select(
            func.count(), func.count(func.distinct(Candidate.batch * 100_000 + Candidate.idx))
        )
        total, distinct = conn.execute(q.where(Candidate.job_id == job.id)).one()
    engine.dispose()
    assert total == distinct == 2400


def test_rest_client_example_runs(tmp_path: Path) -> None:
    """examples/rest_client.py end to end against a real server (small trace and budget)."""
    import subprocess
    import sys

    example = Path(__file__).resolve().parents[2] / "examples" / "rest_client.py"
    with server(f"sqlite:///{tmp_path / 'ex.db'}", tmp_path / "server.log") as api:
        cmd = [sys.executable, str(example), "--server", api, "--sessions", "12"]
        cmd += ["--budget", "1500", "--out", str(tmp_path / "out")]
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "completed" in res.stdout and "tok/s/user" in res.stdout
    assert "wrote" in res.stdout or "dynamo export refused" in res.stdout


def test_two_workers_run_jobs_concurrently_and_the_api_stays_responsive(
    tmp_path: Path,
) -> None:
    db = f"sqlite:///{tmp_path / 'cc.db'}"
    with server(db, tmp_path / "server.log", workers=2) as api, Client(api) as c:
        jobs = [c.submit(with_strategy(budget=200_000, batch=8, seed=s)) for s in (1, 2)]
        deadline = time.monotonic() + 60
        while any(j.refresh().status != "running" for j in jobs):
            assert time.monotonic() < deadline, [j.status for j in jobs]
            time.sleep(0.1)
        assert len({j.data["worker"] for j in jobs}) == 2  # two worker processes at once
        slowest = 0.0
        for _ in range(20):  # the API answers while both searches run
            t0 = time.perf_counter()
            assert httpx.get(f"{api}/v1/jobs").status_code == 200
            slowest = max(slowest, time.perf_counter() - t0)
        print(f"\nslowest GET /v1/jobs while two jobs run: {slowest * 1e3:.1f} ms")
        metrics = httpx.get(f"{api}/metrics").text
        assert 'codesign_jobs{status="running"} 2' in metrics
        for j in jobs:
            j.cancel()
        for j in jobs:
            assert j.wait(timeout=60).status == "cancelled"


def test_ray_job_with_simulation_verification(tmp_path: Path) -> None:
    """executor: ray through the service (a local Ray started by the worker for the job):
    the same front as inline, and the verified points carry both fidelities."""
    spec = with_strategy(executor="ray", verify_top=2, budget=600)
    inline = Search(JobSpec.from_data(with_strategy(verify_top=2, budget=600))).run()
    db = f"sqlite:///{tmp_path / 'ray.db'}"
    with server(db, tmp_path / "server.log") as api, Client(api) as c:
        job = c.submit(spec).wait(timeout=300)
        points = job.pareto_points()
    assert _front_keys(points) == _front_keys([{"params": p.params} for p in inline.front])
    verified = [p for p in points if p["metrics_simulated"] is not None]
    assert len(verified) == 2
    assert all(p["metrics_simulated"]["tokens_per_s_per_user"] > 0 for p in verified)
    assert job.data["result"]["verification"]["executor"] == "ray"


def test_a_job_on_custom_hardware(api: str) -> None:
    """A user-defined system (more HBM bandwidth than an H200) is searched like a built-in
    one: the API validates the job against it and the worker process registers it too."""
    from hwmodels.catalog import get_system

    doc = get_system("h200_sxm").model_dump(mode="json")
    doc["name"] = "h200_fast"
    doc["aliases"] = []
    doc["chip"]["name"] = "h200_fast_chip"
    doc["chip"]["memory"][0]["bandwidth_gb_s"] *= 2
    r = httpx.post(f"{api}/v1/hardware", json={"kind": "system", "spec": doc})
    assert r.status_code == 201, r.text
    spec = {**SPEC, "space": {**SPEC["space"], "systems": ["h200_sxm", "h200_fast"]}}
    with Client(api) as c:
        job = c.submit(spec).wait(timeout=120)
        systems = {p["params"]["system"] for p in job.pareto_points()}
    assert "h200_fast" in systems  # twice the bandwidth wins somewhere on the front


def test_serve_restarts_a_dead_worker_and_the_job_still_completes(tmp_path: Path) -> None:
    import os
    import signal

    from service_helpers import PROCS, children

    spec = with_strategy(budget=2400)
    with server(f"sqlite:///{tmp_path / 'sv.db'}", tmp_path / "server.log") as api:
        with Client(api) as c:
            job = c.submit(spec)
            deadline = time.monotonic() + 60
            while (job.refresh().data["progress"] or {}).get("evaluations", 0) < 200:
                assert time.monotonic() < deadline, "the job made no progress"
                time.sleep(0.02)
            (worker,) = children(PROCS[api].pid)
            os.kill(worker, signal.SIGKILL)  # as the OOM killer would
            job.wait(timeout=120)
        assert job.status == "completed" and job.data["attempts"] == 2
        assert job.data["evaluations"] == 2400
        (new_worker,) = children(PROCS[api].pid)
        assert new_worker != worker


def test_async_client(api: str) -> None:
    import asyncio

    from codesign.client_async import AsyncClient

    async def main() -> tuple[dict, list, list[str]]:
        async with AsyncClient(api) as c:
            job = await c.submit(SPEC)
            kinds = [k async for _, k, _ in c.events(job["id"])]
            done = await c.job(job["id"])
            return done, await c.pareto_points(job["id"]), kinds

    job, points, kinds = asyncio.run(main())
    assert kinds[-1] == "completed" and "progress" in kinds
    assert job["status"] == "completed" and len(points) == job["pareto_size"] > 0
