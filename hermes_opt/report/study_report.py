"""The study report a decision maker opens: ``runs/<study>/report/``.

* ``report.html`` — self-contained (plotly JS embedded, works offline): interactive Pareto front /
  cost-vs-objective chart with feasible and infeasible trials (hover shows the configuration),
  history, and the same summary as summary.md.
* ``pareto.png``, ``history.png`` — the same charts drawn with matplotlib (no browser needed).
* ``trials.csv`` — every trial: parameters, objectives, constraint values, metrics, replay command.
* ``summary.md`` — top configurations with cost, per-stage and (several request types) per-type
  breakdowns, replay commands, hypervolume (multi-objective) and provenance.
"""

from __future__ import annotations

import math
import shlex
import sys
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

import optuna
import pandas as pd
from optuna.trial import TrialState

from hermes_opt import storage as storage_mod
from hermes_opt.pareto import hypervolume, pareto_mask, reference_point
from hermes_opt.report_render import STATE_ORDER
from hermes_opt.study import StudySpec, from_dict



def replay_command(spec: StudySpec, overrides: list[str], seed: int) -> str:
    return " ".join(["hermes-sim", *(shlex.quote(o) for o in [*spec.base, *overrides,
                                                               f"seed={seed}"])])


def trial_rows(study: optuna.Study, spec: StudySpec) -> pd.DataFrame:
    """One row per trial: params, objectives (+ spread), constraints, metrics, status."""
    rows = []
    objective_names = [o.metric for o in spec.objectives]
    trials = study.get_trials(deepcopy=False)
    replaced = {n for t in trials for n in t.system_attrs.get("retry_history", [])}
    for t in trials:
        record = t.user_attrs.get("result") or {}
        status = record.get("status")
        constraints = t.constraints if t.state is TrialState.COMPLETE else {}
        if t.number in replaced:
            kind = "re-run elsewhere"  # its driver died; a re-queued copy replaced it
        elif t.state is TrialState.FAIL:
            kind = "failed"
        elif t.state is not TrialState.COMPLETE:
            kind = "unfinished"
        elif status == "infeasible":
            kind = "infeasible (not simulated)"
        elif all(v <= 0 for v in constraints.values()):
            kind = "feasible"
        else:
            kind = "violates SLO"
        row: dict[str, Any] = {"trial": t.number, "state": t.state.name, "outcome": kind,
                               "reason": record.get("reason", "").splitlines()[0]
                               if record.get("reason") else ""}
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
        row["replay"] = replay_command(spec, overrides, spec.replicate_seeds[0])
        row["sim_s"] = record.get("sim_s", math.nan)
        rows.append(row)
    return pd.DataFrame(rows)


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
    return (ranked[~ranked.duplicated(subset=params)] if params else ranked).head(spec.top_k)


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


def provenance(study: optuna.Study, spec: StudySpec, frame: pd.DataFrame,
               storage_url: str) -> dict[str, str]:
    def version(package: str) -> str:
        try:
            return metadata.version(package)
        except metadata.PackageNotFoundError:
            return "unknown"
    prices = sorted({(r.get("price_set"), r.get("price_date"))
                     for r in (t.user_attrs.get("result") or {} for t in study.trials)
                     if r.get("price_set")})
    return {
        "study": spec.name,
        "hermes-opt version": version("hermes-opt"),
        "config hash": study.user_attrs.get("config_hash", spec.config_hash),
        "sampler": f"{study.user_attrs.get('sampler', spec.resolved_sampler)} (re-seeded per batch of {spec.batch_size} from "
                   f"seed {spec.seed} and the trial count)",
        "workload seeds (replicates)": ", ".join(map(str, spec.replicate_seeds)),
        "price set (date)": "; ".join(f"{p} ({d})" for p, d in prices) or "n/a",
        "storage": storage_mod.mask(storage_url),
        "trials": _trial_count(study, spec),
        "base scenario": " ".join(spec.base) or "(sim defaults)",
        "constraints": "; ".join(c.key for c in spec.constraints) or "none",
        "budget": ("none" if spec.budget is None else
                   f"max_usd_per_hour={spec.budget.max_usd_per_hour}, "
                   f"max_devices={spec.budget.max_devices}"),
        "versions": f"optuna {optuna.__version__}, hydra-core {version('hydra-core')}, "
                    f"python {sys.version.split()[0]}",
        "generated (UTC)": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S"),
    }


def _trial_count(study: optuna.Study, spec: StudySpec) -> str:
    from hermes_opt.preflight import counted
    trials = study.get_trials(deepcopy=False)
    kept = counted(trials)
    text = f"{len(kept)} of n_trials={spec.n_trials}"
    if len(trials) > len(kept):
        text += (f" (+{len(trials) - len(kept)} failed when their worker stopped sending "
                 f"heartbeats and were re-run)")
    return text


def load(storage_url: str, study_name: str) -> tuple[optuna.Study, StudySpec]:
    """The study and its definition, from storage alone."""
    storage = storage_mod.open_storage(storage_url, create=False)
    try:
        study = optuna.load_study(study_name=study_name, storage=storage)
    except KeyError:
        names = [s.study_name for s in optuna.get_all_study_summaries(storage)]
        from sim.errors import ConfigError
        shown = ", ".join(names[:10]) + (f" and {len(names) - 10} more" if len(names) > 10 else "")
        raise ConfigError(f"study={study_name!r}: not in storage {storage_mod.mask(storage_url)}; "
                          f"it holds: {shown or 'no studies'}") from None
    return study, from_dict(dict(study.user_attrs["spec"]))


def write(study: optuna.Study, spec: StudySpec, out_dir: Path, storage_url: str) -> dict[str, Path]:
    """Write every report file; returns their paths."""
    from hermes_opt import report_render
    out_dir.mkdir(parents=True, exist_ok=True)
    frame = trial_rows(study, spec)
    paths = {"csv": out_dir / "trials.csv", "md": out_dir / "summary.md",
             "html": out_dir / "report.html", "pareto_png": out_dir / "pareto.png",
             "history_png": out_dir / "history.png"}
    frame.to_csv(paths["csv"], index=False)
    top = top_configurations(frame, spec)
    quality = front_quality(frame, spec)
    prov = provenance(study, spec, frame, storage_url)
    blocks = report_render.summary_blocks(spec, frame, top, quality, prov)
    paths["md"].write_text(report_render.to_markdown(blocks))
    report_render.png_charts(spec, frame, paths["pareto_png"], paths["history_png"])
    paths["html"].write_text(report_render.to_html(spec, frame, blocks))
    return paths


def counts(frame: pd.DataFrame) -> dict[str, int]:
    return {k: int((frame.outcome == k).sum()) for k in STATE_ORDER} if len(frame) else {}

