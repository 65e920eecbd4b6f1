"""`codesign jobs ...`, `codesign keys ...` and `codesign export --job` against a real server
(the CLI runs in-process with typer's runner; the server is a real uvicorn subprocess)."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from service_helpers import SPEC, server, with_strategy
from typer.testing import CliRunner

from codesign.cli import app

run = CliRunner().invoke


def _ok(args: list[str]) -> str:
    res = run(app, args)
    assert res.exit_code == 0, f"{args}: {res.stdout}\n{res.stderr}"
    return res.stdout


def test_jobs_commands(tmp_path: Path) -> None:
    spec = tmp_path / "job.yaml"
    spec.write_text(yaml.safe_dump(SPEC))
    with server(f"sqlite:///{tmp_path / 'cli.db'}", tmp_path / "server.log") as api:
        s = ["--server", api]
        job_id = int(_ok(["jobs", "submit", str(spec), *s]).strip().splitlines()[-1])
        shown = json.loads(_ok(["jobs", "wait", str(job_id), *s, "--json"]))
        assert shown["status"] == "completed"
        listed = json.loads(_ok(["jobs", "list", *s, "--json"]))
        assert [j["id"] for j in listed] == [job_id]
        table = _ok(["jobs", "pareto", str(job_id), *s, "--where", "tokens_per_s_per_user>=1"])
        assert "tokens_per_s" in table
        points = json.loads(_ok(["jobs", "pareto", str(job_id), *s, "--json"]))
        cid = next(p["id"] for p in points if p["recommended"])
        out = tmp_path / "export"
        _ok(["jobs", "export", str(job_id), "-c", str(cid), "-f", "sglang", *s, "-o", str(out)])
        assert any("sglang.launch_server" in p.read_text() for p in out.rglob("*") if p.is_file())
        # the top-level export command takes the same stored candidate
        text = _ok(["export", "--job", str(job_id), "--candidate", str(cid), "-f", "vllm", *s])
        assert "vllm serve" in text
        # a bad metric in --where is the server's one-line 422, not a traceback
        res = run(app, ["jobs", "pareto", str(job_id), *s, "--where", "speed>=1"])
        assert res.exit_code != 0 and "unknown metric" in res.stderr
        spec.write_text(yaml.safe_dump(with_strategy(budget=100_000, batch=8)))
        slow = int(_ok(["jobs", "submit", str(spec), *s]).strip().splitlines()[-1])
        _ok(["jobs", "cancel", str(slow), *s])
        assert json.loads(_ok(["jobs", "wait", str(slow), *s, "--json"]))["status"] == "cancelled"
        _ok(["jobs", "delete", str(slow), *s])
        res = run(app, ["jobs", "show", str(slow), *s])
        assert res.exit_code != 0 and "not found" in res.stderr


def test_keys_commands_gate_the_server(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'keys.db'}"
    write = json.loads(_ok(["keys", "create", "ops", "--scope", "write", "--db", db, "--json"]))
    _ok(["keys", "create", "viewer", "--scope", "read", "--db", db])
    names = [k["name"] for k in json.loads(_ok(["keys", "list", "--db", db, "--json"]))]
    assert names == ["ops", "viewer"]
    res = run(app, ["keys", "create", "ops", "--db", db])
    assert res.exit_code != 0 and "exists" in res.stderr
    with server(db, tmp_path / "server.log", workers=0) as api:
        res = run(app, ["jobs", "list", "--server", api])
        assert res.exit_code != 0 and "API key" in res.stderr
        _ok(["jobs", "list", "--server", api, "--api-key", write["key"]])
        _ok(["keys", "revoke", "ops", "--db", db])
        # revoked: the lookup is per request (only "are keys configured" is cached)
        res = run(app, ["jobs", "list", "--server", api, "--api-key", write["key"]])
        assert res.exit_code != 0 and "revoked" in res.stderr


def test_optimize_into_the_service_database(tmp_path: Path) -> None:
    """`codesign optimize SPEC --db URL` stores the run as a job the API then serves."""
    from codesign.client import Client

    spec = tmp_path / "job.yaml"
    spec.write_text(yaml.safe_dump(SPEC))
    db = f"sqlite:///{tmp_path / 'opt.db'}"
    out = json.loads(
        _ok(["optimize", str(spec), "--out", str(tmp_path / "o"), "--db", db, "--json"])
    )
    job_id = out["db_job"]
    with server(db, tmp_path / "server.log", workers=0) as api, Client(api) as c:
        job = c.job(job_id)
        assert job.status == "completed" and job.data["owner"] == "cli"
        assert job.data["evaluations"] == out["evaluations"]
        points = job.pareto_points()
    assert [p["params"] for p in points] == [p["params"] for p in out["pareto"]]
    rec = next(p for p in points if p["recommended"])
    assert points.index(rec) == out["recommended"]
