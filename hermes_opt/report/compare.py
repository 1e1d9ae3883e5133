"""The case table (``report.compare``): every distinct simulated design with the metrics a
study names, e.g. the kv_storage study's E2E p50/p90/p99 and hit rate per tier design and access
pattern. Designs are listed once (their first trial) in parameter order, so the table reads as
the study's grid whatever order the sampler visited it in."""

from __future__ import annotations

import math

import pandas as pd

from hermes_opt.report.trials import SIMULATED_INFEASIBLE
from hermes_opt.study.definition import StudySpec


def _sort_key(col: pd.Series) -> pd.Series:
    """Numbers in numeric order (4096 before 24576), anything else as text; unset last."""
    numeric = pd.to_numeric(col, errors="coerce")
    if numeric.notna().sum() == col.notna().sum():
        return numeric
    return col.astype(str)


def case_rows(spec: StudySpec, frame: pd.DataFrame) -> tuple[list[str], list[list]]:
    """(headers, rows) of the case table; rows hold raw values (the caller formats them)."""
    params = [f"param:{n}" for n in spec.space.names]
    simulated = frame[frame.outcome.isin(["feasible", *SIMULATED_INFEASIBLE])] if len(frame) else frame
    if simulated.empty:
        return [], []
    if params:
        simulated = simulated[~simulated.duplicated(subset=params)]
        simulated = simulated.sort_values(params, key=_sort_key, kind="stable")
    headers = ["trial", *spec.space.names, *spec.report_compare, "outcome"]
    rows = [[int(r.trial), *(r.get(p) for p in params),
             *(r.get(f"metric:{m}", math.nan) for m in spec.report_compare), r.outcome]
            for _, r in simulated.iterrows()]
    return headers, rows
