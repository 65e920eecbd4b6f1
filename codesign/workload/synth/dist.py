"""`Dist`: a one-dimensional distribution as data (constant, lognormal, uniform, quantiles).

Every random quantity of the session generator is a `Dist`, so presets are plain parameter
sets that round-trip through JSON/YAML. Sampling is vectorised and takes the caller's
``numpy.random.Generator``, which keeps the generator seeded and deterministic.

``quantiles`` is an empirical inverse CDF: ``probs`` (0 → 1, increasing) and ``values``
(non-decreasing). Sampling interpolates between the points, linearly in ``log1p(value)``
when ``log_interp`` (heavy-tailed token counts and gaps), so a table of ~40 points fitted
to real data reproduces its CDF to within a fraction of one table step.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import BaseModel, Field, model_validator
from scipy.special import ndtri

from codesign.errors import SpecError


class Dist(BaseModel):
    """A distribution of a non-negative quantity; see the module docstring."""

    kind: Literal["const", "lognormal", "uniform", "quantiles"] = "const"
    value: float = Field(0.0, ge=0, description="const: the value")
    median: float = Field(1.0, gt=0, description="lognormal: median (exp(mu))")
    sigma: float = Field(0.0, ge=0, description="lognormal: std-dev of log(value)")
    low: float = Field(0.0, ge=0, description="uniform: lower bound")
    high: float = Field(0.0, ge=0, description="uniform: upper bound")
    probs: list[float] = Field(default_factory=list, description="quantiles: CDF points")
    values: list[float] = Field(default_factory=list, description="quantiles: values at probs")
    log_interp: bool = Field(True, description="quantiles: interpolate in log1p(value)")
    min_value: float = Field(0.0, ge=0, description="samples are clipped to at least this")
    max_value: float | None = Field(None, description="samples are clipped to at most this")
    integer: bool = Field(False, description="round samples to whole numbers")

    @model_validator(mode="after")
    def _check(self) -> Dist:
        if self.kind == "uniform" and self.high < self.low:
            raise SpecError(f"uniform distribution: high {self.high} < low {self.low}")
        if self.kind == "quantiles":
            p, v = np.asarray(self.probs), np.asarray(self.values)
            if p.size < 2 or p.size != v.size:
                raise SpecError("quantiles distribution: give >= 2 probs and as many values")
            if p[0] != 0.0 or p[-1] != 1.0 or np.any(np.diff(p) <= 0):
                raise SpecError("quantiles distribution: probs must rise from 0 to 1")
            if np.any(np.diff(v) < 0) or v[0] < 0:
                raise SpecError("quantiles distribution: values must be non-negative, rising")
        if self.max_value is not None and self.max_value < self.min_value:
            raise SpecError(f"distribution: max_value {self.max_value} < min {self.min_value}")
        return self

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """``n`` samples as float64 (clipped, rounded when ``integer``)."""
        return self.ppf(rng.random(n))

    def ppf(self, u: np.ndarray) -> np.ndarray:
        """Inverse CDF at probabilities ``u`` (clipped, rounded when ``integer``)."""
        u = np.asarray(u, dtype=float)
        if self.kind == "const":
            x = np.full(u.shape, self.value)
        elif self.kind == "lognormal":
            z = ndtri(np.clip(u, 1e-12, 1 - 1e-12))
            x = self.median * np.exp(self.sigma * z)
        elif self.kind == "uniform":
            x = self.low + u * (self.high - self.low)
        else:
            v = np.asarray(self.values, dtype=float)
            if self.log_interp:
                x = np.expm1(np.interp(u, self.probs, np.log1p(v)))
            else:
                x = np.interp(u, self.probs, v)
        x = np.maximum(x, self.min_value)
        if self.max_value is not None:
            x = np.minimum(x, self.max_value)
        return np.round(x) if self.integer else x

    def mean_estimate(self, rng_seed: int = 0, n: int = 20_000) -> float:
        """Monte-Carlo mean (for reports and sanity checks, not for generation)."""
        return float(self.sample(np.random.default_rng(rng_seed), n).mean())


def const(value: float) -> Dist:
    return Dist(kind="const", value=value)


def lognormal(median: float, sigma: float, **kw: float | bool | None) -> Dist:
    return Dist(kind="lognormal", median=median, sigma=sigma, **kw)  # type: ignore[arg-type]


def quantiles(probs: list[float], values: list[float], **kw: float | bool | None) -> Dist:
    return Dist(kind="quantiles", probs=probs, values=values, **kw)  # type: ignore[arg-type]


# CDF points used for fitted tables: dense in the tails, 2.5% steps in the body
TABLE_PROBS: list[float] = [
    0.0,
    0.005,
    0.01,
    0.025,
    *[round(0.05 + 0.025 * k, 3) for k in range(37)],
    0.975,
    0.99,
    0.995,
    1.0,
]


def fit_table(sample: np.ndarray, integer: bool = True, log_interp: bool = True) -> Dist:
    """A quantiles `Dist` from an empirical sample (numpy 'linear' percentiles)."""
    x = np.asarray(sample, dtype=float)
    x = x[np.isfinite(x)]
    if x.size == 0:
        raise SpecError("cannot fit a distribution to an empty sample")
    vals = np.percentile(x, np.asarray(TABLE_PROBS) * 100.0)
    vals = np.maximum.accumulate(np.round(vals, 1))
    return quantiles(list(TABLE_PROBS), vals.tolist(), integer=integer, log_interp=log_interp)
