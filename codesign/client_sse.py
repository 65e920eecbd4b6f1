"""The parts of the SDK (`codesign.client`) that hold no connection: the server-sent-events
format and the job event stream with reconnects, the typed errors and their mapping from
HTTP error bodies, request formatting (specs, Pareto filters) and the progress bar.

`parse_sse`, `error_from_response`, `load_payload`, `where_params` and `default_direction`
are pure, so they are tested on plain values. Import them from `codesign.client`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import yaml

from codesign.errors import CodesignError, SpecError

if TYPE_CHECKING:
    from codesign.client import Client, Job

TERMINAL = ("completed", "failed", "cancelled")
STREAM_RETRIES = 5
PROGRESS_KEYS = ("phase", "evaluations", "budget", "feasible", "pareto_size", "hypervolume")
MAX_DIRECTION = ("output_tokens_per_s", "input_tokens_per_s", "sessions_per_hour")
# Pareto filters: {"metric": (lo, hi)} with None for an open side, or ["metric>=v", ...]
Where = Mapping[str, Sequence[float | None]] | Sequence[str] | None


# --- errors -------------------------------------------------------------------------------
class ApiError(CodesignError):
    """The server refused a request (``status`` is the HTTP status; 0: no answer at all)."""

    hint = ""

    def __init__(self, status: int, detail: str, url: str = "") -> None:
        self.status, self.detail, self.url = status, detail, url
        where = f" (HTTP {status} from {url})" if status and url else ""
        super().__init__(f"{detail}{where}{self.hint if status else ''}")


class AuthError(ApiError):
    """401/403: no API key, a wrong one, or a read key on a write endpoint."""

    hint = "; pass an API key (--api-key, api_key= or CODESIGN_API_KEY) with enough scope"


class NotFound(ApiError):
    """404: no such job, candidate, trace (or no Pareto point matches, for `Job.best`)."""


class Conflict(ApiError):
    """409: idempotency key reused with another body, or the job is in the wrong state."""


class LimitError(ApiError):
    """413/429: a size limit or the per-key job quota was exceeded."""


class ValidationFailed(ApiError):
    """422: the request or job spec is invalid; ``detail`` names each field."""


class JobFailed(ApiError):
    """The job ran and failed; ``detail`` is the job's error, ``job`` the final job."""

    def __init__(self, job: Job) -> None:
        self.job = job
        super().__init__(0, f"job {job.id} failed: {job.data.get('error') or 'no reason given'}")


_CLASSES: dict[int, type[ApiError]] = {
    401: AuthError, 403: AuthError, 404: NotFound, 409: Conflict,
    413: LimitError, 429: LimitError, 422: ValidationFailed,
}  # fmt: skip


def error_from_response(status: int, body: bytes | str, url: str) -> ApiError:
    """The typed error for an HTTP error response: ``{"detail": "msg"}`` gives ``msg``; a
    422 list (FastAPI's shape) gives ``loc: msg`` items joined with ``; `` (a leading
    ``body`` in ``loc`` is dropped); anything else gives the body text (shortened)."""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    try:
        detail: Any = json.loads(text).get("detail", text)
    except (ValueError, AttributeError):
        detail = text
    if isinstance(detail, list):
        parts = []
        for item in detail:
            if not isinstance(item, dict):
                parts.append(str(item))
                continue
            loc = [str(x) for x in item.get("loc", [])]
            loc = loc[1:] if loc[:1] == ["body"] else loc
            msg = str(item.get("msg", item)).removeprefix("Value error, ")
            parts.append(f"{'.'.join(loc)}: {msg}" if loc else msg)
        detail = "; ".join(parts)
    detail = str(detail).strip()
    if len(detail) > 500:
        detail = detail[:500] + "..."
    if not detail:
        detail = httpx.codes.get_reason_phrase(status) or "error"
    return _CLASSES.get(status, ApiError)(status, detail, url)


def parse_sse(lines: Iterable[str]) -> Iterator[tuple[int | None, str, str]]:
    """Parse an event stream, one line at a time, into ``(id, event, data)`` tuples.

    - ``data:`` lines accumulate, joined with ``"\\n"``; an event is dispatched on a blank
      line, and only when it has data (a block of ``id:``/``event:`` lines alone is not).
    - ``event:`` sets the type of the event being built (default ``"message"``).
    - ``id:`` sets the last event id, which (as in the spec) stays in force for later
      events until another ``id:`` line; an empty ``id:`` clears it. Ids that are not
      integers are reported as ``None``.
    - Lines starting with ``:`` are comments (keep-alives) and ignored, as are unknown
      fields and ``retry:``. A single space after the colon is removed.
    - An event still being built when the input ends (no blank line after it) is **not**
      dispatched: per the spec, a truncated stream's incomplete event is dropped. The
      client resumes from the last complete event's id, so nothing is lost.

    Line terminators (``\\r\\n``, ``\\n``, ``\\r``) left at the end of a line are removed.
    """
    parser = SSEParser()
    for raw in lines:
        event = parser.feed(raw)
        if event is not None:
            yield event


class SSEParser:
    """The state of `parse_sse`, fed one line at a time (for sync and async readers)."""

    def __init__(self, last_id: int | None = None) -> None:
        self.last_id = last_id
        self.event = ""
        self.data: list[str] = []
        self.first = True

    def feed(self, raw: str) -> tuple[int | None, str, str] | None:
        """The event a blank line completes, else None."""
        line = raw.rstrip("\r\n")
        if self.first:
            line = line.removeprefix("\ufeff")
            self.first = False
        if not line:
            out = None
            if self.data:
                out = (self.last_id, self.event or "message", "\n".join(self.data))
            self.event, self.data = "", []
            return out
        if line.startswith(":"):
            return None
        name, sep, value = line.partition(":")
        if sep:
            value = value.removeprefix(" ")
        if name == "data":
            self.data.append(value)
        elif name == "event":
            self.event = value
        elif name == "id" and "\0" not in value:
            self.last_id = _int_or_none(value)
        return None


def _int_or_none(value: str) -> int | None:
    try:
        return int(value)
    except ValueError:
        return None


def stream_events(
    client: Client, job_id: int, after: int | None = None, deadline: float | None = None
) -> Iterator[tuple[int, str, dict[str, Any]]]:
    """``(id, type, data)`` of job ``job_id``'s events after event ``after`` (all when None).

    Reads with no read timeout (or until ``deadline``, a ``time.monotonic()`` value, then
    `TimeoutError`); when the connection drops (or closes before a final event while the
    job still runs), reconnects with ``Last-Event-ID`` up to `STREAM_RETRIES` times in a
    row. Stops after ``completed``, ``failed`` or ``cancelled``.
    """
    path = f"/v1/jobs/{job_id}/events"
    last, failures = after, 0
    while True:
        headers = {"Accept": "text/event-stream"}
        if last is not None:
            headers["Last-Event-ID"] = str(last)
        left = None if deadline is None else deadline - time.monotonic()
        if left is not None and left <= 0:
            raise TimeoutError(f"job {job_id}: deadline passed")
        timeout = httpx.Timeout(client.timeout, read=left)
        try:
            with client.http.stream("GET", path, headers=headers, timeout=timeout) as resp:
                if resp.status_code >= 400:
                    raise error_from_response(resp.status_code, resp.read(), f"GET {path}")
                for eid, kind, data in parse_sse(resp.iter_lines()):
                    failures, last = 0, eid if eid is not None else last
                    try:
                        payload = json.loads(data) if data.strip() else {}
                    except ValueError:
                        payload = {"data": data}
                    yield (last if last is not None else 0), kind, payload
                    if kind in TERMINAL:
                        return
                    if deadline is not None and time.monotonic() >= deadline:
                        raise TimeoutError(f"job {job_id}: deadline passed")
            if client.json("GET", f"/v1/jobs/{job_id}")["status"] in TERMINAL:
                return  # finished; the server had nothing after `last`
            error = "the server closed the stream early"
        except httpx.ReadTimeout:
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(f"job {job_id}: deadline passed") from None
            error = "read timeout"
        except httpx.TransportError as exc:
            error = str(exc) or type(exc).__name__
        failures += 1
        if failures > STREAM_RETRIES:
            raise ApiError(
                0,
                f"lost the event stream of job {job_id} at {client.url} ({error}); "
                f"{STREAM_RETRIES} reconnects failed. Is the server up?",
            )
        time.sleep(min(0.25 * 2**failures, 4.0))


def load_payload(obj: Any, what: str = "job spec") -> dict[str, Any]:
    """A JSON-ready dict from a path (str/Path to a .yaml/.yml/.json file), YAML/JSON text,
    a dict, or a pydantic model (``model_dump(mode="json", exclude_defaults=True)``)."""
    if hasattr(obj, "model_dump"):
        return obj.model_dump(mode="json", exclude_defaults=True)
    if isinstance(obj, Mapping):
        return dict(obj)
    where = what  # names the source in errors
    if isinstance(obj, Path) or (
        isinstance(obj, str)
        and "\n" not in obj
        and obj.strip().lower().endswith((".yaml", ".yml", ".json"))
    ):
        path = Path(obj)
        if not path.is_file():
            raise SpecError(f"{what} file not found: {path}")
        obj, where = path.read_text(), str(path)
    if not isinstance(obj, str):
        raise SpecError(f"{what}: give a file path, YAML text, a dict or a pydantic model")
    try:
        data = yaml.safe_load(obj)
    except yaml.YAMLError as exc:
        raise SpecError(f"{where}: not valid YAML/JSON: {exc}") from None
    if not isinstance(data, dict):
        raise SpecError(f"{where}: expected a mapping at the top level, got {type(data).__name__}")
    return data


def default_direction(metric: str) -> str:
    """``"max"`` for throughputs, cache hit ratios and sessions per hour, else ``"min"``."""
    big = metric.startswith(("tokens_per_s", "cache_hit_ratio")) or metric in MAX_DIRECTION
    return "max" if big else "min"


def where_params(where: Where) -> list[str]:
    """``{"metric": (lo, hi)}`` (None: open side) as ``["metric>=lo", "metric<=hi"]``;
    strings already written as ``metric>=v`` / ``metric<=v`` pass through."""
    if not where:
        return []
    if not isinstance(where, Mapping):
        out = [str(w).replace(" ", "") for w in where]
        for w in out:
            if ">=" not in w and "<=" not in w:
                raise ValueError(f"where {w!r}: write METRIC>=VALUE or METRIC<=VALUE")
        return out
    out = []
    for metric, bounds in where.items():
        if isinstance(bounds, str) or not isinstance(bounds, Sequence) or len(bounds) != 2:
            raise ValueError(f"where[{metric!r}]: give (lo, hi) with None for an open side")
        for op, v in zip((">=", "<="), bounds, strict=True):
            if v is not None:
                out.append(f"{metric}{op}{v if isinstance(v, int) else repr(float(v))}")
    return out


def write_files(files: Mapping[str, str], out: Path) -> list[Path]:
    """Write ``{relative path: text}`` under ``out`` (creating folders); refuse paths that
    would land outside it."""
    root = out.resolve()
    written = []
    for rel, text in files.items():
        path = (root / rel).resolve()
        if not path.is_relative_to(root):
            raise CodesignError(f"refusing to write {rel!r}: it is outside {out}")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        written.append(path)
    return written


def show_progress(job: Job, stream: Iterable[tuple[int, str, dict[str, Any]]]) -> None:
    """Consume ``stream`` showing job progress as a rich bar on stderr: evaluations of the
    budget, phase, feasible count, Pareto size and hypervolume."""
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    p = dict(job.progress)
    budget = p.get("budget") or ((job.data.get("spec") or {}).get("strategy") or {}).get("budget")
    status = job.status
    cols = (TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("{task.fields[info]}"))
    with Progress(*cols, TimeElapsedColumn(), console=Console(stderr=True)) as bar:
        task = bar.add_task(f"job {job.id} {job.name}", total=budget or None, info=status)
        for _, kind, data in stream:
            if kind == "status":
                status = data.get("status", status)
            elif kind in TERMINAL:
                status = kind
            if isinstance(data.get("progress"), dict):
                data = data["progress"]
            if kind == "pareto" and "size" in data:  # pareto events say "size"
                data = {**data, "pareto_size": data["size"]}
            p.update({k: data[k] for k in PROGRESS_KEYS if data.get(k) is not None})
            total = p.get("budget") or budget or None
            done = p.get("evaluations") or 0
            hv = p.get("hypervolume")
            of = "?" if total is None else format(total, ",")
            info = (
                f"{done:,}/{of} {status} {p.get('phase') or ''} "
                f"feasible {p.get('feasible') or 0:,} pareto {p.get('pareto_size') or 0} "
                f"HV {'-' if hv is None else format(hv, '.4g')}"
            )
            finished = kind == "completed" and total
            bar.update(task, total=total, completed=total if finished else done, info=info)
