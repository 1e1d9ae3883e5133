"""Calibration from MLPerf results tables, split by submitter (``hermes-sim calibrate --mlperf``).

The fit sees only the submissions of ``fit_submitters`` (default: NVIDIA's own) on one hardware
kind for one model family; every other submitter's rows on that hardware are the held-out set.
Partners run the same GPU with their own systems, hosts and tuning, so the held-out error measures
what a profile fitted on one system is worth on another, never a row seen in the fit.

What is fitted, and why those terms: an Offline row pins the replica's throughput with the batch
full (prefill and decode compute, weight and KV reads), a Server row's mean TPOT at its target
rate pins the decode step at the concurrency the submission ran at. The terms that move those two
apart are the GEMM compute efficiency (prefill and large decode batches), the HBM efficiency of
weight and KV reads (decode attention shares it) and a per-sequence cost per step; coordinate
descent over listed values (``GRID``) minimises the sum of squared log errors. The
layout (TP) of each submission is the one the uncalibrated roofline chose
(``hermes_opt.calibration.mlperf_sim.predict``), kept fixed during the fit.

The benchmarks' input-length distributions are assumed where MLCommons does not publish them
(``conf/tables/mlperf_benchmarks.yaml``, ``trust: assumed``); a profile fitted here absorbs that
assumption, which is why it is only selected for MLPerf-format rows and for models of its family.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np

from hermes_opt.calibration import mlperf_rows, mlperf_sim
from hermes_opt.calibration.observations import ape
from hermes_opt.compose.calibration_profile import Holdout, Profile
from sim.cost.roofline import RooflineParams
from sim.errors import ConfigError

# Values tried per term (coordinate descent, two sweeps): GEMM compute efficiency, HBM efficiency
# of weight and KV reads, and a per-sequence cost per step (sampling, logits, KV bookkeeping:
# what makes a decode step of ~1,000 sequences slower than its FLOPs and bytes).
GRID = {
    "compute_efficiency": (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9),
    "memory_efficiency": (0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0),
    "seq_overhead_s": (0.0, 10e-6, 20e-6, 40e-6, 60e-6, 90e-6, 130e-6),
}
FIT_METRICS = ("output_tokens_per_s", "tpot_ms.mean")  # Offline throughput; Server decode step
SOURCE = "MLPerf Inference"


@dataclass(frozen=True, slots=True)
class Obs:
    sub: mlperf_rows.Submission
    layout: mlperf_sim.Layout
    metric: str
    measured: float


def _family(model: str) -> str:
    from hermes_opt.calibration.predict import model_spec
    return "moe" if model_spec(model).is_moe else "dense"


def observations(path: str, hardware: str, family: str) -> list[Obs]:
    """Every simulable Offline throughput and Server/Interactive mean TPOT of ``hardware``."""
    subs, _other, _frame = mlperf_rows.read_table(path, "--mlperf")
    roof = mlperf_sim.Simulator(RooflineParams())
    out = []
    for sub in subs:
        if sub.reason or sub.hardware != hardware or _family(sub.model) != family:
            continue
        options, _why = mlperf_sim.layouts(sub)
        if not options:
            continue
        offline = {o.tp: roof.offline(o, sub.benchmark)["output_tokens_per_s"] for o in options}
        layout = max(options, key=lambda o: offline[o.tp])
        for metric in FIT_METRICS:
            m = sub.metrics.get(metric)
            if m is None or (metric == "tpot_ms.mean") == (sub.scenario == "Offline"):
                continue
            out.append(Obs(sub, layout, metric, m.value))
    return out


def predict(sim: mlperf_sim.Simulator, o: Obs) -> float:
    bench = o.sub.benchmark
    if o.metric == "output_tokens_per_s":
        return sim.offline(o.layout, bench)["output_tokens_per_s"]
    return sim.at_rate(o.layout, bench, o.sub.target_qps)[o.metric]


def _loss(params: RooflineParams, rows: list[Obs]) -> float:
    sim = mlperf_sim.Simulator(params)
    errs = [math.log(max(predict(sim, o), 1e-9) / o.measured) for o in rows]
    return float(np.sum(np.square(errs)))


def fit(rows: list[Obs], start: RooflineParams) -> tuple[RooflineParams, int]:
    """Coordinate descent over ``GRID``: each term in turn takes its best listed value, twice."""
    evals = 0
    best = dataclasses.replace(start, decode_attention_efficiency=0.0)
    best_loss = _loss(best, rows)
    for _sweep in range(2):
        for term, values in GRID.items():
            for value in values:
                candidate = dataclasses.replace(best, **{term: value})
                loss, evals = _loss(candidate, rows), evals + 1
                if loss < best_loss - 1e-12:
                    best, best_loss = candidate, loss
    return best, evals


def _errors(params: RooflineParams, rows: list[Obs]) -> dict:
    sim = mlperf_sim.Simulator(params)
    out = {}
    for metric in FIT_METRICS:
        errs = [float(ape(predict(sim, o), o.measured)) for o in rows if o.metric == metric]
        if errs:
            out[metric] = {"n": len(errs), "median": float(np.median(errs)),
                           "p90": float(np.percentile(errs, 90)), "mean": float(np.mean(errs))}
    return out


def run(req) -> Profile:
    """Fit one profile from ``req.mlperf`` (a calibrate.Request); raises ConfigError on no data."""
    rows = observations(req.mlperf, req.hardware, req.model_family)
    fitters = {s.lower() for s in req.fit_submitters}
    train = [o for o in rows if o.sub.submitter.lower() in fitters]
    test = [o for o in rows if o.sub.submitter.lower() not in fitters]
    if len(train) < 2:
        raise ConfigError(f"calibrate --mlperf: only {len(train)} fit row(s) for hardware="
                          f"{req.hardware!r} family={req.model_family!r} from submitters "
                          f"{sorted(req.fit_submitters)} in {req.mlperf}; need at least 2")
    params, evals = fit(train, req.start)
    fitted = set(GRID)
    provenance = {
        "data": [{"kind": "mlperf", "path": req.mlperf, "rows": len(rows)}],
        "split": f"by submitter: fit on {', '.join(sorted(req.fit_submitters))}; held out: every "
                 "other submitter on this hardware",
        "rows": {"fit": len(train), "held_out": len(test)},
        "fit_submissions": sorted({o.sub.key for o in train}),
        "held_out_submitters": sorted({o.sub.submitter for o in test}),
        "evaluations": evals,
        "fitted_params": sorted(fitted),
        "kept_params": sorted(set(RooflineParams.__dataclass_fields__) - fitted),
        "fit_error_pct": _errors(params, train),
        "heldout_error_pct": _errors(params, test),
        "uncalibrated_heldout_error_pct": _errors(RooflineParams(), test),
        "fitted_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "command": req.command,
        "note": "input lengths of some MLPerf datasets are assumed (conf/tables/mlperf_benchmarks.yaml); "
                "the fitted efficiencies absorb that assumption",
    }
    return Profile(name=req.name, hardware=req.hardware, engine=req.engine, precision=req.precision,
                   model_family=req.model_family, validation_source=SOURCE, params=params,
                   holdout=Holdout(every=0), provenance=provenance)
