"""Fixed-length workload (workload.fixed) and the aiconfigurator comparison (no aiconfigurator)."""

import numpy as np
import pytest

from codesign.errors import SpecError
from search.aic_compare import X, Y, codesign_sweep, pareto_2d, plot_fronts, read_aic_front
from search.spec import FixedWorkload, JobSpec
from search.workload import build_load, build_trace, fixed_trace

FIXED = {
    "name": "fixed",
    "model": "Qwen/Qwen3-32B",
    "workload": {"fixed": {"isl": 4000, "osl": 500}, "concurrent_sessions": 16},
    "space": {
        "systems": ["h200_sxm"],
        "modes": ["agg", "disagg"],
        "precision": {"gemm": ["bf16"], "kv": ["bf16"]},
        "parallelism": {
            "tp": [2, 8],
            "dp": [1],
            "workers": [1, 4],
            "prefill": {"tp": [2], "dp": [1], "workers": [1, 2]},
        },
    },
    "objectives": ["max tokens_per_s_per_user", "max tokens_per_s_per_gpu"],
    "constraints": {"ttft_p90_s": {"max": 2.0}, "tpot_p50_ms": {"max": 30}, "chips": {"max": 8}},
    "strategy": {"sampler": "exhaustive", "budget": 10000},
}

AGG_HEADER = (
    "model,isl,osl,prefix,concurrency,request_rate,bs,global_bs,ttft,tpot,request_latency,"
    "seq/s,seq/s/gpu,tokens/s,tokens/s/gpu,tokens/s/user,num_total_gpus,tp,pp,dp,parallel"
)
DISAGG_HEADER = (
    "model,isl,osl,prefix,concurrency,request_rate,(p)bs,(p)workers,(d)bs,(d)workers,ttft,tpot,"
    "tokens/s/gpu,tokens/s/user,(p)parallel,(d)parallel"
)


def test_fixed_trace_shape():
    t = fixed_trace(FixedWorkload(isl=4000, osl=500), 5)
    assert len(t.session_ids) == 5 and len(t.agent_session) == 5
    assert np.all(t.input_tokens == 4000) and np.all(t.output_tokens == 500)
    assert t.hash_ids.size == 0  # no prefix reuse
    load = build_load(JobSpec.from_data(FIXED), t)
    tier = next(iter(load.tiers.values()))
    assert tier.context_mean == 4000 and tier.new_ideal_mean == 4000 and tier.output_mean == 500
    assert tier.think_mean_s == 0 and np.all(load.session_gap_s == 0)
    assert np.all(load.session_requests == 1)


def test_fixed_spec_validation():
    spec = JobSpec.from_data(FIXED)
    assert spec.workload.fixed.isl == 4000
    assert len(build_trace(spec).session_ids) == 16  # one session per concurrent session
    both = {**FIXED, "workload": {"fixed": {"isl": 1, "osl": 1}, "trace": "x.jsonl"}}
    with pytest.raises(SpecError, match="exactly one"):
        JobSpec.from_data(both)
    with pytest.raises(SpecError, match="isl"):
        JobSpec.from_data({**FIXED, "workload": {"fixed": {"isl": 0, "osl": 1}}})


def test_sweep_front_meets_the_sla():
    r = codesign_sweep(JobSpec.from_data(FIXED), (4, 16, 64))
    assert r["front"] and r["evaluations"] > 0 and r["search_s"] <= r["wall_s"]
    for p in r["points"]:
        assert p["ttft_ms"] <= 2000 + 1e-6 and p["tpot_ms"] <= 30 + 1e-6
    xs = [p[X] for p in r["front"]]
    ys = [p[Y] for p in r["front"]]
    assert xs == sorted(xs) and ys == sorted(ys, reverse=True)  # a proper 2-D front


def test_batched_sweep_equals_a_search_per_concurrency():
    """The one-call sweep of an exhaustive job finds, per concurrency, exactly the front a
    separate search at that concurrency finds."""
    from search.aic_compare import _point, _sweep_batched
    from search.driver import Search

    spec = JobSpec.from_data(FIXED)
    load = build_load(spec)
    conc = (4, 16, 64)
    batched, evaluations, _ = _sweep_batched(Search(spec, load=load), load, conc)
    looped = []
    for c in conc:
        w = spec.workload.model_copy(update={"concurrent_sessions": float(c)})
        res = Search(spec.model_copy(update={"workload": w}), load=load).run()
        looped += [_point(p.metrics, p.deployment, c) for p in res.front]

    def key(p):
        return (p["concurrency"], p["config"], p["mode"], round(p[X], 9), round(p[Y], 9))

    assert looped and sorted(map(key, batched)) == sorted(map(key, looped))
    assert evaluations == 3 * Search(spec, load=load).space.count()


def test_read_aic_front(tmp_path):
    (tmp_path / "agg").mkdir()
    (tmp_path / "disagg").mkdir()
    (tmp_path / "agg" / "pareto.csv").write_text(
        AGG_HEADER
        + "\nQ,4000,500,0,64,4.4,64,64,894.9,27.2,14475,4.4,1.1,2232,558.1,36.7,4,4,1,1,tp4"
        + "\nQ,4000,500,0,160,3.1,160,160,1779,98.6,50991,3.1,1.5,1585,792.8,10.1,2,2,1,1,tp2"
        + "\nQ,4000,500,0,8,1,8,8,330,5.5,3000,1,0.1,1200,154.4,180.9,8,8,1,1,tp8\n"
    )
    (tmp_path / "disagg" / "pareto.csv").write_text(
        DISAGG_HEADER + "\nQ,4000,500,0,76,8.6,1,4,76,1,749.1,14.9,540.6,67.1,tp1,tp4\n"
    )
    rows = read_aic_front(tmp_path, ttft_ms=2000, tpot_ms=30)
    assert len(rows) == 3  # the TPOT 98.6 ms row is over the SLA
    assert {r["mode"] for r in rows} == {"agg", "disagg"}
    assert len(read_aic_front(tmp_path)) == 4
    front = pareto_2d(rows)
    assert [round(p[X], 1) for p in front] == [36.7, 67.1, 180.9]
    png = plot_fronts(rows, rows, tmp_path / "out" / "fronts.png")
    assert png.is_file() and png.stat().st_size > 1000
    (tmp_path / "bad.csv").write_text("a,b\n1,2\n")
    with pytest.raises(SpecError, match="not an aiconfigurator"):
        read_aic_front(tmp_path / "bad.csv")
    with pytest.raises(SpecError, match="no aiconfigurator"):
        read_aic_front(tmp_path / "out")
