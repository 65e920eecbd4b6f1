"""The simulator's per-request table: one plain Python list per request (a row), in a list.

A row is built with one list display and appended once, and the hot paths fetch a row once
and index it with literal positions (the constants below; ``# N_IN`` style comments name
them at each use), which is the cheapest mutable state a pure-Python event loop can keep.
Columns (``req.n_in`` etc.) are built on demand for tests and metrics.
"""

from __future__ import annotations

import numpy as np

NAN = float("nan")
COLUMNS = (
    "trace_idx",
    "copy",
    "worker",
    "part",
    "t_issue",
    "t_first",
    "t_finish",
    "n_in",
    "n_out",
    "cached",
    "host_tok",
    "pf_left",
    "pf_done",
    "sto_tok",
    "shared_tok",
    "load_s",
)
# positions in a row (the order of COLUMNS)
(
    TRACE_IDX,
    COPY,
    WORKER,  # the prefilling worker (agg or prefill), then the decode worker (disagg)
    PART,  # 0: main pools, 1: sub-agent pools
    T_ISSUE,  # client sends (response end + think)
    T_FIRST,
    T_FINISH,
    N_IN,
    N_OUT,
    CACHED,  # prefix-hit tokens (device + host + storage)
    HOST_TOK,  # of which loaded from host memory
    PF_LEFT,  # prefill tokens still to compute
    PF_DONE,  # tokens in the KV cache before the next chunk
    STO_TOK,  # of the prefix-hit tokens, loaded from the node's NVMe storage
    SHARED_TOK,  # of them, read from a KV store shared by the part's workers
    LOAD_S,  # seconds the prefill's first step spends loading the host/NVMe/shared prefix
) = range(len(COLUMNS))


class Requests:
    """One row per simulated request; times in seconds of simulated time (NaN: not yet)."""

    __slots__ = ("rows",)

    def __init__(self) -> None:
        self.rows: list[list] = []

    def add(
        self,
        r: int,
        copy: int,
        part: int,
        t_issue: float,
        n_in: int,
        n_out: int,
        worker: int = -1,
        cached: int = 0,
        host_tok: int = 0,
        pf_left: int = 0,
        sto_tok: int = 0,
        shared_tok: int = 0,
        load_s: float = 0.0,
    ) -> int:
        """Append a request (``pf_done`` starts at ``cached``); returns its id."""
        rows = self.rows
        rows.append(
            [
                r,
                copy,
                worker,
                part,
                t_issue,
                NAN,
                NAN,
                n_in,
                n_out,
                cached,
                host_tok,
                pf_left,
                cached,
                sto_tok,
                shared_tok,
                load_s,
            ]
        )
        return len(rows) - 1

    def __len__(self) -> int:
        return len(self.rows)

    def column(self, name: str) -> list:
        i = COLUMNS.index(name)
        return [row[i] for row in self.rows]

    def __getattr__(self, name: str) -> list:
        """A column as a list (a copy: changing it does not change the table)."""
        if name in COLUMNS:
            return self.column(name)
        raise AttributeError(name)

    def arrays(self) -> dict[str, np.ndarray]:
        return {
            name: np.asarray(self.column(name))
            for name in sorted(COLUMNS)  # the order of the original slots
            if name not in ("pf_left", "pf_done", "load_s")
        }
