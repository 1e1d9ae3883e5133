"""The report's charts and its HTML page: matplotlib PNGs (Agg, no browser) and a self-contained
HTML file (plotly.js embedded once, no ``<script src>``). Axes carry readable labels with units
and plain tick numbers (no "1e6" offset); wide tables scroll inside their own container, so the
page fits a 1366 px laptop screen; the recommendation comes before any chart."""

from __future__ import annotations

import html
import re
from pathlib import Path
from typing import Any

import pandas as pd

from hermes_opt.report.importance import importance_figure, parallel_figure
from hermes_opt.report.labels import metric_label
from hermes_opt.report.load_chart import load_figure
from hermes_opt.report.marks import Marks, scatter_marks
from hermes_opt.report.render import (
    COLORS,
    Block,
    _axes,
    _history,
    _hover,
    _label,
    _log_scale,
)
from hermes_opt.report.trials import FAILS_CHECK
from hermes_opt.study.definition import StudySpec

STYLE = ("body{font-family:system-ui,sans-serif;margin:1.5em auto;max-width:1200px;padding:0 16px;"
         "color:#222;box-sizing:border-box}"
         ".lead{font-size:16px;line-height:1.5;background:#eef5ff;border-left:4px solid #1f77b4;"
         "padding:10px 14px;margin:0.5em 0 1em}"
         ".scroll{overflow-x:auto;max-width:100%;margin:0.5em 0 1em}"
         "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:3px 8px;"
         "font-size:13px;text-align:left;vertical-align:top}th{background:#f3f3f3}"
         "table.card{margin:0 0 1em;max-width:100%}table.card th{width:11em;white-space:nowrap}"
         "table.card td{font-size:14px}code.nw{white-space:nowrap}"
         "pre{background:#f6f6f6;padding:8px;overflow-x:auto;font-size:12px;white-space:pre-wrap;"
         "word-break:break-all}.chart{max-width:100%;overflow:hidden}")


# the latency axis of the first chart: log once it spans a decade (its trade-off sits at the low
# end, next to trials many times slower)
LATENCY_LOG_RATIO = 10


def blocks_html(blocks: list[Block], charts: dict[str, str] | None = None) -> str:
    parts = []
    for block in blocks:
        kind = block[0]
        if kind in ("h1", "h2", "h3"):
            parts.append(f"<{kind}>{html.escape(block[1])}</{kind}>")
        elif kind == "p":
            parts.append(f"<p>{_code(block[1])}</p>")
        elif kind == "lead":
            parts.append(f"<p class='lead'>{_code(block[1])}</p>")
        elif kind == "card":
            rows = "".join(f"<tr><th>{html.escape(what)}</th><td>{_code(value)}</td></tr>"
                           for what, value in block[1])
            parts.append(f"<table class='card'><tbody>{rows}</tbody></table>")
        elif kind == "charts":
            parts.append((charts or {}).get(block[1], ""))
        elif kind == "code":
            parts.append(f"<pre><code>{html.escape(block[1])}</code></pre>")
        elif kind == "link":
            href = html.escape(block[2], quote=True)
            parts.append(f"<p>{html.escape(block[1])} <a href='{href}'>{href}</a></p>")
        elif kind == "table":
            head = "".join(f"<th>{html.escape(str(h))}</th>" for h in block[1])
            body = "".join("<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in row)
                           + "</tr>" for row in block[2])
            parts.append(f"<div class='scroll'><table><thead><tr>{head}</tr></thead>"
                         f"<tbody>{body}</tbody></table></div>")
    return "\n".join(parts)


def _code(text: str) -> str:
    """Escaped text with `backticked` spans as <code>; short ones (an engine flag) never break
    inside ("--max-num-seqs 194" split after its dashes reads as two flags)."""
    def span(match: re.Match) -> str:
        short = len(match.group(1)) <= 40
        return f"<code{' class=nw' if short else ''}>{match.group(1)}</code>"
    return re.sub(r"`([^`]+)`", span, html.escape(str(text)))


def _plain(ax) -> None:
    """Plain tick labels: no "1e6" offset or scientific notation on linear axes."""
    from matplotlib.ticker import FuncFormatter
    for axis, scale in ((ax.xaxis, ax.get_xscale()), (ax.yaxis, ax.get_yscale())):
        if scale in ("linear", "log"):  # a log axis too: "1,000", not "10^3"
            axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.10g}"))


def png_charts(spec: StudySpec, frame: pd.DataFrame, scatter_path: Path, history_path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    x, y = _axes(spec, frame)
    n_unrun = int((frame.outcome == "infeasible (not simulated)").sum()) if len(frame) else 0
    fig, ax = plt.subplots(figsize=(8, 5.5), dpi=110)
    marks = scatter_marks(spec, frame)
    shown, hidden = marks.shown(frame, x)
    for outcome, marker in (("violates SLO", "x"), (FAILS_CHECK, "^"), ("feasible", "o")):
        part = shown[shown.outcome == outcome] if len(shown) else shown
        if len(part) and x in part and y in part:
            ax.scatter(part[x], part[y], marker=marker, s=28, alpha=0.75, label=outcome,
                       color=COLORS[outcome])
    if len(marks.front) and x in marks.front:
        ax.plot(marks.front[x], marks.front[y], "-*" if marks.joined else "*",
                color=COLORS["front"], markersize=13, label=marks.front_label)
    if marks.recommended is not None:
        ax.scatter([marks.recommended[x]], [marks.recommended[y]], marker="*", s=420,
                   color=COLORS["front"], edgecolors="black", zorder=5,
                   label=f"recommended (trial {int(marks.recommended.trial)})")
    if marks.bound is not None:
        ax.axvline(marks.bound[0], color="grey", linestyle="--", label=marks.bound[1])
    ax.set_xlabel(_label(x))
    ax.set_ylabel(_label(y))
    for column, set_scale in ((x, ax.set_xscale), (y, ax.set_yscale)):
        if _log_scale(shown, column, LATENCY_LOG_RATIO if column == x and marks.x_limit else 100):
            set_scale("log")
    _finish(fig, ax, f"{spec.name}: {len(frame)} trials ({n_unrun} infeasible, not simulated)"
            + (f"\n{hidden}" if hidden else ""), scatter_path)

    fig, ax = plt.subplots(figsize=(8, 4), dpi=110)
    if len(frame):
        simulated, best = _history(spec, frame)
        col = f"objective:{spec.objectives[0].metric}"
        for outcome, marker in (("violates SLO", "x"), (FAILS_CHECK, "^"), ("feasible", "o")):
            part = simulated[simulated.outcome == outcome]
            ax.scatter(part.trial, part[col], marker=marker, s=20, alpha=0.7, label=outcome,
                       color=COLORS[outcome])
        ax.step(best.index, best.to_numpy(), where="post", color=COLORS["front"],
                label="best feasible so far")
    ax.set_xlabel("trial")
    ax.set_ylabel(metric_label(spec.objectives[0].metric))
    _finish(fig, ax, f"{spec.name}: optimisation history", history_path)


def _finish(fig, ax, title: str, path) -> None:
    """Title, grid, plain ticks, legend (when anything is labelled), save as PNG, free it."""
    import matplotlib.pyplot as plt  # already loaded, with the Agg backend, by the caller
    ax.set_title(title)
    ax.grid(alpha=0.3)
    _plain(ax)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="best")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _axis_format(fig, frame: pd.DataFrame, x: str | None, y: str | None,
                 x_ratio: float = 100) -> None:
    """Plain numbers with thousands separators ("r": never 1.2M or 3.8e+6); log axes for
    latencies spanning more than ``x_ratio`` (x) or 100 (y) times their smallest value."""
    for column, update, ratio in ((x, fig.update_xaxes, x_ratio), (y, fig.update_yaxes, 100)):
        if column is not None and len(frame) and _log_scale(frame, column, ratio):
            update(type="log")
        else:
            update(tickformat=",.6~r", exponentformat="none")


def to_html(spec: StudySpec, frame: pd.DataFrame, blocks: list[Block],
            importance: dict[str, float] | None = None, load_table: list[dict] | None = None,
            demand_rate_per_s: float | None = None) -> str:
    """The page: ``blocks`` with the charts where their ("charts", which) blocks are; the
    cost-against-load chart after the first one when the assessment has a ``load_table``."""
    import plotly.graph_objects as go
    x, y = _axes(spec, frame)
    scatter = go.Figure()
    marks = scatter_marks(spec, frame)
    shown, hidden = marks.shown(frame, x)
    for outcome, symbol in (("violates SLO", "x"), (FAILS_CHECK, "triangle-up"), ("feasible", "circle")):
        part = shown[shown.outcome == outcome] if len(shown) else shown
        if len(part) and x in part and y in part:
            scatter.add_trace(go.Scatter(
                x=part[x], y=part[y], mode="markers", name=outcome,
                marker={"symbol": symbol, "color": COLORS[outcome], "size": 8},
                hovertext=[_hover(spec, r) for _, r in part.iterrows()], hoverinfo="text"))
    _add_marks(scatter, spec, frame, marks, x, y)
    title = f"{spec.name}: {_label(y)} vs {_label(x)}"
    scatter.update_layout(title=title + (f"<br><sup>{hidden}</sup>" if hidden else ""),
                          xaxis_title=_label(x), yaxis_title=_label(y), template="plotly_white",
                          height=520)
    _axis_format(scatter, shown, x, y, LATENCY_LOG_RATIO if marks.x_limit else 100)
    history = go.Figure()
    if len(frame):
        simulated, best = _history(spec, frame)
        col = f"objective:{spec.objectives[0].metric}"
        for outcome in ("violates SLO", FAILS_CHECK, "feasible"):
            part = simulated[simulated.outcome == outcome]
            history.add_trace(go.Scatter(x=part.trial, y=part[col], mode="markers", name=outcome,
                                         marker={"color": COLORS[outcome]},
                                         hovertext=[_hover(spec, r) for _, r in part.iterrows()],
                                         hoverinfo="text"))
        history.add_trace(go.Scatter(x=best.index, y=best.to_numpy(), mode="lines",
                                     line={"shape": "hv", "color": COLORS["front"]},
                                     name="best feasible so far"))
    history.update_layout(title="optimisation history", xaxis_title="trial",
                          yaxis_title=metric_label(spec.objectives[0].metric),
                          template="plotly_white", height=380)
    _axis_format(history, frame, None, f"objective:{spec.objectives[0].metric}")
    config = {"displaylogo": False, "responsive": True}
    main = [scatter, *([load_figure(load_table, demand_rate_per_s)] if load_table else []),
            history]
    charts = {"main": "".join(_div(f.to_html(full_html=False, include_plotlyjs=i == 0,
                                             config=config)) for i, f in enumerate(main))}
    extra = []
    if importance:
        extra.append(importance_figure(spec, importance))
    parallel = parallel_figure(spec, frame)
    if parallel is not None:
        extra.append(parallel)
    charts["importance"] = "".join(_div(f.to_html(full_html=False, include_plotlyjs=False,
                                                  config=config)) for f in extra)
    if not any(b[0] == "charts" and b[1] == "main" for b in blocks):
        blocks = [("charts", "main"), *blocks]
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'>"
            f"<meta name='viewport' content='width=device-width, initial-scale=1'>"
            f"<title>hermes-opt: {html.escape(spec.name)}</title><style>{STYLE}</style></head>"
            f"<body>{blocks_html(blocks, charts)}</body></html>")


def _add_marks(fig, spec: StudySpec, frame: pd.DataFrame, marks: Marks, x: str, y: str) -> None:
    """The front, the recommended trial and the SLO bound on the plotly scatter."""
    import plotly.graph_objects as go
    front = marks.front
    if len(front) and x in front:
        fig.add_trace(go.Scatter(
            x=front[x], y=front[y], mode="lines+markers" if marks.joined else "markers",
            name=marks.front_label, marker={"symbol": "star", "size": 14, "color": COLORS["front"]},
            hovertext=[_hover(spec, r) for _, r in front.iterrows()], hoverinfo="text"))
    best = marks.recommended
    if best is not None:
        fig.add_trace(go.Scatter(
            x=[best[x]], y=[best[y]], mode="markers", name=f"recommended (trial {int(best.trial)})",
            marker={"symbol": "star", "size": 22, "color": COLORS["front"],
                    "line": {"color": "black", "width": 1.5}},
            hovertext=[_hover(spec, best)], hoverinfo="text"))
    if marks.bound is not None and len(frame) and y in frame:
        values = frame[y].dropna()  # a vertical segment over the data (shapes misplace on log axes)
        if len(values):
            fig.add_trace(go.Scatter(
                x=[marks.bound[0]] * 2, y=[float(values.min()), float(values.max())],
                mode="lines", name=marks.bound[1], hoverinfo="name",
                line={"color": "grey", "dash": "dash"}))


def _div(fig_html: Any) -> str:
    return f"<div class='chart'>{fig_html}</div>"
