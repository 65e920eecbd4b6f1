"""Assemble a `Trace` from per-agent request batches (what importers and the generator use).

The builder collects numpy chunks and turns them into the columnar `Trace` in one step, so
an importer that raises half-way leaves nothing behind. It also derives what formats do not
carry: the gap kind from the previous stop reason of the same agent, and compaction
markers from the input-size rule used in the traces README.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from codesign.workload.schema import (
    GAP_HUMAN,
    GAP_NONE,
    GAP_OTHER,
    GAP_TOOL,
    STOP_END_TURN,
    STOP_TOOL_USE,
    Trace,
    TraceMeta,
    gather_segments,
    model_tier,
)

I64, F64 = np.int64, np.float64
TIERS = ["main", "small"]
# compaction: input < COMPACTION_RATIO x previous input of the same agent, previous >= min
COMPACTION_RATIO = 0.5
COMPACTION_MIN_PREVIOUS_TOKENS = 40_000


def _col(value: object, n: int, dtype: type, default: object) -> np.ndarray:
    if value is None:
        return np.full(n, default, dtype=dtype)
    arr = np.asarray(value, dtype=dtype)
    if arr.ndim == 0:
        return np.full(n, arr, dtype=dtype)
    if arr.shape != (n,):
        raise ValueError(f"column has {arr.shape[0]} values, expected {n}")
    return arr


class TraceBuilder:
    """Collect sessions, agents and request batches; `build()` returns the `Trace`.

    ``local_hashes``: the source's hash ids are only comparable within a session (Claude
    Code traces); they are renumbered so that different sessions never share an id.
    """

    def __init__(self, meta: TraceMeta, local_hashes: bool = False) -> None:
        self.meta = meta.model_copy(update={"tiers": list(TIERS)})
        self.local_hashes = local_hashes
        self._sessions: list[tuple[str, float, int, int]] = []
        self._agents: list[tuple[int, int, str, str, float, int, int, float]] = []
        self._chunks: dict[str, list[np.ndarray]] = {}
        self._hash_chunks: list[np.ndarray] = []
        self._hash_counts: list[np.ndarray] = []
        self._open_session_chunk = 0  # first hash chunk of the session being filled
        self._next_hash = 0
        self._models: dict[str, int] = {m: i for i, m in enumerate(meta.models)}

    # ---- structure ------------------------------------------------------------------
    def add_session(
        self,
        session_id: str,
        start_s: float = 0.0,
        tool_tokens: int = -1,
        system_tokens: int = -1,
    ) -> int:
        self._close_session_hashes()
        self._sessions.append(
            (str(session_id), float(start_s), int(tool_tokens), int(system_tokens))
        )
        return len(self._sessions) - 1

    def add_agent(
        self,
        session: int,
        parent: int = -1,
        kind: str = "primary",
        name: str = "main",
        spawn_s: float = 0.0,
        tool_tokens: int = -1,
        system_tokens: int = -1,
        end_s: float = float("nan"),
    ) -> int:
        self._agents.append(
            (
                session,
                parent,
                kind,
                name,
                float(spawn_s),
                int(tool_tokens),
                int(system_tokens),
                float(end_s),
            )
        )
        return len(self._agents) - 1

    @property
    def n_agents(self) -> int:
        return len(self._agents)

    def model_code(self, model: str | None) -> int:
        if not model:
            return -1
        code = self._models.get(model)
        if code is None:
            code = self._models[model] = len(self._models)
        return code

    # ---- requests -------------------------------------------------------------------
    def add_requests(
        self,
        agent: int | np.ndarray,
        *,
        arrival_s: Sequence[float] | np.ndarray,
        input_tokens: Sequence[int] | np.ndarray,
        output_tokens: Sequence[int] | np.ndarray,
        stop: Sequence[int] | np.ndarray | None = None,
        gap_s: Sequence[float] | np.ndarray | None = None,
        gap_kind: Sequence[int] | np.ndarray | None = None,
        server_s: Sequence[float] | np.ndarray | None = None,
        model: Sequence[int] | np.ndarray | int | None = None,
        compaction: Sequence[bool] | np.ndarray | None = None,
        arrival_relative: Sequence[bool] | np.ndarray | bool = False,
        shared_prefix_tokens: Sequence[int] | np.ndarray | None = None,
        hash_counts: Sequence[int] | np.ndarray | None = None,
        hash_ids: np.ndarray | None = None,
    ) -> None:
        """Append a batch of requests (of one agent, or ``agent`` per request).

        ``model`` holds codes from `model_code`; ``gap_kind``/``compaction`` of -1 (or
        None) are derived from the previous request of the same agent.
        """
        n = len(arrival_s)
        cols = {
            "req_agent": _col(agent, n, I64, 0),
            "arrival_s": _col(arrival_s, n, F64, 0.0),
            "input_tokens": _col(input_tokens, n, I64, 0),
            "output_tokens": _col(output_tokens, n, I64, 0),
            "stop": _col(stop, n, np.int8, 0),
            "gap_s": _col(gap_s, n, F64, np.nan),
            "gap_kind": _col(gap_kind, n, np.int8, -1),
            "server_s": _col(server_s, n, F64, np.nan),
            "model": _col(model, n, np.int16, -1),
            "compaction": _col(compaction, n, np.int8, -1),
            "arrival_relative": _col(arrival_relative, n, bool, False),
            "shared_prefix_tokens": _col(shared_prefix_tokens, n, I64, -1),
        }
        for key, val in cols.items():
            self._chunks.setdefault(key, []).append(val)
        counts = _col(hash_counts, n, I64, 0)
        flat = np.zeros(0, I64) if hash_ids is None else np.asarray(hash_ids, dtype=I64)
        if int(counts.sum()) != flat.size:
            raise ValueError("hash_counts do not add up to the number of hash ids")
        self._hash_counts.append(counts)
        self._hash_chunks.append(flat)

    def _close_session_hashes(self) -> None:
        """Renumber the finished session's local hash ids into a fresh global range."""
        first = self._open_session_chunk
        self._open_session_chunk = len(self._hash_chunks)
        if not self.local_hashes or first == len(self._hash_chunks):
            return
        chunks = self._hash_chunks[first:]
        flat = np.concatenate(chunks)
        if flat.size == 0:
            return
        uniq, inverse = np.unique(flat, return_inverse=True)
        inverse = inverse.astype(I64) + self._next_hash
        self._next_hash += int(uniq.size)
        bounds = np.cumsum([c.size for c in chunks])[:-1]
        self._hash_chunks[first:] = np.split(inverse, bounds)

    # ---- result ---------------------------------------------------------------------
    def build(self) -> Trace:
        self._close_session_hashes()
        s = self._sessions
        a = self._agents
        cat = {k: np.concatenate(v) for k, v in self._chunks.items()}
        if not cat:
            cat = {
                k: np.zeros(0, dtype=d)
                for k, d in (
                    ("req_agent", I64),
                    ("arrival_s", F64),
                    ("input_tokens", I64),
                    ("output_tokens", I64),
                    ("stop", np.int8),
                    ("gap_s", F64),
                    ("gap_kind", np.int8),
                    ("server_s", F64),
                    ("model", np.int16),
                    ("compaction", np.int8),
                    ("arrival_relative", bool),
                    ("shared_prefix_tokens", I64),
                )
            }
        counts = np.concatenate(self._hash_counts) if self._hash_counts else np.zeros(0, I64)
        flat = np.concatenate(self._hash_chunks) if self._hash_chunks else np.zeros(0, I64)
        agent_session = np.array([x[0] for x in a], dtype=I64)
        n = cat["req_agent"].size
        # order requests by (session, arrival), keeping insertion order for ties
        order = np.lexsort((np.arange(n), cat["arrival_s"], agent_session[cat["req_agent"]]))
        offsets = np.zeros(n + 1, dtype=I64)
        np.cumsum(counts, out=offsets[1:])
        if not np.array_equal(order, np.arange(n)):
            flat = flat[gather_segments(offsets, order)]
            counts = counts[order]
            offsets[1:] = np.cumsum(counts)
            cat = {k: v[order] for k, v in cat.items()}
        models = sorted(self._models, key=self._models.__getitem__)
        tier_of_model = np.array([TIERS.index(model_tier(m)) for m in models] + [0], np.int8)
        tier = tier_of_model[cat["model"].astype(I64)]  # -1 (unknown) → last entry → main
        gap_kind, compaction = _derive_gaps_and_compaction(cat)
        meta = self.meta.model_copy(update={"models": models})
        trace = Trace(
            meta=meta,
            session_ids=np.array([x[0] for x in s], dtype=object),
            session_start_s=np.array([x[1] for x in s], dtype=F64),
            session_tool_tokens=np.array([x[2] for x in s], dtype=I64),
            session_system_tokens=np.array([x[3] for x in s], dtype=I64),
            agent_session=agent_session,
            agent_parent=np.array([x[1] for x in a], dtype=I64),
            agent_kind=np.array([x[2] for x in a], dtype=object),
            agent_name=np.array([x[3] for x in a], dtype=object),
            agent_spawn_s=np.array([x[4] for x in a], dtype=F64),
            agent_end_s=np.array([x[7] for x in a], dtype=F64),
            agent_tool_tokens=np.array([x[5] for x in a], dtype=I64),
            agent_system_tokens=np.array([x[6] for x in a], dtype=I64),
            req_agent=cat["req_agent"],
            arrival_s=cat["arrival_s"],
            arrival_relative=cat["arrival_relative"],
            input_tokens=cat["input_tokens"],
            output_tokens=cat["output_tokens"],
            stop=cat["stop"],
            gap_s=cat["gap_s"],
            gap_kind=gap_kind,
            server_s=cat["server_s"],
            model=cat["model"],
            tier=tier,
            compaction=compaction,
            shared_prefix_tokens=cat["shared_prefix_tokens"],
            hash_offsets=offsets,
            hash_ids=flat,
        )
        return trace.validate()


def previous_in_agent(req_agent: np.ndarray) -> np.ndarray:
    """Index of the same agent's previous request (-1 for its first); requests in time order."""
    n = req_agent.size
    order = np.argsort(req_agent, kind="stable")
    prev = np.full(n, -1, dtype=I64)
    if n > 1:
        same = req_agent[order[1:]] == req_agent[order[:-1]]
        prev[order[1:][same]] = order[:-1][same]
    return prev


def _derive_gaps_and_compaction(cat: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Fill unknown (-1) gap kinds and compaction markers from the previous request."""
    prev = previous_in_agent(cat["req_agent"])
    has_prev = prev >= 0
    prev_stop = np.where(has_prev, cat["stop"][np.maximum(prev, 0)], -1)
    derived_gap = np.select(
        [~has_prev, prev_stop == STOP_TOOL_USE, prev_stop == STOP_END_TURN],
        [GAP_NONE, GAP_TOOL, GAP_HUMAN],
        GAP_OTHER,
    ).astype(np.int8)
    gap_kind = np.where(cat["gap_kind"] >= 0, cat["gap_kind"], derived_gap).astype(np.int8)
    prev_in = np.where(has_prev, cat["input_tokens"][np.maximum(prev, 0)], 0)
    derived_comp = (
        has_prev
        & (prev_in >= COMPACTION_MIN_PREVIOUS_TOKENS)
        & (cat["input_tokens"] < COMPACTION_RATIO * prev_in)
    )
    compaction = np.where(cat["compaction"] >= 0, cat["compaction"] == 1, derived_comp)
    return gap_kind, compaction
