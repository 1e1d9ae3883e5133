"""What runs in a worker process: one trial, every replicate. The candidate is composed,
checked (memory, prices, budget) and priced once (``hermes_opt.compose.candidate``), then
simulated with each workload seed, so an impossible candidate costs no simulation and a trial
builds its ``SimConfig`` once however many replicates it has.

An evaluator is either a plain callable ``(overrides, seed, budget) -> summary`` (a study's own
``evaluator: module:function``, the capacity wrapper), called once per seed, or a
``TrialEvaluator``: ``prepare(overrides, budget)`` once per trial, then ``run(prepared, seed)``
per seed (the built-in simulator, the screening tier).
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Protocol, runtime_checkable

from omegaconf import DictConfig

from hermes_opt.compose import candidate as candidate_mod
from hermes_opt.compose.candidate import Candidate
from hermes_opt.compose.evaluate import simulate_candidate
from hermes_opt.run.checks import NOT_CHECKED, Checks, extended, replace_config
from hermes_opt.study.objective import Budget
from sim.errors import ConfigError


class Infeasible(Exception):
    """A candidate that cannot run (invalid, does not fit, over budget); never a crash.
    ``deployment``: its record, when it composed (an over-budget candidate has one)."""

    def __init__(self, reason: str, deployment: dict | None = None) -> None:
        super().__init__(reason)
        self.deployment = deployment


@dataclass(frozen=True, slots=True)
class JobResult:
    trial_number: int
    replicate: int
    status: str  # "ok" | "infeasible" | "error"
    summary: dict | None = None
    reason: str = ""
    sim_s: float = 0.0  # wall time inside the evaluator (for the overhead figure)
    cpu_s: float = 0.0  # CPU time of this process inside the evaluator
    started_s: float = 0.0  # time.time() when the evaluation began (start-up figure)
    deployment: dict | None = None  # the candidate's deployment record, when it composed


Evaluator = Callable[[list[str], int, "Budget | None"], dict]
CHECKS = "checks"  # summary key of the first replicate: the stress checks (run.checks)


@runtime_checkable
class TrialEvaluator(Protocol):
    """An evaluator that prepares a trial once and runs it per workload seed."""

    def prepare(self, overrides: list[str], budget: Budget | None) -> Any: ...

    def run(self, prepared: Any, seed: int) -> dict: ...

    def deployment(self, prepared: Any) -> dict | None: ...


def lost_results(job_args: tuple, replicates: int, reason: str) -> list[JobResult]:
    """A ``run_trial`` job whose worker died too often (``hermes_opt.run.pool.JobLost``): every
    replicate is an error with the reason, so the trial is FAIL and the study goes on."""
    number = job_args[1]  # run_trial(evaluator, trial_number, ...)
    return [JobResult(number, i, "error", reason=f"not evaluated: {reason}")
            for i in range(replicates)]


def check_budget(candidate: Candidate, budget: Budget | None) -> None:
    if budget is not None:
        reason = budget.violation(candidate.cost.usd_per_hour,
                                  sum(p.num_devices for p in candidate.config.pools))
        if reason:
            raise Infeasible(reason, candidate.deployment)


def check_feasible(cfg: DictConfig, budget: Budget | None) -> Candidate:
    """A composed config (the Hydra sweeper's) as a checked candidate, or Infeasible."""
    try:
        candidate = candidate_mod.from_config(cfg)
    except ConfigError as err:
        raise Infeasible(str(err)) from None
    check_budget(candidate, budget)
    return candidate


def prepared_candidate(overrides: list[str], budget: Budget | None) -> Candidate:
    """Everything that makes a candidate impossible, found before simulating (Infeasible)."""
    try:
        candidate = candidate_mod.compose(overrides)
    except ConfigError as err:
        raise Infeasible(str(err)) from None
    check_budget(candidate, budget)
    return candidate


@dataclass(frozen=True, slots=True)
class Simulate:
    """The default evaluator: the real simulator, priced (the ``hermes-sim`` JSON summary). A run
    too short to tell whether the deployment keeps up is extended (``run.checks.extended``);
    ``checks``: the study's headroom and redundancy (``run.checks.Checks``), simulated after the
    replicates by ``after``. Without checks it is the module-level instance, pickled by name."""

    checks: Checks | None = None

    def prepare(self, overrides: list[str], budget: Budget | None) -> Candidate:
        return prepared_candidate(overrides, budget)

    def run(self, prepared: Candidate, seed: int) -> dict:
        try:
            summary = simulate_candidate(prepared, int(seed))
            return extended(prepared, summary, lambda config: simulate_candidate(
                replace_config(prepared, config), int(seed)))
        except ConfigError as err:  # found only while simulating: still a property of the candidate
            raise Infeasible(str(err)) from None

    def after(self, prepared: Candidate, summaries: list[dict], seeds: list[int]) -> dict | None:
        """The stress checks, once every replicate ran (None without checks)."""
        if self.checks is None or not self.checks.keys:
            return None
        try:
            return self.checks.run(prepared, summaries, seeds, lambda config, seed: self.run(
                replace_config(prepared, config), seed))
        except Infeasible as err:  # a stressed variant that cannot run fails its check
            return {"constraints": {k: NOT_CHECKED for k in self.checks.keys},
                    **{k: {"checked": False, "reason": str(err)} for k in self.checks.keys}}

    def deployment(self, prepared: Candidate) -> dict | None:
        return prepared.deployment

    def __call__(self, overrides: list[str], seed: int, budget: Budget | None) -> dict:
        """One seed, composed on its own (benchmarks, the capacity bisection)."""
        return self.run(self.prepare(overrides, budget), seed)

    def __reduce__(self) -> Any:
        if self.checks is None:
            return "simulate_overrides"  # pickles as the module-level instance
        return (Simulate, (self.checks,))


simulate_overrides = Simulate()


def run_trial(evaluator: Evaluator | TrialEvaluator, trial_number: int, overrides: list[str],
              seeds: list[int], budget: Budget | None) -> list[JobResult]:
    """Every replicate of one trial in a worker, in seed order; never raises, so one bad
    candidate cannot stop a batch. A candidate that cannot be prepared is infeasible (or failed)
    for every replicate without running any."""
    overrides = list(overrides)
    if not isinstance(evaluator, TrialEvaluator):
        return [_timed(trial_number, r, lambda s=seed: evaluator(list(overrides), s, budget))
                for r, seed in enumerate(seeds)]
    holder: dict[str, Any] = {}

    def prepare() -> dict:
        holder["prepared"] = evaluator.prepare(overrides, budget)
        return {}
    first = _timed(trial_number, 0, prepare)
    if first.status != "ok":
        # the same outcome for every other replicate, none of them run
        return [first, *(replace(first, replicate=r, sim_s=0.0, cpu_s=0.0)
                         for r in range(1, len(seeds)))]
    prepared = holder["prepared"]
    deployment = evaluator.deployment(prepared)
    results = []
    for r, seed in enumerate(seeds):
        result = _timed(trial_number, r, lambda s=seed: evaluator.run(prepared, s), deployment)
        if r == 0:  # preparing counts as the first replicate's time
            result = replace(result, sim_s=result.sim_s + first.sim_s,
                             cpu_s=result.cpu_s + first.cpu_s, started_s=first.started_s)
        results.append(result)
    after = getattr(evaluator, "after", None)
    if after is not None and all(r.status == "ok" for r in results):
        # the stress checks (headroom, redundancy) ride on the first replicate's summary, timed
        # with it, so the driver tells the trial once with everything
        summaries = [r.summary for r in results]
        checked = _timed(trial_number, 0, lambda: {CHECKS: after(prepared, summaries, seeds)},
                         deployment)
        if checked.status != "ok":
            return [replace(checked, replicate=r) for r in range(len(seeds))]
        if checked.summary[CHECKS] is not None:
            head = results[0]
            results[0] = replace(head, summary={**head.summary, CHECKS: checked.summary[CHECKS]},
                                 sim_s=head.sim_s + checked.sim_s, cpu_s=head.cpu_s + checked.cpu_s)
    return results


def run_job(evaluator: Evaluator | TrialEvaluator, trial_number: int, replicate: int,
            overrides: list[str], seed: int, budget: Budget | None) -> JobResult:
    """One replicate on its own (benchmarks that spread one candidate's seeds over workers)."""
    return replace(run_trial(evaluator, trial_number, overrides, [seed], budget)[0],
                   replicate=replicate)


def _timed(trial_number: int, replicate: int, call: Callable[[], dict],
           deployment: dict | None = None) -> JobResult:
    started, start, cpu = time.time(), time.perf_counter(), time.process_time()

    def timing() -> dict[str, float]:
        return {"sim_s": time.perf_counter() - start, "cpu_s": time.process_time() - cpu,
                "started_s": started}
    try:
        summary = call()
        if "deployment" in summary:  # a record, not a metric: stored beside the metrics
            summary = dict(summary)
            deployment = summary.pop("deployment") or deployment
        return JobResult(trial_number, replicate, "ok", summary=summary, deployment=deployment,
                         **timing())
    except (Infeasible, ConfigError) as err:
        return JobResult(trial_number, replicate, "infeasible", reason=str(err),
                         deployment=getattr(err, "deployment", None) or deployment, **timing())
    except Exception as err:  # a simulator bug: the trial fails, the study goes on, we report it
        tb = traceback.format_exc(limit=5)
        return JobResult(trial_number, replicate, "error",
                         reason=f"{type(err).__name__}: {err}\n{tb}", deployment=deployment,
                         **timing())

