"""Rendering of the study report: summary blocks -> Markdown and HTML, charts -> PNG and plotly."""

from __future__ import annotations

import html
import math
from collections import Counter
from pathlib import Path
from typing import Any

import pandas as pd

from hermes_opt.report.compare import case_rows
from hermes_opt.report.trials import STATE_ORDER, top_configurations
from hermes_opt.study.definition import StudySpec
from hermes_opt.study.pareto import pareto_mask

Block = tuple  # ("h1"|"h2"|"h3"|"p"|"code", text) or ("table", headers, rows)
COLORS = {"feasible": "#1f77b4", "violates SLO": "#ff7f0e", "front": "#d62728"}


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return "–"
        return f"{value:,.0f}" if abs(value) >= 1e4 else f"{value:.4g}"
    return str(value)


def _column(spec: StudySpec, metric: str) -> str:
    objectives = {o.metric for o in spec.objectives}
    return f"objective:{metric}" if metric in objectives else f"metric:{metric}"


def _draws_front(spec: StudySpec) -> bool:
    """The scatter shows a Pareto front (two objectives or ``report.pareto``), not one best."""
    return spec.multi_objective or bool(spec.report_pareto)


def _direction(spec: StudySpec, metric: str) -> str:
    for o in spec.objectives:
        if o.metric == metric:
            return o.direction
    return "minimize" if "_ms" in metric or metric.startswith("cost_") else "maximize"


def _axes(spec: StudySpec) -> tuple[str, str]:
    """The two columns a scatter shows: ``report.pareto``, else two objectives, else cost vs
    the single objective."""
    if spec.report_pareto:
        return _column(spec, spec.report_pareto[0]), _column(spec, spec.report_pareto[1])
    if spec.multi_objective:
        return f"objective:{spec.objectives[0].metric}", f"objective:{spec.objectives[1].metric}"
    return "metric:cost_usd_per_hour", f"objective:{spec.objectives[0].metric}"


def _label(column: str) -> str:
    return column.split(":", 1)[1]


def _log_scale(frame: pd.DataFrame, column: str) -> bool:
    """Latencies of SLO-violating trials can be 1000x the feasible ones: use a log axis then."""
    if column not in frame or "_ms" not in column:
        return False
    values = frame[column][frame[column] > 0].dropna()
    return len(values) > 1 and values.max() / values.min() > 100


def summary_blocks(spec: StudySpec, frame: pd.DataFrame, top: pd.DataFrame, quality: Any,
                   prov: dict[str, str], vendors: pd.DataFrame | None = None,
                   vendor_note: str | None = None) -> list[Block]:
    blocks: list[Block] = [("h1", f"Study {spec.name}")]
    if spec.description:
        blocks.append(("p", spec.description))
    tally = Counter(frame.outcome) if len(frame) else Counter()
    blocks.append(("p", f"{len(frame)} trials: " + ", ".join(
        f"{tally.get(k, 0)} {k}" for k in STATE_ORDER if k in tally or k != "re-run elsewhere")
        + ". Objectives: " + ", ".join(f"{o.direction} {o.metric}" for o in spec.objectives)
        + (". SLO constraints: " + "; ".join(c.key for c in spec.constraints)
           if spec.constraints else ". No SLO constraints") + "."))
    if top.empty:
        blocks.append(("p", "No feasible configuration was found: relax the SLOs or the budget, "
                            "widen the search space, or run more trials."))
    else:
        title = ("Pareto front (feasible configurations)" if spec.multi_objective
                 else f"Top {len(top)} feasible configurations")
        blocks.append(("h2", title))
        headers = ["rank", "trial", *spec.space.names,
                   *(f"{o.metric} (mean ± std)" for o in spec.objectives), "$/hour", "devices",
                   "TTFT p99 ms", "TPOT p99 ms"]
        rows = []
        for rank, (_, r) in enumerate(top.iterrows(), start=1):
            rows.append([rank, int(r.trial), *(_fmt(r.get(f"param:{n}")) for n in spec.space.names),
                         *(f"{_fmt(r[f'objective:{o.metric}'])} ± {_fmt(r[f'std:{o.metric}'])}"
                           for o in spec.objectives),
                         _fmt(r.get("metric:cost_usd_per_hour", math.nan)),
                         _fmt(r.get("metric:num_devices", math.nan)),
                         _fmt(r.get("metric:ttft_ms.p99", math.nan)),
                         _fmt(r.get("metric:tpot_ms.p99", math.nan))])
        blocks.append(("table", headers, rows))
        for rank, (_, r) in enumerate(top.iterrows(), start=1):
            blocks.extend(_detail(spec, rank, r))
    if spec.report_compare:
        headers, rows = case_rows(spec, frame)
        if rows:
            blocks.append(("h2", f"Every design simulated ({len(rows)})"))
            blocks.append(("table", headers, [[_fmt(v) for v in row] for row in rows]))
    if vendors is not None and len(vendors) > 1:
        blocks.extend(_vendor_blocks(spec, vendors, vendor_note))
    if spec.report_pareto and len(frame):
        front = _front(spec, frame)
        if len(front):
            x, y = _axes(spec)
            blocks.append(("h2", f"Pareto front: {_label(y)} vs {_label(x)} (feasible trials)"))
            blocks.append(("table", ["trial", *spec.space.names, _label(x), _label(y), "$/hour"],
                           [[int(r.trial), *(_fmt(r.get(f"param:{n}")) for n in spec.space.names),
                             _fmt(r[x]), _fmt(r[y]),
                             _fmt(r.get("metric:cost_usd_per_hour", math.nan))]
                            for _, r in front.iterrows()]))
    if quality is not None:
        blocks.append(("h2", "Pareto front quality"))
        blocks.append(("p", f"{quality.size} configurations on the feasible front; hypervolume "
                            f"{quality.hypervolume:.6g} with reference point "
                            f"{[round(v, 6) for v in quality.reference]} (the worst feasible value "
                            f"of each objective, worsened by 10% of its range)."))
    reasons = Counter(frame[frame.outcome == "infeasible (not simulated)"].reason) if len(frame) else {}
    if reasons:
        blocks.append(("h2", "Why candidates were infeasible"))
        blocks.append(("table", ["count", "reason (first example)"],
                       [[n, reason[:200]] for reason, n in reasons.most_common(8)]))
    blocks.append(("h2", "Provenance"))
    blocks.append(("table", ["", ""], [[k, v] for k, v in prov.items()]))
    return blocks


def _vendor_blocks(spec: StudySpec, vendors: pd.DataFrame, note: str | None) -> list[Block]:
    metric = spec.objectives[0].metric
    blocks: list[Block] = [("h2", "Best deployment per vendor")]
    if note:
        blocks.append(("p", note))
    rows = [[v.vendor, int(v.trial), v.deployment, _fmt(v.objective), _fmt(v.usd_per_hour),
             _fmt(v.ttft_p99_ms), _fmt(v.tpot_p99_ms)] for v in vendors.itertuples()]
    blocks.append(("table", ["vendor", "trial", "deployment", metric, "$/hour", "TTFT p99 ms",
                             "TPOT p99 ms"], rows))
    return blocks


def _detail(spec: StudySpec, rank: int, r: pd.Series) -> list[Block]:
    seeds = spec.replicate_seeds
    note = (f"Replay (workload seed {seeds[0]}; the figures above are means over seeds "
            f"{', '.join(map(str, seeds))}: change seed= to replay the others):"
            if len(seeds) > 1 else "Replay:")
    out: list[Block] = [("h3", f"#{rank}: trial {int(r.trial)}"), ("p", note), ("code", r.replay)]
    metrics = {k.split(":", 1)[1]: v for k, v in r.items()
               if k.startswith("metric:") and not (isinstance(v, float) and math.isnan(v))}
    cost = {k.split(".", 1)[1]: v for k, v in metrics.items()
            if k.startswith("cost_breakdown_usd_per_hour.")}
    if cost:
        out.append(("table", ["pool", "$/hour", "share"],
                    [[pool, _fmt(v), f"{v / max(sum(cost.values()), 1e-12):.0%}"]
                     for pool, v in sorted(cost.items())]))
    util = {k.split(".")[1]: v for k, v in metrics.items()
            if k.startswith("pools.") and k.endswith(".utilization")}
    if util:
        out.append(("p", "Utilisation: " + ", ".join(f"{p} {v:.0%}" for p, v in sorted(util.items()))))
    stages: dict[str, dict[str, float]] = {}
    for key, value in metrics.items():
        if key.startswith("stages."):
            parts = key.split(".")
            if len(parts) >= 3:
                stages.setdefault(parts[1], {})[".".join(parts[2:])] = value
    if stages:
        columns = sorted({c for cols in stages.values() for c in cols})
        out.append(("p", "Per-stage breakdown:"))
        out.append(("table", ["stage", *columns],
                    [[s, *(_fmt(v.get(c, math.nan)) for c in columns)]
                     for s, v in sorted(stages.items())]))
    by_type: dict[str, dict[str, float]] = {}
    for key, value in metrics.items():
        if key.startswith("request_types."):
            _, name, rest = key.split(".", 2)
            by_type.setdefault(name, {})[rest] = value
    if len(by_type) > 1:  # one type would repeat the workload-wide figures
        out.append(("p", "Per request type (p99 latencies, SLO attainment under each type's own "
                         "SLO):"))
        out.append(("table", ["request type", "completed", "TTFT p99 ms", "TPOT p99 ms",
                              "SLO attainment"],
                    [[name, _fmt(v.get("requests_completed", math.nan)),
                      _fmt(v.get("ttft_ms.p99", math.nan)), _fmt(v.get("tpot_ms.p99", math.nan)),
                      _fmt(v.get("slo_attainment", math.nan))]
                     for name, v in sorted(by_type.items())]))
    slo_rows = []
    for c in spec.constraints:
        value = metrics.get(c.metric, math.nan)
        slo_rows.append([c.metric, _fmt(value), f"{c.op} {c.bound:g}",
                         _fmt(r.get(f"std:{c.metric}", math.nan))])
    if slo_rows:
        out.append(("table", ["SLO metric", "mean over replicates", "bound", "std"], slo_rows))
    return out


def to_markdown(blocks: list[Block]) -> str:
    lines: list[str] = []
    for block in blocks:
        kind = block[0]
        if kind in ("h1", "h2", "h3"):
            lines += ["#" * int(kind[1]) + " " + block[1], ""]
        elif kind == "p":
            lines += [block[1], ""]
        elif kind == "code":
            lines += ["```sh", block[1], "```", ""]
        elif kind == "table":
            headers, rows = block[1], block[2]
            esc = lambda v: str(v).replace("|", "\\|")  # noqa: E731
            lines.append("| " + " | ".join(esc(h) for h in headers) + " |")
            lines.append("|" + "---|" * len(headers))
            lines += ["| " + " | ".join(esc(v) for v in row) + " |" for row in rows]
            lines.append("")
    return "\n".join(lines)


def _blocks_html(blocks: list[Block]) -> str:
    parts = []
    for block in blocks:
        kind = block[0]
        if kind in ("h1", "h2", "h3"):
            parts.append(f"<{kind}>{html.escape(block[1])}</{kind}>")
        elif kind == "p":
            parts.append(f"<p>{html.escape(block[1])}</p>")
        elif kind == "code":
            parts.append(f"<pre><code>{html.escape(block[1])}</code></pre>")
        elif kind == "table":
            head = "".join(f"<th>{html.escape(str(h))}</th>" for h in block[1])
            body = "".join("<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in row)
                           + "</tr>" for row in block[2])
            parts.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
    return "\n".join(parts)


def _hover(spec: StudySpec, r: pd.Series) -> str:
    lines = [f"trial {int(r.trial)} ({r.outcome})"]
    lines += [f"{n}={r.get(f'param:{n}')}" for n in spec.space.names
              if r.get(f"param:{n}") is not None and not (isinstance(r.get(f"param:{n}"), float)
                                                         and math.isnan(r.get(f"param:{n}")))]
    for col in ("metric:cost_usd_per_hour", "metric:ttft_ms.p99", "metric:tpot_ms.p99",
                *(f"objective:{o.metric}" for o in spec.objectives)):
        if col in r and not pd.isna(r[col]):
            lines.append(f"{_label(col)}={_fmt(float(r[col]))}")
    return "<br>".join(html.escape(line) for line in lines)


def _front(spec: StudySpec, frame: pd.DataFrame) -> pd.DataFrame:
    feasible = frame[frame.outcome == "feasible"]
    if spec.report_pareto and not feasible.empty:
        cols = list(_axes(spec))
        directions = [_direction(spec, m) for m in spec.report_pareto]
        values = feasible[cols].dropna()
        front = feasible.loc[values[pareto_mask(values.to_numpy(), directions)].index]
        params = [f"param:{n}" for n in spec.space.names]  # a revisited candidate: listed once
        return front.drop_duplicates(subset=params or None).sort_values(cols[0])
    if feasible.empty or not spec.multi_objective:
        return top_configurations(frame, spec).head(1)
    cols = [f"objective:{o.metric}" for o in spec.objectives]
    front = feasible[pareto_mask(feasible[cols].to_numpy(), spec.directions)]
    return front.sort_values(cols[0])


def _history(spec: StudySpec, frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series]:
    col = f"objective:{spec.objectives[0].metric}"
    simulated = frame[frame.outcome.isin(["feasible", "violates SLO"])].sort_values("trial")
    feasible = frame.sort_values("trial")
    values = feasible[col].where(feasible.outcome == "feasible")
    best = values.cummax() if spec.objectives[0].direction == "maximize" else values.cummin()
    best = best.ffill()  # cummax leaves NaN where a trial was not feasible
    return simulated, pd.Series(best.to_numpy(), index=feasible.trial.to_numpy())


def png_charts(spec: StudySpec, frame: pd.DataFrame, scatter_path: Path, history_path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    x, y = _axes(spec)
    n_unrun = int((frame.outcome == "infeasible (not simulated)").sum()) if len(frame) else 0
    fig, ax = plt.subplots(figsize=(8, 5.5), dpi=110)
    for outcome, marker in (("violates SLO", "x"), ("feasible", "o")):
        part = frame[frame.outcome == outcome] if len(frame) else frame
        if len(part) and x in part and y in part:
            ax.scatter(part[x], part[y], marker=marker, s=28, alpha=0.75, label=outcome,
                       color=COLORS[outcome])
    front = _front(spec, frame) if len(frame) else frame
    if len(front) and x in front:
        label = "Pareto front" if _draws_front(spec) else "best feasible"
        ax.plot(front[x], front[y], "-*" if _draws_front(spec) else "*", color=COLORS["front"],
                markersize=13, label=label)
    ax.set_xlabel(_label(x))
    ax.set_ylabel(_label(y))
    for column, set_scale in ((x, ax.set_xscale), (y, ax.set_yscale)):
        if _log_scale(frame, column):
            set_scale("log")
    _finish(fig, ax, f"{spec.name}: {len(frame)} trials ({n_unrun} infeasible, not simulated)",
            scatter_path)

    fig, ax = plt.subplots(figsize=(8, 4), dpi=110)
    if len(frame):
        simulated, best = _history(spec, frame)
        col = f"objective:{spec.objectives[0].metric}"
        for outcome, marker in (("violates SLO", "x"), ("feasible", "o")):
            part = simulated[simulated.outcome == outcome]
            ax.scatter(part.trial, part[col], marker=marker, s=20, alpha=0.7, label=outcome,
                       color=COLORS[outcome])
        ax.step(best.index, best.to_numpy(), where="post", color=COLORS["front"],
                label="best feasible so far")
    ax.set_xlabel("trial")
    ax.set_ylabel(spec.objectives[0].metric)
    _finish(fig, ax, f"{spec.name}: optimisation history", history_path)


def _finish(fig, ax, title: str, path) -> None:
    """Title, grid, legend (when anything is labelled), save as PNG, free the figure."""
    import matplotlib.pyplot as plt  # already loaded, with the Agg backend, by the caller
    ax.set_title(title)
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="best")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def to_html(spec: StudySpec, frame: pd.DataFrame, blocks: list[Block]) -> str:
    import plotly.graph_objects as go
    x, y = _axes(spec)
    scatter = go.Figure()
    for outcome, symbol in (("violates SLO", "x"), ("feasible", "circle")):
        part = frame[frame.outcome == outcome] if len(frame) else frame
        if len(part) and x in part and y in part:
            scatter.add_trace(go.Scatter(
                x=part[x], y=part[y], mode="markers", name=outcome,
                marker={"symbol": symbol, "color": COLORS[outcome], "size": 8},
                hovertext=[_hover(spec, r) for _, r in part.iterrows()], hoverinfo="text"))
    front = _front(spec, frame) if len(frame) else frame
    if len(front) and x in front:
        scatter.add_trace(go.Scatter(
            x=front[x], y=front[y], mode="lines+markers" if _draws_front(spec) else "markers",
            name="Pareto front" if _draws_front(spec) else "best feasible",
            marker={"symbol": "star", "size": 14, "color": COLORS["front"]},
            hovertext=[_hover(spec, r) for _, r in front.iterrows()], hoverinfo="text"))
    scatter.update_layout(title=f"{spec.name}: {_label(y)} vs {_label(x)}",
                          xaxis_title=_label(x), yaxis_title=_label(y), template="plotly_white",
                          height=520)
    if len(frame) and _log_scale(frame, x):
        scatter.update_xaxes(type="log")
    if len(frame) and _log_scale(frame, y):
        scatter.update_yaxes(type="log")
    history = go.Figure()
    if len(frame):
        simulated, best = _history(spec, frame)
        col = f"objective:{spec.objectives[0].metric}"
        for outcome in ("violates SLO", "feasible"):
            part = simulated[simulated.outcome == outcome]
            history.add_trace(go.Scatter(x=part.trial, y=part[col], mode="markers", name=outcome,
                                         marker={"color": COLORS[outcome]},
                                         hovertext=[_hover(spec, r) for _, r in part.iterrows()],
                                         hoverinfo="text"))
        history.add_trace(go.Scatter(x=best.index, y=best.to_numpy(), mode="lines",
                                     line={"shape": "hv", "color": COLORS["front"]},
                                     name="best feasible so far"))
    history.update_layout(title="optimisation history", xaxis_title="trial",
                          yaxis_title=spec.objectives[0].metric, template="plotly_white",
                          height=380)
    config = {"displaylogo": False}
    charts = (scatter.to_html(full_html=False, include_plotlyjs=True, config=config)
              + history.to_html(full_html=False, include_plotlyjs=False, config=config))
    style = ("body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1200px;color:#222}"
             "table{border-collapse:collapse;margin:0.5em 0 1em}td,th{border:1px solid #ccc;"
             "padding:3px 8px;font-size:13px;text-align:left}th{background:#f3f3f3}"
             "pre{background:#f6f6f6;padding:8px;overflow-x:auto;font-size:12px}")
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>hermes-opt: "
            f"{html.escape(spec.name)}</title><style>{style}</style></head><body>"
            f"{charts}\n{_blocks_html(blocks)}</body></html>")
