"""A line-based progress report on stderr (one line per batch, readable in CI logs)."""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass, field
from typing import Any, TextIO

import optuna
from optuna.trial import TrialState

from hermes_opt.study import dashboard
from hermes_opt.study.coverage import main_trials
from hermes_opt.study.definition import StudySpec


@dataclass(slots=True)
class RunStats:
    """What this driver did (for the progress line and benchmarks/opt_throughput.py)."""

    trials_told: int = 0
    jobs: int = 0  # (trial, replicate) evaluations run
    reused: int = 0  # trials answered from an identical earlier candidate of this run
    sim_s: float = 0.0  # summed wall time inside the evaluator, over workers
    sim_cpu_s: float = 0.0  # summed CPU time inside the evaluator, over workers
    driver_s: float = 0.0  # wall time of ask/suggest/tell/storage in the driver
    driver_cpu_s: float = 0.0  # CPU time of the driver process outside evaluation
    wall_s: float = 0.0
    assess_s: float = 0.0  # the assessment after the trials (hermes_opt.run.assess)
    first_job_at: float = math.inf  # time.time() when the first evaluation started
    workers: int = 1
    interrupted: bool = False
    notes: list[str] = field(default_factory=list)


WIDTH = 20


def best_feasible(study: optuna.Study, spec: StudySpec) -> str:
    feasible = dashboard.feasible(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))
    if not feasible:
        return "no feasible trial yet"
    if spec.multi_objective:
        from hermes_opt.study.pareto import pareto_mask
        values = [t.values for t in feasible]
        return f"Pareto front: {int(pareto_mask(values, spec.directions).sum())} feasible configs"
    obj = spec.objectives[0]
    pick = max if obj.direction == "maximize" else min
    best = pick(feasible, key=lambda t: t.values[0])
    return f"best {obj.metric} {best.values[0]:.4g} (trial {best.number})"


def _clock(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    seconds = int(round(seconds))
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


def space_line(spec: StudySpec, sampler: str) -> str:
    """The size of the search space, printed before a study starts."""
    space, n = spec.space, spec.n_trials
    points = space.num_points()
    continuous = space.continuous
    if continuous:
        return (f"space: continuous ({points:,} discrete combination{'s' * (points != 1)} x "
                f"{len(continuous)} continuous key{'s' * (len(continuous) != 1)}: "
                f"{', '.join(continuous)}; {sampler} samples n_trials={n:,})")
    if sampler != "grid":
        return f"space: {points:,} point{'s' * (points != 1)} ({sampler} samples n_trials={n:,})"
    if n == points:
        return f"space: {points:,} point{'s' * (points != 1)} (grid enumerates all)"
    return (f"space: {points:,} point{'s' * (points != 1)} (grid enumerates all of them; "
            f"n_trials={n:,} is not used)")


class Progress:
    def __init__(self, spec: StudySpec, stream: TextIO | None = sys.stderr) -> None:
        self.spec, self.stream = spec, stream
        self.start = time.perf_counter()

    def _print(self, text: str) -> None:
        if self.stream is not None:
            print(text, file=self.stream, flush=True)

    def note(self, text: str) -> None:
        self._print(f"[{self.spec.name}] {text}")

    def update(self, study: optuna.Study, stats: Any) -> None:
        """After each told batch: the progress line, and the study's ``best_feasible``
        attribute (what optuna-dashboard's Best Trial card cannot tell)."""
        dashboard.mark_best_feasible(study, self.spec)
        trials = study.get_trials(deepcopy=False)
        finished = [t for t in trials if t.state.is_finished()]
        infeasible = sum(1 for t in finished if "infeasible_reason" in t.user_attrs)
        failed = sum(1 for t in finished if t.state is TrialState.FAIL)
        from hermes_opt.study.sampling import counted
        told = [t for t in counted(trials) if t.state.is_finished()]
        done = len(main_trials(told))
        extra = len(told) - done  # coverage trials, after n_trials
        total = self.spec.n_trials
        filled = int(WIDTH * min(done, total) / total)
        elapsed = time.perf_counter() - self.start
        rate = stats.trials_told / stats.wall_s if stats.wall_s > 0 else 0.0
        eta = (total - done) / rate if rate > 0 else math.inf
        self._print(f"[{self.spec.name}] [{'#' * filled}{'.' * (WIDTH - filled)}] {done}/{total} "
                    f"trials{f' + {extra} coverage' if extra else ''} ({infeasible} infeasible, "
                    f"{failed} failed) | "
                    f"{best_feasible(study, self.spec)} | {_clock(elapsed)} elapsed, "
                    f"ETA {_clock(eta)}")

    def done(self, study: optuna.Study, stats: Any) -> None:
        dashboard.mark_best_feasible(study, self.spec)  # trials told while stopping, too
        verb = "interrupted" if stats.interrupted else "finished"
        self._print(f"[{self.spec.name}] {verb}: {stats.trials_told} trial(s) evaluated in "
                    f"{_clock(stats.wall_s)} on {stats.workers} worker(s); "
                    f"{best_feasible(study, self.spec)}")
