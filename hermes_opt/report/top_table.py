"""The "Top k" table, narrow enough for a 1,366 px page: one Deployment column (product names,
replicas and TP from the stored record) instead of hardware, TP, replicas and devices; the
trial with a count of the alike trials (their numbers are in the Details heading); only the
settings the layout does not state, and only those set in some row; p99 TTFT and TPOT in one
column. A row without a deployment record (a custom evaluator's trial) keeps every parameter."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from hermes_opt.report import engine_flags, products, vendors
from hermes_opt.report.labels import fmt, fmt_spread, metric_label, param_label
from hermes_opt.report.recommend import is_layout_param
from hermes_opt.study.definition import StudySpec

MISSING = "–"


def _cell(value: Any) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return MISSING
        return f"{value:,.0f}" if abs(value) >= 1e4 else f"{value:.4g}"
    return MISSING if value is None else str(value)


def _trial(row: pd.Series) -> str:
    alike = row.get("alike")
    more = len(str(alike).split(",")) if isinstance(alike, str) and alike else 0
    return f"{int(row.trial)} (+{more} alike)" if more else str(int(row.trial))


def _engine(row: pd.Series) -> str | None:
    pools = [p for p in (vendors.record(row) or {}).get("pools", []) if p.get("engine")]
    names = list(dict.fromkeys(engine_flags.engine_name(p) for p in pools))
    return " + ".join(n for n in names if n) or None


def _latency(row: pd.Series) -> str:
    ttft, tpot = row.get("metric:ttft_ms.p99", math.nan), row.get("metric:tpot_ms.p99", math.nan)
    return f"{_cell(ttft)} / {_cell(tpot)}"


def top_table(spec: StudySpec, top: pd.DataFrame) -> tuple[list[str], list[list[str]]]:
    """(headers, rows) of the top configurations, best first."""
    layouts = [products.short_layout(vendors.record(r)) for _, r in top.iterrows()]
    described = all(layouts)
    engines = [_engine(r) for _, r in top.iterrows()]
    if described and len(set(engines)) > 1:  # one engine for all: the card names it
        layouts = [f"{lay} on {eng}" if eng else lay for lay, eng in zip(layouts, engines,
                                                                         strict=True)]
    params = [n for n in spec.space.names if not (described and is_layout_param(n))]
    values = {n: [r.get(f"range:{n}") or _cell(r.get(f"param:{n}")) for _, r in top.iterrows()]
              for n in params}
    params = [n for n in params if any(v != MISSING for v in values[n])]  # set in some row
    spread = " (mean ± std)" if spec.replicates > 1 else ""
    headers = ["#", "Trial", *(["Deployment"] if described else []),
               *(param_label(n) for n in params),
               *(f"{metric_label(o.metric)}{spread}" for o in spec.objectives),
               "Cost ($/hour)", *([] if described else ["Devices"]), "p99 TTFT / TPOT (ms)"]
    rows = []
    for i, (_, r) in enumerate(top.iterrows()):
        rows.append([str(i + 1), _trial(r), *([layouts[i]] if described else []),
                     *(values[n][i] for n in params),
                     *(fmt_spread(r[f"objective:{o.metric}"], r.get(f"std:{o.metric}"),
                                  spec.replicates) for o in spec.objectives),
                     fmt(r.get("metric:cost_usd_per_hour", math.nan)),
                     *([] if described else [_cell(r.get("metric:num_devices", math.nan))]),
                     _latency(r)])
    return headers, rows
