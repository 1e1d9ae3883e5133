"""The study's trials as a table: one row per trial with its outcome, and the rankings drawn from
it (top configurations, Pareto-front quality). Everything the renderers show comes from here."""

from __future__ import annotations

import math
import shlex
from dataclasses import dataclass
from typing import Any

import optuna
import pandas as pd
from optuna.trial import TrialState

from hermes_opt.compose.candidate import record_of_overrides
from hermes_opt.report import alternatives
from hermes_opt.report.vendors import RECORD
from hermes_opt.study.coverage import COVERAGE
from hermes_opt.study.definition import StudySpec
from hermes_opt.study.objective import CHECK_PREFIXES, KEEPS_UP, named_constraints
from hermes_opt.study.pareto import hypervolume, pareto_mask, reference_point

SCREENED = "screened (analytic)"  # decided by the analytical tier (study key screening)
VIOLATES = "violates SLO"  # simulated: an SLO broken, or it falls behind the demand
# simulated: every SLO met at the demand, but not with headroom or a replica down (run.checks)
FAILS_CHECK = "fails headroom or n+1"
SIMULATED_INFEASIBLE = (VIOLATES, FAILS_CHECK)
STATE_ORDER = ("feasible", VIOLATES, FAILS_CHECK, "infeasible (not simulated)", SCREENED,
               "failed", "unfinished", "re-run elsewhere")
# listed in the report only when present
OPTIONAL_STATES = ("re-run elsewhere", SCREENED, FAILS_CHECK)
# Columns the report reads but trials.csv does not show: the stored deployment record (the
# ``vendor`` and ``deployment`` columns are its readable part) and the trial's own overrides.
OVERRIDES = "_overrides"


def replay_command(spec: StudySpec, overrides: list[str], seed: int,
                   engine: str | None = None) -> str:
    """The ``hermes-sim`` line that re-runs a trial. It names the serving engine the trial ran
    (``engine=vllm``) unless the study's own overrides already choose it, so the line still
    reproduces the trial if the default engine ever changes."""
    chosen = any(o.split("=", 1)[0].lstrip("+~").endswith("engine") for o in
                 [*spec.base, *overrides])
    named = [f"engine={engine}"] if engine and not chosen else []
    return " ".join(["hermes-sim", *(shlex.quote(o) for o in [*spec.base, *overrides, *named,
                                                               f"seed={seed}"])])


def engine_label(deployment: dict | None) -> str | None:
    """The serving engine(s) of a deployment's LLM pools: "vllm 0.11", or per pool when they
    differ ("prefill trtllm 1.0 + decode sglang 0.5")."""
    pools = [p for p in (deployment or {}).get("pools", []) if p.get("engine")]
    engines = list(dict.fromkeys(p["engine"] for p in pools))
    if not engines:
        return None
    if len(engines) == 1:
        return engines[0]
    return " + ".join(f"{p['name']} {p['engine']}" for p in pools)


def trial_rows(study: optuna.Study, spec: StudySpec) -> pd.DataFrame:
    """One row per trial: params, objectives (+ spread), constraints, metrics, status."""
    rows = []
    objective_names = [o.metric for o in spec.objectives]
    trials = study.get_trials(deepcopy=False)
    recomposed = {"count": 0}
    replaced = {n for t in trials for n in t.system_attrs.get("retry_history", [])}
    for t in trials:
        record = t.user_attrs.get("result") or {}
        status = record.get("status")
        constraints = named_constraints(t) if t.state is TrialState.COMPLETE else {}
        kind = "re-run elsewhere" if t.number in replaced else outcome(t, status, constraints)
        reason = (why_not_feasible(constraints, record) if kind in SIMULATED_INFEASIBLE else
                  record.get("reason", "").splitlines()[0] if record.get("reason") else "")
        row: dict[str, Any] = {"trial": t.number, "state": t.state.name, "outcome": kind,
                               "reason": reason}
        if spec.screening.enabled:  # which fidelity decided the trial (analytic / simulator)
            row["fidelity"] = record.get("fidelity", "")
        # "hardware=l40s": a coverage trial, added after n_trials for that choice
        row["coverage"] = t.user_attrs.get(COVERAGE, "")
        for name in spec.space.names:
            row[f"param:{name}"] = t.params.get(name)
        metrics = record.get("metrics") or {}
        spread = record.get("spread") or {}
        for k, name in enumerate(objective_names):
            simulated = status == "ok"
            row[f"objective:{name}"] = t.values[k] if simulated and t.values else math.nan
            row[f"std:{name}"] = spread.get(name, math.nan) if simulated else math.nan
        for name, value in spread.items():
            row.setdefault(f"std:{name}", value)
        for key, value in constraints.items():
            row[f"constraint:{key}"] = value
        for key, value in sorted(metrics.items()):
            if key != "seed":  # replicate seeds are in the provenance, their mean means nothing
                row[f"metric:{key}"] = value
        overrides = record.get("overrides") or [f"{k}={v}" for k, v in t.params.items()]
        deployment = record.get("deployment")
        if deployment is None and status == "ok" and spec.evaluator is None:
            deployment = _recomposed(spec, overrides, recomposed)
        row["vendor"] = (deployment or {}).get("vendor")
        row["deployment"] = (deployment or {}).get("layout")
        row["engine"] = engine_label(deployment)
        single = row["engine"].split()[0] if row["engine"] and " + " not in row["engine"] else None
        row["replay"] = replay_command(spec, overrides, spec.replicate_seeds[0], single)
        row["sim_s"] = record.get("sim_s", math.nan)
        row[RECORD], row[OVERRIDES] = deployment, list(overrides)
        rows.append(row)
    frame = pd.DataFrame(rows)
    frame.attrs["recomposed"] = recomposed["count"]
    return frame


def why_not_feasible(constraints: dict[str, float], record: dict) -> str:
    """A simulated trial's failed constraints in words: the SLOs first, then keeping up, then the
    stress checks (hermes_opt.run.checks)."""
    metrics = record.get("metrics") or {}
    checks = record.get("checks") or {}
    failed = {k: v for k, v in constraints.items() if v > 0 and k not in ("runnable", "screened")}
    if any(not k.startswith(CHECK_PREFIXES) for k in failed):
        # a check not simulated because the trial fails at the demand says nothing more
        failed = {k: v for k, v in failed.items() if (checks.get(k) or {}).get("checked", True)
                  or not k.startswith(CHECK_PREFIXES)}
    order = sorted(failed, key=lambda k: (k.startswith(CHECK_PREFIXES),
                                          k == KEEPS_UP, k))
    parts = []
    for key in order:
        if key == KEEPS_UP:
            ratio = (record.get("stability") or {}).get("completion_ratio")
            parts.append("falls behind the demand" + (
                f" (completes {ratio:.0%} of arrivals)" if ratio is not None else ""))
        elif key.startswith(CHECK_PREFIXES):
            check = checks.get(key) or {}
            parts.append(f"fails {key}" + (f" ({check['reason']})" if check.get("reason")
                                           else ""))
        else:
            metric = key.split()[0]
            shown = metrics.get(metric)
            parts.append(f"{metric} {shown:.4g} breaks {key}" if shown is not None else key)
    return "; ".join(parts)


def outcome(trial: Any, status: str | None, constraints: dict[str, float]) -> str:
    """One of STATE_ORDER for a trial no re-queued copy replaced."""
    if trial.state is TrialState.FAIL:
        return "failed"
    if trial.state is not TrialState.COMPLETE:
        return "unfinished"
    if status == "infeasible":
        return "infeasible (not simulated)"
    if status == "screened":
        return SCREENED
    failed = [k for k, v in constraints.items() if v > 0]
    if not failed:
        return "feasible"
    return FAILS_CHECK if all(k.startswith(CHECK_PREFIXES) for k in failed) else VIOLATES


def _recomposed(spec: StudySpec, overrides: list[str], counter: dict[str, int]) -> dict | None:
    """A simulated trial stored before trials carried their deployment record: compose it again
    (slow, ~40 ms each; the report says how many it did)."""
    counter["count"] += 1
    return record_of_overrides([*spec.base, *overrides])


def csv_columns(frame: pd.DataFrame) -> list[str]:
    """The columns trials.csv shows (everything but the report's internal ones)."""
    return [c for c in frame.columns if c not in (RECORD, OVERRIDES)]


def top_configurations(frame: pd.DataFrame, spec: StudySpec) -> pd.DataFrame:
    feasible = frame[frame.outcome == "feasible"]
    if feasible.empty:
        return feasible
    first = spec.objectives[0]
    cols = [f"objective:{o.metric}" for o in spec.objectives]
    if spec.multi_objective:
        mask = pareto_mask(feasible[cols].to_numpy(), spec.directions)
        feasible = feasible[mask]
    ascending = first.direction == "minimize"
    ranked = feasible.sort_values([f"objective:{first.metric}", "trial"],
                                  ascending=[ascending, True])
    # samplers revisit configurations: list each once (its first trial)
    params = [f"param:{n}" for n in spec.space.names]  # NaN = inactive conditional parameter
    distinct = ranked[~ranked.duplicated(subset=params)] if params else ranked
    # one deployment differing only in a setting that does not change the result: one row
    return alternatives.merge(distinct, spec, spec.top_k)


@dataclass(frozen=True, slots=True)
class FrontQuality:
    size: int
    hypervolume: float
    reference: list[float]


def front_quality(frame: pd.DataFrame, spec: StudySpec,
                  reference: list[float] | None = None) -> FrontQuality | None:
    if not spec.multi_objective:
        return None
    cols = [f"objective:{o.metric}" for o in spec.objectives]
    values = frame[frame.outcome == "feasible"][cols].to_numpy()
    if len(values) == 0:
        return FrontQuality(0, 0.0, reference or [])
    ref = reference or reference_point(values, spec.directions)
    front = values[pareto_mask(values, spec.directions)]
    return FrontQuality(len(front), hypervolume(front, spec.directions, ref), ref)


def counts(frame: pd.DataFrame) -> dict[str, int]:
    return {k: int((frame.outcome == k).sum()) for k in STATE_ORDER} if len(frame) else {}
