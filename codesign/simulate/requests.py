"""The simulator's per-request table (plain Python lists: appends and index reads are the
cheapest state a pure-Python event loop can keep)."""

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
)


class Requests:
    """One row per simulated request; times in seconds of simulated time (NaN: not yet)."""

    __slots__ = (
        "_appends",
        "cached",
        "copy",
        "host_tok",
        "n_in",
        "n_out",
        "part",
        "pf_done",
        "pf_left",
        "t_finish",
        "t_first",
        "t_issue",
        "trace_idx",
        "worker",
    )

    def __init__(self) -> None:
        self.trace_idx: list[int] = []
        self.copy: list[int] = []
        self.worker: list[int] = []  # KV-holding worker (agg or decode)
        self.part: list[int] = []  # 0: main pools, 1: sub-agent pools
        self.t_issue: list[float] = []  # client sends (response end + think)
        self.t_first: list[float] = []
        self.t_finish: list[float] = []
        self.n_in: list[int] = []
        self.n_out: list[int] = []
        self.cached: list[int] = []  # prefix-hit tokens (device + host)
        self.host_tok: list[int] = []  # of which loaded from host memory
        self.pf_left: list[int] = []  # prefill tokens still to compute
        self.pf_done: list[int] = []  # tokens in the KV cache before the next chunk
        self._appends = tuple(getattr(self, n).append for n in COLUMNS)

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
    ) -> int:
        """Append a request (``pf_done`` starts at ``cached``); returns its id."""
        rid = len(self.trace_idx)
        a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12 = self._appends  # COLUMNS
        a0(r)
        a1(copy)
        a2(worker)
        a3(part)
        a4(t_issue)
        a5(NAN)
        a6(NAN)
        a7(n_in)
        a8(n_out)
        a9(cached)
        a10(host_tok)
        a11(pf_left)
        a12(cached)
        return rid

    def __len__(self) -> int:
        return len(self.trace_idx)

    def arrays(self) -> dict[str, np.ndarray]:
        return {
            name: np.asarray(getattr(self, name))
            for name in sorted(COLUMNS)  # the order of the original slots
            if name not in ("pf_left", "pf_done")
        }
