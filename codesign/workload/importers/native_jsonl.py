"""The native trace format as JSON lines (``*.trace.jsonl[.gz]``), versioned and lossless.

Line 1 is the header ``{"format": "codesign-trace", "version": 1, "meta": {...}}``; then
one record per line, sessions first, then agents, then requests in time order:

* ``{"type": "session", "id", "start_s", "tool_tokens", "system_tokens"}``
* ``{"type": "agent", "session", "parent", "kind", "name", "spawn_s", "end_s", "tool_tokens",
  "system_tokens"}`` (``session``/``parent`` are 0-based record indices; parent -1 = primary)
* ``{"type": "request", "agent", "arrival_s", "arrival_relative", "input_tokens",
  "output_tokens", "stop", "gap_s", "gap_kind", "server_s", "model", "compaction",
  "shared_prefix_tokens", "hash_ids"}``

Unknown numbers are ``null``; floats are written with Python's shortest round-trip repr,
so reading a written trace gives identical arrays.
"""

from __future__ import annotations

import gzip
import json
import math
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from codesign.workload.builder import TraceBuilder
from codesign.workload.importers.base import (
    Progress,
    TraceFormatError,
    bad_record,
    iter_lines,
    read_head,
    register,
)
from codesign.workload.schema import (
    FORMAT_VERSION,
    GAP_CODE,
    GAP_NAMES,
    STOP_CODE,
    STOP_NAMES,
    Trace,
    TraceMeta,
)

MAGIC = "codesign-trace"


def _f(x: float) -> float | None:
    return None if math.isnan(x) else float(x)


def write_jsonl(trace: Trace, path: Path | str) -> Path:
    """Write ``trace`` in the native JSONL format (gzipped when the name ends in .gz)."""
    path = Path(path)
    opener = gzip.open if path.name.endswith(".gz") else open
    t = trace
    models = t.meta.models
    with opener(path, "wt", encoding="utf-8") as fh:
        header = {"format": MAGIC, "version": FORMAT_VERSION, "meta": t.meta.model_dump()}
        fh.write(json.dumps(header) + "\n")
        for i in range(t.n_sessions):
            rec = {
                "type": "session",
                "id": t.session_ids[i],
                "start_s": float(t.session_start_s[i]),
                "tool_tokens": int(t.session_tool_tokens[i]),
                "system_tokens": int(t.session_system_tokens[i]),
            }
            fh.write(json.dumps(rec) + "\n")
        for i in range(t.n_agents):
            rec = {
                "type": "agent",
                "session": int(t.agent_session[i]),
                "parent": int(t.agent_parent[i]),
                "kind": t.agent_kind[i],
                "name": t.agent_name[i],
                "spawn_s": float(t.agent_spawn_s[i]),
                "end_s": _f(t.agent_end_s[i]),
                "tool_tokens": int(t.agent_tool_tokens[i]),
                "system_tokens": int(t.agent_system_tokens[i]),
            }
            fh.write(json.dumps(rec) + "\n")
        cols = [
            t.req_agent.tolist(),
            t.arrival_s.tolist(),
            t.arrival_relative.tolist(),
            t.input_tokens.tolist(),
            t.output_tokens.tolist(),
            t.stop.tolist(),
            t.gap_s.tolist(),
            t.gap_kind.tolist(),
            t.server_s.tolist(),
            t.model.tolist(),
            t.compaction.tolist(),
            t.shared_prefix_tokens.tolist(),
        ]
        off = t.hash_offsets
        for i, row in enumerate(zip(*cols, strict=True)):
            agent, arr, rel, inp, out, stop, gap, kind, server, model, comp, spt = row
            rec = {
                "type": "request",
                "agent": agent,
                "arrival_s": arr,
                "arrival_relative": rel,
                "input_tokens": inp,
                "output_tokens": out,
                "stop": STOP_NAMES[stop],
                "gap_s": _f(gap),
                "gap_kind": GAP_NAMES[kind],
                "server_s": _f(server),
                "model": models[model] if model >= 0 else None,
                "compaction": comp,
                "shared_prefix_tokens": spt if spt >= 0 else None,
                "hash_ids": t.hash_ids[off[i] : off[i + 1]].tolist(),
            }
            fh.write(json.dumps(rec) + "\n")
    return path


def _nan(x: float | None) -> float:
    return float("nan") if x is None else float(x)


def _get(
    rec: dict[str, Any],
    key: str,
    types: tuple[type, ...],
    where: str,
    path: Path,
    nullable: bool = False,
) -> Any:
    if key not in rec:
        raise bad_record(path, where, key, "missing")
    val = rec[key]
    if val is None and nullable:
        return None
    if not isinstance(val, types) or (isinstance(val, bool) and bool not in types):
        raise bad_record(path, where, key, f"expected {types[0].__name__}, got {val!r:.40}")
    return val


@register
class NativeJsonlImporter:
    name: ClassVar[str] = "native"
    description: ClassVar[str] = "codesign native trace, JSON lines (lossless, versioned)"
    suffixes: ClassVar[tuple[str, ...]] = (".trace.jsonl", ".jsonl")

    def sniff(self, path: Path) -> bool:
        return f'"format": "{MAGIC}"' in read_head(path, 512)

    def load(self, paths: list[Path], progress: Progress | None = None) -> Trace:
        if len(paths) != 1:
            raise TraceFormatError("the native format is one file per trace; give a file")
        path = paths[0]
        lines = iter_lines(path)
        try:
            lineno, first = next(lines)
            header = json.loads(first)
        except StopIteration:
            raise TraceFormatError(f"{path}: empty file") from None
        except json.JSONDecodeError as exc:
            raise TraceFormatError(f"{path}: line 1: invalid JSON header: {exc.msg}") from exc
        if not isinstance(header, dict) or header.get("format") != MAGIC:
            raise bad_record(path, "line 1", "format", f"not a {MAGIC} file")
        if header.get("version") != FORMAT_VERSION:
            raise bad_record(
                path,
                "line 1",
                "version",
                f"{header.get('version')!r} unsupported (this version reads {FORMAT_VERSION})",
            )
        try:
            meta = TraceMeta.model_validate(header.get("meta", {}))
        except ValueError as exc:
            raise bad_record(path, "line 1", "meta", str(exc).splitlines()[0]) from exc
        b = TraceBuilder(meta, local_hashes=False)
        req: dict[str, list[Any]] = {
            k: []
            for k in (
                "agent",
                "arrival_s",
                "arrival_relative",
                "input_tokens",
                "output_tokens",
                "stop",
                "gap_s",
                "gap_kind",
                "server_s",
                "model",
                "compaction",
                "shared_prefix_tokens",
                "counts",
            )
        }
        hashes: list[int] = []
        n_sessions = 0
        for lineno, line in lines:
            where = f"line {lineno}"
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as exc:
                raise TraceFormatError(f"{path}: {where}: invalid JSON: {exc.msg}") from exc
            if not isinstance(rec, dict):
                raise bad_record(path, where, "(object)", "expected a JSON object")
            kind = rec.get("type")
            g = lambda k, t, nullable=False, r=rec, w=where: _get(r, k, t, w, path, nullable)  # noqa: E731
            if kind == "session":
                b.add_session(
                    g("id", (str,)),
                    g("start_s", (float, int)),
                    g("tool_tokens", (int,)),
                    g("system_tokens", (int,)),
                )
                n_sessions += 1
            elif kind == "agent":
                s = g("session", (int,))
                if not 0 <= s < n_sessions:
                    raise bad_record(path, where, "session", f"no session record {s}")
                b.add_agent(
                    s,
                    g("parent", (int,)),
                    g("kind", (str,)),
                    g("name", (str,)),
                    g("spawn_s", (float, int)),
                    g("tool_tokens", (int,)),
                    g("system_tokens", (int,)),
                    _nan(g("end_s", (float, int), True)),
                )
            elif kind == "request":
                agent = g("agent", (int,))
                if not 0 <= agent < b.n_agents:
                    raise bad_record(path, where, "agent", f"no agent record {agent}")
                req["agent"].append(agent)
                for key in ("arrival_s",):
                    req[key].append(g(key, (float, int)))
                req["arrival_relative"].append(g("arrival_relative", (bool,)))
                req["compaction"].append(g("compaction", (bool,)))
                for key in ("input_tokens", "output_tokens"):
                    val = g(key, (int,))
                    if val < 0:
                        raise bad_record(path, where, key, "negative")
                    req[key].append(val)
                stop = STOP_CODE.get(g("stop", (str,)))
                if stop is None:
                    raise bad_record(path, where, "stop", f"unknown stop reason {rec['stop']!r}")
                req["stop"].append(stop)
                gk = GAP_CODE.get(g("gap_kind", (str,)))
                if gk is None:
                    raise bad_record(path, where, "gap_kind", f"unknown {rec['gap_kind']!r}")
                req["gap_kind"].append(gk)
                for key in ("gap_s", "server_s"):
                    val = g(key, (float, int), True)
                    req[key].append(np.nan if val is None else val)
                model = g("model", (str,), True)
                req["model"].append(b.model_code(model))
                spt = g("shared_prefix_tokens", (int,), True)
                req["shared_prefix_tokens"].append(-1 if spt is None else spt)
                h = g("hash_ids", (list,))
                if not all(isinstance(x, int) and not isinstance(x, bool) for x in h):
                    raise bad_record(path, where, "hash_ids", "expected a list of integers")
                req["counts"].append(len(h))
                hashes.extend(h)
            else:
                raise bad_record(path, where, "type", f"unknown record type {kind!r}")
        counts = req.pop("counts")
        agents = req.pop("agent")
        b.add_requests(
            np.array(agents, dtype=np.int64),
            **req,
            hash_counts=counts,
            hash_ids=np.array(hashes, dtype=np.int64),
        )
        if progress is not None:
            progress(1, 1)
        return b.build()
