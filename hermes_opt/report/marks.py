"""What the first chart marks on top of the trials: the front (feasible trials no other
feasible trial beats on both axes), the recommended trial of a single-objective study, and the
SLO bound when the x axis is a constrained latency. Trials whose latency is more than
``HIDE_BEYOND`` times the bound (or the slowest feasible trial) say nothing about the trade-off
but squeeze it into a corner of a log axis: the chart leaves them out and says how many."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from hermes_opt.report.render import _axes, _draws_front, _front
from hermes_opt.report.trials import top_configurations
from hermes_opt.study.definition import StudySpec

HIDE_BEYOND = 10.0


@dataclass(frozen=True)
class Marks:
    front: pd.DataFrame  # sorted by x; one row (the best) when no front is drawn
    front_label: str
    joined: bool  # draw the front as a line (a front), or as a point (the best alone)
    recommended: pd.Series | None  # one objective on y, a front drawn: the best trial
    bound: tuple[float, str] | None  # (x of the SLO bound, legend text)
    x_limit: float | None = None  # trials beyond it are not drawn (a latency axis only)

    def shown(self, frame: pd.DataFrame, x: str) -> tuple[pd.DataFrame, str]:
        """(the trials to draw, a note on those left out or '')."""
        if self.x_limit is None or x not in frame:
            return frame, ""
        beyond = frame[x] > self.x_limit
        hidden = int(beyond.sum())
        note = (f"{hidden} SLO-violating trials beyond {self.x_limit:,.0f} ms not drawn"
                if hidden else "")
        return frame[~beyond], note


def scatter_marks(spec: StudySpec, frame: pd.DataFrame) -> Marks:
    if not len(frame):
        return Marks(frame, "best feasible", False, None, None)
    joined = _draws_front(spec, frame)
    x, y = _axes(spec, frame)
    # one objective on y against a latency on x (the default axes, or report.pareto's choice)
    single = not spec.multi_objective and y == f"objective:{spec.objectives[0].metric}"
    latency = single and x.startswith("metric:") and x[7:].split(".")[0].endswith("_ms")
    label = ("Pareto front" if spec.report_pareto or spec.multi_objective else
             "feasible front (best value for its latency)" if latency else "best feasible")
    best = top_configurations(frame, spec).head(1) if single and joined else frame.iloc[:0]
    bound = None
    for c in spec.constraints:
        if latency and f"metric:{c.metric}" == x and c.op == "<=":
            bound = (float(c.bound), f"SLO: {c.key}")
            break
    reach = [bound[0]] if bound else []  # the bound, or the slowest feasible trial if later
    if latency and x in frame:
        feasible = frame.loc[frame.outcome == "feasible", x].dropna()
        reach += [float(feasible.max())] if len(feasible) else []
    limit = HIDE_BEYOND * max(reach) if latency and reach and max(reach) > 0 else None
    return Marks(front=_front(spec, frame), front_label=label, joined=joined,
                 recommended=best.iloc[0] if len(best) else None, bound=bound, x_limit=limit)
