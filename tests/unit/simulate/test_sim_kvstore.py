"""The run-level prefix cache counted by hand."""

from __future__ import annotations

import numpy as np
from sim_helpers import block_trace

from codesign.simulate.kvstore import RunCache, request_runs


def test_runs_split_at_non_consecutive_ids():
    tr = block_trace(
        [
            {"arrival": 0.0, "server": 1.0, "input": 500, "output": 1, "blocks": [0, 1, 2, 7, 8]},
            {"arrival": 2.0, "server": 1.0, "input": 0, "output": 1, "blocks": []},
            {"arrival": 4.0, "server": 1.0, "input": 300, "output": 1, "blocks": [0, 1, 2]},
        ]
    )
    runs = request_runs(tr)
    assert runs.off == [0, 2, 2, 3]
    assert runs.keys == [0, 7, 0] and runs.lengths == [3, 2, 3]


def test_hits_tail_eviction_to_host_and_host_eviction():
    c = RunCache(cap_dev_blocks=10, cap_host_blocks=4)
    c.touch([1], [6], owner=0, now_s=0.0)  # run 1: 6 blocks on the device
    assert c.lookup([1], [8]) == (6, 0)
    c.touch([2], [7], owner=1, now_s=1.0)  # 13 > 10: run 1 loses its 3 tail blocks to host
    assert c.lookup([1], [6]) == (3, 3)
    assert c.used_dev == 10 and c.used_host == 3
    # run 3 pushes run 1 off the device and 2 tail blocks of run 2 to the host; the host
    # (4 blocks) then drops the oldest: run 1's tail, keeping its first 2 blocks
    c.touch([3], [5], owner=2, now_s=2.0)
    assert c.used_dev == 10 and c.used_host == 4
    assert c.lookup([1], [6]) == (0, 2)
    assert c.lookup([2], [7]) == (5, 2)
    # a hit in the host tier promotes the run back to the device
    c.touch([1], [6], owner=0, now_s=3.0)
    assert c.lookup([1], [6]) == (6, 0)


def test_prefix_stops_at_first_missing_run():
    c = RunCache(100, 0)
    c.touch([5, 9], [4, 2], owner=0, now_s=0.0)
    assert c.lookup([5, 9], [4, 3]) == (6, 0)  # run 9 holds 2 of the 3 blocks
    assert c.lookup([5, 8, 9], [4, 1, 2]) == (4, 0)  # run 8 missing: the prefix ends there
    assert c.lookup([6], [4]) == (0, 0)


def test_pinned_session_survives_eviction_during_its_gap():
    pins: dict[int, float] = {}
    c = RunCache(10, 0, pins)
    c.touch([1], [6], owner=7, now_s=0.0)
    pins[7] = 100.0  # session 7 is in a tool gap until t = 100
    c.touch([2], [6], owner=8, now_s=1.0)
    assert c.lookup([1], [6]) == (6, 0)  # the newer, unpinned run was cut instead
    assert c.lookup([2], [6]) == (4, 0)
    plain = RunCache(10, 0)
    plain.touch([1], [6], owner=7, now_s=0.0)
    plain.touch([2], [6], owner=8, now_s=1.0)
    assert plain.lookup([1], [6]) == (4, 0)
    assert np.isclose(plain.used_dev, 10)


def test_pinned_eviction_still_spills_over_the_host_tier():
    # as the pinned test above, with a 1-block host tier: run 2's 2 tail blocks move to the
    # host, which then keeps only 1 of them
    pins: dict[int, float] = {}
    c = RunCache(10, 1, pins)
    c.touch([1], [6], owner=7, now_s=0.0)
    pins[7] = 100.0
    c.touch([2], [6], owner=8, now_s=1.0)
    assert c.lookup([1], [6]) == (6, 0)
    assert c.lookup([2], [6]) == (4, 1)
    assert (c.used_dev, c.used_host) == (10, 1)
