"""Why a choice has no feasible deployment, in one phrase a buyer can check against trials.csv:
"never proposed", "2 proposed, both over budget", "3 simulated, all violated p99 TPOT (best 62 ms
against 50 ms)", "5 proposed: 3 simulated, none met every SLO (closest, trial 12: p99 TTFT 300 ms
against 250 ms); 2 not simulated (over budget)".

Counts are of distinct candidates (a repeated configuration is one), from the trials table
(``hermes_opt.report.trials``): outcome, reason, ``constraint:`` and ``metric:`` columns."""

from __future__ import annotations

import math
import re
from collections import Counter

import pandas as pd

from hermes_opt.report.labels import NUMBER, fmt, metric_label, unit
from hermes_opt.report.trials import OVERRIDES, SCREENED, SIMULATED_INFEASIBLE
from hermes_opt.study.definition import StudySpec
from hermes_opt.study.objective import Constraint

NOT_RUN = "infeasible (not simulated)"


def distinct(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per candidate (its first trial): repeats of a configuration count once."""
    if rows.empty or OVERRIDES not in rows:
        return rows
    keys = rows[OVERRIDES].map(lambda o: tuple(o) if isinstance(o, list) else (o,))
    return rows[~keys.duplicated()]


def why_none(rows: pd.DataFrame, spec: StudySpec) -> str:
    """The phrase for the trials of one choice, none of them feasible."""
    rows = distinct(rows[rows.outcome != "re-run elsewhere"]) if len(rows) else rows
    if rows.empty:
        return "never proposed"
    simulated = rows[rows.outcome.isin(SIMULATED_INFEASIBLE)]
    unrun = rows[rows.outcome == NOT_RUN]
    others = Counter(o for o in rows.outcome if o not in (*SIMULATED_INFEASIBLE, NOT_RUN))
    if len(rows) == len(unrun):
        reasons = _reasons(unrun, alone=True)
        word = "" if reasons.startswith("none simulated") else _all(len(rows))
        return f"{len(rows)} proposed, {word}{reasons}"
    pieces = [_violations(simulated, spec)] if len(simulated) else []
    if len(unrun):
        pieces.append(f"{len(unrun)} not simulated ({_reasons(unrun, alone=False)})")
    names = {SCREENED: "screened out by the analytical estimate", "failed": "failed (simulator "
             "error)", "unfinished": "unfinished"}
    pieces += [f"{n} {names.get(outcome, outcome)}" for outcome, n in sorted(others.items())]
    if len(pieces) == 1 and len(simulated):
        return pieces[0]
    return f"{len(rows)} proposed: " + "; ".join(pieces)


def _all(n: int) -> str:
    return "" if n == 1 else "both " if n == 2 else "all "


def reason_kind(reason: str) -> str:
    """What made a candidate impossible, in a few words."""
    text = str(reason)
    if text.startswith("over budget"):
        return "over budget"
    if "does not fit" in text:
        return "does not fit in memory"
    field, sep, rest = text.partition(": ")
    if not sep:
        field, rest = "", text
    # "deployment.prefill.tp=2: does not divide the pool's 7 devices (...)" ->
    # "tp does not divide the pool's devices": the key's last part, the first clause, no numbers
    name = field.split("=", 1)[0].rsplit(".", 1)[-1]
    first = " ".join(NUMBER.sub("", re.split(r" \(|; ", rest)[0]).split())
    kind = f"{name} {first}".strip() if name and "=" in field else first
    return kind if len(kind) <= 60 else kind[:57].rsplit(" ", 1)[0] + " …"


def _reasons(unrun: pd.DataFrame, *, alone: bool) -> str:
    kinds = Counter(reason_kind(r) for r in unrun.reason)
    if len(kinds) == 1:
        return next(iter(kinds))
    listed = ", ".join(f"{kind} ({n})" for kind, n in kinds.most_common())
    return f"none simulated: {listed}" if alone else listed


def _short(metric: str) -> str:
    """"p99 TPOT" (the label without its unit, which the values carry)."""
    return re.sub(r" \([^)]*\)$", "", metric_label(metric))


def _value(metric: str, value: float) -> str:
    return "no request completed" if math.isnan(value) else f"{fmt(value)}{unit(metric)}"


def _bound(c: Constraint) -> str:
    return f"{c.bound:g}{unit(c.metric)}"


def _violations(simulated: pd.DataFrame, spec: StudySpec) -> str:
    """"3 simulated, all violated p99 TPOT (best 62 ms against 50 ms)", naming every constraint
    no simulated candidate met; when each was met by some candidate but never all at once, the
    candidate closest to meeting them all (smallest largest relative violation)."""
    n = len(simulated)
    slo_columns = [f"constraint:{c.key}" for c in spec.constraints
                   if f"constraint:{c.key}" in simulated]
    if not slo_columns or not (simulated[slo_columns] > 0).any(axis=None):
        # every SLO met at the demand: they fell behind it, or failed headroom or n+1
        kinds = Counter(part.split(" (")[0] for reason in simulated.reason
                        for part in str(reason).split("; ") if part)
        listed = ", ".join(f"{kind} ({count})" if len(kinds) > 1 else kind
                           for kind, count in kinds.most_common())
        return f"{n} simulated, SLOs met at the demand, but {listed or 'not every constraint'}"
    always = [c for c in spec.constraints
              if f"constraint:{c.key}" in simulated and (simulated[f"constraint:{c.key}"] > 0).all()]
    if always:
        parts = []
        for c in always:
            values = simulated.get(f"metric:{c.metric}", pd.Series(dtype=float)).dropna()
            best = (values.min() if c.op == "<=" else values.max()) if len(values) else math.nan
            word = "best " if n > 1 else ""
            parts.append(f"{_short(c.metric)} ({word}{_value(c.metric, best)} against "
                         f"{_bound(c)})")
        verb = "violated" if n == 1 else f"{_all(n)}violated"
        return f"{n} simulated, {verb} " + " and ".join(parts)
    columns = [f"constraint:{c.key}" for c in spec.constraints if f"constraint:{c.key}" in simulated]
    if not columns:
        return f"{n} simulated, {'none' if n > 1 else 'it'} met every constraint"
    worst = simulated[columns].max(axis=1)
    closest = simulated.loc[worst.idxmin()]
    broken = [f"{_short(c.metric)} {_value(c.metric, closest.get(f'metric:{c.metric}', math.nan))}"
              f" against {_bound(c)}" for c in spec.constraints
              if closest.get(f"constraint:{c.key}", 0) > 0]
    return (f"{n} simulated, none met every SLO (closest, trial {int(closest.trial)}: "
            f"{'; '.join(broken)})")
