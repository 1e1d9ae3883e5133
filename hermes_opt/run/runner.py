"""Run a study: one driver asks Optuna for fixed-size batches, simulates them in a persistent
process pool, and tells the results back in trial-number order (optionally keeping the next
batch queued behind the running one, ``batches_in_flight: 2``, so workers do not idle at batch
boundaries).

Determinism: the batch size does not depend on the number of workers, the sampler is re-seeded
at the start of every batch from (study seed, trials so far), and each batch is sampled at a
fixed point (every earlier batch told, except the previous one with two in flight), so the same
study gives the same trials with 1 or N workers and after an interruption and resume. (Raising
``n_trials`` of a finished study continues it validly, but not as a longer run would have: its
last batch was told before the next one was sampled.)

Resume: ``n_trials`` is the total target. On SQLite, trials a dead driver left RUNNING are
re-evaluated with their stored parameters and told under their own number (nothing lost, nothing
duplicated). On PostgreSQL, stale trials (no heartbeat) are failed and re-queued, and a re-queued
trial replaces its original in the count.
"""

from __future__ import annotations

import dataclasses
import signal
import sys
import threading
import time
import warnings
from typing import Any, TextIO

import optuna
from optuna.trial import FrozenTrial, TrialState

from hermes_opt.run.assess import MULTIPLES, assess
from hermes_opt.run.capacity import with_capacity
from hermes_opt.run.checks import Checks
from hermes_opt.run.driver import Driver
from hermes_opt.run.pool import JobLost, Pool
from hermes_opt.run.preflight import resolve_evaluator
from hermes_opt.run.progress import Progress, RunStats, space_line
from hermes_opt.run.worker import Evaluator, Simulate
from hermes_opt.study import storage as storage_mod
from hermes_opt.study.coverage import CoverageSpec, main_trials
from hermes_opt.study.definition import StudySpec, to_raw
from hermes_opt.study.sampling import counted, open_study
from hermes_opt.study.storage_errors import storage_failure
from sim.errors import ConfigError


class _Stop:
    """First Ctrl-C (or SIGTERM): finish cleanly, keeping every completed trial. Second: abort."""

    def __init__(self) -> None:
        self.requested = False
        self._old: dict[int, Any] = {}

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        print("\nhermes-opt: stopping after saving completed trials (Ctrl-C again to abort)",
              file=sys.stderr, flush=True)

    def __enter__(self) -> _Stop:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._old.items():
            signal.signal(sig, handler)


def run_study(spec: StudySpec, *, evaluator: Evaluator | None = None, n_jobs: int | None = None,
              progress_stream: TextIO | None = sys.stderr) -> tuple[optuna.Study, RunStats]:
    """Run (or resume) ``spec`` until it has ``n_trials`` trials or is interrupted."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # no INFO line per trial: we report
    with warnings.catch_warnings():  # grouped TPE and heartbeats are "experimental" in Optuna
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        try:
            return _run_study(spec, evaluator, n_jobs, progress_stream)
        except ConfigError:
            raise
        except Exception as err:  # disk full, read-only, locked: one line (storage_errors)
            failure = storage_failure(err, spec.storage_url())
            if failure is None:
                raise
            raise failure from None


def _run_study(spec: StudySpec, evaluator: Evaluator | None, n_jobs: int | None,
               progress_stream: TextIO | None) -> tuple[optuna.Study, RunStats]:
    url = spec.storage_url()
    multi_driver = not storage_mod.is_sqlite(url)
    # a capacity objective turns each replicate into a bisection on the arrival rate
    evaluator = with_capacity(spec, evaluator or resolve_evaluator(spec.evaluator))
    if spec.stress_checked and isinstance(evaluator, Simulate):
        evaluator = Simulate(checks=Checks(objectives=spec.objectives, constraints=spec.constraints,
                                           headroom=spec.headroom, redundancy=spec.redundancy))
    # Workers boot (interpreter + simulator imports, ~1 s) while the storage and study open.
    with make_pool(spec, n_jobs or spec.n_jobs) as pool:
        storage = storage_mod.open_storage(url, heartbeat_interval_s=spec.heartbeat_interval_s,
                                           grace_period_s=spec.grace_period_s)
        with storage_mod.DriverLock(url):
            stored_n_trials = _stored_n_trials(storage, spec.name)
            # one driver per SQLite study (the lock): its cache need not re-read what it wrote
            study = open_study(spec, storage if multi_driver
                               else storage_mod.SingleDriverCache(storage))
            sampler = str(study.user_attrs.get("sampler", spec.resolved_sampler))
            points = spec.space.num_points()
            run_spec = spec
            if sampler == "grid" and spec.n_trials != points:
                # the grid evaluates every point whatever n_trials says (the driver asks up to
                # n_trials, so it runs with the number of points)
                run_spec = dataclasses.replace(spec, n_trials=points)
            have = len(main_trials(counted(study.get_trials(deepcopy=False))))
            below = have > run_spec.n_trials
            if below:  # nothing new is asked, coverage trials included
                run_spec = dataclasses.replace(_keep_trials(study, spec, have, stored_n_trials),
                                               coverage=CoverageSpec(min_per_choice=0))
            progress = Progress(run_spec, progress_stream)
            if below:
                progress.note(f"{have:,} trials already done, n_trials={spec.n_trials:,}: "
                              f"nothing to run (raise n_trials to continue; the report covers "
                              f"all {have:,})")
            else:
                progress.note(space_line(spec, sampler))
            with _Stop() as stop, storage_mod.Heartbeat(storage) as heartbeat:
                driver = Driver(run_spec, study, pool, heartbeat, evaluator, progress, stop,
                                multi_driver, storage)
                stats = driver.run()
                if not stats.interrupted and not below:
                    _assess(run_spec, study, pool, stop, progress, stats)
            if run_spec is not spec and not below and not stats.interrupted and all(
                    t.state.is_finished() for t in counted(study.get_trials(deepcopy=False))):
                progress.note(f"space exhausted: all {points:,} points evaluated (sampler grid "
                              f"enumerates the whole space; n_trials={spec.n_trials:,} is not used)")
            progress.done(study, stats)
    return study, stats


def _assess(spec: StudySpec, study: optuna.Study, pool: Any, stop: _Stop, progress: Progress,
            stats: RunStats) -> None:
    """The decision's measurements (hermes_opt.run.assess) on the study's own pool."""
    tic = time.perf_counter()
    progress.note("assessing the recommendation: measuring the headroom of the best "
                  "configurations and sizing for " + ", ".join(f"{m:g}x" for m in MULTIPLES[1:])
                  + " the demand")
    try:
        result = assess(spec, study, pool, stop)
    except JobLost as lost:  # a probe's worker died MAX_RETRIES + 1 times: the trials stand
        progress.note(f"assessment skipped: a measurement was not made ({lost.reason}); "
                      f"the trials are saved and the next run measures again")
        return
    if result is None:
        stats.interrupted = True
        progress.note("interrupted while assessing; the trials are saved and the next run "
                      "measures again")
        return
    stats.assess_s = time.perf_counter() - tic
    if result.get("skipped"):
        progress.note(f"assessment skipped: {result['skipped']}")
    else:
        progress.note(f"assessed {len(result['candidates'])} configurations in "
                      f"{stats.assess_s:.0f}s")


def make_pool(spec: StudySpec, n_jobs: int | None) -> Any:
    """The study's evaluation pool: loky on this machine (``executor: loky``, the default) or a
    Dask cluster (``hermes_opt.run.dask_pool``). Both take the same jobs and return the same
    results; the driver's fixed batches make the trials independent of which one runs them."""
    if spec.executor.kind == "dask":
        from hermes_opt.run.dask_pool import DaskPool
        return DaskPool(n_jobs, spec.executor.address)
    return Pool(n_jobs)


def _stored_n_trials(storage: optuna.storages.BaseStorage, name: str) -> int | None:
    """The ``n_trials`` the stored study was last run with (None: a new study)."""
    try:
        study_id = storage.get_study_id_from_name(name)
    except KeyError:
        return None
    value = (storage.get_study_user_attrs(study_id).get("spec") or {}).get("n_trials")
    return value if isinstance(value, int) else None


def _keep_trials(study: optuna.Study, spec: StudySpec, have: int,
                 stored_n_trials: int | None) -> StudySpec:
    """``n_trials`` below the trials already in the study: ask for nothing new (trials a dead
    driver left running are still finished), and keep the stored target, so the report does
    not claim "96 of n_trials=60". Returns the spec the driver runs with."""
    kept = stored_n_trials if stored_n_trials is not None and stored_n_trials >= have else have
    study.set_user_attr("spec", to_raw(dataclasses.replace(spec, n_trials=kept)))
    return dataclasses.replace(spec, n_trials=have)


def feasible_trials(study: optuna.Study) -> list[FrozenTrial]:
    return [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
            if t.constraints and all(v <= 0 for v in t.constraints.values())]
