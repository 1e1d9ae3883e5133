"""The study report a decision maker opens: ``runs/<study>/report/``.

* ``report.html`` — self-contained (plotly JS embedded, works offline): interactive Pareto front /
  cost-vs-objective chart with feasible and infeasible trials (hover shows the configuration),
  history, and the same summary as summary.md.
* ``pareto.png``, ``history.png`` — the same charts drawn with matplotlib (no browser needed);
  ``load.png`` (cost against load) when the study stores an assessment with a ``load_table``.
* ``trials.csv`` — every trial: parameters, objectives, constraint values, metrics, replay command.
* ``summary.md`` — top configurations with cost, per-stage and (several request types) per-type
  breakdowns, replay commands, hypervolume (multi-objective) and provenance.
* ``deploy/`` — when the caller passes ``deploy_writer`` (``hermes-opt`` does): launch scripts,
  Kubernetes manifests, benchmark plans and records of the recommended and top-k configurations
  (``hermes_opt.report.deploy``), linked from summary.md and report.html.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

import optuna
import pandas as pd

from hermes_opt.report import accounting, card, figures, load_chart, recommend, render, vendors
from hermes_opt.report.decision import recommended_first
from hermes_opt.report.decision import view as decision_view
from hermes_opt.report.importance import spreads
from hermes_opt.report.traffic import line as traffic_line
from hermes_opt.report.trials import csv_columns, front_quality, top_configurations, trial_rows
from hermes_opt.study import storage as storage_mod
from hermes_opt.study.coverage import main_trials
from hermes_opt.study.definition import StudySpec, from_dict
from hermes_opt.study.sampling import counted
from sim.errors import ConfigError


def git_commit(timeout_s: float = 5.0) -> str:
    """The short commit of the checkout this package runs from (``+ uncommitted changes`` when
    tracked files differ), or "not a git checkout" (installed package, no git, a timeout)."""
    root = Path(__file__).resolve().parents[2]
    if not (root / ".git").exists():
        return "not a git checkout"
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, timeout=timeout_s)
        if head.returncode != 0 or not head.stdout.strip():
            return "not a git checkout"
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain",
                                "--untracked-files=no"], capture_output=True, text=True,
                               timeout=timeout_s)
    except (OSError, subprocess.SubprocessError):
        return "not a git checkout"
    changed = dirty.returncode == 0 and bool(dirty.stdout.strip())
    return head.stdout.strip() + (" + uncommitted changes" if changed else "")


def cost_model_provenance(top: pd.DataFrame) -> dict[str, str]:
    """The best trial's cost model and calibration profile, per LLM pool."""
    if top.empty:
        return {"cost model (best trial)": "n/a (no feasible trial)"}
    note, models = recommend.cost_model_note(top.iloc[0])
    pools = "; ".join(f"{pool}: {kind}" for pool, (kind, _) in models.items()) or "unknown"
    calib = "; ".join(f"{pool}: {c}" for pool, (_, c) in models.items()) or "unknown"
    return {"cost model (best trial)": pools, "calibration profile (best trial)": calib,
            "cost model error band": note}


def provenance(study: optuna.Study, spec: StudySpec, frame: pd.DataFrame,
               storage_url: str) -> dict[str, str]:
    def version(package: str) -> str:
        try:
            return metadata.version(package)
        except metadata.PackageNotFoundError:
            return "unknown"
    results = [t.user_attrs.get("result") or {} for t in study.get_trials(deepcopy=False)]
    prices = sorted({(r.get("price_set"), r.get("price_date")) for r in results
                     if r.get("price_set")})
    user = user_catalog_provenance(results)
    replayed = next(((r.get("deployment") or {}).get("traffic") for r in results
                     if (r.get("deployment") or {}).get("traffic")), None)
    return {
        "study": spec.name,
        "hermes-opt version": version("hermes-opt"),
        "git commit": git_commit(),
        "config hash": study.user_attrs.get("config_hash", spec.config_hash),
        "sampler": f"{study.user_attrs.get('sampler', spec.resolved_sampler)} (re-seeded per batch "
                   f"of {spec.batch_size} from seed {spec.seed} and the trial count)",
        "workload seeds (replicates)": ", ".join(map(str, spec.replicate_seeds)),
        "price set (date)": "; ".join(f"{p} ({d})" for p, d in prices) or "n/a",
        **user,
        "storage": storage_mod.mask(storage_url),
        "trials": _trial_count(study, spec),
        "base scenario": " ".join(spec.base) or "(sim defaults)",
        # a trace replay's real load (its rate over the window, its lengths), not the YAML's
        **({"traffic (trace replayed)": traffic_line(replayed)} if replayed else {}),
        "constraints": "; ".join(c.key for c in spec.constraints) or "none",
        "budget": ("none" if spec.budget is None else
                   f"max_usd_per_hour={spec.budget.max_usd_per_hour}, "
                   f"max_devices={spec.budget.max_devices}"),
        "versions": f"optuna {optuna.__version__}, hydra-core {version('hydra-core')}, "
                    f"python {sys.version.split()[0]}",
        "generated (UTC)": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S"),
    }


def user_catalog_provenance(results: list[dict]) -> dict[str, str]:
    """Rows for the catalog entries the trials read from outside the package (the deployment
    records' ``catalog_sources``, a user price set's provider and date); none when all shipped."""
    sources: dict[str, str] = {}
    sets: dict[str, dict] = {}
    for result in results:
        record = result.get("deployment") or {}
        sources.update(record.get("catalog_sources") or {})
        if record.get("price_set"):
            sets[record["price_set"]["name"]] = record["price_set"]
    rows = {}
    if sources:
        rows["user catalog entries"] = "; ".join(f"{k}: {v}" for k, v in sorted(sources.items()))
    if sets:
        rows["user price set (provider, date)"] = "; ".join(
            f"{s['name']} ({s['provider']}, {s['date']})" for _, s in sorted(sets.items()))
    return rows


def _trial_count(study: optuna.Study, spec: StudySpec) -> str:
    trials = study.get_trials(deepcopy=False)
    kept = counted(trials)
    main = main_trials(kept)
    text = f"{len(main)} of n_trials={spec.n_trials}"
    if len(kept) > len(main):
        text += (f" + {len(kept) - len(main)} coverage trials (choices simulated fewer than "
                 f"{spec.coverage.min_per_choice} times)")
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
        shown = ", ".join(names[:10]) + (f" and {len(names) - 10} more" if len(names) > 10 else "")
        raise ConfigError(f"study={study_name!r}: not in storage {storage_mod.mask(storage_url)}; "
                          f"it holds: {shown or 'no studies'}") from None
    return study, from_dict(dict(study.user_attrs["spec"]))


DeployWriter = Callable[[pd.DataFrame, StudySpec, Path], "Path | None"]


def write(study: optuna.Study, spec: StudySpec, out_dir: Path, storage_url: str,
          deploy_writer: DeployWriter | None = None) -> dict[str, Path]:
    """Write every report file; returns their paths. ``deploy_writer`` (``report.deploy.writer.
    write_all``) writes the deployment artifacts of the ranked configurations; it composes each
    of them once, which the tables never do, so it is the caller's choice."""
    out_dir.mkdir(parents=True, exist_ok=True)
    frame = trial_rows(study, spec)
    paths = {"csv": out_dir / "trials.csv", "md": out_dir / "summary.md",
             "html": out_dir / "report.html", "pareto_png": out_dir / "pareto.png",
             "history_png": out_dir / "history.png"}
    frame[csv_columns(frame)].to_csv(paths["csv"], index=False)
    top = top_configurations(frame, spec)
    quality = front_quality(frame, spec)
    prov = {**provenance(study, spec, frame, storage_url), **cost_model_provenance(top)}
    recomposed = int(frame.attrs.get("recomposed", 0))
    if recomposed:  # a study stored before trials carried their deployment record
        prov["deployment records"] = (f"recomposed from the overrides of {recomposed} trials "
                                      f"stored without one (older hermes-opt)")
        print(f"hermes-opt report: {recomposed} trials were stored before trials carried their "
              f"deployment record; composed them again to learn vendor and layout (slower)",
              file=sys.stderr)
    kinds = accounting.tables(frame, spec)  # best per vendor / kind / engine / architecture
    vendor_table = kinds.pop("vendor").rows.rename(columns={"label": "vendor"})
    vendor_table.to_csv(out_dir / "best_per_vendor.csv", index=False)  # why_none rows too
    paths["vendors_csv"] = out_dir / "best_per_vendor.csv"
    found = spreads(spec, frame)
    # the first screen: the assessment (headroom, robustness, cost at other loads) is optional
    assessed = decision_view(spec, frame, study.user_attrs.get("assessment"))
    top = recommended_first(top, frame, assessed.get("choice"))
    decision = card.decision_card(spec, frame, top, assessed)
    deploy_index = deploy_writer(top, spec, out_dir) if deploy_writer is not None else None
    if deploy_index is not None:
        paths["deploy"] = deploy_index
    blocks = render.summary_blocks(spec, frame, top, quality, prov, vendor_table,
                                   vendors.mixed_vs_single(vendors.best_per_vendor(frame, spec),
                                                           spec),
                                   lead=recommend.recommendation(spec, frame, top,
                                                                 assessed.get("headroom")),
                                   importance=found, kinds=list(kinds.values()), card=decision,
                                   deploy=deploy_index.relative_to(out_dir).as_posix()
                                   if deploy_index is not None else None)
    paths["md"].write_text(render.to_markdown(blocks))
    figures.png_charts(spec, frame, paths["pareto_png"], paths["history_png"])
    loads = decision.load_table if decision is not None else None
    demand = vendors.offered_rate(top.iloc[0]) if not top.empty else None
    if loads:
        paths["load_png"] = out_dir / "load.png"
        load_chart.load_png(loads, paths["load_png"], demand)
    paths["html"].write_text(figures.to_html(spec, frame, blocks,
                                             {s.param: s.ratio for s in found[0]}, loads, demand))
    return paths
