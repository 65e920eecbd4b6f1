"""Real servers for the service tests: ``codesign serve`` / ``python -m api.worker``
subprocesses on a free loopback port, on a fresh SQLite file or a fresh PostgreSQL schema."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

import httpx
from sqlalchemy import create_engine, text

# a quick job (fixed-length workload, small space) with many small NSGA-II batches (~3 s)
SPEC = {
    "name": "svc-test",
    "model": "Qwen/Qwen3-32B",
    "workload": {"fixed": {"isl": 4000, "osl": 500}, "concurrent_sessions": 32},
    "space": {
        "systems": ["h100_sxm", "h200_sxm"],
        "modes": ["agg", "disagg"],
        "precision": {"gemm": ["bf16", "fp8"], "kv": ["bf16", "fp8"]},
        "parallelism": {
            "tp": [1, 2, 4, 8],
            "dp": [1, 2],
            "workers": [1, 2, 4],
            "prefill": {"tp": [1, 2, 4], "dp": [1], "workers": [1, 2]},
        },
    },
    "objectives": ["max tokens_per_s_per_user", "max tokens_per_s_per_gpu"],
    "constraints": {"ttft_p90_s": {"max": 5.0}},
    "strategy": {"sampler": "nsga2", "budget": 1200, "batch": 16, "seed": 3},
}


def with_strategy(**kw: object) -> dict:
    return {**SPEC, "strategy": {**SPEC["strategy"], **kw}}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def database(kind: str, tmp_path: Path, postgres_url: str | None) -> Iterator[str]:
    """A fresh database URL: a SQLite file, or a new PostgreSQL schema (dropped after)."""
    if kind == "sqlite":
        yield f"sqlite:///{tmp_path / 'service.db'}"
        return
    assert postgres_url
    schema = f"cs_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(postgres_url)
    with admin.begin() as c:
        c.execute(text(f"CREATE SCHEMA {schema}"))
    sep = "&" if "?" in postgres_url else "?"
    try:
        yield f"{postgres_url}{sep}options={quote(f'-csearch_path={schema}')}"
    finally:
        with admin.begin() as c:
            c.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


def _env(db_url: str, extra: dict[str, str] | None) -> dict[str, str]:
    env = {**os.environ, "CODESIGN_DATABASE_URL": db_url, "PYTHONUNBUFFERED": "1"}
    env.update(extra or {})
    return env


PROCS: dict[str, subprocess.Popen] = {}  # base URL -> its `codesign serve` process


def children(pid: int) -> list[int]:
    """Process ids whose parent is ``pid`` (Linux /proc)."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def wait_healthy(url: str, proc: subprocess.Popen, timeout_s: float = 60) -> None:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"server at {url} not healthy after {timeout_s} s")


@contextmanager
def server(
    db_url: str, log: Path, workers: int = 1, env: dict[str, str] | None = None
) -> Iterator[str]:
    """``codesign serve`` on a free loopback port; yields its base URL."""
    port = free_port()
    cmd = [
        sys.executable,
        "-c",
        "from codesign.cli import main; main()",
        "serve",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--stale-after",
        "3",
    ]
    with log.open("ab") as fh:
        proc = subprocess.Popen(cmd, env=_env(db_url, env), stdout=fh, stderr=fh)
    url = f"http://127.0.0.1:{port}"
    PROCS[url] = proc
    try:
        wait_healthy(url, proc)
        yield url
    finally:
        PROCS.pop(url, None)
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def start_worker(db_url: str, log: Path) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "api.worker", "--poll", "0.1", "--heartbeat", "0.3"]
    cmd += ["--stale-after", "2"]
    with log.open("ab") as fh:
        return subprocess.Popen(cmd, env=_env(db_url, None), stdout=fh, stderr=fh)
