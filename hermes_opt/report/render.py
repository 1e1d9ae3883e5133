"""Rendering of the study report: summary blocks -> Markdown and HTML, charts -> PNG and plotly."""

from __future__ import annotations

import html
import math
from collections import Counter
from collections.abc import Sequence
from typing import Any

import pandas as pd

from hermes_opt.report import stage_share
from hermes_opt.report.accounting import Table
from hermes_opt.report.card import Card
from hermes_opt.report.compare import case_rows
from hermes_opt.report.importance import Spread
from hermes_opt.report.labels import (
    column_label,
    group_reasons,
    metric_label,
    param_label,
    shorten,
)
from hermes_opt.report.top_table import top_table
from hermes_opt.report.trials import (
    OPTIONAL_STATES,
    SCREENED,
    SIMULATED_INFEASIBLE,
    STATE_ORDER,
    top_configurations,
)
from hermes_opt.report.vendors import layout as _layout
from hermes_opt.report.vendors import record as _record
from hermes_opt.study.definition import StudySpec
from hermes_opt.study.pareto import pareto_mask

Block = tuple  # ("h1"|"h2"|"h3"|"p"|"lead"|"code", text), ("charts", which), ("table", headers,
# rows), ("card", [(what, value), ...]): the decision card's key/value table, or ("link", text,
# href): a paragraph ending in a link to a file next to the report
COLORS = {"feasible": "#1f77b4", "violates SLO": "#ff7f0e", "fails headroom or n+1": "#9467bd",
          "front": "#d62728"}


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return "–"
        return f"{value:,.0f}" if abs(value) >= 1e4 else f"{value:.4g}"
    return str(value)


def _column(spec: StudySpec, metric: str) -> str:
    objectives = {o.metric for o in spec.objectives}
    return f"objective:{metric}" if metric in objectives else f"metric:{metric}"


def latency_metric(spec: StudySpec, frame: pd.DataFrame | None) -> str | None:
    """The latency a single-objective study's first chart plots the objective against (the
    trade-off a buyer weighs; objective against $/hour is a hyperbola by construction at a fixed
    demand): the study's first latency constraint, else p99 TTFT; None when the trials lack it."""
    columns = frame.columns if frame is not None else ()
    for c in spec.constraints:
        if c.metric.split(".")[0].endswith("_ms") and f"metric:{c.metric}" in columns:
            return c.metric
    return "ttft_ms.p99" if "metric:ttft_ms.p99" in columns else None


def _draws_front(spec: StudySpec, frame: pd.DataFrame | None = None) -> bool:
    """The scatter shows a Pareto front (two objectives, ``report.pareto``, or one objective
    against a latency), not one best point."""
    return (spec.multi_objective or bool(spec.report_pareto)
            or latency_metric(spec, frame) is not None)


def _direction(spec: StudySpec, metric: str) -> str:
    for o in spec.objectives:
        if o.metric == metric:
            return o.direction
    return "minimize" if "_ms" in metric or metric.startswith("cost_") else "maximize"


def _axes(spec: StudySpec, frame: pd.DataFrame | None = None) -> tuple[str, str]:
    """The two columns a scatter shows: ``report.pareto``, else two objectives, else the single
    objective against ``latency_metric`` (cost when the trials have no latency)."""
    if spec.report_pareto:
        return _column(spec, spec.report_pareto[0]), _column(spec, spec.report_pareto[1])
    if spec.multi_objective:
        return f"objective:{spec.objectives[0].metric}", f"objective:{spec.objectives[1].metric}"
    latency = latency_metric(spec, frame)
    x = f"metric:{latency}" if latency else "metric:cost_usd_per_hour"
    return x, f"objective:{spec.objectives[0].metric}"


def _label(column: str) -> str:
    return column_label(column)


def _log_scale(frame: pd.DataFrame, column: str, ratio: float = 100) -> bool:
    """Latencies of SLO-violating trials can be 1000x the feasible ones: use a log axis when the
    largest is more than ``ratio`` times the smallest."""
    if column not in frame or "_ms" not in column:
        return False
    values = frame[column][frame[column] > 0].dropna()
    return len(values) > 1 and values.max() / values.min() > ratio


def summary_blocks(spec: StudySpec, frame: pd.DataFrame, top: pd.DataFrame, quality: Any,
                   prov: dict[str, str], vendors: pd.DataFrame | None = None,
                   vendor_note: str | None = None, *, lead: str | None = None,
                   importance: tuple[list[Spread], str | None] | None = None,
                   kinds: Sequence[Table] = (), card: Card | None = None,
                   deploy: str | None = None) -> list[Block]:
    """Title, the decision card (``card``: headline and key/value table; without one, the
    recommendation paragraph ``lead`` in its place), then ("charts",) where the HTML puts its
    charts, then the tables; with a card, ``lead`` follows the top configurations as the
    recommendation in full. Markdown skips chart blocks."""
    blocks: list[Block] = [("h1", f"Study {spec.name}"), *_opening(card, lead)]
    if deploy:  # report/deploy/: launch scripts, manifests, benchmark plans (docs/deploy.md)
        blocks.append(("link", "Deployment artifacts of the recommended and top "
                               "configurations (launch scripts, Kubernetes manifests, benchmark "
                               "plans, simulated records):", deploy))
    if spec.description:
        blocks.append(("p", spec.description))
    tally = Counter(frame.outcome) if len(frame) else Counter()
    blocks.append(("p", f"{len(frame)} trials: " + ", ".join(
        f"{tally.get(k, 0)} {k}" for k in STATE_ORDER if k in tally or k not in OPTIONAL_STATES)
        + ". Objectives: " + ", ".join(f"{o.direction} {metric_label(o.metric)}"
                                       for o in spec.objectives)
        + (". SLO constraints: " + "; ".join(c.key for c in spec.constraints)
           if spec.constraints else ". No SLO constraints") + "."))
    if spec.screening.enabled:
        simulated = sum(tally.get(k, 0) for k in ("feasible", *SIMULATED_INFEASIBLE, "failed"))
        sc = spec.screening
        blocks.append(("p", f"Fidelity: {tally.get(SCREENED, 0)} trials decided by the "
                            f"analytical tier (cannot meet an SLO even if the estimate were "
                            f"{1 + sc.margin:g}x better, or cannot beat the best simulated value "
                            f"even if {1 + sc.objective_margin:g}x better), {simulated} by the "
                            f"simulator; trials.csv's fidelity column says which decided each "
                            f"trial."))
    if top.empty:
        blocks.append(("p", "No feasible configuration was found: relax the SLOs or the budget, "
                            "widen the search space, or run more trials."))
    else:
        title = ("Pareto front (feasible configurations, distinct deployments)"
                 if spec.multi_objective else f"Top {len(top)} distinct feasible configurations")
        blocks.append(("h2", title))
        blocks.append(("p", "Configurations with the same deployment layout whose objectives, "
                            "cost and p99 latencies agree within 0.5% are one row; the settings "
                            "that differ show their range, and the alike trials are counted "
                            "(listed under Details)."))
        blocks.append(("table", *top_table(spec, top)))
        if card is not None and lead:  # the paragraph the card replaced at the top
            blocks += [("h2", "The recommendation in full"), ("p", lead)]
    if vendors is not None and len(vendors) > 1:
        blocks.extend(_vendor_blocks(spec, vendors, vendor_note))
    for table in kinds:  # hardware kind, engine, architecture (hermes_opt.report.accounting)
        if len(table.rows) > 1:
            blocks.extend(_kind_blocks(spec, table.title, table.column, table.rows, table.note))
    if importance is not None:
        blocks.extend(_spread_blocks(spec, *importance))
    if not top.empty:
        blocks.append(("h2", "Details of each configuration"))
        for rank, (_, r) in enumerate(top.iterrows(), start=1):
            blocks.extend(_detail(spec, rank, r))
    if spec.report_compare:
        headers, rows = case_rows(spec, frame)
        if rows:
            blocks.append(("h2", f"Every design simulated ({len(rows)})"))
            blocks.append(("table", [param_label(h) if h in spec.space.names else
                                     metric_label(h) if h in spec.report_compare else h
                                     for h in headers], [[_fmt(v) for v in row] for row in rows]))
    if spec.report_pareto and len(frame):
        front = _front(spec, frame)
        if len(front):
            x, y = _axes(spec)
            blocks.append(("h2", f"Pareto front: {_label(y)} vs {_label(x)} (feasible trials)"))
            blocks.append(("table", ["trial", *(param_label(n) for n in spec.space.names),
                                     _label(x), _label(y), "Cost ($/hour)"],
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
    unrun = frame[frame.outcome == "infeasible (not simulated)"] if len(frame) else frame
    reasons = group_reasons(list(unrun.reason)) if len(unrun) else []
    if reasons:
        blocks.append(("h2", "Why candidates were infeasible"))
        blocks.append(("p", "Reasons that differ only by their numbers (dollar amounts, device "
                            "counts, TP degrees) are counted together; one example is shown."))
        blocks.append(("table", ["count", "reason (one example)"],
                       [[n, shorten(reason)] for n, reason in reasons]))
    blocks.append(("h2", "Provenance"))
    blocks.append(("table", ["", ""], [[k, v] for k, v in prov.items()]))
    return blocks


def _opening(card: Card | None, lead: str | None) -> list[Block]:
    """The first screen: the card, the charts, and a line for the cost-against-load chart the
    HTML draws from the assessment (or why it is not drawn)."""
    if card is None:
        return [*([("lead", lead)] if lead else []), ("charts", "main")]
    blocks: list[Block] = [("lead", card.headline), ("card", card.rows), ("charts", "main")]
    if not card.load_table:
        blocks.append(("p", "Cost against load: not drawn, because the study stores no "
                            "assessment of the cheapest deployment at other demands (its "
                            "load_table); the search ran at one demand."))
    return blocks


def _spread_blocks(spec: StudySpec, found: list[Spread], why: str | None) -> list[Block]:
    """What each parameter's values are worth (hermes_opt.report.importance)."""
    metric = metric_label(spec.objectives[0].metric)
    blocks: list[Block] = [("h2", "What each choice is worth: best result per parameter value")]
    if not found:
        return [*blocks, ("p", f"No table: {why}."), ("charts", "importance")]
    blocks.append(("p", f"For each parameter, the best {metric} among the feasible trials with "
                        f"each of its values (numeric parameters with many values in ranges); "
                        f"the spread is the best value's best over the worst value's best, so "
                        f"2x means the worst value's best deployment found gives half as much. "
                        f"Largest spread first; a value without a feasible trial is listed "
                        f"apart (those rows are in trials.csv)."))
    rows = [[f"{param_label(s.param)} ({s.param})" if param_label(s.param) != s.param else s.param,
             f"{s.ratio:.2f}x" if math.isfinite(s.ratio) else "–",
             f"{s.best[0]}: {_fmt(s.best[1])} (trial {s.best[2]})",
             f"{s.worst[0]}: {_fmt(s.worst[1])} (trial {s.worst[2]})" if s.values > 1 else "–",
             s.values, ", ".join(s.none_feasible) or "–"] for s in found]
    blocks.append(("table", ["parameter", "spread", "best value: its best (trial)",
                             "worst value: its best (trial)", "values with a feasible trial",
                             "no feasible trial with"], rows))
    return [*blocks, ("charts", "importance")]


def _vendor_blocks(spec: StudySpec, vendors: pd.DataFrame, note: str | None) -> list[Block]:
    return _kind_blocks(spec, "Best deployment per vendor", "vendor",
                        vendors.rename(columns={"vendor": "label"}), note)


def _kind_blocks(spec: StudySpec, title: str, column: str, rows: pd.DataFrame,
                 note: str | None) -> list[Block]:
    """A best-per-choice table: each feasible choice's best trial, then the choices the space
    offers without a feasible deployment, with why ("none feasible: 3 simulated, ...")."""
    blocks: list[Block] = [("h2", title)]
    if note:
        blocks.append(("p", note))
    out = []
    for r in rows.itertuples():
        why = getattr(r, "why_none", "")
        if isinstance(why, str) and why:
            out.append([r.label, "–", f"none feasible: {why}", "–", "–", "–", "–"])
        else:
            out.append([r.label, int(r.trial), r.deployment, _fmt(r.objective),
                        _fmt(r.usd_per_hour), _fmt(r.ttft_p99_ms), _fmt(r.tpot_p99_ms)])
    blocks.append(("table", [column, "trial", "deployment",
                             metric_label(spec.objectives[0].metric), "Cost ($/hour)",
                             "p99 TTFT (ms)", "p99 TPOT (ms)"], out))
    return blocks


def _detail(spec: StudySpec, rank: int, r: pd.Series) -> list[Block]:
    seeds = spec.replicate_seeds
    note = (f"Replay (workload seed {seeds[0]}; the figures above are means over seeds "
            f"{', '.join(map(str, seeds))}: change seed= to replay the others):"
            if len(seeds) > 1 else "Replay:")
    lay = _layout(r)
    where = f": {lay.description}" if lay is not None else ""
    alike = f" (alike: trials {r.alike})" if isinstance(r.get("alike"), str) and r.alike else ""
    out: list[Block] = [("h3", f"#{rank}: trial {int(r.trial)}{where}{alike}"), ("p", note),
                        ("code", r.replay)]
    metrics = {k.split(":", 1)[1]: v for k, v in r.items()
               if k.startswith("metric:") and not (isinstance(v, float) and math.isnan(v))}
    cost = {k.split(".", 1)[1]: v for k, v in metrics.items()
            if k.startswith("cost_breakdown_usd_per_hour.")}
    if cost:
        out.append(("table", ["pool", "Cost ($/hour)", "share"],
                    [[pool, _fmt(v), f"{v / max(sum(cost.values()), 1e-12):.0%}"]
                     for pool, v in sorted(cost.items())]))
    util = {k.split(".")[1]: v for k, v in metrics.items()
            if k.startswith("pools.") and k.endswith(".utilization")}
    if util:
        out.append(("p", "Busy time (share of the run with a batch in progress; continuous "
                         "batching keeps it near 100% well below capacity, so it is not load "
                         "against capacity): "
                         + ", ".join(f"{p} {v:.0%}" for p, v in sorted(util.items()))))
    out.extend(stage_share.stage_blocks(metrics, _record(r), _fmt))  # by stage: time, $, tables
    by_type: dict[str, dict[str, float]] = {}
    for key, value in metrics.items():
        if key.startswith("request_types."):
            _, name, rest = key.split(".", 2)
            by_type.setdefault(name, {})[rest] = value
    if len(by_type) > 1:  # one type would repeat the workload-wide figures
        out.append(("p", "Per request type (p99 latencies, SLO attainment under each type's own "
                         "SLO):"))
        out.append(("table", ["request type", "completed", "p99 TTFT (ms)", "p99 TPOT (ms)",
                              "SLO attainment"],
                    [[name, _fmt(v.get("requests_completed", math.nan)),
                      _fmt(v.get("ttft_ms.p99", math.nan)), _fmt(v.get("tpot_ms.p99", math.nan)),
                      _fmt(v.get("slo_attainment", math.nan))]
                     for name, v in sorted(by_type.items())]))
    slo_rows = []
    spread = spec.replicates > 1
    for c in spec.constraints:
        value = metrics.get(c.metric, math.nan)
        margin = ((c.bound - value) if c.op == "<=" else (value - c.bound)) / abs(c.bound or 1)
        slo_rows.append([metric_label(c.metric), _fmt(value), f"{c.op} {c.bound:g}",
                         "–" if math.isnan(margin) else f"{margin:.0%}",
                         *([_fmt(r.get(f"std:{c.metric}", math.nan))] if spread else [])])
    if slo_rows:
        out.append(("table", ["SLO metric", "mean over replicates" if spread else "value", "bound",
                              "margin", *(["std"] if spread else [])], slo_rows))
    return out


def to_markdown(blocks: list[Block]) -> str:
    lines: list[str] = []
    for block in blocks:
        kind = block[0]
        if kind in ("h1", "h2", "h3"):
            lines += ["#" * int(kind[1]) + " " + block[1], ""]
        elif kind in ("p", "lead"):
            head, sep, rest = block[1].partition(": ")
            lines += [f"**{head}:** {rest}" if kind == "lead" and sep else block[1], ""]
        elif kind == "card":
            lines += ["| | |", "|---|---|"]
            lines += [f"| **{what}** | {str(value).replace('|', chr(92) + '|')} |"
                      for what, value in block[1]]
            lines.append("")
        elif kind == "code":
            lines += ["```sh", block[1], "```", ""]
        elif kind == "link":
            lines += [f"{block[1]} [{block[2]}]({block[2]})", ""]
        elif kind == "table":
            headers, rows = block[1], block[2]
            esc = lambda v: str(v).replace("|", "\\|")  # noqa: E731
            lines.append("| " + " | ".join(esc(h) for h in headers) + " |")
            lines.append("|" + "---|" * len(headers))
            lines += ["| " + " | ".join(esc(v) for v in row) + " |" for row in rows]
            lines.append("")
    return "\n".join(lines)


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
    """The feasible trials no other feasible trial beats on both axes of the scatter, sorted by
    x (a single objective without a latency axis: its best trial)."""
    feasible = frame[frame.outcome == "feasible"]
    if feasible.empty or not _draws_front(spec, frame):
        return top_configurations(frame, spec).head(1)
    if spec.multi_objective and not spec.report_pareto:
        cols = [f"objective:{o.metric}" for o in spec.objectives]
        front = feasible[pareto_mask(feasible[cols].to_numpy(), spec.directions)]
        return front.sort_values(cols[0])
    cols = list(_axes(spec, frame))
    directions = [_direction(spec, c.split(":", 1)[1]) for c in cols]
    values = feasible[cols].dropna()
    front = feasible.loc[values[pareto_mask(values.to_numpy(), directions)].index]
    params = [f"param:{n}" for n in spec.space.names]  # a revisited candidate: listed once
    return front.drop_duplicates(subset=params or None).sort_values(cols[0])


def _history(spec: StudySpec, frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series]:
    col = f"objective:{spec.objectives[0].metric}"
    simulated = frame[frame.outcome.isin(["feasible", *SIMULATED_INFEASIBLE])].sort_values("trial")
    feasible = frame.sort_values("trial")
    values = feasible[col].where(feasible.outcome == "feasible")
    best = values.cummax() if spec.objectives[0].direction == "maximize" else values.cummin()
    best = best.ffill()  # cummax leaves NaN where a trial was not feasible
    return simulated, pd.Series(best.to_numpy(), index=feasible.trial.to_numpy())
