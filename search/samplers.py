"""Optuna samplers by name (the refinement half of a search).

``exhaustive``, ``random`` and ``qmc`` are vectorised screening strategies of the driver
(no Optuna study); ``auto`` screens first and refines with ``AUTO_REFINER``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # optuna is imported when a study is made (it costs ~0.15 s to import)
    import optuna

SCREENING = ("exhaustive", "random", "qmc")
AUTO_REFINER = "nsga2"  # NSGA-II: ~1 ms/trial at 10k trials; TPE grows to ~70 ms/trial


def _tpe(seed: int, batch: int, objectives: int) -> optuna.samplers.BaseSampler:
    import optuna

    return optuna.samplers.TPESampler(seed=seed, multivariate=True, constant_liar=True)


def _nsga2(seed: int, batch: int, objectives: int) -> optuna.samplers.BaseSampler:
    import optuna

    return optuna.samplers.NSGAIISampler(seed=seed, population_size=max(batch, 2))


def _nsga3(seed: int, batch: int, objectives: int) -> optuna.samplers.BaseSampler:
    import optuna

    return optuna.samplers.NSGAIIISampler(seed=seed, population_size=max(batch, 2))


SAMPLERS: dict[str, Callable[[int, int, int], Any]] = {
    "tpe": _tpe,
    "nsga2": _nsga2,
    "nsga3": _nsga3,
}


def make_sampler(name: str, seed: int, batch: int, objectives: int) -> optuna.samplers.BaseSampler:
    """The Optuna sampler ``name`` (batch = NSGA population, one generation per batch)."""
    return SAMPLERS[name](seed, batch, objectives)
