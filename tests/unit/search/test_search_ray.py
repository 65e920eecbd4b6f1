import numpy as np
import pytest
from search_helpers import with_strategy

from search.driver import Search

ray = pytest.importorskip("ray")


def test_ray_executor_gives_the_inline_front(tiny_spec, tiny_load):
    """One private local Ray (2 CPUs): screening chunks and simulation verifications as
    tasks give exactly the inline result for the same seed."""
    from search.bench import BENCH_SPEC
    from search.executor import RayExecutor
    from search.spec import JobSpec

    bench = with_strategy(JobSpec.from_data(BENCH_SPEC), sampler="exhaustive", budget=10**6)
    small = with_strategy(tiny_spec, sampler="auto", budget=400, batch=64, verify_top=2)
    ex = RayExecutor(num_cpus=2)
    try:
        assert ex.workers == 2
        for spec in (bench, small):
            a = Search(spec, load=tiny_load).run()
            b = Search(spec, load=tiny_load, executor=ex).run()
            assert b.hypervolume == a.hypervolume and b.evaluations == a.evaluations
            assert [p.params for p in b.front] == [p.params for p in a.front]
            sims = [[p.metrics_simulated for p in r.front] for r in (a, b)]
            np.testing.assert_equal(sims[1], sims[0])  # NaN == NaN here
        assert b.verification["executor"] == "ray"
    finally:
        ex.close()
    assert not ray.is_initialized()
