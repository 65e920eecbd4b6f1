import copy

import pytest
from search_helpers import TINY

from codesign.errors import SpecError
from search.spec import JobSpec


def _err(**patch) -> str:
    data = copy.deepcopy(TINY)
    for path, value in patch.items():
        node = data
        keys = path.split("__")
        for k in keys[:-1]:
            node = node[k]
        node[keys[-1]] = value
    with pytest.raises(SpecError) as exc:
        JobSpec.from_data(data)
    return str(exc.value)


def test_unknown_system_names_field():
    msg = _err(space__systems=["h200_sxm", "gb900"])
    assert "space.systems" in msg and "gb900" in msg


def test_unknown_metric_names_field():
    assert "unknown metric 'tokens_per_joule'" in _err(objectives=["max tokens_per_joule"])
    assert "constraints" in _err(constraints={"ttft_p95_s": {"max": 1}})


def test_empty_space_and_contradictory_bounds():
    assert "space.precision.gemm" in _err(space__precision={"gemm": []})
    msg = _err(constraints={"ttft_p90_s": {"min": 3, "max": 2}})
    assert "constraints.ttft_p90_s" in msg and "contradictory" in msg
    msg = _err(space__hardware={"base": "gb200", "hbm_bandwidth_tb_s": [30, 13]})
    assert "hbm_bandwidth_tb_s: low 30 > high 13" in msg


def test_afd_and_simulate_fidelity_rejected():
    assert "afd" in _err(space__modes=["agg", "afd"])
    assert "verify_top" in _err(strategy={"fidelity": "simulate"})


def test_yaml_round_trip():
    spec = JobSpec.from_data(TINY)
    again = JobSpec.from_yaml(spec.to_yaml())
    assert again == spec
    assert str(spec.objectives[2]) == "min usd_per_mtok_output"
