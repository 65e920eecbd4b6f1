"""Python SDK for the codesign REST API (`codesign serve`, contract in docs/api.md).

    from codesign.client import Client
    with Client("http://127.0.0.1:8000") as c:
        job = c.submit("examples/agentic-coding.yaml").wait(progress=True)
        df = job.pareto()

Depends only on httpx, pydantic/yaml, rich and pandas (imported when used).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from codesign.client_sse import (
    TERMINAL,
    ApiError,
    AuthError,
    Conflict,
    JobFailed,
    LimitError,
    NotFound,
    ValidationFailed,
    Where,
    default_direction,
    error_from_response,
    load_payload,
    parse_sse,
    show_progress,
    stream_events,
    where_params,
    write_files,
)

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "ApiError", "AuthError", "Client", "Conflict", "Job", "JobFailed", "LimitError",
    "NotFound", "ValidationFailed", "default_direction", "error_from_response",
    "load_payload", "parse_sse", "where_params",
]  # fmt: skip

PAGE = 1000  # Pareto points per page (the server's maximum)


def _items(data: Any) -> list[dict[str, Any]]:
    return data["items"] if isinstance(data, dict) and "items" in data else list(data)


# --- client -------------------------------------------------------------------------------
class Client:
    """A connection to a codesign server. The API key defaults to ``CODESIGN_API_KEY``."""

    def __init__(
        self,
        url: str,
        api_key: str | None = None,
        timeout: float = 30.0,
        *,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        key = api_key if api_key is not None else os.environ.get("CODESIGN_API_KEY") or None
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self.http = httpx.Client(
            base_url=self.url, headers=headers, timeout=timeout, transport=transport
        )

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool."""
        self.http.close()

    def request(self, method: str, path: str, **kw: Any) -> httpx.Response:
        """Send a request; raise the typed `ApiError` for an error status or no answer."""
        try:
            resp = self.http.request(method, path, **kw)
        except httpx.TimeoutException as exc:
            raise ApiError(0, f"the server at {self.url} did not answer in time: {exc}") from None
        except httpx.TransportError as exc:
            raise ApiError(0, f"cannot reach the server at {self.url}: {exc}") from None
        if resp.status_code >= 400:
            raise error_from_response(resp.status_code, resp.content, f"{method} {path}")
        return resp

    def json(self, method: str, path: str, **kw: Any) -> Any:
        """`request`, decoded as JSON (None for an empty body)."""
        resp = self.request(method, path, **kw)
        return resp.json() if resp.content else None

    # jobs
    def submit(self, spec: Any, idempotency_key: str | None = None) -> Job:
        """Queue a job (spec: path, YAML text, dict or JobSpec); ``workload.trace`` must be
        ``trace:ID`` (see `upload_trace`). The same idempotency key and spec again returns
        the same job; the same key with another spec raises `Conflict`."""
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        return Job(self, self.json("POST", "/v1/jobs", json=load_payload(spec), headers=headers))

    def job(self, job_id: int) -> Job:
        """The job with this id."""
        return Job(self, self.json("GET", f"/v1/jobs/{int(job_id)}"))

    def jobs(self, status: str | None = None, limit: int = 50) -> list[Job]:
        """Up to ``limit`` jobs, newest first (optionally only those with ``status``)."""
        out: list[Job] = []
        after = None
        while len(out) < limit:
            params: dict[str, Any] = {"limit": min(limit - len(out), 100)}
            params.update({k: v for k, v in (("status", status), ("after", after)) if v})
            page = self.json("GET", "/v1/jobs", params=params)
            out += [Job(self, d) for d in page["items"]]
            after = page.get("next")
            if after is None or not page["items"]:
                break
        return out[:limit]

    # traces
    def upload_trace(
        self, path: str | Path, name: str | None = None, format: str | None = None
    ) -> dict[str, Any]:
        """Upload a trace file (streamed, not read into memory); returns the trace object,
        whose ``id`` goes into a spec as ``workload: {trace: "trace:ID"}``."""
        path = Path(path)
        size = path.stat().st_size  # FileNotFoundError names the file

        def chunks() -> Iterator[bytes]:
            with path.open("rb") as f:
                while block := f.read(1 << 20):
                    yield block

        params = {k: v for k, v in (("name", name or path.name), ("format", format)) if v}
        headers = {"Content-Length": str(size), "Content-Type": "application/octet-stream"}
        try:
            return self.json("POST", "/v1/traces", params=params, content=chunks(), headers=headers)
        except ApiError as exc:
            if exc.status == 0 and size > 1 << 20:
                hint = "the server may have refused the size (CODESIGN_MAX_TRACE_BYTES)"
                raise ApiError(0, f"{exc.detail}; uploading {size:,} bytes: {hint}") from None
            raise

    def synth_trace(
        self, preset: str, sessions: int = 200, seed: int = 0, name: str | None = None
    ) -> dict[str, Any]:
        """Generate and store a synthetic trace from a preset (e.g. ``claude-code-fleet``)."""
        body = {"preset": preset, "sessions": sessions, "seed": seed}
        return self.json("POST", "/v1/traces/synth", json=body | ({"name": name} if name else {}))

    def trace(self, trace_id: int) -> dict[str, Any]:
        """One trace, with its ``stats``."""
        return self.json("GET", f"/v1/traces/{int(trace_id)}")

    def traces(self) -> list[dict[str, Any]]:
        """All stored traces."""
        return _items(self.json("GET", "/v1/traces"))

    # catalog
    def systems(self) -> list[dict[str, Any]]:
        """The systems of the catalog (built-in plus custom)."""
        return _items(self.json("GET", "/v1/systems"))

    def chips(self) -> list[dict[str, Any]]:
        """The chips of the catalog (built-in plus custom)."""
        return _items(self.json("GET", "/v1/chips"))

    def models(self) -> list[dict[str, Any]]:
        """The models of the catalog."""
        return _items(self.json("GET", "/v1/models"))

    def estimate(self, deployment: Any, workload: Any, concurrent_sessions: float) -> dict:
        """Analytic metrics of one deployment (path, YAML, dict or model) under a workload
        (``{"synth": ...}``, ``{"trace": "trace:ID"}``, ``{"fixed": ...}`` or ``"trace:ID"``)."""
        if isinstance(workload, str) and workload.startswith("trace:"):
            workload = {"trace": workload}
        body = {
            "deployment": load_payload(deployment, "deployment"),
            "workload": load_payload(workload, "workload"),
            "concurrent_sessions": concurrent_sessions,
        }
        return self.json("POST", "/v1/estimate", json=body)

    def health(self) -> dict[str, Any]:
        """``{"status": "ok", "database": ...}`` (needs no key)."""
        return self.json("GET", "/healthz")


class Job:
    """A job on the server: ``data`` is the latest job object fetched (see docs/api.md)."""

    def __init__(self, client: Client, data: dict[str, Any]) -> None:
        self.client, self.data = client, data
        self.id: int = int(data["id"])
        self._path = f"/v1/jobs/{self.id}"

    def __repr__(self) -> str:
        return f"<Job {self.id} {self.name!r} {self.status}>"

    @property
    def status(self) -> str:
        """queued, running, completed, failed or cancelled (as last fetched)."""
        return self.data["status"]

    @property
    def progress(self) -> dict[str, Any]:
        """Phase, evaluations, budget, feasible, pareto_size, hypervolume, elapsed_s, eta_s."""
        return self.data.get("progress") or {}

    @property
    def name(self) -> str:
        return self.data.get("name") or ""

    def refresh(self) -> Job:
        """Fetch the job again; returns self."""
        self.data = self.client.json("GET", self._path)
        return self

    def events(self, after: int | None = None) -> Iterator[tuple[int, str, dict[str, Any]]]:
        """The job's events as ``(id, type, data)`` (from the start, or after event
        ``after``), following the live stream; reconnects with ``Last-Event-ID`` when the
        connection drops and stops after ``completed``, ``failed`` or ``cancelled``."""
        return stream_events(self.client, self.id, after)

    def wait(self, progress: bool = False, timeout: float | None = None) -> Job:
        """Follow the event stream until the job finishes (a rich progress bar on stderr
        with ``progress=True``); return the refreshed job. Raises `JobFailed` when the job
        failed and `TimeoutError` after ``timeout`` seconds."""
        if self.status not in TERMINAL:
            deadline = None if timeout is None else time.monotonic() + timeout
            stream = stream_events(self.client, self.id, None, deadline)
            try:
                if progress:
                    show_progress(self, stream)
                else:
                    for _ in stream:
                        pass
            except TimeoutError:
                self.refresh()
                raise TimeoutError(
                    f"job {self.id} did not finish within {timeout} s (it is {self.status}; "
                    f"wait again, or cancel it)"
                ) from None
        self.refresh()
        if self.status == "failed":
            raise JobFailed(self)
        return self

    def cancel(self) -> Job:
        """Cancel the job (a running one stops between batches); `Conflict` if finished."""
        self.data = self.client.json("POST", f"{self._path}/cancel")
        return self

    def delete(self) -> None:
        """Delete the job and its results; `Conflict` while it runs (cancel first)."""
        self.client.request("DELETE", self._path)

    def pareto_points(
        self, where: Where = None, sort: str | None = None, order: str | None = None
    ) -> list[dict[str, Any]]:
        """All Pareto points as JSON dicts (every page); ``where`` as in `pareto`."""
        base: list[tuple[str, Any]] = [("where", w) for w in where_params(where)]
        base += [(k, v) for k, v in (("sort", sort), ("order", order)) if v]
        out: list[dict[str, Any]] = []
        offset: int | None = 0
        while offset is not None:
            params = [*base, ("limit", PAGE), ("offset", offset)]
            page = self.client.json("GET", f"{self._path}/pareto", params=params)
            out += page["items"]
            offset = page.get("next_offset") if page["items"] else None
        return out

    def pareto(
        self, where: Where = None, sort: str | None = None, order: str | None = None
    ) -> pd.DataFrame:
        """The Pareto front as a DataFrame, one row per point: ``id``, ``rank``,
        ``recommended``, ``hv_contribution``, one column per metric, ``param.NAME`` per
        parameter, ``deployment`` (dict) and ``metrics_simulated`` (dict or None).
        ``where``: ``{"metric": (lo, hi)}`` with None for an open side (or a list of
        ``"metric>=v"`` strings); ``sort``: a metric; ``order``: asc or desc."""
        import pandas as pd

        rows = [
            {
                **{k: p.get(k) for k in ("id", "rank", "recommended", "hv_contribution")},
                **(p.get("metrics") or {}),
                **{f"param.{k}": v for k, v in (p.get("params") or {}).items()},
                "deployment": p.get("deployment"),
                "metrics_simulated": p.get("metrics_simulated"),
            }
            for p in self.pareto_points(where, sort, order)
        ]
        cols = ["id", "rank", "recommended", "hv_contribution", "deployment", "metrics_simulated"]
        return pd.DataFrame(rows) if rows else pd.DataFrame(columns=cols)

    def pareto_csv(self, where: Where = None, sort: str | None = None) -> str:
        """The Pareto front as the server's CSV (all pages, one header)."""
        import csv
        import io

        params: list[tuple[str, Any]] = [("where", w) for w in where_params(where)]
        params += [("format", "csv"), ("limit", PAGE)] + ([("sort", sort)] if sort else [])
        text, offset, last = "", 0, None
        while True:
            page = self.client.request(
                "GET", f"{self._path}/pareto", params=[*params, ("offset", offset)]
            ).text
            records = list(csv.reader(io.StringIO(page)))
            if page == last or len(records) <= 1:
                return text or page
            text += page if not text else page.split("\n", 1)[1]  # drop the repeated header
            if len(records) - 1 < PAGE:
                return text
            offset, last = offset + PAGE, page

    def best(self, metric: str, where: Where = None, direction: str | None = None) -> dict:
        """The Pareto point (JSON dict) with the best finite ``metric`` among those matching
        ``where``; ``direction`` max/min defaults by metric (see `default_direction`)."""
        direction = direction or default_direction(metric)
        if direction not in ("max", "min"):
            raise ValueError(f"direction {direction!r}: use 'max' or 'min'")
        points = self.pareto_points(where)
        valid = [p for p in points if (p.get("metrics") or {}).get(metric) is not None]
        if not valid:
            known = sorted({m for p in points for m in p.get("metrics") or {}})
            why = f" (metrics: {', '.join(known)})" if known and metric not in known else ""
            cond = f" matching {' and '.join(where_params(where))}" if where else ""
            raise NotFound(
                404, f"job {self.id}: no Pareto point{cond} has a value for {metric}{why}"
            )
        sign = 1 if direction == "max" else -1
        return max(valid, key=lambda p: sign * p["metrics"][metric])

    def candidate(self, cid: int) -> dict[str, Any]:
        """Any evaluated candidate: the point object plus batch, phase, feasible, ok, reason."""
        return self.client.json("GET", f"{self._path}/candidates/{int(cid)}")

    def export_result(
        self, candidate: int | Mapping[str, Any], format: str, engine_version: str | None = None
    ) -> dict[str, Any]:
        """The server's export answer: ``format``, ``engine``, ``engine_version``,
        ``files`` ({path: text}) and ``notes``."""
        cid = int(candidate["id"] if isinstance(candidate, Mapping) else candidate)
        params = {"format": format} | ({"engine_version": engine_version} if engine_version else {})
        return self.client.json("GET", f"{self._path}/candidates/{cid}/export", params=params)

    def export(
        self,
        candidate: int | Mapping[str, Any],
        format: str,
        engine_version: str | None = None,
        out: str | Path | None = None,
    ) -> dict[str, str]:
        """A candidate (id or point dict) as engine config files ({path: text}) for
        dynamo, vllm, sglang or trtllm; with ``out`` also written under that folder."""
        files: dict[str, str] = self.export_result(candidate, format, engine_version)["files"]
        if out is not None:
            write_files(files, Path(out))
        return files

    def plot_png(self) -> bytes:
        """The Pareto plot as PNG bytes."""
        return self.client.request("GET", f"{self._path}/pareto.png").content

    def plot_html(self) -> str:
        """The Pareto plot as a self-contained interactive plotly HTML page."""
        return self.client.request("GET", f"{self._path}/pareto.html").text
