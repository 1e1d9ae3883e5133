"""Validation report: error tables (mean and tail separately), targets, coverage, plots, Markdown."""

from __future__ import annotations

import fnmatch
from pathlib import Path

import numpy as np
import pandas as pd

from hermes_opt.calibration import errors

THROUGHPUT = ("output_tokens_per_s", "total_tokens_per_s", "requests_per_s")
# (dataset glob, metric) -> (median target %, p90 target % or None); studies/validation.yaml.
Targets = dict[tuple[str, str], tuple[float, float | None]]


def error_table(rows: pd.DataFrame, by: tuple[str, ...] = ("dataset", "metric")) -> pd.DataFrame:
    """Per group (default dataset x metric): calibrated error on held-out and fit rows, roofline
    error on the same held-out rows and on every row. Rows marked 'excluded' (inconsistent
    measurements) are left out."""
    records = []
    rows = rows[rows.split != "excluded"]
    for keys, g in rows.groupby(list(by), sort=True):
        held, fitted = g[g.split == "held_out"], g[g.split == "fit"]
        rec = dict(zip(by, keys))
        for prefix, values in (("cal_heldout", held.ape_calibrated), ("cal_fit", fitted.ape_calibrated),
                               ("roof_heldout", held.ape_roofline), ("roof_all", g.ape_roofline)):
            stats = errors.summary(values.to_numpy())
            rec[f"{prefix}_n"] = stats["n"]
            for k in ("mean", "median", "p90", "max"):
                rec[f"{prefix}_{k}"] = stats.get(k, np.nan)
        records.append(rec)
    return pd.DataFrame.from_records(records)


def target_table(table: pd.DataFrame, targets: Targets) -> pd.DataFrame:
    records = []
    for (dglob, metric), (med, p90) in targets.items():
        sel = table[[fnmatch.fnmatch(d, dglob) and m == metric
                     for d, m in zip(table.dataset, table.metric)]]
        for r in sel.itertuples(index=False):
            ok_med = r.cal_heldout_n > 0 and r.cal_heldout_median <= med
            ok_p90 = p90 is None or (r.cal_heldout_n > 0 and r.cal_heldout_p90 <= p90)
            records.append({
                "dataset": r.dataset, "metric": r.metric, "n_held_out": r.cal_heldout_n,
                "target": f"median <= {med:g}%" + (f", p90 <= {p90:g}%" if p90 else ""),
                "calibrated_median": r.cal_heldout_median, "calibrated_p90": r.cal_heldout_p90,
                "roofline_median": r.roof_heldout_median, "roofline_p90": r.roof_heldout_p90,
                "status": "met" if ok_med and ok_p90 else "MISSED"})
    return pd.DataFrame.from_records(records)


# --- plots --------------------------------------------------------------------------------
def plots(rows: pd.DataFrame, out: Path) -> list[str]:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    rows = rows[rows.split != "excluded"]
    for dataset, g in rows.groupby("dataset"):
        metrics = sorted(g.metric.unique())
        fig, axes = plt.subplots(1, len(metrics), figsize=(4.2 * len(metrics), 4), squeeze=False)
        for ax, metric in zip(axes[0], metrics):
            m = g[g.metric == metric]
            ax.loglog(m.measured, m.predicted_roofline, "x", color="0.6", ms=4,
                      label="roofline (uncalibrated)")
            held, fitted = m[m.split == "held_out"], m[m.split == "fit"]
            ax.loglog(fitted.measured, fitted.predicted_calibrated, "o", mfc="none", ms=4,
                      color="tab:blue", label="calibrated, fit rows")
            ax.loglog(held.measured, held.predicted_calibrated, "o", ms=4, color="tab:red",
                      label="calibrated, held-out rows")
            lo = np.nanmin([m.measured.min(), m.predicted_roofline.min()])
            hi = np.nanmax([m.measured.max(), m.predicted_roofline.max()])
            ax.plot([lo, hi], [lo, hi], "k-", lw=0.8)
            ax.set_title(f"{dataset}\n{metric}", fontsize=9)
            ax.set_xlabel(f"measured ({m.unit.iloc[0]})")
            ax.set_ylabel("predicted")
        axes[0][0].legend(fontsize=7)
        fig.tight_layout()
        name = f"pred_vs_measured_{dataset}.png"
        fig.savefig(out / name, dpi=110)
        plt.close(fig)
        written.append(name)
    written += _error_vs(rows, out, plt)
    return written


def _error_vs(rows: pd.DataFrame, out: Path, plt) -> list[str]:
    panels = [
        ("splitwise*", "batch_size", "batch size (prompt 512)", lambda g: g[g.prompt_tokens == 512]),
        ("splitwise*", "prompt_tokens", "prompt tokens (batch 1)", lambda g: g[g.batch_size == 1]),
        ("splitwise*", "context_tokens", "decode context per sequence",
         lambda g: g[g.metric == "decode_ms"]),
        ("vidur-operators", "num_tokens", "tokens per step", lambda g: g),
        ("trtllm-v0.14-online", "load", "offered load", lambda g: g),
        ("trtllm-v0.17-max-load", "isl_osl", "ISL/OSL", lambda g: g),
    ]
    fig, axes = plt.subplots(2, 3, figsize=(14, 8))
    for ax, (dglob, col, label, select) in zip(axes.flat, panels):
        g = rows[[fnmatch.fnmatch(d, dglob) for d in rows.dataset]].copy()
        if g.empty:
            ax.set_visible(False)
            continue
        g = select(g).copy()
        if col == "isl_osl":
            g["isl_osl"] = g.isl.astype(int).astype(str) + "/" + g.osl.astype(int).astype(str)
        for metric, m in g.groupby("metric"):
            m = m.sort_values(col) if col not in ("load", "isl_osl") else m
            xs = m[col].astype(str) if col in ("load", "isl_osl") else m[col]
            ax.plot(xs, m.ape_calibrated, "o", ms=3, label=f"{metric} calibrated")
            ax.plot(xs, m.ape_roofline, "x", ms=3, alpha=0.5, label=f"{metric} roofline")
        if col not in ("load", "isl_osl"):
            ax.set_xscale("log")
        else:
            ax.tick_params(axis="x", labelrotation=60, labelsize=6)
        ax.set_yscale("symlog", linthresh=10)
        ax.set_xlabel(label)
        ax.set_ylabel("abs % error")
        ax.set_title(dglob.rstrip("*"), fontsize=9)
        ax.legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(out / "error_vs_batch_context.png", dpi=110)
    plt.close(fig)
    return ["error_vs_batch_context.png"]


# --- Markdown ------------------------------------------------------------------------------
def _md(frame: pd.DataFrame, floatfmt: str = ".2f") -> str:
    if frame.empty:
        return "(none)\n"
    cols = list(frame.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in frame.itertuples(index=False):
        cells = [format(v, floatfmt) if isinstance(v, float) and np.isfinite(v) else
                 ("" if isinstance(v, float) else str(v)) for v in r]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def markdown(*, table: pd.DataFrame, by_hardware: pd.DataFrame, by_model: pd.DataFrame,
             targets: pd.DataFrame, coverage: pd.DataFrame, tp_split: pd.DataFrame,
             profiles: list, sources: str, command: str, plots_written: list[str], fast: bool,
             reasons: pd.DataFrame | None = None) -> str:
    short = table[["dataset", "metric", "cal_heldout_n", "cal_heldout_median", "cal_heldout_p90",
                   "cal_heldout_mean", "cal_fit_n", "cal_fit_median", "cal_fit_p90",
                   "roof_heldout_median", "roof_heldout_p90", "roof_all_n", "roof_all_median",
                   "roof_all_p90", "roof_all_mean"]]
    prof = pd.DataFrame.from_records([{
        "profile": p.name, "hardware": p.hardware, "engine": p.engine, "precision": p.precision,
        "validated on": p.validation_source, "split": p.provenance.get("split", ""),
        "fitted_at": p.provenance.get("fitted_at", "")} for p in profiles])
    parts = [
        "# hermes-opt validation report\n",
        f"Command: `{command}`  \nData: {sources}"
        + ("  \n**Fast subset** (CI): not every row." if fast else "") + "\n",
        "Absolute percentage error (%) of predicted vs measured. `cal_heldout_*`: calibrated model on "
        "rows its profile was *not* fitted on; `cal_fit_*`: on the rows it was fitted on; "
        "`roof_*`: the uncalibrated roofline (defaults in conf/cost_model/roofline.yaml), on the same "
        "held-out rows and on every row. Mean and tail (p90) are reported separately.\n",
        "## Targets (issue 5), calibrated error on held-out rows\n", _md(targets),
        "## Error per source and metric\n", _md(short),
        "## Error per source, hardware and metric (calibrated held-out vs roofline)\n",
        _md(by_hardware[["dataset", "hardware", "metric", "cal_heldout_n", "cal_heldout_median",
                         "cal_heldout_p90", "cal_heldout_mean", "roof_heldout_median",
                         "roof_heldout_p90", "roof_all_n", "roof_all_median", "roof_all_p90"]]),
        "## Error per source, model and metric (e.g. TensorRT-LLM: Mistral 7B is never fitted on)\n",
        _md(by_model[by_model.dataset.str.startswith(("trtllm", "vidur-op", "mlperf"))][
            ["dataset", "model", "metric", "cal_heldout_n", "cal_heldout_median", "cal_heldout_p90",
             "cal_fit_n", "cal_fit_median", "roof_all_n", "roof_all_median", "roof_all_p90"]]),
        "## Alternative split: Splitwise fit on TP 2 and 8, tested on TP 4\n", _md(tp_split),
        "## Coverage (rows reproduced / rows in scope)\n", _md(coverage, ".1f"),
        "## Rows of the MLPerf / --measurements tables not reproduced, by reason\n",
        _md(reasons if reasons is not None else pd.DataFrame()),
        "## Profiles\n", _md(prof),
        "## Plots\n" + "".join(f"- [{p}]({p})\n" for p in plots_written),
        "\nPer-row predictions: `rows.csv`; error table: `errors.csv`; coverage per row: `coverage_rows.csv`.\n",
    ]
    return "\n".join(parts)
