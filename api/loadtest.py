"""A bounded load test of the REST API: ``clients`` concurrent clients issue Pareto
queries (a mix of plain, filtered, sorted and paginated) against one job for a fixed
duration on loopback; reports requests/s and latency percentiles. Used by
`codesign bench api` and ``tests/benchmarks/test_bench_api.py``; numbers are reported,
never asserted."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import numpy as np

QUERIES = (
    "",
    "?where=tokens_per_s_per_user%3E%3D20",
    "?sort=usd_per_mtok_output&order=asc&limit=10",
    "?limit=5&offset=5",
)


class _Conn:
    """One keep-alive HTTP/1.1 connection written by hand: the load generator must cost
    far less per request than the server (httpx costs ~4 ms of CPU per request here, more
    than the server, which would measure the client)."""

    def __init__(self, host: str, port: int, headers: str) -> None:
        self.host, self.port, self.headers = host, port, headers
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def get(self, path: str) -> int:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        req = f"GET {path} HTTP/1.1\r\nHost: {self.host}\r\n{self.headers}\r\n"
        self.writer.write(req.encode())
        assert self.reader is not None
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        length, close = 0, False
        for ln in lines[1:]:
            k, _, v = ln.partition(":")
            k = k.strip().lower()
            if k == "content-length":
                length = int(v)
            elif k == "connection" and v.strip().lower() == "close":
                close = True
        await self.reader.readexactly(length)
        if close:
            await self.close()
        return status

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


async def _client(
    conn: _Conn, path: str, end: float, lat: list[float], errors: list[int], i: int
) -> None:
    k = i
    while time.perf_counter() < end:
        q = QUERIES[k % len(QUERIES)]
        k += 1
        t0 = time.perf_counter()
        try:
            ok = await conn.get(path + q) == 200
        except (OSError, asyncio.IncompleteReadError, ValueError):
            ok = False
            await conn.close()
        lat.append(time.perf_counter() - t0)
        if not ok:
            errors.append(1)


async def _run(
    base: str,
    job_id: int,
    clients: int,
    duration_s: float,
    api_key: str | None,
    warmup_s: float,
) -> dict[str, Any]:
    u = httpx.URL(base)
    auth = f"Authorization: Bearer {api_key}\r\n" if api_key else ""
    path = f"{u.path.rstrip('/')}/v1/jobs/{job_id}/pareto"
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    httpx.get(f"{base.rstrip('/')}{path}", headers=headers).raise_for_status()  # fail early
    conns = [_Conn(u.host, u.port or 80, auth) for _ in range(clients)]
    lat: list[float] = []
    errors: list[int] = []
    if warmup_s > 0:  # open the connections and warm the caches; not measured
        end = time.perf_counter() + warmup_s
        await asyncio.gather(*(_client(c, path, end, lat, errors, i) for i, c in enumerate(conns)))
        lat, errors = [], []
    t0 = time.perf_counter()
    end = t0 + duration_s
    await asyncio.gather(*(_client(c, path, end, lat, errors, i) for i, c in enumerate(conns)))
    wall = time.perf_counter() - t0
    for c in conns:
        await c.close()
    a = np.asarray(lat) * 1e3
    return {
        "clients": clients,
        "duration_s": round(wall, 2),
        "requests": len(lat),
        "errors": len(errors),
        "requests_per_s": round(len(lat) / wall, 1),
        "latency_p50_ms": round(float(np.percentile(a, 50)), 2) if len(a) else None,
        "latency_p90_ms": round(float(np.percentile(a, 90)), 2) if len(a) else None,
        "latency_p99_ms": round(float(np.percentile(a, 99)), 2) if len(a) else None,
        "latency_max_ms": round(float(a.max()), 2) if len(a) else None,
    }


def run_load(
    base_url: str,
    job_id: int,
    clients: int = 50,
    duration_s: float = 10.0,
    api_key: str | None = None,
    warmup_s: float = 1.0,
) -> dict[str, Any]:
    return asyncio.run(_run(base_url, job_id, clients, duration_s, api_key, warmup_s))
