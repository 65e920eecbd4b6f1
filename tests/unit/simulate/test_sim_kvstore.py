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
    assert c.lookup([1], [8]) == (6, 0, 0)
    c.touch([2], [7], owner=1, now_s=1.0)  # 13 > 10: run 1 loses its 3 tail blocks to host
    assert c.lookup([1], [6]) == (3, 3, 0)
    assert c.used_dev == 10 and c.used_host == 3
    # run 3 pushes run 1 off the device and 2 tail blocks of run 2 to the host; the host
    # (4 blocks) then drops the oldest: run 1's tail, keeping its first 2 blocks
    c.touch([3], [5], owner=2, now_s=2.0)
    assert c.used_dev == 10 and c.used_host == 4
    assert c.lookup([1], [6]) == (0, 2, 0)
    assert c.lookup([2], [7]) == (5, 2, 0)
    # a hit in the host tier promotes the run back to the device
    c.touch([1], [6], owner=0, now_s=3.0)
    assert c.lookup([1], [6]) == (6, 0, 0)


def test_prefix_stops_at_first_missing_run():
    c = RunCache(100, 0)
    c.touch([5, 9], [4, 2], owner=0, now_s=0.0)
    assert c.lookup([5, 9], [4, 3]) == (6, 0, 0)  # run 9 holds 2 of the 3 blocks
    assert c.lookup([5, 8, 9], [4, 1, 2]) == (4, 0, 0)  # run 8 missing: the prefix ends there
    assert c.lookup([6], [4]) == (0, 0, 0)


def test_pinned_session_survives_eviction_during_its_gap():
    pins: dict[int, float] = {}
    c = RunCache(10, 0, pins)
    c.touch([1], [6], owner=7, now_s=0.0)
    pins[7] = 100.0  # session 7 is in a tool gap until t = 100
    c.touch([2], [6], owner=8, now_s=1.0)
    assert c.lookup([1], [6]) == (6, 0, 0)  # the newer, unpinned run was cut instead
    assert c.lookup([2], [6]) == (4, 0, 0)
    plain = RunCache(10, 0)
    plain.touch([1], [6], owner=7, now_s=0.0)
    plain.touch([2], [6], owner=8, now_s=1.0)
    assert plain.lookup([1], [6]) == (4, 0, 0)
    assert np.isclose(plain.used_dev, 10)


def test_pinned_eviction_still_spills_over_the_host_tier():
    # as the pinned test above, with a 1-block host tier: run 2's 2 tail blocks move to the
    # host, which then keeps only 1 of them
    pins: dict[int, float] = {}
    c = RunCache(10, 1, pins)
    c.touch([1], [6], owner=7, now_s=0.0)
    pins[7] = 100.0
    c.touch([2], [6], owner=8, now_s=1.0)
    assert c.lookup([1], [6]) == (6, 0, 0)
    assert c.lookup([2], [6]) == (4, 1, 0)
    assert (c.used_dev, c.used_host) == (10, 1)


def test_host_victims_move_to_storage_and_storage_drops_its_lru_tails():
    """A 4-block device, 2-block host and 3-block storage tier, counted by hand: blocks
    cascade device -> host -> storage, a hit reads each tier's part in order, and a
    touch brings a run's stored blocks back to the device."""
    c = RunCache(cap_dev_blocks=4, cap_host_blocks=2, cap_storage_blocks=3)
    c.touch1(1, 4, owner=0, now_s=0.0)  # run 1: 4 device blocks
    c.touch1(2, 4, owner=1, now_s=1.0)  # run 1 -> host (2 kept), its last 2 -> storage
    assert c.lookup([1], [4]) == (0, 2, 2)
    assert (c.used_dev, c.used_host, c.used_sto) == (4, 2, 2)
    assert c.lookup([1], [3]) == (0, 2, 1)  # a shorter prompt reads fewer stored blocks
    # run 3 pushes run 2 to the host; run 1's 2 host blocks and run 2's last 2 move to
    # storage (6 > 3 blocks), which cuts its least recent entry, run 1, to its first block
    c.touch1(3, 4, owner=2, now_s=2.0)
    assert (c.used_dev, c.used_host, c.used_sto) == (4, 2, 3)
    assert c.lookup([2], [4]) == (0, 2, 2)  # run 2: 2 in host, 2 moved on to storage
    assert c.lookup([1], [4]) == (0, 0, 1)  # run 1 kept its first block, in storage
    # a touch of run 2 brings its host and stored blocks to the device
    c.touch1(2, 4, owner=1, now_s=3.0)
    assert c.lookup([2], [4]) == (4, 0, 0)
    assert c.used_dev == 4 and c.used_host + c.used_sto <= 5
    assert c.lookup([3], [4]) == (0, 2, 2)  # run 3 moved down the tiers in its turn
    # without a storage tier the host's victims are dropped, as before
    plain = RunCache(cap_dev_blocks=4, cap_host_blocks=2)
    plain.touch1(1, 4, owner=0, now_s=0.0)
    plain.touch1(2, 4, owner=1, now_s=1.0)
    assert plain.lookup([1], [4]) == (0, 2, 0) and plain.used_sto == 0


def test_shared_store_writes_through_and_drops_lru_tails():
    """A 10-block store shared by the workers, counted by hand."""
    from codesign.simulate.kvstore import SharedStore

    st = SharedStore(10)
    st.store([1], [6])  # run 1: 6 blocks
    st.store([2, 3], [3, 2])  # a prompt of two runs: 5 more blocks, 11 > 10
    assert st.used == 10 and st.runs[1] == 5  # the LRU run, 1, lost its last block
    assert st.lookup([1], [6]) == 5
    assert st.lookup([2, 3], [3, 4]) == 5  # run 3 holds 2 of the 4 blocks asked
    assert st.lookup([2, 9, 3], [3, 1, 2]) == 3  # run 9 missing: the prefix ends there
    st.store([1], [4])  # a shorter prompt of run 1: its 5 blocks are now the most recent
    st.store([4], [4])  # 14 > 10: run 2 (3 blocks) goes, then a block of run 3
    assert st.lookup([2], [3]) == 0 and st.lookup([3], [2]) == 1
    assert st.lookup([1], [5]) == 5 and st.used == 10
