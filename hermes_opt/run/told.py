"""What a trial stores when it is told, by outcome: its constraint values in the order every
trial carries them (Optuna's samplers and optuna-dashboard read them as a list), and for a
simulated trial its record (metrics, spread, stability and stress checks). Pure functions of
the results; ``run.driver`` writes them."""

from __future__ import annotations

from typing import Any

from hermes_opt.run import checks as checks_mod
from hermes_opt.run.worker import CHECKS
from hermes_opt.study.definition import StudySpec
from hermes_opt.study.objective import KEEPS_UP, NAN_VIOLATION, metric_or_fail, score

RUNNABLE = "runnable"  # constraint: > 0 when the candidate could not be simulated at all
SCREENED = "screened"  # constraint (screening studies): > 0 when the analytical tier decided it


def infeasible(spec: StudySpec, fixed: dict[str, float],
               check_keys: tuple[str, ...]) -> dict[str, float]:
    """A candidate that could not be simulated violates everything."""
    return {RUNNABLE: 1.0, **fixed, **{c.key: NAN_VIOLATION for c in spec.constraints},
            KEEPS_UP: NAN_VIOLATION, **dict.fromkeys(check_keys, NAN_VIOLATION)}


def screened(constraints: dict[str, float], check_keys: tuple[str, ...]) -> dict[str, float]:
    """The analytical tier decided it: its estimated SLO violations; the estimate decides
    neither stability nor the stress checks (neutral values)."""
    return {RUNNABLE: -1.0, SCREENED: 1.0, **constraints, KEEPS_UP: 0.0,
            **dict.fromkeys(check_keys, 0.0)}


def simulated(spec: StudySpec, record: dict[str, Any], summaries: list[dict],
              fixed: dict[str, float], check_keys: tuple[str, ...]
              ) -> tuple[list[float], dict[str, float]]:
    """(objective values, constraints) of a simulated trial; fills ``record``. ``summaries``:
    one per replicate, the first carrying the stress checks (``worker.CHECKS``)."""
    checks = summaries[0].get(CHECKS) or {"constraints": {}}
    if CHECKS in summaries[0]:  # a record, not a metric of the first replicate
        summaries = [{k: v for k, v in summaries[0].items() if k != CHECKS}, *summaries[1:]]
    for obj in spec.objectives:  # a name the scenario lacks: one line, the study stops
        metric_or_fail(summaries[0], obj.metric, "objectives.metric")
    for c in spec.constraints:
        metric_or_fail(summaries[0], c.metric, "constraints")
    outcome = score(summaries, spec.objectives, spec.constraints)
    record.update(status="ok", metrics=outcome.metrics, spread=outcome.spread,
                  price_set=summaries[0].get("price_set"),
                  price_date=summaries[0].get("price_date"),
                  stability=checks_mod.stability_record(summaries))
    if check_keys:
        record["checks"] = {k: v for k, v in checks.items() if k != "constraints"}
    constraints = {RUNNABLE: -1.0, **fixed, **outcome.constraints,
                   **{k: checks["constraints"].get(k, checks_mod.NOT_CHECKED)
                      for k in check_keys}}
    return list(outcome.values), constraints
