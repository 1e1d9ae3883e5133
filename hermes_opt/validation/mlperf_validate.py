"""MLPerf results tables in the validation study: rows (predicted vs measured) and coverage.

Datasets ``mlperf-offline``, ``mlperf-server``, ``mlperf-interactive``; metrics
``output_tokens_per_s``, ``samples_per_s`` (Offline and at the target rate), ``slo_capacity_qps``
(Server/Interactive: simulated capacity under the constraints vs the submitted target QPS), and at
the target rate ``ttft_ms.mean/p99``, ``tpot_ms.mean/p99``, ``e2e_ms.mean``.

A row is split='fit' when its calibrated prediction uses an MLPerf profile fitted on that very
submission (``provenance.fit_submissions``: NVIDIA's own, ``hermes-sim calibrate --mlperf``), and
'held_out' otherwise: other submitters' rows, and rows predicted with profiles fitted on other
sources (TensorRT-LLM tables, Splitwise, Vidur) or on another GPU.
The calibrated prediction uses the profile chosen by ``calibrated_profile`` (one function, so the
selection policy can be swapped) with the layout the roofline chose.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hermes_opt.calibration import mlperf_engine, mlperf_rows, mlperf_sim
from hermes_opt.calibration.predict import model_spec
from hermes_opt.compose import catalog
from hermes_opt.compose.calibration_profile import Profile
from hermes_opt.compose.profile_select import select_profile
from hermes_opt.validation.ranking import Record
from sim.cost.roofline import RooflineParams

TABLE_METRICS = ("output_tokens_per_s", "samples_per_s", "ttft_ms.mean", "ttft_ms.p50",
                 "ttft_ms.p90", "ttft_ms.p99", "tpot_ms.mean", "tpot_ms.p50", "tpot_ms.p90",
                 "tpot_ms.p99", "e2e_ms.mean", "e2e_ms.p99")
UNITS = {"output_tokens_per_s": "tokens/s", "samples_per_s": "samples/s", "slo_capacity_qps": "queries/s"}


def calibrated_profile(profiles: list[Profile], *, hardware: str, precision: str,
                       family: str) -> tuple[Profile | None, str]:
    """The profile for a (hardware, precision, family) and a provenance string: the fallback
    order of ``select_profile`` (same hardware, nearest generation, roofline), preferring
    profiles fitted on MLPerf rows when there are any. One function, so the policy can change."""
    return select_profile(profiles, hardware=hardware, precision=precision, family=family,
                          prefer_source="MLPerf")


def _family(model: str) -> str:
    return "moe" if model_spec(model).num_experts > 1 else "dense"


def _precision(layout: mlperf_sim.Layout) -> str:
    p = layout.weights.value
    return p if layout.kv.value == p else f"{p}/kv-{layout.kv.value}"


def rows(paths: list[Path], profiles: list[Profile], make_row, *,
         keep=None) -> tuple[list[dict], list[dict]]:
    """(validation rows, coverage records) for every MLPerf table in ``paths``. ``keep`` filters
    submissions (the --fast subset); ``make_row`` is the runner's row constructor."""
    out, cov = [], []
    roof = mlperf_sim.Simulator(RooflineParams())
    calibrated: dict[str, mlperf_sim.Simulator] = {}
    engine_sims = mlperf_engine.EngineSimulators()
    for path in paths:
        subs, other, frame = mlperf_rows.read_table(path)
        cov += [_cov(path, frame, line, "not expressible", why) for line, why in other.items()]
        for sub in subs:
            if sub.reason:
                cov += [_cov(path, frame, ln, "not expressible", sub.reason) for ln in sub.lines]
                continue
            if keep is not None and not keep(sub):
                cov += [_cov(path, frame, ln, "skipped", "expressible, not run in the --fast subset")
                        for ln in sub.lines]
                continue
            pred = mlperf_sim.predict(sub, roof)
            if isinstance(pred, str):
                cov += [_cov(path, frame, ln, "not expressible", pred) for ln in sub.lines]
                continue
            precision = _precision(pred.layout)
            prof, provenance = calibrated_profile(profiles, hardware=sub.hardware,
                                                  precision=precision.split("/")[0],
                                                  family=_family(sub.model))
            if prof is not None and prof.validation_source.startswith("MLPerf"):
                sim = calibrated.setdefault(prof.name, mlperf_sim.Simulator(prof.params))
                cal = mlperf_sim.predict(sub, sim, fixed_tp=pred.layout.tp)
            else:  # the default model: the submission's serving engine (docs/engines.md)
                prof = None
                cal, found = engine_sims.predict(sub)
                provenance = (f"engine {mlperf_engine.serving_engine(sub).label}: "
                              f"{found.key or 'roofline'} ({found.match})")
            cal_fig = cal.figures if not isinstance(cal, str) else {}
            out += _rows_of(sub, pred, cal_fig, prof, provenance, precision, make_row)
            for ln in sub.lines:
                why = sub.line_reasons.get(ln)
                cov.append(_cov(path, frame, ln, "not expressible" if why else "reproduced", why or ""))
    return out, cov


def _rows_of(sub, pred, cal_fig, prof, provenance, precision, make_row) -> list[dict]:
    bench = sub.benchmark
    dataset = f"mlperf-{sub.scenario.lower()}"
    load = "offline" if sub.scenario == "Offline" else f"qps={sub.target_qps:g}"
    setup = f"{pred.layout.describe()}; {pred.choice}"
    if sub.constraints is not None and sub.scenario != "Offline":
        setup += (f"; constraints p99 TTFT<={sub.constraints.ttft_p99_ms:g} ms, p99 TPOT<="
                  f"{sub.constraints.tpot_p99_ms:g} ms ({sub.constraints.source})")
    measured = {m: (metric.value, f"{sub.file}:{metric.line}") for m, metric in sub.metrics.items()
                if m in TABLE_METRICS}
    if sub.scenario != "Offline":
        measured["slo_capacity_qps"] = (sub.target_qps, f"{sub.file}:{sub.key}")
    out = []
    for metric, (value, key) in measured.items():
        if metric not in pred.figures:
            continue
        unit = UNITS.get(metric, "ms")
        out.append(make_row(
            dataset=dataset, metric=metric, unit=unit, model=sub.model, hardware=sub.hardware,
            precision=precision, tp=pred.layout.tp, batch_size=pred.layout.replicas,
            isl=bench.isl.mean, osl=bench.osl.mean, load=load, measured=value,
            predicted_roofline=pred.figures[metric],
            predicted_calibrated=cal_fig.get(metric, np.nan),
            profile=prof.name if prof else "", split=_split(prof, sub), key=key,
            provenance=provenance, setup=setup, submission=sub.key, benchmark=bench.key))
    return out


def _split(prof: Profile | None, sub) -> str:
    if prof is None:  # the engine table's serving factors are fitted on MLPerf Offline rows
        return "fit" if sub.scenario == "Offline" else "held_out"
    fitted = prof.provenance.get("fit_submissions") or []
    return "fit" if sub.key in fitted else "held_out"


def _cov(path: Path, frame, line: int, status: str, reason: str) -> dict:
    source = str(frame["source"].iloc[line - 2]) if "source" in frame.columns else path.name
    return {"file": path.name, "source": source, "row": line, "status": status, "reason": reason}


def reason_counts(cov_rows) -> object:
    """Rows not reproduced per (file, status, reason), with counts."""
    f = cov_rows[cov_rows.status != "reproduced"]
    if f.empty:
        return f.assign(count=[])
    w = f["count"].fillna(1).astype(int) if "count" in f else 1
    return (f.assign(count=w).groupby(["file", "status", "reason"], as_index=False)["count"].sum()
            .sort_values(["file", "count"], ascending=[True, False]))


# --- ranking records (benchmarks/bench_ranking.py, benchmarks/fit_engine_efficiency.py) -----------
def headline(sub, pred) -> tuple[float, float]:
    """(predicted, measured) system figure a submission is ranked by: Offline output tokens/s,
    Server SLO capacity (the submitted target QPS is the measured one: submitters raise it until
    the constraints are just met). Predicted is NaN when the submission could not be simulated."""
    measured = (sub.metrics["output_tokens_per_s"].value if sub.scenario == "Offline"
                else sub.target_qps)
    if isinstance(pred, str):
        return float("nan"), measured
    key = "output_tokens_per_s" if sub.scenario == "Offline" else "slo_capacity_qps"
    return pred.figures[key], measured


def ranking_record(sub, predicted_per_gpu: float, measured_per_gpu: float) -> Record:
    """The submission as a ``ranking.Record``: figures per accelerator, system from the url."""
    vendor = str(catalog.entry("hardware", sub.hardware).get("vendor") or "")
    parts = sub.key.split("/")  # <submitter>/<system>/<benchmark>/<scenario> from the url
    return Record(group=(sub.benchmark_raw, sub.scenario),
                  system=parts[1] if len(parts) == 4 else sub.system, submitter=sub.submitter,
                  vendor=vendor, gpu=sub.hardware, num_gpus=sub.num_gpus,
                  measured=measured_per_gpu, predicted=predicted_per_gpu)
