"""Coverage: which measurements in scope the study reproduces, and why the others are not.

Scope is every row of ``reference/measurements.csv`` plus every configuration of the hw-traces
files. A row is 'reproduced' (predicted by the study), 'reproduced via file' (a summary row of a
hw-traces file whose configurations are reproduced from the file itself) or 'not expressible'
with the reason.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from hermes_opt.calibration import observations as obs_mod
from hermes_opt.calibration.serving_metrics import parse_metric

SUMMARY_SOURCES = ("Splitwise (ISCA24)", "Vidur (MLSys24)")
OUT_OF_MODEL_METRICS = ("KV_transfer", "transfer_bandwidth", "change_vs_HBM", "query_time",
                        "copy bandwidth", "effective_memory_bandwidth")


def _reason(r: pd.Series, reproduced_rows: set[int], row_number: int,
            skipped_rows: set[int], reader: dict[int, str]) -> tuple[str, str]:
    if row_number in reproduced_rows:
        return "reproduced", ""
    if row_number in skipped_rows:
        return "skipped", "expressible, not run in the --fast subset"
    metric = str(r.metric)
    model = obs_mod.catalog_name("model", r.model)
    gpu = obs_mod.catalog_name("hardware", r.gpu)
    if str(r.source).startswith(SUMMARY_SOURCES):
        if metric.startswith("all_reduce") and gpu:  # network summary rows name no model
            return "reproduced via file", "summary of a hw-traces file reproduced row by row"
        if model and gpu:
            return "reproduced via file", "summary of a hw-traces file reproduced row by row"
        return "not expressible", "model not in catalog" if not model else "hardware not in catalog"
    if any(m in metric for m in OUT_OF_MODEL_METRICS):
        return ("not expressible",
                "metric outside the step-time simulator (KV transfer/offload, vector search)")
    if row_number in reader:  # the serving reader's own reason for not reading the row
        return "not expressible", reader[row_number]
    if not gpu:
        return "not expressible", f"hardware not in catalog ({str(r.gpu)[:40]})"
    if not model:
        return "not expressible", f"model not in catalog ({str(r.model)[:40]})"
    try:
        int(float(r.isl)), int(float(r.osl))
    except (TypeError, ValueError):
        return "not expressible", f"length distribution not given (isl/osl = {r.isl}/{r.osl})"
    if obs_mod.parse_load(r.concurrency_or_qps_or_batch) is None:
        return "not expressible", f"arrival mode not stated ({str(r.concurrency_or_qps_or_batch)[:30]})"
    if parse_metric(metric, r.get("unit", "")) is not None:  # read, but its run was not set up
        return "not expressible", "read, but could not be set up (e.g. the model does not fit at this TP)"
    return "not expressible", f"metric not mapped ({metric[:40]})"


def measurements_coverage(path: Path, reproduced_rows: set[int],
                          skipped_rows: set[int] = frozenset()) -> pd.DataFrame:
    frame = pd.read_csv(path)
    reader: dict[int, str] = {}
    if all(c in frame.columns for c in obs_mod.SERVING_COLUMNS):
        obs_mod.load_serving(path, strict=False, reasons=reader)
    records = []
    for i, r in frame.iterrows():
        status, reason = _reason(r, reproduced_rows, int(i) + 2, set(skipped_rows), reader)
        records.append({"file": path.name, "source": r.source, "row": int(i) + 2, "status": status,
                        "reason": reason})
    return pd.DataFrame.from_records(records)


def traces_coverage(splitwise: Path, vidur_dir: Path, reproduced_keys: set[str]) -> pd.DataFrame:
    records = []
    for o in obs_mod.load_splitwise(splitwise):
        ok = o.config_key in reproduced_keys
        records.append({"file": splitwise.name, "source": "splitwise", "row": o.config_key + "/" + o.phase,
                        "status": "reproduced" if ok else "not expressible",
                        "reason": "" if ok else f"model not in catalog ({o.raw_model})"})
    for path in sorted(vidur_dir.glob("compute__*__mlp.csv")):
        n = len(obs_mod.load_vidur_compute(path))
        records.append({"file": path.name, "source": "vidur-compute", "row": f"{n} rows",
                        "status": "reproduced", "reason": "", "count": n})
    for path in sorted(vidur_dir.glob("network__*__all_reduce.csv")):
        n = len(obs_mod.load_vidur_allreduce(path))
        records.append({"file": path.name, "source": "vidur-allreduce", "row": f"{n} sizes",
                        "status": "reproduced", "reason": "", "count": n})
    for path in sorted(vidur_dir.glob("network__*__send_recv.csv")):
        n = len(pd.read_csv(path))
        records.append({"file": path.name, "source": "vidur-send_recv", "row": f"{n} rows",
                        "status": "not expressible",
                        "reason": "pipeline hand-off (send/recv) not validated yet", "count": n})
    frame = pd.DataFrame.from_records(records)
    if "count" not in frame:
        frame["count"] = 1
    frame["count"] = frame["count"].fillna(1).astype(int)
    return frame


NOT_MLPERF = "not an MLPerf scenario row"


def merge_table_coverage(mlperf: pd.DataFrame, serving: list[pd.DataFrame]) -> pd.DataFrame:
    """Coverage of the MLPerf/extra tables: a row no MLPerf scenario row takes its status from
    the serving reader's coverage of the same file (``--measurements`` tables hold both)."""
    if not serving:
        return mlperf
    other = pd.concat(serving, ignore_index=True).set_index(["file", "row"])
    records = []
    for r in mlperf.itertuples(index=False):
        if r.reason.startswith(NOT_MLPERF) and (r.file, r.row) in other.index:
            o = other.loc[(r.file, r.row)]
            records.append({"file": r.file, "source": r.source, "row": r.row, "status": o.status,
                            "reason": o.reason})
        else:
            records.append(r._asdict())
    return pd.DataFrame.from_records(records, columns=list(mlperf.columns))


# Out of scope (docs/validation.md, "Coverage"): a row no simulator of LLM serving on accelerators
# could reproduce, whatever its catalog: a metric the simulator does not model (KV transfer or
# offload bandwidth, vector search) or a CPU-only system. These prefixes are the reasons the
# readers give such rows (coverage._reason, observations._serving_row, mlperf_rows._gpus_reason);
# every other row not run (a model or GPU missing from the catalog, a length distribution not
# given, ...) is in scope and counts against coverage.
OUT_OF_SCOPE_REASONS = ("metric outside the step-time simulator", "CPU-only system")
TOTAL_ALL_TABLES = "ALL measurement tables"


def out_of_scope(status: str, reason: str) -> bool:
    return not str(status).startswith("reproduced") and str(reason).startswith(OUT_OF_SCOPE_REASONS)


def summarize(frame: pd.DataFrame, tables: set[str] = frozenset()) -> pd.DataFrame:
    """Per source (weights: the `count` column when present): ``rows`` (every row), ``out_of_scope``,
    ``in_scope`` (rows - out_of_scope), ``reproduced``, ``coverage_pct`` (reproduced / in_scope)
    and ``coverage_all_pct`` (reproduced / rows); totals per measurements table
    (reference/measurements.csv and ``tables``) and over all of them."""
    f = frame.copy()
    f["count"] = f["count"].fillna(1).astype(int) if "count" in f else 1
    f["reproduced"] = f["count"] * f["status"].str.startswith("reproduced")
    f["out_of_scope"] = f["count"] * [out_of_scope(s, r) for s, r in zip(f.status, f.reason)]
    agg = dict(rows=("count", "sum"), out_of_scope=("out_of_scope", "sum"), reproduced=("reproduced", "sum"))
    g = f.groupby("source", as_index=False).agg(**agg)
    reasons = (f[~f.status.str.startswith("reproduced")].groupby("source")["reason"]
               .agg(lambda s: "; ".join(sorted(set(s)))[:200]))
    g["notes"] = g["source"].map(reasons).fillna("")
    totals = f.groupby("file", as_index=False).agg(**agg)
    totals = totals[totals.file.str.startswith("measurements") | totals.file.isin(set(tables))]
    totals["source"] = "ALL rows of " + totals["file"]
    whole = totals[["rows", "out_of_scope", "reproduced"]].sum().to_frame().T
    whole["source"] = TOTAL_ALL_TABLES
    g = pd.concat([g, totals.drop(columns="file"), whole if len(totals) > 1 else None], ignore_index=True)
    g["notes"] = g["notes"].fillna("")
    g["in_scope"] = g["rows"] - g["out_of_scope"]
    g["coverage_pct"] = (100.0 * g["reproduced"] / g["in_scope"].where(g["in_scope"] > 0)).round(1)
    g["coverage_all_pct"] = (100.0 * g["reproduced"] / g["rows"]).round(1)
    cols = ["source", "rows", "out_of_scope", "in_scope", "reproduced", "coverage_pct",
            "coverage_all_pct", "notes"]
    return g[cols].astype({c: int for c in ("rows", "out_of_scope", "in_scope", "reproduced")})
