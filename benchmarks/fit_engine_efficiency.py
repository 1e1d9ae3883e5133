"""Fit the engine efficiency table; measure its errors and its ranking on held-out submitters.

    python benchmarks/fit_engine_efficiency.py [--shared-dir ../shared] [--folds 4] [--write]
                                               [--json FILE] [--workers 2]
    python benchmarks/fit_engine_efficiency.py --write --from-json FILE   # a saved run, no refit

1. Kernel shape: NVIDIA entries from AIConfigurator's kernel tables
   (``hermes_opt/data/reference/aic_kernel_fit.yaml``; ``engine_fit.kernel_entries``); the ROCm
   entry takes vLLM's Hopper FP8 shape.
2. CUDA serving factor (compute side, under physical ceilings): fitted on TensorRT-LLM's published
   v0.17 max-load table (``measurements.csv``), Llama 3.1 8B at the ISL/OSL pairs the shipped
   trtllm017 profiles fit on; Mistral 7B and three ISL/OSL pairs held out. A source MLPerf is not.
3. Per fold of MLPerf v4.1 submitters (dealt round-robin, sorted; each fold predicted by what was
   fitted without it), on Offline rows: the mean input length of the llama2-70b dataset (OpenOrca;
   unpublished, so a workload parameter to fit, shared by every vendor), the CUDA MoE factor
   (Mixtral), and the ROCm factor over the vLLM shape (MI300X). The held-out predictions (Offline
   and Server) give the ranking figures (``hermes_opt.validation.ranking``) and the MLPerf bands.
4. The shipped table and input length: fitted on every submitter. ``--write`` rewrites
   ``conf/tables/engine_efficiency.yaml`` (header and ``no_data`` kept) and the llama2-70b input
   length in ``conf/tables/mlperf_benchmarks.yaml``.

Progress on stderr; figures on stdout. About 10 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import yaml

from hermes_opt.calibration import engine_fit, mlperf_engine, mlperf_rows, serving
from hermes_opt.calibration.mlperf_rows import Submission
from hermes_opt.calibration.observations import load_serving
from hermes_opt.compose import catalog, efficiency, engines
from hermes_opt.validation import ranking
from hermes_opt.validation.mlperf_validate import headline, ranking_record
from hermes_opt.validation.ranking import Record

ROOT = Path(__file__).resolve().parent.parent
KERNEL_FIT = ROOT / "hermes_opt/data/reference/aic_kernel_fit.yaml"
BENCHMARKS_YAML = ROOT / "hermes_opt/conf/tables/mlperf_benchmarks.yaml"
ROCM_SHAPE = ("vllm", "cuda", "hopper", "fp8")  # the ROCm entry's shape: same engine, Hopper FP8
AIC = "AIConfigurator kernel tables (aiconfigurator-core 0.12.0, Apache-2.0)"
V017 = "TensorRT-LLM perf-overview (v0.17 table)"
V017_HELD_OUT = {"models": {"mistral_7b"}, "isl_osl": {(128, 2048), (1000, 1000), (5000, 500)}}
OPENORCA = "llama2-70b"
ISL_STD_RATIO = 0.75  # the table's lognormal shape (std 450 at mean 600), kept while the mean moves


def submissions(shared: str) -> list[Submission]:
    subs = [s for t in sorted((Path(shared) / "reference").glob("mlperf*.csv"))
            for s in mlperf_rows.read_table(t)[0]]
    return [s for s in subs if not s.reason and s.scenario in ("Offline", "Server")]


def stack_of(sub: Submission) -> str:
    return mlperf_engine.serving_engine(sub).stack


def is_moe(sub: Submission) -> bool:
    return int(catalog.entry("model", sub.model).get("num_experts") or 1) > 1


def build_table(kernel: list[dict], factors: dict[str, tuple[float, ...]]) -> tuple[dict, ...]:
    """Kernel entries scaled by the CUDA factors (compute, memory, MoE), plus the ROCm entry (the
    vLLM Hopper FP8 shape times one ROCm factor on both sides, and the MoE factor)."""
    compute, memory, moe = factors.get("cuda", (1.0, 1.0, 1.0))
    table = [engine_fit.scaled(e, compute, memory, moe) for e in kernel]
    shape = engine_fit.find(kernel, *ROCM_SHAPE)
    rocm, rocm_moe = factors.get("rocm", (1.0, moe))
    table.append(engine_fit.scaled(shape, rocm, rocm, rocm_moe, stack="rocm", generation="cdna3",
                                   source=f"vLLM Hopper FP8 kernel shape ({AIC}) x the ROCm "
                                          "serving factor"))
    return tuple(table)


# --- 2. the CUDA factor, on TensorRT-LLM's own table ---------------------------------------------
def trtllm_rows(shared: str) -> tuple[list, list]:
    path = Path(shared) / "reference" / "measurements.csv"
    if not path.is_file():
        path = catalog.DATA_DIR / "reference" / "trtllm_measurements.csv"
    rows = [r for r in load_serving(path)[0]
            if r.source == V017 and r.metric == "output_tokens_per_s"]
    held = [r for r in rows if r.model in V017_HELD_OUT["models"]
            or (r.isl, r.osl) in V017_HELD_OUT["isl_osl"]]
    return [r for r in rows if r not in held], held


def predict_table_rows(table: tuple[dict, ...], rows: list) -> list[tuple[float, float]]:
    by_setup: dict[tuple[str, str], list] = {}
    for r in rows:
        by_setup.setdefault((r.hardware, r.precision), []).append(r)
    out = []
    for (hardware, precision), group in by_setup.items():
        engine = engines.resolve(catalog.entry("engine", "trtllm"),
                                 catalog.entry("hardware", hardware), precision, "engine")
        params = mlperf_engine.params_of(engine, precision, table)[0]
        out += list(zip(serving.simulate_rows(group, params), (r.measured for r in group)))
    return out


def fit_cuda(kernel: list[dict], rows: list) -> tuple[float, float]:
    """(compute, memory) factors by coordinate descent: prefill-heavy rows pin the compute side,
    decode-heavy ones the memory side."""
    def loss(compute: float, memory: float) -> float:
        return engine_fit.log_error(predict_table_rows(
            build_table(kernel, {"cuda": (compute, memory, 1.0)}), rows))
    compute = memory = 1.0
    for _ in range(2):
        compute = engine_fit.fit_factor(lambda f, m=memory: loss(f, m), 0.5, 3.0, 6)
        memory = engine_fit.fit_factor(lambda f, c=compute: loss(c, f), 0.5, 1.6, 6)
    return compute, memory


# --- 3. per fold: the OpenOrca input length, the MoE and ROCm factors ------------------------------
def with_isl(subs: list[Submission], mean: float) -> list[Submission]:
    """``subs`` with the llama2-70b dataset's mean input length set to ``mean``."""
    out = []
    for s in subs:
        bench = s.benchmark
        if bench.key == OPENORCA:
            isl = dataclasses.replace(bench.isl, mean=float(mean), std=ISL_STD_RATIO * mean)
            s = dataclasses.replace(s, benchmark=dataclasses.replace(bench, isl=isl))
        out.append(s)
    return out


def _loss(table: tuple[dict, ...], subs: list[Submission]) -> float:
    sims = mlperf_engine.EngineSimulators(table)
    return engine_fit.log_error(headline(s, sims.predict(s)[0]) for s in subs)


def fit_fold(kernel: list[dict], cuda: float, subs: list[Submission], label: str) -> dict:
    """ISL mean (NVIDIA dense rows), CUDA MoE factor, ROCm factor, on the Offline rows given."""
    offline = [s for s in subs if s.scenario == "Offline"]
    nv_dense = [s for s in offline if stack_of(s) == "cuda" and not is_moe(s)]
    nv_moe = [s for s in offline if stack_of(s) == "cuda" and is_moe(s)]
    amd = [s for s in offline if stack_of(s) == "rocm"]
    compute, memory = cuda
    base = build_table(kernel, {"cuda": (compute, memory, 1.0)})
    isl = engine_fit.fit_factor(lambda m: _loss(base, with_isl(nv_dense, m)), 200, 800, 6)
    moe = engine_fit.fit_factor(lambda f: _loss(
        build_table(kernel, {"cuda": (compute, memory, f)}), nv_moe), 0.3, 3.0, 6)
    rocm = engine_fit.fit_factor(lambda f: _loss(build_table(
        kernel, {"cuda": (compute, memory, moe), "rocm": (f, moe)}), with_isl(amd, isl)),
        0.3, 3.0, 6)
    fitted = {"isl_mean": isl, "cuda": (compute, memory, moe), "rocm": (rocm, moe)}
    print(f"[{label}] {fitted} ({len(nv_dense)} dense NVIDIA, {len(nv_moe)} MoE, {len(amd)} MI300X "
          "Offline rows)", file=sys.stderr, flush=True)
    return fitted


def folds(subs: list[Submission], k: int) -> list[set[str]]:
    names = sorted({s.submitter for s in subs})
    return [set(names[i::k]) for i in range(k)]


def run_fold(args: tuple) -> tuple[dict, list[dict]]:
    kernel, cuda, subs, held, label = args
    fitted = fit_fold(kernel, cuda, [s for s in subs if s.submitter not in held], label)
    table = build_table(kernel, {k: fitted[k] for k in ("cuda", "rocm")})
    sims = mlperf_engine.EngineSimulators(table)
    rows = []
    for s in with_isl([s for s in subs if s.submitter in held], fitted["isl_mean"]):
        pred, found = sims.predict(s)
        predicted, measured = headline(s, pred)
        rows.append({"key": s.key, "predicted": predicted, "measured": measured,
                     "entry": found.key, "record": ranking_record(
                         s, predicted / s.num_gpus, measured / s.num_gpus).to_dict()})
    return fitted, rows


def main(argv: list[str]) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--shared-dir", default="../shared")
    p.add_argument("--kernel-fit", default=str(KERNEL_FIT))
    p.add_argument("--folds", type=int, default=4)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--json", help="write factors, held-out rows and figures here")
    p.add_argument("--write", action="store_true", help="rewrite the table and the input length")
    p.add_argument("--from-json", metavar="FILE",
                   help="with --write: write the table from a saved --json run (no refit)")
    args = p.parse_args(argv)
    start = time.perf_counter()
    kernel = engine_fit.kernel_entries(yaml.safe_load(Path(args.kernel_fit).read_text()), AIC)
    if args.from_json:
        if not args.write:
            p.error("--from-json only rewrites the table: add --write")
        saved = json.loads(Path(args.from_json).read_text())
        shipped = {**saved["fitted"], **{k: tuple(saved["fitted"][k]) for k in ("cuda", "rocm")}}
        write(build_table(kernel, {k: shipped[k] for k in ("cuda", "rocm")}), saved["rows"],
              shipped, saved["trtllm_table"])
        print(f"wrote the table and the input length from {args.from_json}")
        return
    fit_rows, held_rows = trtllm_rows(args.shared_dir)
    cuda = fit_cuda(kernel, fit_rows)
    table_errors = trtllm_errors(build_table(kernel, {"cuda": (*cuda, 1.0)}), fit_rows, held_rows)
    print(f"CUDA factors (compute, memory) {cuda} on {len(fit_rows)} TensorRT-LLM v0.17 rows; "
          f"{table_errors}",
          file=sys.stderr, flush=True)
    subs = submissions(args.shared_dir)
    tasks = [(kernel, cuda, subs, held, f"fold {i}") for i, held in enumerate(folds(subs, args.folds))]
    tasks.append((kernel, cuda, subs, set(), "all"))
    with ProcessPoolExecutor(max_workers=args.workers) as pool:
        results = list(pool.map(run_fold, tasks))
    rows = [r for _, fold_rows in results[:-1] for r in fold_rows]
    shipped = results[-1][0]
    table = build_table(kernel, {k: shipped[k] for k in ("cuda", "rocm")})
    text, figures = report(rows, [r[0] for r in results[:-1]], shipped)
    print(f"TensorRT-LLM v0.17 table, output tokens/s: {table_errors}\n{text}"
          f"\nwall time {time.perf_counter() - start:.0f} s")
    if args.json:
        Path(args.json).write_text(json.dumps({"fitted": shipped, "trtllm_table": table_errors,
                                               "rows": rows, "figures": figures},
                                              indent=1, default=str))
    if args.write:
        write(table, rows, shipped, table_errors)


def trtllm_errors(table: tuple[dict, ...], fit_rows: list, held_rows: list) -> dict:
    out = {}
    for name, rows in (("fit", fit_rows), ("held_out", held_rows)):
        pairs = predict_table_rows(table, rows)
        errs = np.array([abs(p / m - 1) * 100 for p, m in pairs])
        out[name] = {"n": len(errs), "median_pct": round(float(np.median(errs)), 1),
                     "p90_pct": round(float(np.percentile(errs, 90)), 1)}
    return out


def report(rows: list[dict], fold_fits: list[dict], shipped: dict) -> tuple[str, dict]:
    records = [Record.from_dict(r["record"]) for r in rows]
    summary = ranking.summary(records, 0.05)
    lines = [f"fitted on every submitter: {shipped}",
             f"per fold (fold's submitters held out): {fold_fits}"]
    for flt in ("all", "cross_vendor", "cross_gpu"):
        t = summary["pairwise"][flt]["pooled"]
        lines.append(f"pairs {flt:13s} {100 * t['share']:.1f} % ({t['correct']}/{t['pairs']}, "
                     f"ties {t['tied']}; ties as half {100 * t['share_ties_half']:.1f} %)")
    lines.append(f"Spearman median over groups: {summary['spearman']['median']}")
    for scen, e in summary["errors"].items():
        lines.append(f"{scen} |error| median {e['median_pct']:.1f} %, p90 {e['p90_pct']:.1f} %, "
                     f"median predicted/measured {e['median_ratio']:.2f} (n={e['n']})")
    for entry, b in sorted(bands(rows).items()):
        lines.append(f"  band {entry}: {b}")
    return "\n".join(lines), summary


def bands(rows: list[dict]) -> dict[str, dict]:
    by_entry: dict[str, list[tuple[float, float]]] = {}
    for r in rows:
        by_entry.setdefault(r["entry"], []).append((r["predicted"], r["measured"]))
    return {k: engine_fit.band(v, "MLPerf v4.1 Offline output tokens/s and Server SLO capacity, "
                                  "each submitter predicted by what was fitted without it")
            for k, v in by_entry.items()}


def write(table: tuple[dict, ...], rows: list[dict], shipped: dict, table_errors: dict) -> None:
    path = efficiency.TABLE_PATH
    text = path.read_text()
    old = {"/".join(str(e[k]) for k in ("engine", "stack", "generation", "precision")): e
           for e in (yaml.safe_load(text).get("entries") or [])}
    measured = bands(rows)
    trt_band = {**table_errors["held_out"], "validated_on": f"{V017}: output tokens/s, Mistral 7B "
                "and three ISL/OSL pairs the CUDA factor was not fitted on"}
    out = []
    for entry in table:
        key = "/".join(str(entry[k]) for k in ("engine", "stack", "generation", "precision"))
        band = measured.get(key) or (old.get(key) or {}).get("band") or {}
        factors = shipped[entry["stack"]]
        moe = factors[-1]
        how = (f"CUDA serving factors (compute {factors[0]}, memory {factors[1]}) fitted on {V017}"
               if entry["stack"] == "cuda" else
               f"ROCm serving factor {factors[0]} fitted on MLPerf v4.1 MI300X Offline")
        if key == "trtllm/cuda/hopper/fp8" and not measured.get(key):
            band = trt_band
        out.append({**entry, "band": band,
                    "fitted_on": f"{entry['fitted_on']}; {how}; MoE factor {moe} (MLPerf v4.1 "
                                 "Mixtral Offline)"})
    head = text[:text.index("entries:")]
    path.write_text(head + yaml.safe_dump({"entries": out}, sort_keys=False, width=100))
    text = BENCHMARKS_YAML.read_text()
    mean = round(shipped["isl_mean"])
    text = re.sub(r"isl: \{kind: lognormal, mean: \d+, std: \d+, min: 1, max: 1024, trust: [^,]+,\n"
                  r"\s+source: \"[^\"]*\"\}",
                  f"isl: {{kind: lognormal, mean: {mean}, std: {round(ISL_STD_RATIO * mean)}, min: 1, "
                  f"max: 1024, trust: fitted,\n          source: \"max 1024 [llama2]; mean not "
                  f"published: fitted on MLPerf v4.1 NVIDIA Offline rows "
                  f"(benchmarks/fit_engine_efficiency.py)\"}}", text, count=1)
    BENCHMARKS_YAML.write_text(text)
    print(f"wrote {path} ({len(out)} entries) and llama2-70b mean input {mean}", file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv[1:])
