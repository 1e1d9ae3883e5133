"""The validation study: every measurement the simulator can express, predicted twice.

For each row: the uncalibrated roofline's prediction and, where a calibration profile exists for
the row's (engine/source, hardware, precision), the calibrated prediction with the row's role in
that profile's fit ('fit' or 'held_out'). Step- and operator-level rows are predicted by the cost
model; serving-level rows by running ``sim.simulate`` set up like the published run.

Sources (``Sources``): ``<shared>/hw-traces`` and ``<shared>/reference/measurements.csv`` when
present, else the copies shipped in ``hermes_opt/data`` (Splitwise, Vidur, TensorRT-LLM rows).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from hermes_opt.calibration import fit, serving
from hermes_opt.calibration import observations as obs_mod
from hermes_opt.calibration.calibrate import inconsistent_step_configs
from hermes_opt.calibration.observations import ape
from hermes_opt.calibration.predict import predict
from hermes_opt.calibration.splits import split
from hermes_opt.compose import catalog
from hermes_opt.compose.calibration_profile import Holdout, Profile
from sim.cost.roofline import RooflineParams

COLUMNS = ("dataset", "metric", "unit", "model", "hardware", "precision", "tp", "batch_size",
           "prompt_tokens", "context_tokens", "num_tokens", "isl", "osl", "load", "measured",
           "predicted_roofline", "predicted_calibrated", "profile", "split", "ape_roofline",
           "ape_calibrated", "key", "provenance", "setup", "submission", "benchmark")


@dataclass(frozen=True, slots=True)
class Sources:
    splitwise: Path
    vidur_dir: Path
    measurements: Path
    shared: bool  # True: the full ../shared data; False: the subsets shipped in hermes_opt/data
    mlperf: tuple[Path, ...] = ()  # MLPerf results tables (reference/mlperf*.csv)

    @staticmethod
    def resolve(shared_dir: str | Path | None) -> Sources:
        root = Path(shared_dir) if shared_dir else None
        if root and (root / "hw-traces").is_dir() and (root / "reference" / "measurements.csv").is_file():
            return Sources(root / "hw-traces/splitwise/perf_model.csv", root / "hw-traces/vidur",
                           root / "reference/measurements.csv", True,
                           tuple(sorted((root / "reference").glob("mlperf*.csv"))))
        data = catalog.DATA_DIR
        return Sources(data / "splitwise/perf_model.csv", data / "vidur",
                       data / "reference/trtllm_measurements.csv", False,
                       tuple(sorted((data / "reference").glob("mlperf*.csv"))))


def profile_for(profiles: list[Profile], source: str, hardware: str,
                precision: str = "bf16") -> Profile | None:
    for p in profiles:
        if p.validation_source == source and p.hardware == hardware and p.precision == precision:
            return p
    return None


def _row(**kw) -> dict:
    row = {c: kw.get(c, np.nan) for c in COLUMNS}
    row["ape_roofline"] = float(ape(row["predicted_roofline"], row["measured"]))
    pc = row["predicted_calibrated"]
    row["ape_calibrated"] = float(ape(pc, row["measured"])) if np.isfinite(pc) else np.nan
    return row


# --- Splitwise (per-phase step times) -------------------------------------------------------
def splitwise_rows(path: Path, profiles: list[Profile]) -> list[dict]:
    rows = obs_mod.load_splitwise(path)
    e2e = _splitwise_e2e(path)
    expressible = [o for o in rows if o.model and o.hardware]
    bad = inconsistent_step_configs(expressible)
    base = RooflineParams()
    out = []
    groups: dict[tuple, list] = {}
    for o in expressible:
        groups.setdefault((o.hardware, o.variant), []).append(o)
    for (hw, variant), group in groups.items():
        source = "splitwise" + (f"-{variant}" if variant else "")
        prof = profile_for(profiles, source, hw)
        kept = [o for o in group if o.config_key not in bad]
        held = held_out_ids(kept, prof.holdout) if prof else set()
        roof = predict(group, base)
        cal = predict(group, prof.params) if prof else np.full(len(group), np.nan)
        by_key: dict[str, dict[str, tuple]] = {}
        measured = {(o.config_key, o.phase): o.measured_s for o in group}
        fitted = fitted_models(prof) if prof else None
        for o, r, c in zip(group, roof, cal):
            other = fitted is not None and o.model not in fitted
            role = ("excluded" if o.config_key in bad else
                    "" if prof is None else
                    "held_out" if other or id(o) in held else "fit")
            by_key.setdefault(o.config_key, {})[o.phase] = (r, c, role)
            out.append(_row(dataset=source + (f"-{o.model}" if other else ""), metric=f"{o.phase}_ms",
                            unit="ms", model=o.model,
                            hardware=hw, precision="bf16", tp=o.tp, batch_size=o.batch_size,
                            prompt_tokens=o.prompt_tokens, context_tokens=o.context_tokens,
                            measured=o.measured_s * 1e3, predicted_roofline=r * 1e3,
                            predicted_calibrated=c * 1e3, profile=prof.name if prof else "",
                            split=role, key=o.config_key))
        # End-to-end request time = prefill + (tokens - 1) decode steps (what the file's e2e_time
        # measures); held out when either phase was.
        for key, phases in by_key.items():
            tokens = int(key.rsplit("/t", 1)[1])
            (rp, cp, role_p), (rd, cd, role_d) = phases["prefill"], phases["decode"]
            role = ("excluded" if "excluded" in (role_p, role_d) else
                    "held_out" if "held_out" in (role_p, role_d) else role_p)
            # A few files rows' e2e_time disagrees with their own prefill + decode times (up to
            # 17x): such a row cannot test the simulator, so it is excluded (kept in rows.csv).
            implied = measured[(key, "prefill")] + (tokens - 1) * measured[(key, "decode")]
            if abs(e2e[key] / 1e3 / implied - 1.0) > 0.25:
                role = "excluded"
            o = next(x for x in group if x.config_key == key)
            other = fitted is not None and o.model not in fitted
            out.append(_row(dataset=source + (f"-{o.model}" if other else ""), metric="e2e_ms", unit="ms",
                            model=o.model, hardware=hw, precision="bf16", tp=o.tp, batch_size=o.batch_size,
                            prompt_tokens=o.prompt_tokens, context_tokens=o.context_tokens,
                            measured=e2e[key], predicted_roofline=(rp + (tokens - 1) * rd) * 1e3,
                            predicted_calibrated=(cp + (tokens - 1) * cd) * 1e3,
                            profile=prof.name if prof else "", split=role, key=key))
    return out


def fitted_models(prof: Profile) -> set[str] | None:
    """The catalog models a step profile was fitted on (None: every model of its data). A model
    outside them (BLOOM-176B next to the Splitwise profiles' Llama2-70B) is validated as its own
    dataset ``<source>-<model>``, every row held out: the fit never saw it, and the fitted
    model's figures stay comparable with earlier reports."""
    for d in prof.provenance.get("data") or []:
        if isinstance(d, dict) and d.get("kind") == "model filter":
            return set(d.get("models") or [])
    from hermes_opt.calibration.recipes import RECIPES
    argv = RECIPES.get(prof.name, [])
    return set(argv[argv.index("--models") + 1].split(",")) if "--models" in argv else None


def _splitwise_e2e(path: Path) -> dict[str, float]:
    frame = pd.read_csv(path)
    keys = ["model", "hardware", "tensor_parallel", "batch_size", "prompt_size", "token_size"]
    g = frame.groupby(keys, as_index=False)["e2e_time"].median()
    return {f"{r.model}/{r.hardware}/tp{int(r.tensor_parallel)}/b{int(r.batch_size)}/p{int(r.prompt_size)}"
            f"/t{int(r.token_size)}": float(r.e2e_time) for r in g.itertuples(index=False)}


def splitwise_tp_split(path: Path) -> list[dict]:
    """A second, harder split: fit on TP 2 and 8, test on TP 4 (per GPU). Fitted here, on the fly."""
    rows = [o for o in obs_mod.load_splitwise(path) if o.model and o.hardware]
    bad = inconsistent_step_configs(rows)
    rows = [o for o in rows if o.config_key not in bad]
    out = []
    # per model too: one fit per model and GPU (a model measured at one TP only has no TP split)
    for hw, variant, model in sorted({(o.hardware, o.variant, o.model) for o in rows}):
        group = [o for o in rows if o.hardware == hw and o.variant == variant and o.model == model]
        train, test = split(group, Holdout(tp=(4,)))
        if not train or not test:
            continue
        params = fit.fit_rows(train, "step").params
        for phase in ("prefill", "decode"):
            sel = [o for o in test if o.phase == phase]
            e = ape(predict(sel, params), [o.measured_s for o in sel])
            out.append({"dataset": "splitwise" + (f"-{variant}" if variant else ""), "hardware": hw,
                        "metric": f"{phase}_ms", "n": len(sel), "median": float(np.median(e)),
                        "p90": float(np.percentile(e, 90)), "mean": float(np.mean(e))})
    return out


# --- Vidur (per-operator, all-reduce) -------------------------------------------------------
def vidur_rows(vidur_dir: Path, profiles: list[Profile], stride: int = 1) -> list[dict]:
    """Operator and all-reduce rows; ``stride`` > 1 keeps every stride-th row (the fit/held-out
    role is decided on the whole file first, so a subset keeps each row's true role)."""
    out = []
    ops_by_hw: dict[str, list] = {}
    for path in sorted(vidur_dir.glob("compute__*__mlp.csv")):
        ops = [o for o in obs_mod.load_vidur_compute(path) if o.model and o.hardware]
        if ops:
            ops_by_hw.setdefault(ops[0].hardware, []).extend(ops)
    for hw, ops in ops_by_hw.items():
        prof = profile_for(profiles, "vidur", hw)
        for o, r, c, role in _predict_both(ops, prof, prof.holdout if prof else None, stride):
            out.append(_row(dataset="vidur-operators", metric="layer_non_attention_ms", unit="ms",
                            model=o.model, hardware=hw, precision="bf16", tp=o.tp,
                            num_tokens=o.num_tokens, measured=o.measured_s * 1e3,
                            predicted_roofline=r * 1e3, predicted_calibrated=c * 1e3,
                            profile=prof.name if prof else "", split=role,
                            key=f"{o.raw_model}/{hw}/tp{o.tp}/n{o.num_tokens}"))
    for path in sorted(vidur_dir.glob("network__*__all_reduce.csv")):
        coll = obs_mod.load_vidur_allreduce(path)
        hw = coll[0].hardware
        prof = profile_for(profiles, "vidur", hw)
        holdout = Holdout(every=(prof.holdout.every or 3)) if prof else None  # as calibrate does
        for o, r, c, role in _predict_both(coll, prof, holdout, stride):
            out.append(_row(dataset="vidur-allreduce", metric="all_reduce_ms", unit="ms", hardware=hw,
                            precision="bf16", tp=o.num_workers, num_tokens=o.size_bytes / 2,
                            measured=o.measured_s * 1e3, predicted_roofline=r * 1e3,
                            predicted_calibrated=c * 1e3, profile=prof.name if prof else "",
                            split=role, key=f"{hw}/w{o.num_workers}/s{o.size_bytes:.0f}"))
    return out


def _predict_both(rows: list, prof: Profile | None, holdout: Holdout | None, stride: int):
    """(row, roofline s, calibrated s, role) for every stride-th row."""
    held = held_out_ids(rows, holdout) if holdout is not None else set()
    rows_kept = rows[::stride]
    roof = predict(rows_kept, RooflineParams())
    cal = predict(rows_kept, prof.params) if prof else np.full(len(rows_kept), np.nan)
    for o, r, c in zip(rows_kept, roof, cal):
        role = "" if prof is None else ("held_out" if id(o) in held else "fit")
        yield o, r, c, role


def held_out_ids(rows: list, holdout: Holdout) -> set[int]:
    return {id(o) for o in split(rows, holdout)[1]}


# --- serving level (simulator) ----------------------------------------------------------
SERVING_DATASETS = {"TensorRT-LLM perf-overview (v0.17 table)": "trtllm-v0.17-max-load",
                    "TensorRT-LLM perf-overview (online serving table, v0.14)": "trtllm-v0.14-online",
                    "vLLM blog: FP8 KV cache (2026-04-22)": "vllm-fp8kv-concurrency"}


def serving_rows(measurements: Path, profiles: list[Profile],
                 keep: callable | None = None, key_prefix: str = "") -> list[dict]:
    """Serving rows of a measurements-shaped table; ``key_prefix`` tells the rows of an extra
    table (``--measurements``) from those of reference/measurements.csv (keys 'row<line>')."""
    rows, _ = obs_mod.load_serving(measurements, strict=False)
    rows = [o for o in rows if keep is None or keep(o)]
    roof = serving.simulate_rows(rows, RooflineParams())
    out = []
    by_profile: dict[str, list] = {}
    for o in rows:
        prof = profile_for(profiles, o.source, o.hardware, o.precision)
        by_profile.setdefault(prof.name if prof else "", []).append(o)
    cal: dict[int, tuple[float, Profile | None, str]] = {}
    for name, group in by_profile.items():
        prof = next((p for p in profiles if p.name == name), None)
        preds = (serving.simulate_rows(group, prof.params, frontend_latency_s=prof.frontend_latency_s)
                 if prof else [np.nan] * len(group))
        held = held_out_ids(group, prof.holdout) if prof else set()
        for o, c in zip(group, preds):
            role = "" if prof is None else ("held_out" if id(o) in held else "fit")
            cal[id(o)] = (c, prof, role)
    settings: dict[tuple, str] = {}
    for o, r in zip(rows, roof):
        c, prof, role = cal[id(o)]
        load = "max_load" if o.arrival == "max_load" else (
            f"qps={o.rate_per_s:g}" if o.arrival == "poisson" else f"concurrency={o.concurrency}")
        unit = ("ms" if "_ms." in o.metric else "s" if o.metric == "duration_s" else
                "req/s" if o.metric.startswith("requests_per_s") else
                "tokens/s/GPU" if o.metric.endswith("_per_gpu") else "tokens/s")
        out.append(_row(dataset=SERVING_DATASETS.get(o.source, o.source), metric=o.metric, unit=unit,
                        model=o.model, hardware=o.hardware,
                        precision=o.precision + (f"/kv-{o.kv_precision}"
                                                 if o.kv_precision not in ("", o.precision) else ""),
                        tp=o.tp, isl=o.isl,
                        osl=o.osl, load=load, measured=o.measured, predicted_roofline=r,
                        predicted_calibrated=c, profile=prof.name if prof else "", split=role,
                        key=f"{key_prefix}row{o.row}", setup=settings.setdefault(
                            serving.scenario_key(o), serving.describe(o))))
    return out


# --- MLPerf results tables (simulated LoadGen scenarios) --------------------------------------
def mlperf_rows(paths: list[Path], profiles: list[Profile],
                keep: callable | None = None) -> tuple[list[dict], list[dict]]:
    """(rows, coverage records) of MLPerf tables: see hermes_opt/validation/mlperf_validate.py."""
    from hermes_opt.validation import mlperf_validate
    return mlperf_validate.rows(list(paths), profiles, _row, keep=keep)


# --- vLLM decode latency vs context fits (fixed concurrency 1, through the simulator) --------
ITL_SWEEP_INPUT_TOKENS = (1024, 4096, 8192, 16384, 32768)
ITL_SWEEP_OUTPUT_TOKENS = 128


def itl_fit_rows(measurements: Path) -> list[dict]:
    """'fit ITL = slope * input_len + intercept' at concurrency 1: sweep the input length with a
    closed loop of one client through ``sim.simulate``, fit the same line, compare both terms."""
    frame = pd.read_csv(measurements)
    sel = frame[frame.metric.isin(["ITL_linear_fit_slope", "ITL_linear_fit_intercept"])]
    out = []
    fits: dict[tuple, tuple[float, float]] = {}
    for i, r in sel.iterrows():
        model, hw = obs_mod.catalog_name("model", r.model), obs_mod.catalog_name("hardware", r.gpu)
        if not (model and hw):
            continue
        kv = "fp8" if "fp8" in str(r.precision).lower() else "bf16"
        if (model, hw, kv) not in fits:
            fits[(model, hw, kv)] = _itl_line(model, hw, kv)
        slope, intercept = fits[(model, hw, kv)]
        predicted = slope if r.metric.endswith("slope") else intercept
        out.append(_row(dataset="vllm-itl-vs-context", metric=str(r.metric), unit=str(r.unit),
                        model=model, hardware=hw, precision=f"bf16/kv-{kv}", tp=1, batch_size=1,
                        load="concurrency=1", measured=float(r.value), predicted_roofline=predicted,
                        predicted_calibrated=np.nan, profile="", split="", key=f"row{int(i) + 2}"))
    return out


def _itl_line(model: str, hardware: str, kv: str) -> tuple[float, float]:
    """(slope ms per input token, intercept ms) of simulated mean ITL vs input length."""
    itl = []
    for isl in ITL_SWEEP_INPUT_TOKENS:
        obs = obs_mod.ServingObservation(
            source="itl-sweep", model=model, hardware=hardware, precision="bf16", kv_precision=kv,
            tp=1, isl=isl, osl=ITL_SWEEP_OUTPUT_TOKENS, arrival="closed_loop", rate_per_s=0.0,
            concurrency=1, num_requests=3, metric="itl_ms.mean", measured=1.0, row=0)
        itl.append(serving.simulate_rows([obs], RooflineParams())[0])
    slope, intercept = np.polyfit(np.asarray(ITL_SWEEP_INPUT_TOKENS, dtype=float), itl, 1)
    return float(slope), float(intercept)
