"""What optuna-dashboard shows of a study, made right where the stored study allows it.

* **Objective names.** The dashboard names objectives by the study's metric names
  (``Study.set_metric_names``, the system attribute ``study:metric_names``) and falls back to
  "Objective 0". A study is given the report's labels ("SLO-meeting tokens per $") when it is
  opened, also a study stored before the names existed.
* **Best trial.** The dashboard's "Best Trial" card does not read constraints: for one objective
  it shows the storage's best value (``RDBStorage.get_best_trial``: the highest, or lowest,
  value among COMPLETE trials), for several its own Pareto front of every COMPLETE trial. So an
  SLO-violating trial (``slo_tokens_per_usd`` counts the tokens that met the SLOs, so a trial
  just past a bound can score high) or an infeasible one with a minimised objective's
  placeholder can be shown as best. Optuna's own ``Study.best_trial`` and ``best_trials`` do
  skip infeasible trials. Nothing a study stores changes what that card computes, short of
  telling violating trials a false objective, so the study carries the feasible answer as its
  user attribute ``best_feasible`` (the dashboard lists a study's user attributes), updated
  after every batch. The dashboard's charts already tell feasible from infeasible trials by the
  ``constraints`` list every told trial carries (``hermes_opt.study.objective.set_constraints``).
"""

from __future__ import annotations

from collections.abc import Sequence

import optuna
from optuna.trial import FrozenTrial, TrialState

from hermes_opt.study.definition import StudySpec
from hermes_opt.study.metric_labels import metric_label
from hermes_opt.study.pareto import pareto_mask

BEST_FEASIBLE = "best_feasible"  # study user attribute: the best trial meeting every constraint


def metric_names(spec: StudySpec) -> list[str]:
    """The dashboard's name of each objective: the report's label."""
    return [metric_label(o.metric) for o in spec.objectives]


def name_objectives(study: optuna.Study, spec: StudySpec) -> None:
    names = metric_names(spec)
    if study.metric_names != names:
        study.set_metric_names(names)


def feasible(trials: Sequence[FrozenTrial]) -> list[FrozenTrial]:
    """Complete trials meeting every constraint (infeasible and screened trials carry a
    positive ``runnable`` or ``screened`` constraint, so they are never among them)."""
    return [t for t in trials if t.state is TrialState.COMPLETE and t.constraints
            and all(v <= 0 for v in t.constraints.values())]


def _number(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 1e4 else f"{value:.4g}"


def best_feasible_line(trials: Sequence[FrozenTrial], spec: StudySpec) -> str | None:
    """``"trial 44: SLO-meeting tokens per $ 1,359,266"`` (one objective) or the feasible Pareto
    front's trial numbers (several); None before any trial meets every constraint."""
    found = feasible(trials)
    if not found:
        return None
    if spec.multi_objective:
        mask = pareto_mask([t.values for t in found], spec.directions)
        numbers = ", ".join(str(t.number) for t, keep in zip(found, mask) if keep)
        return f"Pareto front of the trials meeting every constraint: trials {numbers}"
    best = best_feasible_trial(found, spec)
    return f"trial {best.number}: {metric_label(spec.objectives[0].metric)} " \
           f"{_number(best.values[0])}"


def best_feasible_trial(trials: Sequence[FrozenTrial], spec: StudySpec) -> FrozenTrial | None:
    """The feasible trial with the best first objective (ties: the earlier trial)."""
    found = feasible(trials)
    if not found:
        return None
    sign = 1.0 if spec.objectives[0].direction == "maximize" else -1.0
    return max(found, key=lambda t: (sign * t.values[0], -t.number))


def mark_best_feasible(study: optuna.Study, spec: StudySpec) -> None:
    """Store ``best_feasible`` when it changed (one write per improvement, not per batch)."""
    line = best_feasible_line(study.get_trials(deepcopy=False), spec)
    if line is not None and study.user_attrs.get(BEST_FEASIBLE) != line:
        study.set_user_attr(BEST_FEASIBLE, line)
