"""The driver loop of a study: ask Optuna for fixed-size batches, hand their simulations to the
pool, tell the results back in trial-number order (the determinism rules are in
``hermes_opt.run.runner``, which builds the driver and its pool)."""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field, replace
from typing import Any

import optuna
from optuna.trial import TrialState

from hermes_opt.run import replay, screen, told
from hermes_opt.run.pool import MAX_RETRIES, JobLost, Pool, StopFlag
from hermes_opt.run.progress import Progress, RunStats
from hermes_opt.run.worker import Evaluator, JobResult, lost_results, run_trial
from hermes_opt.study import coverage, dashboard
from hermes_opt.study import storage as storage_mod
from hermes_opt.study.definition import StudySpec
from hermes_opt.study.objective import check_keys, set_constraints
from hermes_opt.study.sampling import batch_seed, counted, make_sampler
from hermes_opt.study.space import to_overrides

# re-exported: where readers of the stored constraints have always found them
RUNNABLE, SCREENED = told.RUNNABLE, told.SCREENED


class Driver:
    """Keeps ``spec.batches_in_flight`` batches in flight. With 2, the next batch is sampled as
    soon as the one before the previous is told, so workers never idle at a batch boundary
    while the driver tells and samples. What the sampler sees at each ask is still fixed (every
    earlier batch told except the previous one, which is running), so trials do not depend on
    the worker count. With 1, every batch is told before the next is sampled."""

    def __init__(self, spec: StudySpec, study: optuna.Study, pool: Pool,
                 heartbeat: storage_mod.Heartbeat, evaluator: Evaluator, progress: Progress,
                 stop: StopFlag, multi_driver: bool,
                 rdb: optuna.storages.RDBStorage) -> None:
        self.spec, self.study, self.pool, self.rdb = spec, study, pool, rdb
        self.heartbeat, self.evaluator, self.progress, self.stop = heartbeat, evaluator, progress, stop
        self.multi_driver = multi_driver
        self.stats = RunStats(workers=pool.n_workers)
        self.sampler_kind = str(study.user_attrs.get("sampler", spec.resolved_sampler))
        self.known: dict[tuple[str, ...], list[JobResult]] = {}  # overrides -> results, this run
        self.depth = spec.batches_in_flight
        self.in_flight: deque[_Batch] = deque()  # oldest first; at most `depth`
        self.batch_of: dict[int, _Batch] = {}  # trial number -> its in-flight batch
        self.leaders: dict[tuple[str, ...], int] = {}  # candidate being simulated -> its trial
        self.followers: dict[int, list[int]] = {}  # leader trial -> trials sharing its results
        self.asking_done = False  # n_trials reached: the last batches are told without successor
        self.rule = screen.Rule.for_spec(spec) if spec.screening.enabled else None
        # the grid evaluates every point: nothing to top up
        self.covers = (spec.coverage.min_per_choice > 0 and self.sampler_kind != "grid"
                       and bool(coverage.keys(spec.space)))
        self._fixed = {SCREENED: -1.0} if self.rule else {}  # trials the estimate did not decide
        # constraints every trial carries after the study's own, in this order (run.checks)
        self.check_keys = check_keys(spec.headroom, spec.redundancy)
        self._losses_noted = 0  # worker losses already reported (pool.lost_workers)

    # --- asking ------------------------------------------------------------------------
    def ask_batch(self) -> list[optuna.Trial]:
        with storage_mod.ask_lock(self.rdb, self.spec.name):
            if self.multi_driver:
                storage_mod.fail_stale(self.study)  # re-queues trials of drivers that died
            trials = counted(self.study.get_trials(deepcopy=False))
            # re-queued (WAITING) trials are taken first by ask(); they replace their originals
            waiting = sum(t.state is TrialState.WAITING for t in trials)
            main = len(coverage.main_trials(trials))  # coverage trials are not in n_trials
            size = min(self.spec.batch_size, waiting + max(0, self.spec.n_trials - main))
            if size <= 0:
                return []
            self.study.sampler = make_sampler(self.spec, batch_seed(self.spec, len(trials)),
                                              self.sampler_kind)
            batch = []
            for _ in range(size):  # beat at once: see storage._fail_never_beaten
                batch.append(self._ask(waiting > 0))
                self.heartbeat.add(batch[-1]._trial_id)
            return batch

    def ask_coverage(self) -> list[optuna.Trial]:
        """The next coverage batch (``hermes_opt.study.coverage``), asked once every earlier
        trial is told; [] when every watched choice has its simulated candidates."""
        with storage_mod.ask_lock(self.rdb, self.spec.name):
            trials = counted(self.study.get_trials(deepcopy=False))
            best = None if self.spec.multi_objective else dashboard.best_feasible_trial(
                trials, self.spec)
            todo, served = coverage.plan(self.spec.space, self.spec.coverage, trials,
                                         self.spec.batch_size, best.params if best else None)
            if not todo:
                return []
            # the free parameters: random, not the study's sampler (hermes_opt.study.coverage)
            self.study.sampler = optuna.samplers.RandomSampler(
                seed=batch_seed(self.spec, len(trials)))
            self.progress.note(coverage.note(served, len(todo), self.spec.coverage))
            batch = []
            for params, name in todo:
                batch.append(coverage.ask_pinned(self.study, params, name))
                self.heartbeat.add(batch[-1]._trial_id)
            return batch

    def _ask(self, waiting: bool) -> optuna.Trial:
        """``study.ask()``, minus its scan for re-queued trials where there can be none (one
        driver, nothing WAITING): that scan re-reads every running trial from the database, a
        fifth of the driver's CPU per trial with two batches in flight."""
        if waiting or self.multi_driver:
            return self.study.ask()
        self.study._thread_local.cached_all_trials = None  # what ask() does: sync once per trial
        return optuna.trial.Trial(self.study,
                                  self.study._storage.create_new_trial(self.study._study_id))

    def _ask_lost(self) -> optuna.Trial:
        """A trial of a batch a killed driver was still asking (``replay.recover``)."""
        trial = self._ask(False)
        self.heartbeat.add(trial._trial_id)
        return trial

    def others_running(self) -> int:
        """Counted trials still RUNNING in other drivers (multi-driver storage only)."""
        trials = counted(self.study.get_trials(deepcopy=False))
        return sum(t.state in (TrialState.RUNNING, TrialState.WAITING) for t in trials)

    # --- evaluating ----------------------------------------------------------------------
    def start(self, trials: list[optuna.Trial], *, alone: bool = False) -> None:
        """Sample each trial and hand its simulations to the pool at once, so workers start on
        the first candidate while the driver samples the next. ``alone``: a batch asked once
        every earlier trial was told (coverage)."""
        batch = _Batch(sorted(trials, key=lambda t: t.number))
        self.in_flight.append(batch)
        evaluator = self.evaluator
        if self.rule is not None:
            evaluator = screen.ScreenedEvaluator(self.evaluator, self.rule,
                                                 self._incumbent(batch.untold[0].number, alone))
        # Every trial's parameters are sampled (and stored) before any job is submitted, so a
        # driver killed mid-batch leaves either a batch whose parameters are all stored (resume
        # re-runs exactly them) or one that ran nothing (resume replays its sampling: replay.py).
        tic = time.perf_counter()
        for trial in batch.untold:
            batch.params[trial.number], batch.done[trial.number] = self.spec.space.suggest(trial), []
            self.batch_of[trial.number] = batch
        self.stats.driver_s += time.perf_counter() - tic
        for trial in batch.untold:
            self._submit(batch, trial, evaluator)

    def _submit(self, batch: _Batch, trial: optuna.Trial, evaluator: Evaluator) -> None:
        overrides = tuple(list(self.spec.base) + to_overrides(batch.params[trial.number]))
        # Samplers re-propose configurations in discrete spaces; the simulator is
        # deterministic, so an identical candidate has identical results: reuse them.
        known = self.known.get(overrides)
        if known is not None:
            batch.done[trial.number] = [replace(r, trial_number=trial.number, sim_s=0.0,
                                                cpu_s=0.0) for r in known]
            self.stats.reused += 1
            return
        leader = self.leaders.get(overrides)
        if leader is not None:  # the same candidate is being simulated for another trial
            self.followers.setdefault(leader, []).append(trial.number)
            for result in self.batch_of[leader].done[leader]:  # results already back
                batch.done[trial.number].append(self._copy(result, trial.number))
            self.stats.reused += 1
            return
        self.leaders[overrides] = trial.number
        # one job per trial: its candidate is composed once for every replicate
        self.pool.submit(run_trial, evaluator, trial.number, list(overrides),
                         list(self.spec.replicate_seeds), self.spec.budget)

    def _incumbent(self, first: int, alone: bool) -> float | None:
        """Screening: the best feasible simulated objective among the batches that are told
        whenever this one is asked (those before the previous one with two in flight; every
        earlier one for a batch asked alone), so the decision does not depend on timing or the
        number of workers."""
        if self.rule is None or self.rule.objective is None:
            return None
        cutoff = first if alone else (
            (first // self.spec.batch_size - (self.depth - 1)) * self.spec.batch_size)
        values = [t.values[0] for t in self.study.get_trials(deepcopy=False,
                                                             states=(TrialState.COMPLETE,))
                  if t.number < cutoff and (t.user_attrs.get("result") or {}).get("status") == "ok"
                  and t.constraints and all(v <= 0 for v in t.constraints.values())]
        if not values:
            return None
        return max(values) if self.rule.objective.direction == "maximize" else min(values)

    @staticmethod
    def _copy(result: JobResult, number: int) -> JobResult:
        return replace(result, trial_number=number, sim_s=0.0, cpu_s=0.0)

    def receive(self, results: list[JobResult]) -> None:
        """A trial's job is back: every replicate's result."""
        for result in results:
            self.batch_of[result.trial_number].done[result.trial_number].append(result)
            for number in self.followers.get(result.trial_number, ()):
                self.batch_of[number].done[number].append(self._copy(result, number))
            self.stats.jobs += 1
            self.stats.first_job_at = min(self.stats.first_job_at, result.started_s)
            self.stats.sim_s += result.sim_s
            self.stats.sim_cpu_s += result.cpu_s

    def _next_result(self) -> list[JobResult] | None:
        try:
            return self.pool.next_result(self.stop)
        except JobLost as lost:  # retries exhausted (hermes_opt.run.pool)
            return lost_results(lost.job_args, self.spec.replicates, lost.reason)
        finally:
            self._note_losses()

    def _note_losses(self) -> None:
        lost = getattr(self.pool, "lost_workers", 0)  # the Dask pool has its own retries
        if lost > self._losses_noted:
            self._losses_noted = lost
            self.stats.notes.append(f"a worker process died ({lost} so far): its trials run "
                                    f"again, each at most {MAX_RETRIES} times")
            self.progress.note(self.stats.notes[-1])

    def _complete(self, batch: _Batch, number: int) -> bool:
        return len(batch.done[number]) == self.spec.replicates

    def flush(self) -> bool:
        """Tell the oldest batch's finished trials in trial-number order. The oldest batch is
        told only once the next one is sampled (or nothing more will be), so each batch is
        sampled seeing every batch before the previous one told and the previous one running,
        whichever worker finishes first. True when the oldest batch is fully told."""
        if not self.in_flight or (len(self.in_flight) < self.depth
                                  and not self.asking_done):
            return False
        batch = self.in_flight[0]
        while batch.untold and self._complete(batch, batch.untold[0].number):
            self._tell_finished(batch, batch.untold.pop(0))
        if batch.untold:
            return False
        self.in_flight.popleft()
        return True

    def _tell_finished(self, batch: _Batch, trial: optuna.Trial) -> None:
        number = trial.number
        results = sorted(batch.done.pop(number), key=lambda r: r.replicate)
        params = batch.params.pop(number)
        overrides = tuple(list(self.spec.base) + to_overrides(params))
        self.known[overrides] = results
        if self.leaders.get(overrides) == number:
            del self.leaders[overrides]  # later repeats are answered from `known`
        self.followers.pop(number, None)
        del self.batch_of[number]
        self.tell(trial, params, results)

    def wind_down(self) -> None:
        """Stopped: keep every finished trial the next run may keep, hand back the rest. On
        SQLite only the oldest batch's finished trials are told (if the next batch was
        sampled), so a resumed study samples exactly what an uninterrupted one would; the
        others are re-run on resume, with identical results."""
        for i, batch in enumerate(self.in_flight):
            tellable = self.multi_driver or (i == 0 and (len(self.in_flight) >= self.depth
                                                         or self.asking_done))
            for trial in list(batch.untold):
                if tellable and self._complete(batch, trial.number):
                    self._tell_finished(batch, trial)
                else:
                    self.abandon(trial)
        self.in_flight.clear()

    def tell(self, trial: optuna.Trial, params: dict, results: list[JobResult]) -> None:
        start = time.perf_counter()
        spec = self.spec
        overrides = to_overrides(params)
        try:
            errors = [r for r in results if r.status == "error"]
            infeasible = [r for r in results if r.status == "infeasible"]
            record: dict[str, Any] = {"overrides": overrides,
                                      "sim_s": sum(r.sim_s for r in results)}
            deployment = next((r.deployment for r in results if r.deployment), None)
            if deployment is not None:  # what the report reads instead of composing again
                record["deployment"] = deployment
            if errors:
                record.update(status="error", reason=errors[0].reason)
                trial.set_user_attr("result", record)
                self.study.tell(trial, state=TrialState.FAIL)
                self.stats.notes.append(f"trial {trial.number} failed: "
                                        f"{errors[0].reason.splitlines()[0]}")
                self.progress.note(self.stats.notes[-1])
            elif infeasible:
                record.update(status="infeasible", reason=infeasible[0].reason)
                trial.set_user_attr("result", record)
                trial.set_user_attr("infeasible_reason", infeasible[0].reason)
                set_constraints(trial, told.infeasible(spec, self._fixed, self.check_keys))
                self.study.tell(trial, [o.worst() for o in spec.objectives])
            elif screen.fidelity(results[0].summary) == screen.ANALYTIC:
                values, constraints, metrics = screen.analytic_score(results[0].summary, spec)
                record.update(status="screened", fidelity=screen.ANALYTIC, metrics=metrics,
                              reason=results[0].summary[screen.SCREENING]["decision"])
                trial.set_user_attr("result", record)
                set_constraints(trial, told.screened(constraints, self.check_keys))
                self.study.tell(trial, values)
            else:
                if self.rule is not None:
                    record["fidelity"] = screen.SIMULATOR
                values, constraints = told.simulated(spec, record, [r.summary for r in results],
                                                     self._fixed, self.check_keys)
                trial.set_user_attr("result", record)
                set_constraints(trial, constraints)
                self.study.tell(trial, values)
            self.stats.trials_told += 1
        except (optuna.exceptions.UpdateFinishedTrialError, RuntimeError, ValueError) as err:
            if not self.multi_driver:
                raise
            # Another driver judged this one dead (missed heartbeats) and re-queued the trial;
            # the re-queued copy is evaluated once, by whoever takes it.
            self.progress.note(f"trial {trial.number} was re-queued by another worker; result "
                               f"dropped ({type(err).__name__})")
        finally:
            self.heartbeat.discard(trial._trial_id)
            self.stats.driver_s += time.perf_counter() - start

    def abandon(self, trial: optuna.Trial) -> None:
        """Interrupted before this trial finished: keep it for a later run to evaluate."""
        self.heartbeat.discard(trial._trial_id)
        if self.multi_driver:  # hand it to the other workers now rather than after grace_period
            storage = self.rdb
            if storage.set_trial_state_values(trial._trial_id, state=TrialState.FAIL):
                callback = storage.get_heartbeat_stale_trial_callback()
                if callback is not None:
                    callback(self.study, storage.get_trial(trial._trial_id))
        # SQLite: it stays RUNNING and the next run re-evaluates it under the same number

    # --- main loop ------------------------------------------------------------------------
    def _timed(self, ask: Any) -> list[optuna.Trial]:
        tic = time.perf_counter()
        try:
            return ask()
        finally:
            self.stats.driver_s += time.perf_counter() - tic

    def run(self) -> RunStats:
        start, cpu = time.perf_counter(), time.process_time()
        if self.multi_driver:
            storage_mod.fail_stale(self.study)
        else:
            # up to two batches were in flight when it stopped (replay.py: completed, sampled)
            recovered = replay.recover(self.study, self.spec, self.sampler_kind, self._ask_lost)
            if recovered:
                self.progress.note(f"resuming: re-running {sum(map(len, recovered))} trial(s) "
                                   f"left unfinished by an interrupted run")
                for batch in recovered:
                    self.start(batch, alone=coverage.COVERAGE in batch[0].user_attrs)
        self.asking_done, waited_s = False, 0.0
        while not self.stop.requested:
            if not self.asking_done and len(self.in_flight) < self.depth:
                batch = self._timed(self.ask_batch)
                if batch:
                    waited_s = 0.0
                    self.start(batch)
                else:
                    self.asking_done = True
                continue
            if self.flush():
                self.stats.wall_s = time.perf_counter() - start
                self.progress.update(self.study, self.stats)
                continue
            if self.in_flight:
                result = self._next_result()
                if result is not None:
                    self.receive(result)
                elif not self.stop.requested:  # would spin for ever: a bookkeeping bug
                    raise RuntimeError("hermes-opt: trials in flight but no simulation pending")
                continue
            # n_trials reached and every trial told: top up rarely simulated choices
            if self.covers and (batch := self._timed(self.ask_coverage)):
                waited_s = 0.0
                self.start(batch, alone=True)
                continue
            # Nothing of ours left. Other drivers may still hold trials: wait, so that a trial
            # whose driver dies is re-queued and taken here. Give up after two grace periods
            # without progress.
            if (self.multi_driver and self.others_running()
                    and waited_s < 2 * self.spec.grace_period_s):
                pause = min(float(self.spec.heartbeat_interval_s), 2.0)
                time.sleep(pause)
                waited_s += pause
                self.asking_done = False
                continue
            break
        if self.in_flight:
            self.wind_down()
        self.stats.wall_s = time.perf_counter() - start
        self.stats.driver_cpu_s = time.process_time() - cpu
        if self.pool.n_workers == 1:  # evaluation ran in this process
            self.stats.driver_cpu_s -= self.stats.sim_cpu_s
        self.stats.interrupted = self.stop.requested
        return self.stats


@dataclass(slots=True)
class _Batch:
    """Trials asked together, with their parameters and the results received so far."""

    untold: list[optuna.Trial]  # in trial-number order
    params: dict[int, dict] = field(default_factory=dict)
    done: dict[int, list[JobResult]] = field(default_factory=dict)
