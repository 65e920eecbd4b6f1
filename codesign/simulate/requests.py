"""The simulator's per-request table (plain Python lists: appends and index reads are the
cheapest state a pure-Python event loop can keep)."""

from __future__ import annotations

import numpy as np


class Requests:
    """One row per simulated request; times in seconds of simulated time (NaN: not yet)."""

    __slots__ = (
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

    def add(self, r: int, copy: int, part: int, t_issue: float, n_in: int, n_out: int) -> int:
        rid = len(self.trace_idx)
        self.trace_idx.append(r)
        self.copy.append(copy)
        self.worker.append(-1)
        self.part.append(part)
        self.t_issue.append(t_issue)
        self.t_first.append(float("nan"))
        self.t_finish.append(float("nan"))
        self.n_in.append(n_in)
        self.n_out.append(n_out)
        self.cached.append(0)
        self.host_tok.append(0)
        self.pf_left.append(0)
        self.pf_done.append(0)
        return rid

    def __len__(self) -> int:
        return len(self.trace_idx)

    def arrays(self) -> dict[str, np.ndarray]:
        return {
            name: np.asarray(getattr(self, name))
            for name in self.__slots__
            if name not in ("pf_left", "pf_done")
        }
