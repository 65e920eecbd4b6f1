"""The kv_aware placement rule on hand-built workers (stubs with queues and caches)."""

from __future__ import annotations

from types import SimpleNamespace

from codesign.simulate.router import route

BLOCK = 16


def _worker(index: int, pending: float, cached_blocks: dict[int, int]) -> SimpleNamespace:
    """A worker whose cache holds ``cached_blocks[run key]`` device blocks of a run."""
    cache = SimpleNamespace(
        lookup=lambda keys, lens: (min(cached_blocks.get(keys[0], 0), lens[0]), 0, 0)
    )
    return SimpleNamespace(
        index=index, pending_pf_tokens=pending, kv_used=0, cache=cache, blocks=cached_blocks
    )


def _part(workers: list[SimpleNamespace]) -> SimpleNamespace:
    index = [(w, w.blocks.get, w.blocks.get, {}) for w in workers]
    return SimpleNamespace(router="kv_aware", cache_workers=workers, kv_index=index, rr=0)


def test_a_miss_everywhere_goes_home_unless_home_is_far_busier() -> None:
    # nothing cached anywhere; the session's home is worker 1 (owner 1 of 2)
    n_in = 1000
    near = _part([_worker(0, 0, {}), _worker(1, 600, {})])
    w, d, h, _ = route(near, [7], [n_in // BLOCK], n_in, 1, BLOCK)
    assert w.index == 1 and d == h == 0  # 600 queued tokens < one prompt: stay home
    far = _part([_worker(0, 0, {}), _worker(1, 1600, {})])
    w, _, _, _ = route(far, [7], [n_in // BLOCK], n_in, 1, BLOCK)
    assert w.index == 0  # home is busier by more than the prompt: balance the load


def test_a_cached_prefix_beats_a_shorter_queue() -> None:
    n_in = 1600  # 100 blocks, 90 of them cached on worker 0
    part = _part([_worker(0, 500, {7: 90}), _worker(1, 0, {})])
    w, d, h, _ = route(part, [7], [100], n_in, 1, BLOCK)
    assert (w.index, d, h) == (0, 90, 0)  # 160 uncached + 500 queued < 1,600 uncached
    busy = _part([_worker(0, 5000, {7: 90}), _worker(1, 0, {})])
    w, d, _, _ = route(busy, [7], [100], n_in, 1, BLOCK)
    assert (w.index, d) == (1, 0)
