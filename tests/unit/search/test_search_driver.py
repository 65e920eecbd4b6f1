import numpy as np
import pytest
from search_helpers import with_strategy

from search.driver import Search
from search.pareto import nondominated
from search.sink import MemorySink


@pytest.fixture(scope="module")
def exhaustive(tiny_spec, tiny_load):
    sink = MemorySink()
    s = Search(tiny_spec, sink=sink, load=tiny_load)
    return s, s.run(), sink


def test_exhaustive_front_equals_brute_force(exhaustive):
    s, result, sink = exhaustive
    assert result.evaluations == s.space.count()
    f_all, ok_all = [], []
    for b in sink.batches:
        f_all.append(s.obj.matrix(b.metrics))
        ok_all.append(b.ok)
    f, ok = np.vstack(f_all), np.concatenate(ok_all)
    fo = f[ok]
    brute = [
        i
        for i in range(len(fo))
        if not any((fo[j] <= fo[i]).all() and (fo[j] < fo[i]).any() for j in range(len(fo)))
    ]
    got = np.sort(s.archive.f, axis=0)
    want = np.unique(fo[brute], axis=0)
    assert len(result.front) == len(want)
    np.testing.assert_allclose(got, np.sort(want, axis=0))
    assert nondominated(s.archive.f).all()


def test_constraints_hold_on_front(exhaustive):
    _, result, sink = exhaustive
    assert any((~b.ok & b.metrics["feasible"]).any() for b in sink.batches)  # SLO cuts some
    for p in result.front:
        assert p.metrics["ttft_p90_s"] <= 5.0
        assert np.isfinite(p.metrics["tokens_per_s_per_user"])
    assert result.front[0].metrics["tokens_per_s_per_user"] == max(
        p.metrics["tokens_per_s_per_user"] for p in result.front
    )


@pytest.mark.parametrize("sampler", ["auto", "nsga2", "random"])
def test_determinism(tiny_spec, tiny_load, sampler):
    spec = with_strategy(tiny_spec, sampler=sampler, budget=300, batch=64)
    a = Search(spec, load=tiny_load).run()
    b = Search(spec, load=tiny_load).run()
    assert a.hypervolume == b.hypervolume
    assert [p.params for p in a.front] == [p.params for p in b.front]


def test_auto_reaches_exhaustive_hypervolume(tiny_load):
    """On the bench space (73,440 configurations) auto gets >= 97.5 % of the exhaustive
    front's hypervolume with 5 % of the evaluations in the median run. The exact front
    here has 6 points in a flat region (disaggregated Vera Rubin deployments 16.97-18.54 s
    TTFT p90 apart), so a run that misses one loses a few % (measured for seeds 0-6:
    97.9, 98.9, 97.9, 99.1, 97.9, 97.9, 98.8 %, median 97.9 %, since each engine's KV cache
    gets the memory its own setting leaves; 97.9-99.6 %, median 98.9 %, with a flat 5 %
    reserve; 98.7-100 %, median 99.6 %, before the disaggregated prefix cache moved to the
    prefill workers); the median over seven seeds is the stable figure.
    (`codesign bench search`, on its own workload: 99.7 %.)"""
    from search.bench import BENCH_SPEC
    from search.spec import JobSpec

    base = JobSpec.from_data(BENCH_SPEC)
    exact_s = Search(with_strategy(base, sampler="exhaustive", budget=10**6), load=tiny_load)
    exact = exact_s.run()
    budget = int(0.05 * exact.evaluations)
    shares = []
    for seed in range(7):
        spec = with_strategy(base, sampler="auto", budget=budget, seed=seed)
        res = Search(spec, load=tiny_load).run()
        assert res.evaluations <= budget
        shares.append(res.hypervolume / exact.hypervolume)
    assert float(np.median(shares)) >= 0.975
    assert min(shares) >= 0.9


def test_cancel_and_patience(tiny_spec, tiny_load):
    spec = with_strategy(tiny_spec, sampler="nsga2", budget=5000, batch=32)
    res = Search(spec, load=tiny_load, cancel=lambda: True).run()
    assert res.stopped == "cancelled" and res.evaluations == 0
    spec = with_strategy(tiny_spec, sampler="random", budget=5000, batch=32, patience=1)
    res = Search(spec, load=tiny_load).run()
    assert res.stopped in ("converged", "budget")


def test_deployment_round_trips(exhaustive):
    from codesign.deployment import Deployment

    _, result, _ = exhaustive
    for p in result.front:
        assert Deployment.from_yaml(p.deployment.to_yaml()) == p.deployment
