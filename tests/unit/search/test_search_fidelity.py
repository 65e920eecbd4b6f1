import csv
import json

import numpy as np
import pytest
from search_helpers import with_strategy

from search.driver import Search
from search.pareto import nondominated
from search.sink import FileSink


@pytest.fixture(scope="module")
def verified(tiny_spec):
    spec = with_strategy(tiny_spec, sampler="auto", budget=600, batch=64, verify_top=4)
    s = Search(spec)
    return s, s.run()


def test_verify_top_keeps_both_fidelities(verified):
    s, res = verified
    v = res.verification
    assert v is not None and v["executor"] == "inline" and not v["errors"]
    assert 1 <= len(v["verified"]) <= 4
    assert v["concurrent_sessions"] == 200  # the job's load, not a smaller one
    for i, p in enumerate(res.front):
        if i in v["verified"]:
            assert set(p.metrics_simulated) == set(p.metrics)
            assert p.pareto_simulated == (i in v["front_simulated"])
        else:
            assert p.metrics_simulated is None and p.pareto_simulated is None
    # the simulated front is non-dominated at simulation fidelity among the verified points;
    # it may be empty when no verified point meets the constraints at that fidelity
    sims = [res.front[i].metrics_simulated for i in v["front_simulated"]]
    if not sims:
        assert v["hypervolume_simulated"] == 0.0
        return
    f = s.obj.matrix({m: np.array([d[m] for d in sims]) for m in sims[0]})
    assert nondominated(f).all()
    assert v["hypervolume_simulated"] > 0


def test_reports_carry_both(verified, tmp_path):
    from search.report import summary, write_csv

    _, res = verified
    data = summary(res)
    assert data["verification"]["verified"]
    assert any(p["metrics_simulated"] for p in data["pareto"])
    write_csv(res, tmp_path / "p.csv")
    rows = list(csv.DictReader((tmp_path / "p.csv").open()))
    assert any(r["sim_tokens_per_s_per_user"] for r in rows)
    assert json.dumps(data["verification"])


def test_resume_after_cancel_gives_the_same_front(tiny_spec, tiny_load, tmp_path):
    spec = with_strategy(tiny_spec, sampler="nsga2", budget=480, batch=48)
    full = Search(spec, load=tiny_load).run()
    out = tmp_path / "run"
    sink = FileSink(out)
    part = Search(spec, sink=sink, load=tiny_load, cancel=lambda: len(part_batches()) >= 4)

    def part_batches():
        return (out / "progress.jsonl").read_text().splitlines()

    first = part.run()
    assert first.stopped == "cancelled" and first.evaluations == 4 * 48
    sink2 = FileSink(out, resume=True)
    assert len(sink2.stored) == 4
    s2 = Search(spec, sink=sink2, load=tiny_load, resume=sink2.stored)
    evaluated = []
    inner = s2.context

    def counting(pts, _orig=s2.evaluate):
        if not s2._replay:
            evaluated.append(len(pts["mode"]))
        return _orig(pts)

    s2.evaluate = counting  # type: ignore[method-assign]
    res = s2.run()
    assert inner is s2.context
    assert res.resumed_batches == 4 and sum(evaluated) == 480 - 4 * 48
    assert res.evaluations == full.evaluations and res.hypervolume == full.hypervolume
    assert [p.params for p in res.front] == [p.params for p in full.front]
    assert len(part_batches()) == 10  # the resumed run appended its 6 batches
    with (out / "evaluations.csv").open() as fh:
        assert sum(1 for _ in fh) == 1 + 480


def test_export_to_optuna_storage(tiny_spec, tiny_load, tmp_path):
    import optuna

    from search.export import export_study

    spec = with_strategy(tiny_spec, sampler="random", budget=120, batch=60)
    Search(spec, sink=FileSink(tmp_path), load=tiny_load).run()
    url = f"sqlite:///{tmp_path / 'study.db'}"
    name = export_study(spec, tmp_path / "evaluations.csv", url)
    study = optuna.load_study(study_name=name, storage=url)
    assert len(study.trials) == 120
    assert study.metric_names == [o.metric for o in spec.objectives]
    assert study.best_trials  # the constrained Pareto front is non-empty
