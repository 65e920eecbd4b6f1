"""One columnar schema for every agent trace: sessions → agents → requests.

A `Trace` holds three tables as numpy struct-of-arrays:

* sessions (S rows): id, start time, static tool/system prefix sizes;
* agents (A rows): the session they belong to, their parent agent (-1 for the primary
  agent), their kind ("primary", "Explore", ...), name and spawn time;
* requests (R rows), sorted by (session, arrival): agent, arrival, token counts, stop
  reason, the client-side gap before the request (tool execution or human think time),
  server time, model, a compaction marker, and prefix information: block hashes in CSR
  form (``hash_offsets``, ``hash_ids``; one id per full block of ``block_size_tokens``)
  and/or a shared-prefix length in tokens.

Hash ids are globally comparable inside one `Trace`: importers of formats whose ids are
session-local renumber them so that sessions never share ids by accident. Times are in
seconds from the trace start; a session's requests are at ``session_start_s + t``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Literal

import numpy as np
from pydantic import BaseModel, Field

from codesign.errors import SpecError

FORMAT_VERSION = 1

STOP_NAMES: tuple[str, ...] = ("", "tool_use", "end_turn", "max_tokens", "stop_sequence")
STOP_CODE = {name: i for i, name in enumerate(STOP_NAMES)}
STOP_TOOL_USE = STOP_CODE["tool_use"]
STOP_END_TURN = STOP_CODE["end_turn"]

GAP_NAMES: tuple[str, ...] = ("none", "tool", "human", "other")
GAP_CODE = {name: i for i, name in enumerate(GAP_NAMES)}
GAP_NONE, GAP_TOOL, GAP_HUMAN, GAP_OTHER = range(4)

PRIMARY_KIND = "primary"

# model-name fragments that put a model in the "small" tier; everything else is "main"
SMALL_MODEL_MARKERS = ("haiku", "mini", "nano", "flash", "small", "lite")


def model_tier(model: str) -> str:
    """Agent model tier from a model name: "small" for haiku/mini/flash-class, else "main"."""
    name = model.lower()
    return "small" if any(m in name for m in SMALL_MODEL_MARKERS) else "main"


class TraceMeta(BaseModel):
    """Trace-level metadata; the columns live in `Trace`."""

    format_version: int = FORMAT_VERSION
    name: str = "trace"
    source_format: str = Field("native", description="importer that produced the trace")
    block_size_tokens: int = Field(0, ge=0, description="tokens per hash block; 0 = no hashes")
    hash_scope: Literal["session", "global", "none"] = Field(
        "none", description="where the source's hash ids were comparable (informational)"
    )
    models: list[str] = Field(default_factory=list, description="model names; request.model")
    tiers: list[str] = Field(default_factory=list, description="tier names; request.tier")
    description: str = ""


# the columns of each table (session, agent and request rows), in file order
REQUEST_COLUMNS = (
    "req_agent",
    "arrival_s",
    "arrival_relative",
    "input_tokens",
    "output_tokens",
    "stop",
    "gap_s",
    "gap_kind",
    "server_s",
    "model",
    "tier",
    "compaction",
    "shared_prefix_tokens",
)
SESSION_COLUMNS = ("session_ids", "session_start_s", "session_tool_tokens", "session_system_tokens")
AGENT_COLUMNS = (
    "agent_session",
    "agent_parent",
    "agent_kind",
    "agent_name",
    "agent_spawn_s",
    "agent_end_s",
    "agent_tool_tokens",
    "agent_system_tokens",
)

I64 = np.int64
F64 = np.float64


@dataclass(frozen=True, eq=False)
class Trace:
    """A trace as struct-of-arrays; build it with `TraceBuilder`, never by hand."""

    meta: TraceMeta
    # sessions
    session_ids: np.ndarray  # object (str)
    session_start_s: np.ndarray  # f8
    session_tool_tokens: np.ndarray  # i8, -1 unknown
    session_system_tokens: np.ndarray  # i8, -1 unknown
    # agents
    agent_session: np.ndarray  # i8
    agent_parent: np.ndarray  # i8, -1 for the primary agent
    agent_kind: np.ndarray  # object (str)
    agent_name: np.ndarray  # object (str)
    agent_spawn_s: np.ndarray  # f8, absolute
    agent_end_s: np.ndarray  # f8, absolute end of the agent's work (NaN unknown)
    agent_tool_tokens: np.ndarray  # i8, -1 unknown
    agent_system_tokens: np.ndarray  # i8, -1 unknown
    # requests (sorted by session, then arrival)
    req_agent: np.ndarray  # i8
    arrival_s: np.ndarray  # f8 absolute
    arrival_relative: np.ndarray  # bool: replay as previous response end + gap_s
    input_tokens: np.ndarray  # i8
    output_tokens: np.ndarray  # i8
    stop: np.ndarray  # i1 codes into STOP_NAMES
    gap_s: np.ndarray  # f8, NaN unknown: client wait before this request
    gap_kind: np.ndarray  # i1 codes into GAP_NAMES
    server_s: np.ndarray  # f8, NaN unknown
    model: np.ndarray  # i2 codes into meta.models (-1 unknown)
    tier: np.ndarray  # i1 codes into meta.tiers
    compaction: np.ndarray  # bool: context was summarised before this request
    shared_prefix_tokens: np.ndarray  # i8, -1 unknown
    hash_offsets: np.ndarray  # i8, R+1
    hash_ids: np.ndarray  # i8 flat
    _cache: dict = field(default_factory=dict, repr=False, compare=False)

    # ---- sizes and derived columns -------------------------------------------------
    @property
    def n_sessions(self) -> int:
        return int(self.session_ids.size)

    @property
    def n_agents(self) -> int:
        return int(self.agent_session.size)

    @property
    def n_requests(self) -> int:
        return int(self.req_agent.size)

    @property
    def has_hashes(self) -> bool:
        return self.meta.block_size_tokens > 0 and self.hash_ids.size > 0

    @property
    def req_session(self) -> np.ndarray:
        return self.agent_session[self.req_agent]

    @property
    def req_is_primary(self) -> np.ndarray:
        return self.agent_parent[self.req_agent] < 0

    @property
    def blocks_per_request(self) -> np.ndarray:
        return np.diff(self.hash_offsets)

    def request_hashes(self, i: int) -> np.ndarray:
        return self.hash_ids[self.hash_offsets[i] : self.hash_offsets[i + 1]]

    def tier_code(self, name: str) -> int:
        return self.meta.tiers.index(name) if name in self.meta.tiers else -1

    # ---- checks and subsets --------------------------------------------------------
    def validate(self) -> Trace:
        """Raise SpecError when column lengths or references disagree."""
        s, a, r = self.n_sessions, self.n_agents, self.n_requests
        groups = {s: SESSION_COLUMNS, a: AGENT_COLUMNS, r: REQUEST_COLUMNS}
        for n, names in groups.items():
            for name in names:
                if getattr(self, name).shape != (n,):
                    raise SpecError(f"trace column {name}: {getattr(self, name).shape} != ({n},)")
        if self.hash_offsets.shape != (r + 1,) or self.hash_offsets[-1] != self.hash_ids.size:
            raise SpecError("trace column hash_offsets does not match hash_ids")
        if a and (self.agent_session.min() < 0 or self.agent_session.max() >= s):
            raise SpecError("trace column agent_session refers to a missing session")
        if r and (self.req_agent.min() < 0 or self.req_agent.max() >= a):
            raise SpecError("trace column req_agent refers to a missing agent")
        if r and (self.input_tokens.min() < 0 or self.output_tokens.min() < 0):
            raise SpecError("trace has negative token counts")
        return self

    def select_sessions(self, sessions: np.ndarray | list[int]) -> Trace:
        """A new trace with only the given sessions (indices), renumbered in that order."""
        keep_s = np.asarray(sessions, dtype=I64)
        s_new = np.full(self.n_sessions, -1, dtype=I64)
        s_new[keep_s] = np.arange(keep_s.size)
        a_keep = np.flatnonzero(s_new[self.agent_session] >= 0)
        a_keep = a_keep[np.argsort(s_new[self.agent_session[a_keep]], kind="stable")]
        a_new = np.full(self.n_agents, -1, dtype=I64)
        a_new[a_keep] = np.arange(a_keep.size)
        r_keep = np.flatnonzero(a_new[self.req_agent] >= 0)
        r_keep = r_keep[np.argsort(s_new[self.req_session[r_keep]], kind="stable")]
        counts = self.blocks_per_request[r_keep]
        offsets = np.zeros(r_keep.size + 1, dtype=I64)
        np.cumsum(counts, out=offsets[1:])
        flat = gather_segments(self.hash_offsets, r_keep)
        parent = self.agent_parent[a_keep]
        cols: dict[str, np.ndarray] = {
            "session_ids": self.session_ids[keep_s],
            "session_start_s": self.session_start_s[keep_s],
            "session_tool_tokens": self.session_tool_tokens[keep_s],
            "session_system_tokens": self.session_system_tokens[keep_s],
            "agent_session": s_new[self.agent_session[a_keep]],
            "agent_parent": np.where(parent >= 0, a_new[np.maximum(parent, 0)], -1),
            "hash_offsets": offsets,
            "hash_ids": self.hash_ids[flat],
            "req_agent": a_new[self.req_agent[r_keep]],
        }
        for f in fields(self):
            if f.name in cols or f.name in ("meta", "_cache"):
                continue
            col = getattr(self, f.name)
            if f.name.startswith("agent_"):
                cols[f.name] = col[a_keep]
            elif not f.name.startswith("session_"):
                cols[f.name] = col[r_keep]
        return replace(self, **cols, _cache={})

    def with_meta(self, **changes: object) -> Trace:
        return replace(self, meta=self.meta.model_copy(update=changes), _cache={})


def gather_segments(offsets: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Flat indices of the CSR segments ``rows`` (in that order), without a Python loop."""
    starts = offsets[rows]
    counts = offsets[rows + 1] - starts
    total = int(counts.sum())
    if total == 0:
        return np.zeros(0, dtype=I64)
    seg_start = np.zeros(rows.size, dtype=I64)
    np.cumsum(counts[:-1], out=seg_start[1:])
    idx = np.arange(total, dtype=I64)
    idx += np.repeat(starts - seg_start, counts)
    return idx


def segment_ids(offsets: np.ndarray) -> np.ndarray:
    """For a CSR offsets array, the row index of every flat element."""
    counts = np.diff(offsets)
    return np.repeat(np.arange(counts.size, dtype=I64), counts)
