"""Sub-agent pools in the search (``subagent_model`` + ``space.subagents``)."""

from __future__ import annotations

import copy

import numpy as np
import pytest
from search_helpers import TINY, with_strategy

from codesign.errors import SpecError
from codesign.evaluate import METRICS, evaluate
from search.batch_eval import evaluate_points
from search.driver import Search
from search.space import Space, model_is_moe, take
from search.spec import JobSpec
from search.subagents import SUB_DIMS
from search.workload import build_load

SUB = {
    "name": "tiny-sub",
    "model": "deepseek-ai/DeepSeek-R1",
    "subagent_model": "Qwen/Qwen3-32B",
    # claude-code-session: many sub-agent (small-tier) requests even in 4 sessions
    "workload": {
        "synth": {"preset": "claude-code-session", "sessions": 4},
        "concurrent_sessions": 64,
    },
    "space": {
        "systems": ["gb200"],
        "modes": ["agg"],
        "precision": {"gemm": ["nvfp4"]},
        "parallelism": {"tp": [8], "ep": [8], "dp": [1], "workers": [1, 2]},
        "spec_decoding": ["none", "mtp3"],
        # tp 3 does not divide Qwen3-32B's 64 heads: structurally invalid rows
        "subagents": {"systems": ["h200_sxm", "h100_sxm"], "tp": [1, 2, 3], "workers": [1, 2]},
    },
    "objectives": ["max tokens_per_s_per_user", "min usd_per_session"],
    "constraints": {"ttft_p90_s": {"max": 30.0}},
    "strategy": {"sampler": "exhaustive", "budget": 10000},
}


def _spec(**changes) -> dict:
    d = copy.deepcopy(SUB)
    for k, v in changes.items():
        if v is None:
            d.pop(k, None)
        else:
            d[k] = v
    return d


@pytest.fixture(scope="module")
def sub_spec() -> JobSpec:
    return JobSpec.from_data(SUB)


@pytest.fixture(scope="module")
def sub_load(sub_spec):
    return build_load(sub_spec)


@pytest.fixture(scope="module")
def sub_search(sub_spec, sub_load):
    s = Search(sub_spec, load=sub_load)
    return s, s.run()


# --- spec ---------------------------------------------------------------------------------
def test_subagents_block_needs_a_subagent_model():
    with pytest.raises(SpecError, match=r"space\.subagents: give subagent_model"):
        JobSpec.from_data(_spec(subagent_model=None))


def test_unknown_subagent_system_names_the_field():
    d = _spec()
    d["space"]["subagents"]["systems"] = ["h200_sxm", "warp_drive_9000"]
    with pytest.raises(SpecError, match=r"space\.subagents\.systems.*warp_drive_9000"):
        JobSpec.from_data(d)


def test_custom_system_is_not_a_subagent_system():
    d = _spec()
    d["space"]["subagents"]["systems"] = ["custom"]
    with pytest.raises(SpecError, match=r"space\.subagents\.systems.*catalog systems"):
        JobSpec.from_data(d)


def test_unknown_subagent_model_names_the_field():
    with pytest.raises(SpecError, match=r"subagent_model: unknown model"):
        JobSpec.from_data(_spec(subagent_model="Qwen/NoSuchModel-3B"))


def test_bad_subagent_lists_name_the_field():
    d = _spec()
    d["space"]["subagents"]["tp"] = [0, 2]
    with pytest.raises(SpecError, match=r"space\.subagents\.tp"):
        JobSpec.from_data(d)
    d = _spec()
    d["space"]["subagents"]["workers"] = []
    with pytest.raises(SpecError, match=r"space\.subagents\.workers"):
        JobSpec.from_data(d)


def test_defaults_without_a_subagents_block():
    d = _spec()
    d["space"] = {k: v for k, v in d["space"].items() if k != "subagents"}
    d["space"]["systems"] = ["h200_sxm", "gb200"]
    sa = JobSpec.from_data(d).space.subagents
    assert sa is not None and sa.systems == ["h200_sxm", "gb200"]
    assert sa.tp == [1, 2, 4, 8] and sa.workers == [1, 2, 4, 8]
    assert sa.precision.gemm == ["fp8"] and sa.precision.kv == ["fp8"]


def test_spec_round_trips_through_yaml(sub_spec):
    again = JobSpec.from_yaml(sub_spec.to_yaml())
    assert again == sub_spec


# --- load and space -----------------------------------------------------------------------
def test_load_keeps_tiers_apart_only_with_subagent_model(sub_spec, sub_load):
    assert {"main", "small"} <= set(sub_load.tiers)
    plain = JobSpec.from_data(_spec(subagent_model=None, space=TINY["space"]))
    assert set(build_load(plain).tiers) == {"all"}


def test_sub_dims_exist_only_with_a_subagent_model(sub_spec, tiny_spec):
    names = {x.name for x in Space(sub_spec, True).dims}
    assert set(SUB_DIMS) <= names
    assert not set(SUB_DIMS) & {x.name for x in Space(tiny_spec, True).dims}
    d = _spec(subagent_model=None)
    d["space"] = {k: v for k, v in d["space"].items() if k != "subagents"}
    plain = Space(JobSpec.from_data(d), True)
    assert Space(sub_spec, True).count() == plain.count() * 2 * 3 * 2  # systems x tp x workers


def test_generation_covers_sub_dims(sub_spec):
    space = Space(sub_spec, model_is_moe(sub_spec))
    pts = space.enumerate()
    combos = {tuple(int(pts[n][i]) for n in SUB_DIMS) for i in range(space.count())}
    assert len(combos) == 2 * 3 * 2  # every sub-agent pool is enumerated
    smp = space.sample(64, np.random.default_rng(0))
    assert all((smp[n] >= 0).all() for n in SUB_DIMS)  # active in every row
    nb = space.neighbours(take(pts, np.array([0])))
    moved = {n: int((nb[n] != pts[n][0]).sum()) for n in SUB_DIMS}
    assert moved == {"sub_system": 1, "sub_tp": 2, "sub_workers": 1, "sub_gemm": 0, "sub_kv": 0}
    rows = [space.params(pts, i) for i in range(len(pts["mode"]))]
    assert all(set(SUB_DIMS) <= set(r) for r in rows)
    back = space.from_params(rows)
    for k in pts:
        np.testing.assert_array_equal(back[k], pts[k])


def test_optuna_suggests_sub_dims(sub_spec):
    import optuna

    space = Space(sub_spec, True)
    pts = space.enumerate(5, 6)
    params = space.params(pts, 0)
    got = space.suggest(optuna.trial.FixedTrial(params))
    assert got == params and set(SUB_DIMS) <= set(got)


# --- decoding and evaluation --------------------------------------------------------------
def test_deployments_carry_the_chosen_subagent_pool(sub_search):
    s, _ = sub_search
    pts = s.space.enumerate()
    for i in range(len(pts["mode"])):
        d = s.decoder.deployment(pts, i)
        p = s.space.params(pts, i)
        assert d.subagents is not None and d.subagents.model == "Qwen/Qwen3-32B"
        (pool,) = d.subagents.pools
        assert pool.role == "agg" and pool.system == p["sub_system"]
        assert pool.parallel.tp == p["sub_tp"] and pool.workers == p["sub_workers"]
        assert d.subagents.precision.gemm == p["sub_gemm"]


def test_search_and_public_evaluator_agree(sub_search, sub_load):
    s, _ = sub_search
    pts = s.space.enumerate()
    res, _, _ = evaluate_points(s.context, pts)
    deps = [s.decoder.deployment(pts, i) for i in range(len(pts["mode"]))]
    ref = evaluate(deps, sub_load, SUB["workload"]["concurrent_sessions"])
    assert res["feasible"].any() and not res["feasible"].all()
    np.testing.assert_array_equal(res["feasible"], ref["feasible"])
    np.testing.assert_array_equal(res["reason"], ref["reason"])
    for m in METRICS:
        np.testing.assert_allclose(res[m], ref[m], rtol=1e-9, equal_nan=True, err_msg=m)


def test_chips_are_main_plus_sub_chips(sub_search):
    s, _ = sub_search
    pts = s.space.enumerate()
    main, _, sub = s.decoder.candidates(pts)
    res, _, _ = evaluate_points(s.context, pts)
    want = main.chips + s.space.values(pts, "sub_tp") * s.space.values(pts, "sub_workers")
    np.testing.assert_array_equal(res["chips"], want.astype(float))
    np.testing.assert_array_equal(sub.chips, want - main.chips)
    deps = [s.decoder.deployment(pts, i) for i in range(len(pts["mode"]))]
    np.testing.assert_array_equal(res["chips"], [d.chips for d in deps])


def test_tp_not_dividing_the_subagent_heads_is_invalid(sub_search):
    s, _ = sub_search
    pts = s.space.enumerate()
    res, _, ok = evaluate_points(s.context, pts)
    bad = s.space.values(pts, "sub_tp") == 3
    assert not res["feasible"][bad].any() and not ok[bad].any()
    assert all(r.startswith("sub-agents:") and "heads" in r for r in res["reason"][bad])


# --- search -------------------------------------------------------------------------------
def test_exhaustive_search_front_has_subagent_pools(sub_search):
    s, result = sub_search
    assert result.evaluations == s.space.count() and result.stopped == "exhausted"
    assert result.front
    for p in result.front:
        assert p.deployment.subagents is not None
        assert p.deployment.subagents.pools[0].parallel.tp in (1, 2)
        assert p.metrics["chips"] == p.deployment.chips


def test_same_seed_same_front(sub_load):
    d = copy.deepcopy(TINY)
    d["subagent_model"] = "Qwen/Qwen3-32B"
    d["space"]["subagents"] = {"systems": ["h200_sxm", "h100_sxm", "l40s"]}
    spec = with_strategy(JobSpec.from_data(d), sampler="auto", budget=400, batch=64)
    a = Search(spec, load=sub_load).run()
    b = Search(spec, load=sub_load).run()
    assert a.front and a.hypervolume == b.hypervolume
    assert [p.params for p in a.front] == [p.params for p in b.front]
    assert all(p.deployment.subagents is not None for p in a.front)


def test_warns_when_the_workload_has_no_subagent_requests(tiny_load):
    d = copy.deepcopy(TINY)
    d["subagent_model"] = "Qwen/Qwen3-32B"
    s = Search(JobSpec.from_data(d), load=tiny_load)
    assert any(w.startswith("subagent_model:") for w in s.warnings)


def test_verify_simulates_subagent_deployments(sub_spec, sub_load):
    spec = with_strategy(sub_spec, verify_top=1)
    spec = spec.model_copy(
        update={"workload": spec.workload.model_copy(update={"concurrent_sessions": 8})}
    )
    res = Search(spec, load=sub_load).run()
    v = res.verification
    assert v is not None and v["errors"] == [] and len(v["verified"]) == 1
    p = res.front[v["verified"][0]]
    assert p.deployment.subagents is not None
    assert p.metrics_simulated and p.metrics_simulated["chips"] == p.metrics["chips"]
