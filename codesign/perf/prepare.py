"""Measured rows made ready to predict: grouped by model, with what does not depend on
the calibration (model profiles, hardware numbers, byte sizes) gathered once, so that
calibration fits re-evaluate thousands of rows in milliseconds (``perf.predict``)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from codesign.errors import CodesignError
from codesign.models import kv_elements_per_token, load_model
from codesign.perf import unrecorded
from codesign.perf.engine import byte_sizes
from codesign.perf.group import Group, row_precisions, stored_kv_precision
from codesign.perf.hardware import hw_vectors
from codesign.perf.profile import ModelProfile, build_profile
from codesign.validation.silicon import SiliconRows


@dataclass(frozen=True)
class Prepared:
    n: int
    groups: tuple[Group, ...]
    reasons: np.ndarray  # '' where predictable


def prepare(rows: SiliconRows) -> Prepared:
    """Group the rows by model and gather what does not depend on the calibration. A row
    that cannot be predicted (unknown model, system or format) gets its reason and leaves
    the others of its model alone."""
    reasons = np.full(len(rows), "", dtype=object)
    groups = []
    for model in sorted(set(rows.model)):
        index = np.flatnonzero(rows.model == model)
        try:
            arch = load_model(model)
            prof = build_profile(arch)
        except CodesignError as exc:
            reasons[index] = str(exc)
            continue
        sub = rows.subset(index)
        precs, why = _row_setups(sub, prof)
        reasons[index] = why
        ok = why == ""
        if not ok.any():
            continue
        sub, index = sub.subset(ok), index[ok]
        try:
            g, m, kv = (list(x) for x in zip(*(precs[j] for j in np.flatnonzero(ok)), strict=True))
            hw = hw_vectors(list(sub.system), g, m)
            sub = unrecorded.read_product_layouts(sub, hw.su_domain, prof.num_heads, prof.is_moe)
            stored = [stored_kv_precision(a, b, prof) for a, b in zip(g, kv, strict=True)]
            nb = byte_sizes(g, m, kv, stored)
            groups.append(Group(index, sub, prof, float(kv_elements_per_token(arch)), hw, nb))
        except CodesignError as exc:
            reasons[index] = str(exc)
    return Prepared(len(rows), tuple(groups), reasons)


def _row_setups(
    sub: SiliconRows, prof: ModelProfile
) -> tuple[list[tuple[str, str, str] | None], np.ndarray]:
    """Per row: its (gemm, moe, kv) precisions and '' where its system and formats are
    usable, else None and the reason (checked once per distinct combination)."""
    precs: list[tuple[str, str, str] | None] = []
    why = np.full(len(sub), "", dtype=object)
    seen: dict[tuple, tuple[tuple[str, str, str] | None, str]] = {}
    keys = zip(sub.gemm_quant, sub.moe_quant, sub.precision, sub.backend, sub.system, strict=True)
    for j, key in enumerate(keys):
        if key not in seen:
            try:
                p = row_precisions(*key[:4], prof)
                hw_vectors([key[4]], [p[0]], [p[1]])
                seen[key] = (p, "")
            except (CodesignError, ValueError) as exc:
                seen[key] = (None, str(exc))
        precs.append(seen[key][0])
        why[j] = seen[key][1]
    return precs, why
