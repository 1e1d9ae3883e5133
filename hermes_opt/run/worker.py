"""What runs in a worker process: compose a trial's config, check it, simulate, price.

Composition (``hermes_opt.compose.overrides``) is cached per worker; feasibility (memory, budget)
is checked before simulating, so an impossible candidate costs no simulation.
"""

from __future__ import annotations

import traceback
from dataclasses import dataclass
from typing import Callable

from omegaconf import DictConfig

from hermes_opt.compose import pricing, to_sim
from hermes_opt.compose.evaluate import check_memory, simulate_config
from hermes_opt.compose.overrides import compose_overrides
from hermes_opt.study.objective import Budget
from sim.errors import ConfigError


class Infeasible(Exception):
    """A candidate that cannot run (invalid, does not fit, over budget); never a crash."""


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


def check_feasible(cfg: DictConfig, budget: Budget | None) -> None:
    """Everything that makes a candidate impossible, found before simulating (Infeasible)."""
    try:
        config = to_sim.sim_config(cfg)
        for pool in config.pools:
            check_memory(pool)
        cost = pricing.deployment_cost(config, cfg.pricing)
    except ConfigError as err:
        raise Infeasible(str(err)) from None
    if budget is not None:
        reason = budget.violation(cost.usd_per_hour, sum(p.num_devices for p in config.pools))
        if reason:
            raise Infeasible(reason)


def simulate_overrides(overrides: list[str], seed: int, budget: Budget | None) -> dict:
    """The default evaluator: the real simulator, priced (the ``hermes-sim`` JSON summary)."""
    cfg = compose_overrides(overrides)
    cfg.seed = int(seed)
    check_feasible(cfg, budget)
    try:
        return simulate_config(cfg)
    except ConfigError as err:  # found only while simulating: still a property of the candidate
        raise Infeasible(str(err)) from None


Evaluator = Callable[[list[str], int, "Budget | None"], dict]


def run_job(evaluator: Evaluator, trial_number: int, replicate: int, overrides: list[str],
            seed: int, budget: Budget | None) -> JobResult:
    """One (trial, replicate) in a worker; never raises, so one bad candidate cannot stop a batch."""
    import time
    started, start, cpu = time.time(), time.perf_counter(), time.process_time()
    timing = lambda: {"sim_s": time.perf_counter() - start,  # noqa: E731
                      "cpu_s": time.process_time() - cpu, "started_s": started}
    try:
        summary = evaluator(list(overrides), seed, budget)
        return JobResult(trial_number, replicate, "ok", summary=summary, **timing())
    except (Infeasible, ConfigError) as err:
        return JobResult(trial_number, replicate, "infeasible", reason=str(err), **timing())
    except Exception as err:  # a simulator bug: the trial fails, the study goes on, we report it
        tb = traceback.format_exc(limit=5)
        return JobResult(trial_number, replicate, "error",
                         reason=f"{type(err).__name__}: {err}\n{tb}", **timing())
