"""One search job: screening + batched Optuna ask/tell over vectorised evaluations.

``Search(spec).run()`` evaluates candidates in batches (one ``evaluate_arrays`` call per
batch), keeps the Pareto archive and its hypervolume, writes each batch to a `Sink`, calls
``on_progress`` after each batch, and stops on the budget, on ``cancel()`` returning true
(checked between batches), or after ``strategy.patience`` batches without hypervolume
gain. Strategies:

- ``exhaustive``: every configuration (knobs on a grid), in vectorised chunks;
- ``random`` / ``qmc``: vectorised uniform / Sobol sampling of the budget;
- ``tpe`` / ``nsga2`` / ``nsga3``: an in-memory Optuna study, ``batch`` trials per ask/tell,
  one ``set_constraint`` per constraint (memory fit and every bound);
- ``auto``: screen (exhaustively when the whole space fits ``screen_fraction`` of the
  budget and has no continuous knob, else by QMC), Pareto-filter, enqueue the survivors
  in an NSGA-II study and refine with the rest of the budget.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from codesign.errors import SpecError
from codesign.workload.agent_load import AgentLoad
from search.batch_eval import EvalContext, evaluate_points
from search.decode import Decoder
from search.executor import Executor, make_executor
from search.pareto import INFEASIBLE, Archive, Objectives, contributions
from search.resume import StoredBatch
from search.samplers import AUTO_REFINER, make_sampler
from search.sink import Batch, Sink
from search.space import Points, Space, model_is_moe, row_keys, take
from search.spec import JobSpec
from search.workload import build_load, build_trace, job_warnings

SCREEN_CHUNK = 65_536  # candidates per vectorised screening call
RAY_MIN_CHUNK = 16_384  # smallest screening chunk sent to an executor task (~0.15 s)


@dataclass
class Progress:
    phase: str
    evaluations: int
    budget: int
    feasible: int
    pareto_size: int
    hypervolume: float
    elapsed_s: float
    eta_s: float


@dataclass
class ParetoPoint:
    params: dict[str, Any]
    deployment: Any  # codesign.deployment.Deployment
    metrics: dict[str, float]
    hv_contribution: float
    metrics_simulated: dict[str, float] | None = None  # verify_top: simulator's values
    pareto_simulated: bool | None = None  # verified: still non-dominated when simulated
    simulation_notes: list[str] = field(default_factory=list)


@dataclass
class SearchResult:
    spec: JobSpec
    front: list[ParetoPoint]  # best first by the first objective
    hypervolume: float
    reference: dict[str, float]
    history: list[Progress]
    evaluations: int
    feasible: int
    space_size: int
    elapsed_s: float
    stopped: str  # budget | exhausted | cancelled | converged
    warnings: list[str] = field(default_factory=list)
    verification: dict[str, Any] | None = None  # see search.verify
    resumed_batches: int = 0  # batches replayed from a previous run (not re-evaluated)


class Search:
    def __init__(
        self,
        spec: JobSpec,
        sink: Sink | None = None,
        on_progress: Callable[[Progress], None] | None = None,
        cancel: Callable[[], bool] | None = None,
        load: AgentLoad | None = None,
        executor: Executor | None = None,
        resume: list[StoredBatch] | None = None,
    ) -> None:
        from codesign.perf.calibration import load_calibration

        self.spec = spec
        self.sink = sink
        self.on_progress = on_progress
        self.cancel = cancel or (lambda: False)
        self._trace = None
        if load is None:
            self._trace = build_trace(spec)
            load = build_load(spec, self._trace)
        self.load = load
        self.executor = executor
        self._replay = list(resume or [])
        self._replayed, self._in_replay = 0, False
        self.calib = load_calibration()
        self.space = Space(spec, model_is_moe(spec))
        self.decoder = Decoder(self.space)
        self.obj = Objectives(spec)
        self.archive = Archive()
        self.history: list[Progress] = []
        self.warnings: list[str] = job_warnings(spec, load)
        self.evaluations = self.feasible = self.batches = 0
        self._stall = 0
        self._stopped = ""
        self._seen: set[bytes] = set()

    # --- evaluation ---------------------------------------------------------------------
    @property
    def trace(self) -> Any:
        """The job's trace (built on first use when the load was passed in)."""
        if self._trace is None:
            self._trace = build_trace(self.spec)
        return self._trace

    @property
    def context(self) -> EvalContext:
        if not hasattr(self, "_ctx"):
            sessions = self.spec.workload.concurrent_sessions
            self._ctx = EvalContext(self.decoder, self.load, sessions, self.calib, self.obj)
        return self._ctx

    def evaluate(self, pts: Points) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
        """Metrics, normalised objectives and the ok mask of a batch of points (a batch
        of a resumed run comes from its stored results instead)."""
        if self._replay:
            res = self._replay.pop(0).take(pts, self.space)
            self._in_replay = True
            return res, self.obj.matrix(res), self.obj.ok(res)
        return evaluate_points(self.context, pts)

    def _record(self, phase: str, pts: Points, res: dict, f: np.ndarray, ok: np.ndarray) -> None:
        t0 = getattr(self, "_t0", time.perf_counter())
        before = self.archive.hypervolume
        self.archive.update(f, ok, pts, res)
        hv = self.archive.hypervolume
        self._stall = 0 if hv > before * (1 + 1e-6) or hv == 0 else self._stall + 1
        n = len(ok)
        self.evaluations += n
        self.feasible += int(ok.sum())
        self.batches += 1
        elapsed = time.perf_counter() - t0
        budget = self.spec.strategy.budget
        rate = self.evaluations / max(elapsed, 1e-9)
        prog = Progress(
            phase,
            self.evaluations,
            budget,
            self.feasible,
            len(self.archive),
            hv,
            elapsed,
            max(budget - self.evaluations, 0) / rate,
        )
        self.history.append(prog)
        replayed, self._in_replay = self._in_replay, False
        self._replayed += replayed
        if self.sink is not None and not replayed:
            cols = {x.name: self._column(pts, x.name) for x in self.space.dims}
            self.sink.write_batch(Batch(self.batches, phase, cols, res, ok), prog)
        if self.on_progress is not None:
            self.on_progress(prog)

    def _column(self, pts: Points, name: str) -> np.ndarray:
        if self.space.by_name[name].continuous:
            v = pts[name]
            return np.where(np.isnan(v), None, v).astype(object)
        return self.space.values(pts, name)

    def _stop(self) -> bool:
        if self.cancel():
            self._stopped = "cancelled"
        elif self.evaluations >= self.spec.strategy.budget:
            self._stopped = "budget"
        elif self.spec.strategy.patience and self._stall >= self.spec.strategy.patience:
            self._stopped = "converged"
        return bool(self._stopped)

    # --- strategies ---------------------------------------------------------------------
    def _screen(self, phase: str, total: int, exhaustive: bool, rng: np.random.Generator) -> None:
        chunk = max(self.spec.strategy.batch, SCREEN_CHUNK)
        done, idle = 0, 0
        while done < total and not self._stop() and idle < 3:
            n = min(chunk, total - done, self.spec.strategy.budget - self.evaluations)
            if self._parallel(n):
                done, idle = self._screen_parallel(phase, total, exhaustive, rng, done, idle)
                continue
            pts = self._draw(phase, exhaustive, rng, done, n)
            m = len(pts["mode"])
            idle = idle + 1 if m == 0 else 0
            done += m
            if m:
                self._record(phase, pts, *self.evaluate(pts))

    def _draw(
        self, phase: str, exhaustive: bool, rng: np.random.Generator, done: int, n: int
    ) -> Points:
        if exhaustive:
            return self.space.enumerate(done, done + n)
        # sample, then keep only configurations not evaluated yet
        return self._fresh(self.space.sample(n, rng, qmc=phase in ("qmc", "screen")))

    def _parallel(self, n: int) -> bool:
        ex = self.executor
        return ex is not None and ex.workers > 1 and not self._replay and n >= RAY_MIN_CHUNK

    def _screen_parallel(
        self,
        phase: str,
        total: int,
        exhaustive: bool,
        rng: np.random.Generator,
        done: int,
        idle: int,
    ) -> tuple[int, int]:
        """Draw up to ``workers`` chunks exactly as the inline loop would, evaluate them as
        executor tasks, record them in order (stopping where the inline loop would)."""
        chunk = max(self.spec.strategy.batch, SCREEN_CHUNK)
        chunks, evals = [], self.evaluations
        while len(chunks) < self.executor.workers and done < total and idle < 3:  # type: ignore[union-attr]
            n = min(chunk, total - done, self.spec.strategy.budget - evals)
            if n <= 0:
                break
            pts = self._draw(phase, exhaustive, rng, done, n)
            m = len(pts["mode"])
            idle = idle + 1 if m == 0 else 0
            done += m
            evals += m
            if m:
                chunks.append(pts)
        outs = self.executor.map(evaluate_points, self.context, chunks)  # type: ignore[union-attr]
        for i, (pts, out) in enumerate(zip(chunks, outs, strict=True)):
            if i and self._stop():
                break
            self._record(phase, pts, *out)
        return done, idle

    def _fresh(self, pts: Points) -> Points:
        keys = row_keys(pts)
        _, first = np.unique(keys, return_index=True)
        fresh = np.array([i for i in np.sort(first) if keys[i] not in self._seen], dtype=np.int64)
        self._seen.update(keys[fresh])
        return take(pts, fresh)

    def _local(self, budget_end: int) -> None:
        """Pareto local search: evaluate the unseen one-step neighbours of the front until
        the front stops changing or the budget ends (vectorised; discrete dimensions)."""
        while not self._stop() and self.evaluations < budget_end and len(self.archive):
            cand = self._fresh(self.space.neighbours(self.archive.pts))  # type: ignore[arg-type]
            n = len(cand["mode"])
            if n == 0:
                return
            cand = take(cand, np.arange(min(n, budget_end - self.evaluations)))
            self._record("local", cand, *self.evaluate(cand))

    def _refine(self, sampler_name: str, budget_end: int, seeds: Points | None) -> None:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        st = self.spec.strategy
        k = len(self.spec.objectives)
        study = optuna.create_study(
            directions=["minimize"] * k, sampler=make_sampler(sampler_name, st.seed, st.batch, k)
        )
        if seeds is not None:
            for i in range(len(seeds["mode"])):
                study.enqueue_trial(self.space.params(seeds, i), skip_if_exists=True)
        while not self._stop() and self.evaluations < budget_end:
            n = min(st.batch, budget_end - self.evaluations)
            trials = [study.ask() for _ in range(n)]
            pts = self.space.from_params([self.space.suggest(t) for t in trials])
            res, f, ok = self.evaluate(pts)
            viol = self.obj.violations(res)
            values = np.where(np.isfinite(f), f, INFEASIBLE)
            for i, t in enumerate(trials):
                for key, v in viol.items():
                    t.set_constraint(key, float(v[i]))
                study.tell(t, values[i].tolist())
            self._record(sampler_name, pts, res, f, ok)

    def _seeds(self, limit: int) -> Points | None:
        """The archive's points (at most ``limit``, largest hypervolume share first)."""
        if not len(self.archive) or limit <= 0:
            return None
        order = np.argsort(-contributions(self.archive.f))[:limit]  # type: ignore[arg-type]
        return take(self.archive.pts, order)  # type: ignore[arg-type]

    def run(self) -> SearchResult:
        """Run the job (executor ray and none passed in: one is started for the run)."""
        st = self.spec.strategy
        if self.executor is not None or st.executor == "inline":
            return self._run()
        self.executor = make_executor(st.executor, st.ray_address)
        try:
            return self._run()
        finally:
            self.executor.close()
            self.executor = None

    def _run(self) -> SearchResult:
        st = self.spec.strategy
        self._t0 = time.perf_counter()
        rng = np.random.default_rng(st.seed)
        size = self.space.count()
        if self.sink is not None:
            self.sink.open(self.spec, size)
        if st.sampler == "exhaustive":
            if size > st.exhaustive_limit or size > st.budget:
                raise SpecError(
                    f"strategy.sampler: exhaustive needs {size:,} evaluations (knobs on a "
                    f"{st.knob_levels}-level grid), more than strategy.budget ({st.budget:,}) "
                    f"or exhaustive_limit ({st.exhaustive_limit:,}); use auto"
                )
            self._screen("exhaustive", size, True, rng)
        elif st.sampler in ("random", "qmc"):
            self._screen(st.sampler, st.budget, False, rng)
        elif st.sampler == "auto":
            screen_n = max(int(st.budget * st.screen_fraction), 1)
            if not self.space.has_knobs and size <= min(screen_n, st.exhaustive_limit):
                self._screen("exhaustive", size, True, rng)
                self._stopped = self._stopped or "exhausted"
            else:
                self._screen("screen", screen_n, False, rng)
                reserve = int(st.budget * 0.2) if self.space.has_knobs else 0
                self._local(st.budget - reserve)
                seeds = self._seeds(st.budget - self.evaluations)
                self._refine(AUTO_REFINER, st.budget, seeds)
        else:
            self._refine(st.sampler, st.budget, None)
        if not self._stopped:
            self._stopped = "exhausted" if st.sampler == "exhaustive" else "budget"
        result = self._result()
        if st.verify_top and self._stopped != "cancelled":
            from search.executor import InlineExecutor
            from search.verify import verify

            verify(self, result, self.executor or InlineExecutor())
        if self.sink is not None:
            self.sink.close(result)
        return result

    # --- result -------------------------------------------------------------------------
    def _result(self) -> SearchResult:
        a = self.archive
        front: list[ParetoPoint] = []
        if len(a):
            contrib = contributions(a.f)  # type: ignore[arg-type]
            o = self.spec.objectives[0]
            first = a.metrics[o.metric]
            order = np.argsort(-first if o.direction == "max" else first, kind="stable")
            from codesign.evaluate import METRICS

            for i in order:
                front.append(
                    ParetoPoint(
                        params=self.space.params(a.pts, int(i)),  # type: ignore[arg-type]
                        deployment=self.decoder.deployment(a.pts, int(i)),  # type: ignore[arg-type]
                        metrics={m: float(a.metrics[m][i]) for m in METRICS},
                        hv_contribution=float(contrib[i]),
                    )
                )
        return SearchResult(
            spec=self.spec,
            front=front,
            hypervolume=a.hypervolume,
            reference=self.obj.reference,
            history=self.history,
            evaluations=self.evaluations,
            feasible=self.feasible,
            space_size=self.space.count(),
            elapsed_s=time.perf_counter() - self._t0,
            stopped=self._stopped,
            warnings=self.warnings,
            resumed_batches=self._replayed,
        )


def run(spec: JobSpec, **kwargs: Any) -> SearchResult:
    """Run one job (see `Search` for the keyword arguments)."""
    return Search(spec, **kwargs).run()
