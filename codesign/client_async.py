"""An asyncio variant of the SDK's core (`codesign.client` is the full, synchronous one):
submit, read jobs and their Pareto points, follow the event stream, wait, cancel.

    async with AsyncClient("http://127.0.0.1:8000") as c:
        job = await c.submit("examples/agentic-coding.yaml")
        async for eid, kind, data in c.events(job["id"]):
            ...
        points = await c.pareto_points(job["id"])
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from typing import Any

import httpx

from codesign.client_sse import (
    TERMINAL,
    ApiError,
    SSEParser,
    error_from_response,
    load_payload,
    where_params,
)

PAGE = 1000


class AsyncClient:
    def __init__(self, url: str, api_key: str | None = None, timeout: float = 30.0) -> None:
        self.url = url.rstrip("/")
        key = api_key if api_key is not None else os.environ.get("CODESIGN_API_KEY") or None
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self.http = httpx.AsyncClient(base_url=self.url, headers=headers, timeout=timeout)

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.http.aclose()

    async def json(self, method: str, path: str, **kw: Any) -> Any:
        """One request; the typed `ApiError` for an error status or no answer."""
        try:
            resp = await self.http.request(method, path, **kw)
        except httpx.TransportError as exc:
            raise ApiError(0, f"cannot reach the server at {self.url}: {exc}") from None
        if resp.status_code >= 400:
            raise error_from_response(resp.status_code, resp.content, f"{method} {path}")
        return resp.json() if resp.content else None

    async def submit(self, spec: Any, idempotency_key: str | None = None) -> dict[str, Any]:
        """Queue a job (path, YAML text, dict or JobSpec); returns the job object."""
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        return await self.json("POST", "/v1/jobs", json=load_payload(spec), headers=headers)

    async def job(self, job_id: int) -> dict[str, Any]:
        return await self.json("GET", f"/v1/jobs/{int(job_id)}")

    async def cancel(self, job_id: int) -> dict[str, Any]:
        return await self.json("POST", f"/v1/jobs/{int(job_id)}/cancel")

    async def events(
        self, job_id: int, after: int | None = None
    ) -> AsyncIterator[tuple[int, str, dict[str, Any]]]:
        """``(id, type, data)`` of the job's server-sent events until it finishes."""
        headers = {"Accept": "text/event-stream"}
        if after is not None:
            headers["Last-Event-ID"] = str(after)
        path = f"/v1/jobs/{int(job_id)}/events"
        timeout = httpx.Timeout(self.http.timeout.connect, read=None)
        async with self.http.stream("GET", path, headers=headers, timeout=timeout) as resp:
            if resp.status_code >= 400:
                raise error_from_response(resp.status_code, await resp.aread(), f"GET {path}")
            parser = SSEParser(after)
            async for line in resp.aiter_lines():  # the SSE wire format, as it arrives
                event = parser.feed(line)
                if event is None:
                    continue
                eid, kind, text = event
                yield (eid or 0), kind, (json.loads(text) if text.strip() else {})
                if kind in TERMINAL:
                    return

    async def wait(self, job_id: int) -> dict[str, Any]:
        """Follow the events until the job finishes; the final job object."""
        async for _ in self.events(job_id):
            pass
        return await self.job(job_id)

    async def pareto_points(
        self, job_id: int, where: dict[str, tuple[float | None, float | None]] | None = None
    ) -> list[dict[str, Any]]:
        """Every Pareto point of the job (all pages)."""
        out: list[dict[str, Any]] = []
        offset: int | None = 0
        while offset is not None:
            params: list[tuple[str, Any]] = [("limit", PAGE), ("offset", offset)]
            params += [("where", w) for w in where_params(where)]
            page = await self.json("GET", f"/v1/jobs/{int(job_id)}/pareto", params=params)
            out += page["items"]
            offset = page.get("next_offset")
        return out
