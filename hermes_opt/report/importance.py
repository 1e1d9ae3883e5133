"""Which parameters drive the result: Optuna's fANOVA importances of the first objective over the
feasible completed trials (seeded, so the report is deterministic), and the plotly figures of the
HTML report (importance bars, parallel coordinates of the feasible trials)."""

from __future__ import annotations

import math
import warnings
from typing import Any

import optuna
import pandas as pd
from optuna.trial import TrialState

from hermes_opt.report.labels import metric_label, param_label
from hermes_opt.study.definition import StudySpec

MIN_TRIALS = 4


def importances(study: optuna.Study, spec: StudySpec,
                frame: pd.DataFrame) -> tuple[dict[str, float], str | None]:
    """({param: importance} best first, "method[, scope]") or ({}, why there are none)."""
    feasible = set(frame.trial[frame.outcome == "feasible"]) if len(frame) else set()
    trials = [t for t in study.get_trials(deepcopy=False)
              if t.state is TrialState.COMPLETE and t.number in feasible and t.values]
    if len(trials) < MIN_TRIALS:
        return {}, (f"not enough trials: {len(trials)} feasible completed trial(s), fANOVA "
                    f"needs at least {MIN_TRIALS}")
    trials, varied, scope = _largest_common(spec, trials)
    if len(varied) < 2:
        return {}, (f"not enough trials: the feasible trials vary {len(varied)} parameter(s) "
                    f"in common; fANOVA needs at least 2")
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # no "A new study created" line
    try:
        single = optuna.create_study(direction=spec.objectives[0].direction)
    finally:
        optuna.logging.set_verbosity(verbosity)
    single.add_trials([optuna.trial.create_trial(
        params={n: t.params[n] for n in varied},
        distributions={n: t.distributions[n] for n in varied}, value=t.values[0])
        for t in trials])
    method = "fANOVA (Optuna, seed 0)"
    sign = -1.0 if spec.objectives[0].direction == "maximize" else 1.0
    target = lambda t: sign * t.values[0]  # noqa: E731 - PED-ANOVA ranks low targets as good
    try:
        try:
            found = optuna.importance.get_param_importances(
                single, evaluator=optuna.importance.FanovaImportanceEvaluator(seed=0),
                params=varied, target=target)
        except ImportError:  # fANOVA's random forest needs scikit-learn; PED-ANOVA does not
            method = "PED-ANOVA (Optuna; fANOVA needs scikit-learn, which is not installed)"
            with warnings.catch_warnings():  # "computes importances for low target": it does
                warnings.simplefilter("ignore", UserWarning)
                found = optuna.importance.get_param_importances(
                    single, evaluator=optuna.importance.PedAnovaImportanceEvaluator(),
                    params=varied, target=target)
    except Exception as exc:  # noqa: BLE001 - a report never fails on an optional section
        return {}, f"not enough trials (importance failed: {type(exc).__name__}: {exc})"
    ranked = sorted(found.items(), key=lambda kv: (-kv[1], kv[0]))
    return {k: float(v) for k, v in ranked}, method + (f", {scope}" if scope else "")


def _varied(spec: StudySpec, trials: list) -> list[str]:
    common = set.intersection(*(set(t.params) for t in trials))
    return [n for n in spec.space.names if n in common
            and len({repr(t.params[n]) for t in trials}) > 1]


def _largest_common(spec: StudySpec, trials: list) -> tuple[list, list[str], str | None]:
    """All trials when they vary >= 2 parameters in common; else (conditional spaces, e.g. a
    colocated and a disaggregated branch) the largest group of trials sharing one parameter
    set that does, with a note naming it. The note is None for all trials."""
    varied = _varied(spec, trials)
    if len(varied) >= 2:
        return trials, varied, None
    groups: dict[tuple, list] = {}
    for t in trials:
        groups.setdefault(tuple(sorted(t.params)), []).append(t)
    for members in sorted(groups.values(), key=lambda g: (-len(g), g[0].number)):
        inner = _varied(spec, members)
        if len(members) >= MIN_TRIALS and len(inner) >= 2:
            fixed = ", ".join(f"{n}={members[0].params[n]}" for n in spec.space.names
                              if n in members[0].params and n not in inner)
            return members, inner, (f"over the {len(members)} of {len(trials)} feasible trials "
                                    f"that share one branch of the space ({fixed})")
    return trials, varied, None


def importance_figure(spec: StudySpec, found: dict[str, float]) -> Any:
    import plotly.graph_objects as go
    names = list(found)[::-1]  # plotly draws the first bar at the bottom
    fig = go.Figure(go.Bar(x=[found[n] for n in names], y=[param_label(n) for n in names],
                           orientation="h", marker={"color": "#1f77b4"},
                           hovertext=[f"{n}: {found[n]:.3f}" for n in names], hoverinfo="text"))
    fig.update_layout(title=f"Parameter importance for {metric_label(spec.objectives[0].metric)} "
                            f"(feasible trials)",
                      xaxis_title="share of the objective's variance", template="plotly_white",
                      height=220 + 45 * len(names), margin={"l": 220})
    fig.update_xaxes(tickformat=".0%", range=[0, 1])
    return fig


def parallel_figure(spec: StudySpec, frame: pd.DataFrame) -> Any | None:
    """Parallel coordinates of the feasible trials: every parameter, then the first objective."""
    import plotly.graph_objects as go
    feasible = frame[frame.outcome == "feasible"] if len(frame) else frame
    obj = f"objective:{spec.objectives[0].metric}"
    if len(feasible) < 2 or not spec.space.names:
        return None
    dims = []
    for n in spec.space.names:
        col = feasible.get(f"param:{n}")
        if col is None:
            continue
        numeric = pd.to_numeric(col, errors="coerce")
        if numeric.notna().all():
            dims.append({"label": param_label(n), "values": numeric.tolist()})
            continue
        text = ["n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else
                str(int(v)) if isinstance(v, float) and v.is_integer() else str(v) for v in col]
        levels = sorted(set(text))
        dims.append({"label": param_label(n), "values": [levels.index(v) for v in text],
                     "tickvals": list(range(len(levels))), "ticktext": levels})
    values = feasible[obj].astype(float).tolist()
    dims.append({"label": metric_label(spec.objectives[0].metric), "values": values,
                 "tickformat": ",.4~r"})
    fig = go.Figure(go.Parcoords(line={"color": values, "colorscale": "Viridis", "showscale": True,
                                       "colorbar": {"title": {"text": "objective"},
                                                    "tickformat": ",.4~r"}},
                                 dimensions=dims))
    fig.update_layout(title="Feasible trials: parameters and objective (drag an axis to filter)",
                      template="plotly_white", height=460, margin={"l": 80, "r": 80, "t": 90})
    return fig
