"""Distinct alternatives for the "Top k" list: configurations that share one deployment layout
(``vendors.layout``: pools, device counts, hardware, TP) and whose objectives and key metrics are
equal within 0.5% are one alternative, not five rows differing only in a setting that does not
change the result (e.g. ``scheduler.max_num_seqs``). The best trial of a group represents it;
its row gets ``alike`` (the other trials) and ``range:<param>`` ("64-256", or "a, b") columns."""

from __future__ import annotations

import math
import numbers
from typing import Any

import pandas as pd

from hermes_opt.report import vendors
from hermes_opt.study.definition import StudySpec

REL_TOL = 0.005
KEY_METRICS = ("metric:cost_usd_per_hour", "metric:ttft_ms.p99", "metric:tpot_ms.p99")


def key_columns(frame: pd.DataFrame, spec: StudySpec) -> list[str]:
    cols = [f"objective:{o.metric}" for o in spec.objectives]
    return cols + [c for c in KEY_METRICS if c in frame.columns and c not in cols]


def close(a: Any, b: Any, rel: float = REL_TOL) -> bool:
    """Equal within ``rel`` of the larger magnitude (both NaN counts as equal)."""
    a, b = float(a), float(b)
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return abs(a - b) <= rel * max(abs(a), abs(b)) or a == b


def _value_range(values: list[Any]) -> str:
    present = [v for v in values if not (v is None or (isinstance(v, float) and math.isnan(v)))]
    distinct = list(dict.fromkeys(present))
    if not distinct:
        return "–"
    if len(distinct) == 1:
        return _show(distinct[0])
    if all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in distinct):
        return f"{_show(min(distinct))}-{_show(max(distinct))}"
    return ", ".join(_show(v) for v in distinct)


def _show(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def merge(ranked: pd.DataFrame, spec: StudySpec, k: int) -> pd.DataFrame:
    """The first ``k`` distinct alternatives of ``ranked`` (best first), each its best trial."""
    if ranked.empty:
        out = ranked.copy()
        out["alike"] = pd.Series(dtype=object)
        return out
    cols = key_columns(ranked, spec)
    groups: list[list[int]] = []  # positional indices into ranked, best first
    for pos in range(len(ranked)):
        row = ranked.iloc[pos]
        home = None
        for members in groups:
            lead = ranked.iloc[members[0]]
            if all(close(row[c], lead[c]) for c in cols) and _same_layout(row, lead):
                home = members
                break
        if home is not None:
            home.append(pos)
        elif len(groups) < k:
            groups.append([pos])
    rows = []
    params = [f"param:{n}" for n in spec.space.names]
    for members in groups:
        lead = ranked.iloc[members[0]].copy()
        lead["alike"] = ", ".join(str(int(ranked.iloc[m].trial)) for m in members[1:])
        for p in params:
            lead[f"range:{p[6:]}"] = _value_range([ranked.iloc[m].get(p) for m in members])
        rows.append(lead)
    return pd.DataFrame(rows)


def _same_layout(a: pd.Series, b: pd.Series) -> bool:
    """Both trials have one deployment layout (unknown layouts never merge)."""
    la, lb = vendors.layout(a), vendors.layout(b)
    return la is not None and lb is not None and la.description == lb.description
