"""Rows unlike the dev rows are still predicted: dev rows with one layout field, length or
worker count set to an odd value all get finite, positive TTFT and TPOT (coverage counts
against the score, and a crash would lose every row)."""

from __future__ import annotations

import csv
import random
from pathlib import Path

import numpy as np

from codesign.perf.predict import predict_rows
from codesign.validation.silicon import SiliconRows

FIELDS = (
    "tp_size",
    "moe_ep_size",
    "moe_tp_size",
    "attention_dp_size",
    "pp_size",
    "decode_tp_size",
    "prefill_tp_size",
    "decode_attention_dp_size",
    "decode_num_workers",
    "prefill_num_workers",
)


def test_odd_layouts_and_lengths_are_predicted(shared_dir: Path, tmp_path: Path) -> None:
    src = list(csv.DictReader((shared_dir / "validation" / "silicon_dev.csv").open()))
    rng = random.Random(7)
    rows = []
    for k in range(240):
        row = dict(rng.choice(src), id=f"odd{k}")
        if k % 4 == 0:
            row[rng.choice(("isl", "osl"))] = str(rng.choice((1, 2, 17, 100_000, 300_000)))
        else:
            row[rng.choice(FIELDS)] = str(rng.choice((1, 2, 3, 5, 7, 12, 16, 64, 128, 1000)))
        rows.append(row)
    path = tmp_path / "odd.csv"
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(src[0]))
        writer.writeheader()
        writer.writerows(rows)
    ttft, tpot, why = predict_rows(SiliconRows.from_csv(path))
    assert (why == "").all(), sorted(set(why[why != ""]))
    assert (np.isfinite(ttft) & (ttft > 0) & np.isfinite(tpot) & (tpot > 0)).all()
