"""Synthetic sessions: the article's session figures, determinism, validation, chat/agent shapes."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from codesign.cli.trace import trace_app
from codesign.errors import CodesignError
from codesign.workload.prefix import ideal_hit_tokens
from codesign.workload.synth import Dist, SynthParams, generate, preset


def session_figures(seed: int) -> dict[str, float]:
    t = generate(preset("claude-code-session").with_overrides(seed=seed))
    prim = t.req_is_primary
    ctx = t.input_tokens[prim].astype(float)
    k = int(np.flatnonzero(t.compaction[prim])[0])  # first compacted main turn
    return {
        "minutes": float((t.arrival_s + t.server_s).max() - t.arrival_s.min()) / 60,
        "requests": t.n_requests,
        "main": int(prim.sum()),
        "sub": int((~prim).sum()),
        "first": ctx[0],
        "peak": ctx.max(),
        "after": ctx[k],
        "avg40": ctx[:40].mean(),
        "before_sum": ctx[:k].sum(),
        "after_sum": ctx[k:].sum(),
        "hit": float(ideal_hit_tokens(t).sum() / t.input_tokens.sum()),
    }


# the source article's figures (../shared/traces/README.md), each to be met within ±10%
ARTICLE = {
    "minutes": 33,
    "requests": 283,
    "main": 58,
    "sub": 225,
    "first": 15_000,
    "peak": 156_000,
    "after": 20_000,
    "avg40": 85_000,
    "before_sum": 3.5e6,
    "after_sum": 1e6,
}


@pytest.mark.parametrize("seed", range(5))
def test_session_preset_matches_article(seed: int) -> None:
    f = session_figures(seed)
    for name, target in ARTICLE.items():
        assert f[name] == pytest.approx(target, rel=0.10), (name, f[name])
    # "coding agents sustain 95-98% cache hits": main turns re-send the context, the 225
    # sub-agent calls add ~450 tokens each to a shared 10K+ prefix (95.6% measured)
    assert 0.95 <= f["hit"] <= 0.98, f["hit"]


def test_session_prefix_chains() -> None:
    """Request i+1 repeats request i's blocks; a compaction keeps only the static prefix."""
    t = generate(preset("claude-code-session"))
    main = np.flatnonzero(t.req_is_primary)
    static_blocks = (12_000 + 2_800) // 64
    for a, b in itertools.pairwise(main):
        ha, hb = t.request_hashes(a), t.request_hashes(b)
        shared = static_blocks if t.compaction[b] else ha.size
        np.testing.assert_array_equal(hb[:shared], ha[:shared])
        if t.compaction[b]:
            assert not np.isin(hb[static_blocks:], ha).any()
    # a sub-agent's first call (10,300 tokens = 160 blocks) lies inside the session's
    # 187-block tool-definition prefix (12,000 tokens), so all its blocks are shared
    sub = np.flatnonzero(~t.req_is_primary)[0]
    np.testing.assert_array_equal(t.request_hashes(sub), t.request_hashes(main[0])[:160])


def test_deterministic() -> None:
    p = preset("claude-code-fleet").with_overrides(sessions=20, seed=3)
    a, b = generate(p), generate(p)
    c = generate(p.with_overrides(seed=4))
    for name in ("input_tokens", "output_tokens", "arrival_s", "hash_ids", "gap_s"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert not np.array_equal(a.input_tokens[:50], c.input_tokens[:50])
    # session k does not depend on how many sessions are generated
    d = generate(p.with_overrides(sessions=5))
    np.testing.assert_array_equal(d.input_tokens, a.input_tokens[: d.n_requests])


def test_parameter_validation() -> None:
    with pytest.raises(CodesignError, match="probs must rise"):
        Dist(kind="quantiles", probs=[0.0, 0.7, 0.5, 1.0], values=[1, 2, 3, 4])
    with pytest.raises(CodesignError, match="copula_corr"):
        SynthParams.model_validate(
            {"classes": [{"copula_corr": [[1, 2, 0], [2, 1, 0], [0, 0, 1]]}]}
        )
    with pytest.raises(ValueError, match="sessions"):
        SynthParams(sessions=0)
    with pytest.raises(CodesignError, match="unknown synth preset 'x'"):
        preset("x")


# Mooncake conversation trace: ideal prefix hit 37.4% token-weighted (36.6% per 512-token
# block); the chat preset's own hit ratio varies by ~0.02 (1 sd) from seed to seed at 400
# sessions (0.34-0.39 over seeds 0-9), so the band is the target ± 0.04.
CHAT_HIT, CHAT_HIT_TOL = 0.374, 0.04


@pytest.mark.parametrize(
    ("name", "seed", "mean_in", "mean_out", "hit", "why"),
    [
        # Azure 2023 conv: mean context 1,155, generated 211 (measured from the CSV)
        *[
            ("chat", s, 1_155, 211, (CHAT_HIT - CHAT_HIT_TOL, CHAT_HIT + CHAT_HIT_TOL), "azure")
            for s in range(3)
        ],
        # Mooncake paper's tool-agent trace: avg input 8,596, output 182, 59% cached
        ("tool-agent", 0, 8_596, 182, (0.54, 0.64), "mooncake tool-agent"),
    ],
)
def test_chat_and_tool_agent_shapes(
    name: str, seed: int, mean_in: float, mean_out: float, hit: tuple[float, float], why: str
) -> None:
    t = generate(preset(name).with_overrides(seed=seed))
    assert t.input_tokens.mean() == pytest.approx(mean_in, rel=0.15), why
    assert t.output_tokens.mean() == pytest.approx(mean_out, rel=0.15), why
    h = ideal_hit_tokens(t).sum() / t.input_tokens.sum()
    assert hit[0] <= h <= hit[1], (why, h)


def test_cli_synth(tmp_path: Path) -> None:
    out = tmp_path / "s.parquet"
    r = CliRunner().invoke(
        trace_app, ["synth", "--preset", "claude-code-session", "--out", str(out), "--json"]
    )
    assert r.exit_code == 0, r.output
    info = json.loads(r.output)
    assert (info["requests"], info["main_agent_requests"]) == (283, 58)
    r = CliRunner().invoke(trace_app, ["synth", "--preset", "nope", "--out", str(out)])
    assert r.exit_code == 2 and "unknown synth preset" in r.output
