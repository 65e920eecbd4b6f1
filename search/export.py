"""Export a finished job to an Optuna storage (``--optuna-storage sqlite:///study.db``) so
that ``optuna-dashboard sqlite:///study.db`` opens it.

Built from ``evaluations.csv`` after the run (the search itself keeps an in-memory study;
per-trial RDB storage runs at tens of trials/s). One trial per evaluated candidate: its
active parameters (categorical / int / float distributions of the job's space), the
objectives in their natural units (study directions max/min, metric names set), the
job's constraint violations as Optuna constraints (feasible when all <= 0) and the other
metrics as user attributes; candidates without finite objectives are stored as FAIL.
"""

from __future__ import annotations

import csv
import math
import warnings
from pathlib import Path

from search.spec import JobSpec


def export_study(spec: JobSpec, evaluations: str | Path, storage: str) -> str:
    """Write the job's trials into a new study named after the job; returns its name."""
    import numpy as np
    import optuna
    from optuna.distributions import (
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )

    from codesign.evaluate import METRICS
    from codesign.models import load_model
    from codesign.perf.profile import build_profile
    from search.pareto import Objectives
    from search.space import INT_KNOBS, Space

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space = Space(spec, build_profile(load_model(spec.model)).is_moe)
    dists, lookup = {}, {}
    for x in space.dims:
        if not x.continuous:
            dists[x.name] = CategoricalDistribution(list(x.choices))
            lookup[x.name] = {str(c): c for c in x.choices}
        elif x.name in INT_KNOBS:
            dists[x.name] = IntDistribution(int(x.low), int(x.high))
        else:
            dists[x.name] = FloatDistribution(x.low, x.high)
    obj = Objectives(spec)
    name = f"{spec.name}-{spec.strategy.seed}"
    if name in [s.study_name for s in optuna.get_all_study_summaries(storage)]:
        optuna.delete_study(study_name=name, storage=storage)  # a re-export replaces it
    study = optuna.create_study(
        study_name=name,
        storage=storage,
        directions=["maximize" if o.direction == "max" else "minimize" for o in spec.objectives],
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.set_metric_names([o.metric for o in spec.objectives])
    trials = []
    with Path(evaluations).open(newline="") as fh:
        for row in csv.DictReader(fh):
            params, pd = {}, {}
            for k, d in dists.items():
                v = row.get(k, "")
                if v == "":
                    continue
                if k in lookup:
                    params[k] = lookup[k][v]
                elif isinstance(d, IntDistribution):
                    params[k] = round(float(v))
                else:
                    params[k] = float(v)
                pd[k] = d
            metrics = {m: float(row[m]) for m in METRICS}
            res = {m: np.array([metrics[m]]) for m in METRICS}
            res["feasible"] = np.array([row["feasible"] == "True"])
            values = [metrics[o.metric] for o in spec.objectives]
            ok = all(math.isfinite(v) for v in values)
            viol = [float(v[0]) for v in obj.violations(res).values()]
            attrs = {m: (v if math.isfinite(v) else None) for m, v in metrics.items()}
            trials.append(
                optuna.trial.create_trial(
                    state=optuna.trial.TrialState.COMPLETE if ok else optuna.trial.TrialState.FAIL,
                    params=params,
                    distributions=pd,
                    values=values if ok else None,
                    user_attrs={
                        **attrs,
                        "batch": int(row["batch"]),
                        "phase": row["phase"],
                        "reason": row["reason"],
                    },
                    system_attrs={"constraints": viol},
                )
            )
    study.add_trials(trials)
    return name
