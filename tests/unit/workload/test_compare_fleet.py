"""`codesign trace compare` and the claude-code-fleet preset against the 710 real sessions."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from codesign.cli.trace import trace_app
from codesign.workload import load_trace
from codesign.workload.compare import DISTRIBUTIONS, compare, distributions
from codesign.workload.io import save_trace
from codesign.workload.synth import fit_fleet_params, generate, preset
from codesign.workload.synth.params import SynthParams


def test_compare_identical_and_shifted(tiny_cc_dir: Path) -> None:
    t = load_trace(tiny_cc_dir)
    same = compare(t, t)
    assert all(r["ks"] in (0.0, None) for r in same["distributions"])
    # the tiny trace has no compaction: those rows are n/a, not failures
    status = {r["distribution"]: r["status"] for r in same["distributions"]}
    assert status["compaction_before_tokens"] == "n/a" and same["passed"]
    d = distributions(t)
    assert sorted(d["context_tokens"]) == [128, 150, 200, 300]  # main-agent inputs
    assert d["subagent_context_tokens"].tolist() == [130]
    # the sub-agent's one call runs on claude-haiku-4-5 (small tier), the 4 main ones on opus
    assert d["small_tier_share"].sum() == 1.0 and d["small_tier_share"].size == 5


@pytest.fixture(scope="module")
def real(shared_dir: Path):
    return load_trace(shared_dir / "traces" / "claude-code-weka", "claude-code")


@pytest.fixture(scope="module")
def fleet_vs_real(real) -> dict:
    synth = generate(preset("claude-code-fleet").with_overrides(sessions=710, seed=1))
    return compare(synth, real)


# 710 synthetic vs 710 real sessions. Compaction events (~200 per side) and sub-agents (~60)
# are rare: their sizes come from low-discrepancy streams in the generator, without which
# iid draws alone scatter the KS statistic around 0.1. Measured at seeds 1-5: compaction
# before 0.03-0.10, sub-agent sizes 0.04-0.08, main context 0.08-0.095.
@pytest.mark.parametrize("name", list(DISTRIBUTIONS))
def test_fleet_preset_ks(fleet_vs_real: dict, name: str) -> None:
    row = next(r for r in fleet_vs_real["distributions"] if r["distribution"] == name)
    assert row["ks"] <= 0.1, row


def test_fleet_preset_ks_all(fleet_vs_real: dict) -> None:
    assert fleet_vs_real["passed"], fleet_vs_real["failed"]


def test_fleet_constants_match_fresh_fit(real) -> None:
    """The preset's stored tables are `fit_fleet_params` of the real sessions."""
    fresh = fit_fleet_params(real, sessions=710, seed=0)
    stored = preset("claude-code-fleet")
    assert fresh.model_dump() == SynthParams.model_validate(stored.model_dump()).model_dump()


def test_cli_compare(tmp_path: Path) -> None:
    a = save_trace(generate(preset("chat").with_overrides(seed=1)), tmp_path / "a.parquet")
    b = save_trace(generate(preset("chat").with_overrides(seed=2)), tmp_path / "b.jsonl")
    r = CliRunner().invoke(trace_app, ["compare", str(a), str(b), "--json"])
    res = json.loads(r.output)
    ks = {x["distribution"]: x["ks"] for x in res["distributions"]}
    # same preset, different seeds: ~640 requests each, KS well under 0.1
    assert ks["context_tokens"] < 0.1 and ks["output_tokens"] < 0.1
    assert r.exit_code == (0 if res["passed"] else 1)
    assert np.isfinite(ks["turns_per_session"])
    r = CliRunner().invoke(trace_app, ["compare", str(a), str(b), "--max-ks", "2"])
    assert r.exit_code == 2 and "--max-ks" in r.output
