"""What each choice is worth, in numbers a buyer can check in trials.csv: per parameter, the best
first objective among the feasible trials with each of its values (numeric parameters with many
values in a few ranges), and the spread, the best value's best over the worst value's best. The
plotly figures of the HTML report (spread bars, parallel coordinates of the feasible trials).

Why not fANOVA (Optuna's ``FanovaImportanceEvaluator``, what the report showed before): it
measures how much of the objective's variance *over the sampled feasible trials* a parameter
explains. A sampler concentrates its trials where it found the best, so a parameter it settled
early explains little variance among them even when its other values cost a factor of three:
the default study showed hardware at 0.3% next to best-per-kind results from 404,948 (mi300x) to
1,359,266 (b200) SLO-meeting tokens per $. The spread is a plain maximum per value: it cannot
contradict the per-kind table (its hardware row is that table's best over its worst)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from hermes_opt.report.labels import fmt, metric_label, param_label
from hermes_opt.study.definition import StudySpec
from hermes_opt.study.space import Parameter

MIN_FEASIBLE = 2
MAX_VALUES = 8  # numeric parameters with more values are shown in RANGES ranges
RANGES = 4


@dataclass(frozen=True, slots=True)
class Spread:
    """One parameter: the best objective among feasible trials for each of its values (or
    ranges), summarised by the best and the worst of those and their ratio."""

    param: str
    best: tuple[str, float, int]  # (value, the best objective with it, that trial)
    worst: tuple[str, float, int]
    ratio: float  # best value's best / worst value's best (inverse when minimising); nan: none
    values: int  # values (or ranges) with a feasible trial
    none_feasible: tuple[str, ...]  # values with no feasible trial (categorical: every choice)


def spreads(spec: StudySpec, frame: pd.DataFrame) -> tuple[list[Spread], str | None]:
    """(one Spread per parameter, largest spread first; None) or ([], why there are none)."""
    col = f"objective:{spec.objectives[0].metric}"
    feasible = frame[frame.outcome == "feasible"] if len(frame) else frame
    if len(feasible) < MIN_FEASIBLE:
        return [], (f"not enough feasible trials: {len(feasible)}, the table needs at least "
                    f"{MIN_FEASIBLE}")
    maximize = spec.objectives[0].direction == "maximize"
    found = []
    for param in spec.space.parameters:
        column = f"param:{param.name}"
        if column not in frame:
            continue
        groups = _groups(param, frame[column])
        fine = groups[feasible.index].dropna()
        if fine.empty:
            continue
        best_of = {}
        for value, members in feasible.loc[fine.index].groupby(fine, sort=False):
            top = members.sort_values([col, "trial"], ascending=[not maximize, True]).iloc[0]
            best_of[value] = (str(value), float(top[col]), int(top.trial))
        ranked = sorted(best_of.values(), key=lambda b: b[1], reverse=maximize)
        found.append(Spread(param=param.name, best=ranked[0], worst=ranked[-1],
                            ratio=_ratio(ranked[0][1], ranked[-1][1], len(ranked)),
                            values=len(ranked),
                            none_feasible=_without(param, groups, set(best_of))))
    order = {n: i for i, n in enumerate(spec.space.names)}
    found.sort(key=lambda s: (-(s.ratio if math.isfinite(s.ratio) else 1.0),
                              -len(s.none_feasible), order[s.param]))
    return found, None


def _ratio(best: float, worst: float, count: int) -> float:
    if count < 2 or best <= 0 or worst <= 0:
        return math.nan
    return max(best, worst) / min(best, worst)


def _without(param: Parameter, groups: pd.Series, feasible_values: set) -> tuple[str, ...]:
    """Values (ranges) with no feasible trial, in the parameter's order: every choice of a
    categorical one, the values or ranges some trial had of a numeric one."""
    if param.kind == "categorical":
        offered = [str(c) for c in param.choices]
    else:
        offered = sorted(set(groups.dropna()), key=lambda v: float(str(v).split("-")[0]))
    return tuple(v for v in offered if v not in feasible_values)


def _groups(param: Parameter, values: pd.Series) -> pd.Series:
    """Each trial's value as text ("4", "h200"), or its range ("16-58") for a numeric parameter
    with more than MAX_VALUES values; NaN where the parameter was not active."""
    present = values.map(lambda v: not (v is None or (isinstance(v, float) and math.isnan(v))))
    if param.kind == "categorical" or (param.enumerable and param.grid_size() <= MAX_VALUES):
        return values.where(present).map(_text, na_action="ignore")
    edges = (np.geomspace if param.log else np.linspace)(param.low, param.high, RANGES + 1)
    if param.kind == "int":
        edges = np.unique(np.round(edges).astype(int))
    tops = [hi - 1 if param.kind == "int" and k < len(edges) - 2 else hi
            for k, hi in enumerate(edges[1:])]
    labels = [_text(lo) if lo == top else f"{_text(lo)}-{_text(top)}"
              for lo, top in zip(edges[:-1], tops)]
    index = values.where(present).map(
        lambda v: labels[min(int(np.searchsorted(edges, float(v), side="right")) - 1,
                             len(labels) - 1)], na_action="ignore")
    return index


def _text(value: object) -> str:
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    if isinstance(value, np.integer):
        return str(int(value))
    return fmt(value) if isinstance(value, float) else str(value)


def importance_figure(spec: StudySpec, found: dict[str, float]) -> Any:
    """Bars of each parameter's spread (``found``: parameter -> ratio; nan: one value only)."""
    import plotly.graph_objects as go
    shown = {n: r for n, r in found.items() if math.isfinite(r)}
    names = list(shown)[::-1]  # plotly draws the first bar at the bottom
    fig = go.Figure(go.Bar(x=[shown[n] for n in names], y=[param_label(n) for n in names],
                           orientation="h", marker={"color": "#1f77b4"},
                           hovertext=[f"{n}: {shown[n]:.2f}x" for n in names], hoverinfo="text"))
    fig.update_layout(title=f"Best {metric_label(spec.objectives[0].metric)} of a parameter's "
                            f"best value over its worst value's (feasible trials)",
                      xaxis_title="spread (x)", template="plotly_white",
                      height=220 + 45 * len(names), margin={"l": 220})
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
