"""``hermes-sim calibrate --from-benchmark``: serving-benchmark outputs + the deployment they ran on
-> a calibration profile (``calibration=<name>``) and the error on those measurements before and
after (docs/validation.md, "Calibrating from your own benchmarks").

Everything is checked before the first simulation: the files' formats and fields, that each
benchmark matches the deployment (model, TP, lengths within its context), that the deployment's
precision is one a profile can describe. Nothing is written here; the command writes the profile
once the fit is done.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np

from hermes_opt.calibration import bench_deployment as deployment
from hermes_opt.calibration import bench_fit, bench_formats
from hermes_opt.calibration.bench_formats import METRICS, BenchmarkRun
from hermes_opt.compose.calibration_profile import Holdout, Profile
from sim.errors import ConfigError


@dataclass(frozen=True, slots=True, kw_only=True)
class Request:
    name: str
    benchmarks: tuple[str, ...]
    deployment: str = ""  # record.json or hermes-sim summary
    overrides: str = ""  # hermes-sim overrides
    served_model_name: str = ""
    max_evals: int = 90
    fit_frontend: bool = True
    holdout_runs: tuple[int, ...] = ()  # 1-based positions of runs (in reading order) not fitted
    command: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class Outcome:
    profile: Profile
    runs: tuple[BenchmarkRun, ...]
    # per run: metric -> (measured, before, after)
    table: tuple[dict[str, tuple[float, float, float]], ...]
    knobs: bench_fit.Knobs
    held_out: tuple[bool, ...] = ()
    fit: dict = field(default_factory=dict)


def prepare(req: Request):
    """(candidate, overrides, runs) with every check done; ConfigError on bad input."""
    if not req.benchmarks:
        raise ConfigError("--from-benchmark: give at least one benchmark output file")
    if bool(req.deployment) == bool(req.overrides):
        raise ConfigError("--deployment / --deployment-overrides: give exactly one (the "
                          "deployment the benchmarks ran on: a record.json or hermes-sim summary, "
                          "or the hermes-sim overrides that describe it)")
    if req.deployment:
        record = deployment.record_from_file(req.deployment)
        overrides = deployment.overrides_from_record(record, req.deployment)
        where = f"--deployment={req.deployment!r}"
    else:
        record, overrides = None, deployment.split_overrides(req.overrides)
        where = f"--deployment-overrides={req.overrides!r}"
    if req.max_evals < 1:
        raise ConfigError(f"--max-evals={req.max_evals}: must be >= 1")
    runs = [run for path in req.benchmarks for run in bench_formats.read(path)]
    candidate = deployment.compose(record, overrides, req.deployment or req.overrides)
    pools = deployment.llm_pools(candidate, where)
    if pools[0].weight_dtype.value not in ("bf16", "fp8"):
        raise ConfigError(f"{where}: weight_dtype={pools[0].weight_dtype.value!r}: a calibration "
                          "profile describes bf16 or fp8 weights; allowed: bf16, fp8")
    hf_id = str(candidate.cfg.model.get("hf_id") or "")
    for run in runs:
        deployment.check_run(run, pools, hf_id, req.served_model_name)
    bad = [i for i in req.holdout_runs if not 1 <= i <= len(runs)]
    if bad or len(set(req.holdout_runs)) >= len(runs):
        raise ConfigError(f"--holdout-runs={','.join(map(str, req.holdout_runs))}: allowed: "
                          f"positions 1..{len(runs)} of the runs read (files in order, a JSON "
                          "Lines file's lines in order), leaving at least one run to fit")
    return candidate, overrides, runs


def run(req: Request) -> Outcome:
    candidate, overrides, runs = prepare(req)
    config = candidate.config
    before = bench_fit.predict(config, runs, bench_fit.Knobs())
    held_out = tuple(i + 1 in req.holdout_runs for i in range(len(runs)))
    train = [r for r, out in zip(runs, held_out) if not out]
    knobs, how = bench_fit.fit(config, train, max_evals=req.max_evals,
                               fit_frontend=req.fit_frontend)
    after = bench_fit.predict(config, runs, knobs)
    table = tuple({m: (r.measured[m], bench_fit.figure(b, m) if b else np.nan,
                       bench_fit.figure(a, m) if a else np.nan)
                   for m in METRICS if m in r.measured}
                  for r, b, a in zip(runs, before, after))
    pool = deployment.llm_pools(candidate, "")[0]
    profile = _profile(req, pool, overrides, runs, table, held_out, knobs, how)
    return Outcome(profile=profile, runs=tuple(runs), table=table, knobs=knobs,
                   held_out=held_out, fit=how)


def ape_pct(predicted: float, measured: float) -> float:
    return abs(predicted / measured - 1.0) * 100.0 if measured > 0 and predicted == predicted \
        else float("nan")


def error_summary(table, column: int, rows: tuple[bool, ...] | None = None) -> dict[str, dict]:
    """Median and max absolute % error per metric over the runs (column 1 before, 2 after),
    only the runs whose ``rows`` flag is true when given."""
    out: dict[str, list[float]] = {}
    for i, row in enumerate(table):
        if rows is not None and not rows[i]:
            continue
        for metric, values in row.items():
            out.setdefault(metric, []).append(ape_pct(values[column], values[0]))
    return {m: {"n": len(v), "median": round(float(np.nanmedian(v)), 2),
                "max": round(float(np.nanmax(v)), 2)} for m, v in out.items()
            if not all(x != x for x in v)}


def _profile(req: Request, pool, overrides: list[str], runs: list[BenchmarkRun], table,
             held_out: tuple[bool, ...], knobs: bench_fit.Knobs, how: dict) -> Profile:
    params = bench_fit.scaled_params(pool.cost_model.roofline, knobs)
    family = "moe" if pool.model is not None and pool.model.num_experts > 1 else "dense"
    fitted = [k for k in bench_fit.KNOBS if k != "kv_capacity_factor"]
    if req.fit_frontend:
        fitted.append("frontend_latency_s")
    if not how["kv_capacity_factor"].startswith(("not", "within")):
        fitted.append("kv_capacity_factor")
    fitted_rows = tuple(not out for out in held_out)
    provenance = {
        "data": [{"kind": "benchmark", "path": r.where, "client": r.client, "run": r.describe(),
                  **({"notes": list(r.notes)} if r.notes else {})} for r in runs],
        "deployment": " ".join(overrides),
        "engine_efficiency_start": pool.cost_model.calibration,
        "fitted_at": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "command": req.command,
        "fitted_knobs": knobs.as_dict(),
        "fitted_params": fitted,
        "knob_meaning": "prefill_scale x (compute_efficiency, attention_efficiency); decode_scale "
                        "x (memory_efficiency, decode_attention_efficiency), each capped at 1; "
                        "kv_capacity_factor x the engine's KV blocks; frontend_latency_s added to "
                        "the deployment's own",
        "kv_capacity_factor": how["kv_capacity_factor"],
        "frontend_latency": how["frontend_latency"],
        "evaluations": how["evaluations"],
        "split": (f"runs {','.join(map(str, sorted(set(req.holdout_runs))))} held out "
                  "(--holdout-runs)" if req.holdout_runs else
                  "fit on every benchmark run given (no held-out runs)"),
        "rows": {"fit": sum(len(row) for row, out in zip(table, held_out) if not out),
                 "held_out": sum(len(row) for row, out in zip(table, held_out) if out)},
        "fit_error_pct": error_summary(table, 2, fitted_rows),
        "uncalibrated_fit_error_pct": error_summary(table, 1, fitted_rows),
        "heldout_error_pct": error_summary(table, 2, held_out),
        "uncalibrated_heldout_error_pct": error_summary(table, 1, held_out),
    }
    return Profile(name=req.name, hardware=pool.hardware.name, engine=pool.engine or "unspecified",
                   precision=pool.weight_dtype.value, model_family=family,
                   validation_source="benchmark", params=params,
                   frontend_latency_s=pool.cost_model.frontend_latency_s + knobs.frontend_latency_s,
                   kv_capacity_factor=knobs.kv_capacity_factor, holdout=Holdout(every=0),
                   provenance=provenance)
