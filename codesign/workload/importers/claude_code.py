"""Claude Code agent sessions (kv-cache-tester format, ``trace_NNNN.json[.gz]``).

One JSON object per file: ``id``, ``block_size``, ``hash_id_scope``, ``tool_tokens``,
``system_tokens`` and ``requests[]``; an entry is a call (``t`` s since session start,
``model``, ``in``, ``out``, ``hash_ids``, ``stop``, ``api_time``, ``think_time``) or a
sub-agent (``type: "subagent"`` with its own ``requests[]`` whose ``t`` is relative to the
spawn). Hash ids are session-local (sub-agents share the parent's namespace) and are
renumbered so sessions never collide. Sessions all start at t = 0 (the source is
anonymised and has no absolute timestamps).
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from codesign.workload.builder import TraceBuilder
from codesign.workload.importers.base import (
    Progress,
    TraceFormatError,
    bad_record,
    open_text,
    read_head,
    register,
)
from codesign.workload.schema import PRIMARY_KIND, STOP_CODE, Trace, TraceMeta

_NUM = (int, float)


_REQUIRED = object()


def _num(obj: dict[str, Any], key: str, path: Path, where: str, default: Any = _REQUIRED) -> Any:
    """A numeric field; missing/null gives ``default`` or, when required, an error."""
    val = obj.get(key)
    if val is None:
        if default is _REQUIRED:
            raise bad_record(path, where, key, "missing" if key not in obj else "null")
        return default
    if not isinstance(val, _NUM) or isinstance(val, bool):
        raise bad_record(path, where, key, f"expected a number, got {type(val).__name__}")
    return val


@register
class ClaudeCodeImporter:
    name: ClassVar[str] = "claude-code"
    description: ClassVar[str] = "Claude Code sessions with nested sub-agents (kv-cache-tester)"
    suffixes: ClassVar[tuple[str, ...]] = (".json",)

    def sniff(self, path: Path) -> bool:
        head = read_head(path, 2048).lstrip()
        return (head.startswith("{") and '"hash_id_scope"' in head) or (
            head.startswith("{") and '"block_size"' in head and '"requests"' in head
        )

    def load(self, paths: list[Path], progress: Progress | None = None) -> Trace:
        block_size = 0
        builder: TraceBuilder | None = None
        for i, path in enumerate(paths):
            doc = self._read(path)
            bs = _num(doc, "block_size", path, "session")
            if not isinstance(bs, int) or bs <= 0:
                raise bad_record(path, "session", "block_size", f"must be a positive int: {bs}")
            if builder is None:
                block_size = bs
                meta = TraceMeta(
                    name=paths[0].parent.name if len(paths) > 1 else paths[0].name,
                    source_format=self.name,
                    block_size_tokens=bs,
                    hash_scope="session",
                )
                builder = TraceBuilder(meta, local_hashes=True)
            elif bs != block_size:
                raise bad_record(
                    path, "session", "block_size", f"{bs} != {block_size} of {paths[0]}"
                )
            self._add_session(builder, doc, path)
            if progress is not None:
                progress(i + 1, len(paths))
        if builder is None:
            raise TraceFormatError("no Claude Code trace files given")
        return builder.build()

    @staticmethod
    def _read(path: Path) -> dict[str, Any]:
        try:
            with open_text(path) as fh:
                doc = json.load(fh)
        except json.JSONDecodeError as exc:
            raise TraceFormatError(f"{path}: line {exc.lineno}: invalid JSON: {exc.msg}") from exc
        except (OSError, EOFError, UnicodeDecodeError) as exc:
            raise TraceFormatError(f"{path}: cannot read: {exc}") from exc
        if not isinstance(doc, dict):
            raise bad_record(path, "top level", "(object)", "expected a JSON object")
        if not isinstance(doc.get("requests"), list):
            raise bad_record(path, "session", "requests", "missing or not a list")
        return doc

    def _add_session(self, b: TraceBuilder, doc: dict[str, Any], path: Path) -> None:
        tool = _num(doc, "tool_tokens", path, "session", -1)
        system = _num(doc, "system_tokens", path, "session", -1)
        sid = b.add_session(str(doc.get("id", path.name.split(".")[0])), 0.0, tool, system)
        primary = b.add_agent(sid, -1, PRIMARY_KIND, "main", 0.0, tool, system)
        calls: list[tuple[str, dict[str, Any]]] = []
        for j, entry in enumerate(doc["requests"]):
            where = f"requests[{j}]"
            if not isinstance(entry, dict):
                raise bad_record(path, where, "(object)", "expected a JSON object")
            if entry.get("type") == "subagent":
                self._add_subagent(b, sid, primary, entry, path, where)
            else:
                calls.append((where, entry))
        self._add_calls(b, primary, 0.0, calls, path)

    def _add_subagent(
        self,
        b: TraceBuilder,
        sid: int,
        parent: int,
        entry: dict[str, Any],
        path: Path,
        where: str,
    ) -> None:
        spawn = _num(entry, "t", path, where)
        subs = entry.get("requests")
        if not isinstance(subs, list):
            raise bad_record(path, where, "requests", "sub-agent without a requests list")
        duration_ms = _num(entry, "duration_ms", path, where, np.nan)
        agent = b.add_agent(
            sid,
            parent,
            str(entry.get("subagent_type") or "subagent"),
            str(entry.get("agent_id") or f"agent@{spawn}"),
            float(spawn),
            _num(entry, "tool_tokens", path, where, -1),
            _num(entry, "system_tokens", path, where, -1),
            float(spawn) + duration_ms / 1000.0,
        )
        calls = []
        for k, sub in enumerate(subs):
            if not isinstance(sub, dict):
                raise bad_record(path, f"{where}.requests[{k}]", "(object)", "expected an object")
            calls.append((f"{where}.requests[{k}]", sub))
        self._add_calls(b, agent, float(spawn), calls, path)

    def _add_calls(
        self,
        b: TraceBuilder,
        agent: int,
        t0_s: float,
        calls: list[tuple[str, dict[str, Any]]],
        path: Path,
    ) -> None:
        n = len(calls)
        if n == 0:
            return
        arrival = np.empty(n)
        inp = np.empty(n, np.int64)
        out = np.empty(n, np.int64)
        stop = np.empty(n, np.int8)
        gap = np.empty(n)
        server = np.empty(n)
        model = np.empty(n, np.int16)
        counts = np.empty(n, np.int64)
        hash_lists = []
        for i, (where, c) in enumerate(calls):
            arrival[i] = t0_s + _num(c, "t", path, where)
            inp[i] = _num(c, "in", path, where)
            out[i] = _num(c, "out", path, where)
            if inp[i] < 0 or out[i] < 0:
                raise bad_record(path, where, "in" if inp[i] < 0 else "out", "negative")
            s = c.get("stop") or ""
            code = STOP_CODE.get(s)
            if code is None:
                raise bad_record(path, where, "stop", f"unknown stop reason {s!r}")
            stop[i] = code
            gap[i] = _num(c, "think_time", path, where, np.nan)
            server[i] = _num(c, "api_time", path, where, np.nan)
            m = c.get("model")
            if m is not None and not isinstance(m, str):
                raise bad_record(path, where, "model", "expected a string")
            model[i] = b.model_code(m)
            hashes = c.get("hash_ids")
            if not isinstance(hashes, list):
                raise bad_record(path, where, "hash_ids", "missing or not a list")
            counts[i] = len(hashes)
            hash_lists.append(hashes)
        total = int(counts.sum())
        try:
            flat = np.fromiter(itertools.chain.from_iterable(hash_lists), np.int64, count=total)
        except (TypeError, ValueError, OverflowError) as exc:
            for (where, _), hashes in zip(calls, hash_lists, strict=True):
                for k, h in enumerate(hashes):
                    if not isinstance(h, int) or isinstance(h, bool):
                        msg = f"not an integer: {h!r}"
                        raise bad_record(path, where, f"hash_ids[{k}]", msg) from exc
            raise TraceFormatError(f"{path}: hash_ids: {exc}") from exc
        b.add_requests(
            agent,
            arrival_s=arrival,
            input_tokens=inp,
            output_tokens=out,
            stop=stop,
            gap_s=gap,
            server_s=server,
            model=model,
            hash_counts=counts,
            hash_ids=flat,
        )
