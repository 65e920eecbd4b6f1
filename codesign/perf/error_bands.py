"""How far measured latencies fall from the model's predictions: an error band per
serving mode and engine, carried with the calibration and attached to every estimate.

A prediction on its own says nothing about how much to trust it. The calibration step
already predicts measured rows; the spread of measured / predicted over those rows, per
(mode, engine), is the band a user should read a new prediction with: the 10th, 50th and
90th percentile of the ratio. Taken from leave-one-system-out predictions (each system's
rows predicted by a calibration fitted without them) it is what a system the calibration
never saw should expect; taken in sample it is narrower, and labelled so.

The band is empirical, not a confidence interval of the physics: it describes rows like
the measured ones (fixed-length prompts, closed-loop clients). A (mode, engine) with
fewer than ``MIN_ROWS`` measured rows borrows its mode's band, then the band over all
rows; a mode with no measured rows at all (attention-FFN disaggregation) gets none.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

QUANTILES = (0.1, 0.5, 0.9)
MIN_ROWS = 20
ALL = "all"


class ErrorBand(BaseModel):
    """Measured / predicted at the 10th, 50th and 90th percentile over ``rows`` rows."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rows: int = Field(ge=1)
    ttft_ratio: tuple[float, float, float]
    tpot_ratio: tuple[float, float, float]


class ErrorBands(BaseModel):
    """Bands keyed ``all``, ``<mode>`` and ``<mode>/<engine>``; ``source`` says which
    predictions they come from."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    source: str
    modes: tuple[str, ...] = Field(description="serving modes with measured rows")
    bands: dict[str, ErrorBand]

    def lookup(self, mode: str, engine: str) -> tuple[str, ErrorBand] | None:
        """The most specific band for ``mode`` and ``engine``: its own, its mode's, or
        the one over all rows where the mode has measured rows; None where it has none."""
        if mode not in self.modes:
            return None
        for key in (f"{mode}/{engine}", mode, ALL):
            if key in self.bands:
                return key, self.bands[key]
        return None


def _band(ttft_ratio: np.ndarray, tpot_ratio: np.ndarray) -> ErrorBand:
    q = np.asarray(QUANTILES)
    t = np.quantile(ttft_ratio, q)
    p = np.quantile(tpot_ratio, q)
    return ErrorBand(
        rows=len(ttft_ratio),
        ttft_ratio=(float(t[0]), float(t[1]), float(t[2])),
        tpot_ratio=(float(p[0]), float(p[1]), float(p[2])),
    )


def compute_error_bands(
    modes: Sequence[str],
    engines: Sequence[str],
    measured_ttft: np.ndarray,
    predicted_ttft: np.ndarray,
    measured_tpot: np.ndarray,
    predicted_tpot: np.ndarray,
    source: str,
    min_rows: int = MIN_ROWS,
) -> ErrorBands:
    """Bands from rows with finite, positive measured and predicted TTFT and TPOT (others
    are left out: an unpredicted row has no ratio). Groups below ``min_rows`` rows are not
    kept, so their lookups fall back to the wider group."""
    mode = np.asarray(modes, dtype=object)
    engine = np.asarray(engines, dtype=object)
    rt = np.asarray(measured_ttft, dtype=float) / np.asarray(predicted_ttft, dtype=float)
    rp = np.asarray(measured_tpot, dtype=float) / np.asarray(predicted_tpot, dtype=float)
    ok = np.isfinite(rt) & np.isfinite(rp) & (rt > 0) & (rp > 0)
    if ok.sum() < min_rows:
        raise ValueError(f"error bands need at least {min_rows} predicted rows, got {ok.sum()}")
    bands = {ALL: _band(rt[ok], rp[ok])}
    seen = sorted(set(mode[ok].tolist()))
    for m in seen:
        in_mode = ok & (mode == m)
        if in_mode.sum() >= min_rows:
            bands[m] = _band(rt[in_mode], rp[in_mode])
        for e in sorted(set(engine[in_mode].tolist())):
            sel = in_mode & (engine == e)
            if sel.sum() >= min_rows:
                bands[f"{m}/{e}"] = _band(rt[sel], rp[sel])
    return ErrorBands(source=source, modes=tuple(seen), bands=bands)


def band_fields(
    bands: ErrorBands | None,
    mode: str,
    engine: str,
    ttft_ms: float,
    tpot_ms: float,
    unmeasured: Sequence[str] = (),
) -> dict[str, object]:
    """The estimate's band fields: the latencies the 10th and 90th percentile ratios give,
    and which band that was; empty where there is no band for the mode. ``unmeasured``
    names what the request has that the measured rows did not (prefix hits, open-loop
    arrivals ...): the band is still the best guide, and says so."""
    found = bands.lookup(mode, engine) if bands is not None else None
    if found is None or bands is None:
        return {}
    key, b = found
    note = f"; the measured rows had no {', '.join(unmeasured)}" if unmeasured else ""
    return {
        "ttft_ms_p10": ttft_ms * b.ttft_ratio[0],
        "ttft_ms_p90": ttft_ms * b.ttft_ratio[2],
        "tpot_ms_p10": tpot_ms * b.tpot_ratio[0],
        "tpot_ms_p90": tpot_ms * b.tpot_ratio[2],
        "error_band": f"{key}, {bands.source}, {b.rows} measured rows{note}",
    }
