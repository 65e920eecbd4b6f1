"""Coverage: every model config in the shared folder is described and predicted.

Measured rows are judged on models and systems the dev rows do not hold, and a row the
model cannot predict counts against coverage. So every stored config must load (no
family refused) and give finite TTFT/TPOT, aggregated and disaggregated, on a system of
the dev rows and on systems they do not hold (GB300, MI355X, A100: spec sheets only).
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from codesign.models import load_model
from codesign.paths import hf_config_dirs
from codesign.perf.estimate import EstimateRequest, estimate


def _config_ids() -> list[str]:
    for d in hf_config_dirs():
        files = sorted(Path(d).glob("*_config.json"))
        if files:
            return [
                p.name.removesuffix("_config.json").replace("--", "/", 1)
                for p in files
                if not p.name.endswith("_hf_quant_config.json")
            ]
    return []


MODELS = _config_ids()


@pytest.mark.skipif(not MODELS, reason="shared hf_configs folder not present")
def test_no_stored_config_is_refused() -> None:
    refused = {}
    for model_id in MODELS:
        try:
            load_model(model_id)
        except Exception as exc:  # collect every failure with its reason
            refused[model_id] = str(exc)
    assert not refused, refused


@pytest.mark.skipif(not MODELS, reason="shared hf_configs folder not present")
@pytest.mark.parametrize("system", ["h200_sxm", "gb300", "mi355x", "a100_sxm"])
def test_every_model_predicts_on_seen_and_unseen_systems(system: str) -> None:
    bad = []
    for model_id in MODELS:
        for mode in ("agg", "disagg"):
            req = EstimateRequest(
                model=model_id, system=system, mode=mode, tp=1, batch=8, isl=4096, osl=512
            )
            out = estimate(req)
            ttft, tpot = out["ttft_ms"], out["tpot_ms"]
            if not (math.isfinite(ttft) and math.isfinite(tpot) and ttft > 0 and tpot > 0):
                bad.append((model_id, mode, ttft, tpot))
    assert not bad, bad
