"""Fit a calibration profile for one (hardware, engine, precision) from measurements.

Data kinds and what each fits (``fit.FREE_PARAMS``):

* step rows (Splitwise ``perf_model.csv`` or a user's ``steps`` CSV): every roofline term;
* Vidur operator rows: the GEMM efficiency curve, memory efficiency, per-layer overhead; Vidur
  all-reduce rows: collective latency and bandwidth curve;
* serving rows (measurements-shaped CSV): efficiencies and overheads, fitted by running the
  simulator on the training rows.

Rows are split (``splits.Holdout``) before fitting; the profile records the error on both parts.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass, field

import numpy as np

from hermes_opt.calibration import errors, fit, serving
from hermes_opt.calibration import observations as obs_mod
from hermes_opt.calibration.observations import StepObservation, ape
from hermes_opt.calibration.predict import predict
from hermes_opt.calibration.splits import split
from hermes_opt.compose.calibration_profile import Holdout, Profile
from sim.cost.roofline import RooflineParams
from sim.errors import ConfigError


@dataclass(frozen=True, slots=True, kw_only=True)
class Request:
    name: str
    hardware: str
    engine: str
    precision: str = "bf16"
    model_family: str = "dense"
    variant: str = ""  # splitwise: '' or 'pcap'
    # Step data: fit only these catalog models (empty = every model the catalog knows). The
    # shipped Splitwise recipes name llama2_70b so a model added to the catalog later (BLOOM-176B
    # is in the same file) never changes what they fit.
    models: tuple[str, ...] = ()
    splitwise: str = ""
    steps: str = ""
    vidur_compute: tuple[str, ...] = ()
    vidur_network: str = ""
    serving: str = ""
    serving_source: str = ""  # substring of the `source` column selecting one measurement set
    holdout: Holdout = field(default_factory=Holdout)
    start: RooflineParams = field(default_factory=RooflineParams)
    max_evals: int = 120
    fit_frontend_latency: bool = True  # serving data: fit the front end's latency (else 0)
    # Operator fits: final params = start + shrink * (fit - start) (fit.shrink_toward); 1 = the
    # plain fit. Chosen for size transfer (docs/validation.md, "Transfer across model sizes").
    shrink: float = 1.0
    mlperf: str = ""  # an MLPerf-format results table (hermes_opt.calibration.mlperf_fit)
    fit_submitters: tuple[str, ...] = ("NVIDIA",)  # --mlperf: whose submissions are fitted
    command: str = ""

    def validate(self) -> None:
        kinds = [bool(self.splitwise or self.steps), bool(self.vidur_compute or self.vidur_network),
                 bool(self.serving), bool(self.mlperf)]
        if sum(kinds) != 1:
            raise ConfigError("calibrate: give exactly one kind of data: --splitwise/--steps (step "
                              "times), --vidur-compute/--vidur-network (operators), --serving or "
                              "--mlperf")
        if not 0.0 <= self.shrink <= 1.0:
            raise ConfigError(f"--shrink={self.shrink}: must be a number in [0, 1] "
                              "(1 = the plain fit, 0 = the uncalibrated roofline)")
        if self.shrink != 1.0 and not self.vidur_compute:
            raise ConfigError("--shrink applies to operator fits (--vidur-compute) only")
        if self.precision not in ("bf16", "fp8"):
            raise ConfigError(f"--precision={self.precision!r}: allowed: bf16, fp8")
        from hermes_opt.compose import catalog
        if self.models and not (self.splitwise or self.steps):
            raise ConfigError("--models applies to step data (--splitwise, --steps) only")
        for model in self.models:
            if model not in catalog.options("model"):
                raise ConfigError(f"--models: {model!r} is not a catalog model; allowed: "
                                  f"{', '.join(catalog.options('model'))}")
        if self.hardware not in catalog.options("hardware"):
            raise ConfigError(f"--hardware={self.hardware!r}: unknown; allowed: "
                              f"{', '.join(catalog.options('hardware'))}")


def inconsistent_step_configs(rows: list[StepObservation]) -> dict[str, str]:
    """Configurations whose prefill is faster than a smaller batch of the same prompts (physically
    impossible: more work finishing sooner means a failed or truncated run). Both phases of such a
    configuration are excluded, with the reason recorded in the profile."""
    prefill = {(o.model, o.hardware, o.variant, o.tp, o.prompt_tokens, o.batch_size, o.config_key): o
               for o in rows if o.phase == "prefill"}
    bad = {}
    for (m, h, v, tp, p, b, key), o in prefill.items():
        for (m2, h2, v2, tp2, p2, b2, _key2), o2 in prefill.items():
            if (m2, h2, v2, tp2, p2) == (m, h, v, tp, p) and b2 < b and o.measured_s < 0.8 * o2.measured_s:
                bad[key] = (f"prefill of batch {b} ({o.measured_s * 1e3:.0f} ms) faster than batch {b2} "
                            f"({o2.measured_s * 1e3:.0f} ms) of the same prompts")
                break
    return bad


def _step_rows(req: Request) -> tuple[list, list[dict], list[dict]]:
    data, excluded, rows = [], [], []
    if req.splitwise:
        loaded = obs_mod.load_splitwise(req.splitwise)
        rows = [o for o in loaded if o.hardware == req.hardware and o.variant == req.variant]
        unknown = sorted({o.raw_model for o in rows if not o.model})
        rows = [o for o in rows if o.model]
        data.append({"kind": "splitwise", "path": req.splitwise, "variant": req.variant or "standard",
                     "models_not_in_catalog": unknown})
    if req.steps:
        rows += [o for o in obs_mod.load_steps(req.steps, req.hardware) if o.hardware == req.hardware]
        data.append({"kind": "steps", "path": req.steps})
    if req.models:
        left_out = sorted({o.model for o in rows if o.model not in req.models})
        rows = [o for o in rows if o.model in req.models]
        data.append({"kind": "model filter", "models": list(req.models), "left_out": left_out})
    bad = inconsistent_step_configs(rows)
    excluded = [{"config": k, "reason": r} for k, r in sorted(bad.items())]
    rows = [o for o in rows if o.config_key not in bad]
    return rows, data, excluded


def _errors_by(rows: list, predicted: np.ndarray, group) -> dict:
    measured = np.asarray([getattr(o, "measured_s", getattr(o, "measured", np.nan)) for o in rows])
    e = ape(predicted, measured) if rows else np.asarray([])
    out = {}
    for name in sorted({group(o) for o in rows}):
        out[name] = errors.summary([x for o, x in zip(rows, e) if group(o) == name])
    return out


def run(req: Request) -> Profile:
    req.validate()
    if req.mlperf:
        from hermes_opt.calibration import mlperf_fit
        return mlperf_fit.run(req)
    if req.serving:
        return _run_serving(req)
    if req.vidur_compute or req.vidur_network:
        return _run_vidur(req)
    rows, data, excluded = _step_rows(req)
    if len(rows) < 4:
        raise ConfigError(f"calibrate: only {len(rows)} step rows for hardware={req.hardware!r} "
                          f"variant={req.variant!r}; need at least 4")
    train, test = split(rows, req.holdout)
    result = fit.fit_rows(train, "step", start=req.start)
    phase = lambda o: o.phase  # noqa: E731
    return _profile(req, result.params, result.free, data, excluded, train, test, phase)


def _run_vidur(req: Request) -> Profile:
    ops, data = [], []
    for path in req.vidur_compute:
        loaded = [o for o in obs_mod.load_vidur_compute(path) if o.hardware == req.hardware]
        data.append({"kind": "vidur-compute", "path": path, "rows": len(loaded),
                     "model": loaded[0].raw_model if loaded else ""})
        ops += [o for o in loaded if o.model]
    coll = []
    if req.vidur_network:
        coll = [o for o in obs_mod.load_vidur_allreduce(req.vidur_network) if o.hardware == req.hardware]
        data.append({"kind": "vidur-network", "path": req.vidur_network, "rows": len(coll)})
    if not ops and not coll:
        raise ConfigError(f"calibrate: no Vidur rows for hardware={req.hardware!r} in the given files")
    params, free = req.start, ()
    train_ops, test_ops = split(ops, req.holdout)
    if train_ops:
        r = fit.fit_rows(train_ops, "operator", start=params)
        params, free = fit.shrink_toward(r.params, params, r.free, req.shrink), free + r.free
    # Collectives: every third message size is held out (sizes are one smooth sweep).
    train_c, test_c = split(coll, Holdout(every=req.holdout.every or 3))
    if train_c:
        r = fit.fit_rows(train_c, "collective", start=params)
        params, free = r.params, free + r.free
    kind = lambda o: ("all_reduce" if isinstance(o, obs_mod.CollectiveObservation)  # noqa: E731
                      else "layer_non_attention")
    return _profile(req, params, free, data, [], train_ops + train_c, test_ops + test_c, kind)


def _run_serving(req: Request) -> Profile:
    loaded, _ = obs_mod.load_serving(req.serving)
    # disaggregated rows validate the hand-off model; a roofline fit never sees them
    rows = [o for o in loaded if o.hardware == req.hardware and o.precision == req.precision
            and req.serving_source in o.source and not any(o.workers)]
    if not rows:
        raise ConfigError(f"calibrate: no expressible serving rows for hardware={req.hardware!r} "
                          f"precision={req.precision!r} source~{req.serving_source!r} in {req.serving}")
    train, test = split(rows, req.holdout)
    measured = np.asarray([o.measured for o in train])
    shifted = np.asarray([serving.adds_latency(o) for o in train])

    def soft_l1(r: np.ndarray) -> np.ndarray:
        return np.sqrt(1.0 + (r / 0.1) ** 2) - 1.0  # soft-L1 at a 10% scale

    def frontend_s(predicted: np.ndarray) -> float:
        if not req.fit_frontend_latency:
            return 0.0
        return serving.best_frontend_latency_s(train, predicted, soft_l1)

    def loss(params: RooflineParams) -> float:
        # The front-end latency is profiled out: each candidate gets the latency that suits it
        # best (exact and cheap, see serving.best_frontend_latency_s), so the simplex search stays
        # in the roofline's parameters and needs no extra dimension.
        predicted = np.asarray(serving.simulate_rows(train, params))
        predicted = predicted + np.where(shifted, frontend_s(predicted) * 1e3, 0.0)
        r = np.where(np.isfinite(predicted), np.log(np.maximum(predicted, 1e-12) / measured), 5.0)
        return float(np.mean(soft_l1(r)))

    free = fit.FREE_PARAMS["serving"]
    params, _, evals = fit.fit_black_box(loss, req.start, free, max_evals=req.max_evals)
    frontend = frontend_s(np.asarray(serving.simulate_rows(train, params)))
    data = [{"kind": "serving", "path": req.serving, "source": req.serving_source,
             "rows": len(rows), "simulator_runs_per_eval": len({serving.scenario_key(o) for o in train}),
             "evaluations": evals}]
    if req.fit_frontend_latency:
        free = free + ("frontend_latency_s",)
    metric = lambda o: o.metric  # noqa: E731
    return _profile(req, params, free, data, [], train, test, metric, serving_rows=True,
                    frontend_latency_s=frontend)


def _relative(data: list[dict]) -> list[dict]:
    from hermes_opt.compose import catalog
    root = str(catalog.DATA_DIR)
    return [{k: (v.replace(root, "hermes_opt/data") if isinstance(v, str) else v) for k, v in d.items()}
            for d in data]


def _profile(req: Request, params: RooflineParams, free: tuple[str, ...], data: list, excluded: list,
             train: list, test: list, group, serving_rows: bool = False,
             frontend_latency_s: float = 0.0) -> Profile:
    def errs(rows: list, p: RooflineParams, frontend: float) -> dict:
        if not rows:
            return {}
        pred = np.asarray(serving.simulate_rows(rows, p, frontend_latency_s=frontend)
                          if serving_rows else predict(rows, p))
        return _errors_by(rows, pred, group)

    fitted = sorted(set(free))
    kept = sorted(f for f in (*RooflineParams.__dataclass_fields__, "frontend_latency_s")
                  if f not in fitted)
    provenance = {
        "data": _relative(data),
        "excluded": excluded,
        "fitted_at": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "command": req.command,
        "fitted_params": fitted,
        "params_left_at_start_values": kept,
        "split": req.holdout.describe(),
        **({"shrink": f"{req.shrink:g}: operator terms moved {req.shrink:g} of the way from the "
                      "roofline defaults to the fit (size transfer; docs/validation.md)"}
           if req.shrink != 1.0 else {}),
        "rows": {"fit": len(train), "held_out": len(test)},
        "fit_error_pct": errs(train, params, frontend_latency_s),
        "heldout_error_pct": errs(test, params, frontend_latency_s),
        "uncalibrated_heldout_error_pct": errs(test, RooflineParams(), 0.0),
    }
    if serving_rows:
        provenance["frontend_latency"] = (
            "fitted: constant per-request latency before the scheduler (HTTP, tokenizer, Triton "
            "ensemble), chosen with the roofline terms to fit the TTFT/E2E rows of the fit set; "
            "applied by the simulator to every call into the engine (TTFT and E2E include it, ITL "
            "does not)" if req.fit_frontend_latency else "not fitted (--no-frontend-latency): 0")
    source = ("splitwise" + (f"-{req.variant}" if req.variant else "") if req.splitwise else
              "vidur" if (req.vidur_compute or req.vidur_network) else
              req.serving_source if req.serving else "steps")
    return Profile(name=req.name, hardware=req.hardware, engine=req.engine, precision=req.precision,
                   model_family=req.model_family, validation_source=source, params=params,
                   frontend_latency_s=frontend_latency_s, holdout=req.holdout, provenance=provenance)


def with_start(req: Request, start: RooflineParams) -> Request:
    return dataclasses.replace(req, start=start)
