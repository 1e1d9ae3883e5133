"""Fit the engine efficiency table; measure its errors and its ranking on held-out submitters.

    python benchmarks/fit_engine_efficiency.py [--shared-dir ../shared] [--folds 4] [--write]
                                               [--json FILE] [--workers 2]

1. Kernel shape: NVIDIA entries from AIConfigurator's kernel tables
   (``hermes_opt/data/reference/aic_kernel_fit.yaml``; ``engine_fit.kernel_entries``); the ROCm
   entry takes vLLM's Hopper FP8 shape.
2. Serving factor per stack (``engine_fit`` docstring): fitted on MLPerf v4.1 Offline output
   tokens/s of the stack's dense submissions (cuda: TensorRT-LLM; rocm: vLLM on MI300X), then a
   MoE factor on the MoE submissions.
3. Held out by submitter: submitters are dealt round-robin (sorted) into ``--folds`` folds; each
   fold's Offline and Server submissions are predicted by factors fitted on the other folds. Those
   predictions give every entry's error band and the ranking figures (pairwise order per
   accelerator, all and cross-vendor pairs, Spearman): ``hermes_opt.validation.ranking``.
4. The shipped table: factors fitted on every submitter. ``--write`` rewrites
   ``conf/tables/engine_efficiency.yaml`` (its header and ``no_data`` section are kept).

Progress on stderr; figures on stdout. About 10 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import yaml

from hermes_opt.calibration import engine_fit, mlperf_engine, mlperf_rows
from hermes_opt.calibration.mlperf_rows import Submission
from hermes_opt.compose import catalog, efficiency
from hermes_opt.validation import ranking
from hermes_opt.validation.ranking import Record

KERNEL_FIT = Path(__file__).resolve().parent.parent / "hermes_opt/data/reference/aic_kernel_fit.yaml"
ROCM_SHAPE = ("vllm", "cuda", "hopper", "fp8")  # the ROCm entry's shape: same engine, Hopper FP8
AIC = "AIConfigurator kernel tables (aiconfigurator-core 0.12.0, Apache-2.0)"
STACKS = ("cuda", "rocm")


def submissions(shared: str) -> list[Submission]:
    subs = [s for t in sorted((Path(shared) / "reference").glob("mlperf*.csv"))
            for s in mlperf_rows.read_table(t)[0]]
    return [s for s in subs if not s.reason and s.scenario in ("Offline", "Server")]


def stack_of(sub: Submission) -> str:
    return mlperf_engine.serving_engine(sub).stack


def is_moe(sub: Submission) -> bool:
    return int(catalog.entry("model", sub.model).get("num_experts") or 1) > 1


def build_table(kernel: list[dict], factors: dict[str, tuple[float, float]]) -> tuple[dict, ...]:
    """Kernel entries scaled by their stack's factors, plus the ROCm entry."""
    dense, moe = factors.get("cuda", (1.0, 1.0))
    table = [engine_fit.scaled(e, dense, moe) for e in kernel]
    shape = engine_fit.find(kernel, *ROCM_SHAPE)
    r_dense, r_moe = factors.get("rocm", (1.0, moe))
    table.append(engine_fit.scaled(shape, r_dense, r_moe, stack="rocm", generation="cdna3",
                                   source=f"vLLM Hopper FP8 kernel shape ({AIC}) x the ROCm "
                                          "serving factor"))
    return tuple(table)


def figure(sub: Submission, pred) -> tuple[float, float]:
    """(predicted, measured) headline figure: Offline tokens/s, Server SLO capacity."""
    measured = (sub.metrics["output_tokens_per_s"].value if sub.scenario == "Offline"
                else sub.target_qps)
    if isinstance(pred, str):
        return float("nan"), measured
    key = "output_tokens_per_s" if sub.scenario == "Offline" else "slo_capacity_qps"
    return pred.figures[key], measured


def _loss(kernel, factors, subs) -> float:
    sims = mlperf_engine.EngineSimulators(build_table(kernel, factors))
    return engine_fit.log_error(figure(s, sims.predict(s)[0]) for s in subs)


def fit_factors(kernel: list[dict], subs: list[Submission], label: str) -> dict:
    """Dense then MoE factor per stack, on the Offline submissions given."""
    offline = [s for s in subs if s.scenario == "Offline"]
    factors: dict[str, tuple[float, float]] = {}
    for stack in STACKS:
        rows = [s for s in offline if stack_of(s) == stack]
        factors[stack] = _fit_stack(kernel, factors, stack, rows)
        print(f"[{label}] {stack}: dense {factors[stack][0]}, moe {factors[stack][1]} "
              f"({len(rows)} Offline rows)", file=sys.stderr, flush=True)
    return factors


def _fit_stack(kernel: list[dict], factors: dict, stack: str, rows: list[Submission]
               ) -> tuple[float, float]:
    dense = [s for s in rows if not is_moe(s)]
    moe = [s for s in rows if is_moe(s)]
    d = 1.0
    if dense:
        d = engine_fit.fit_factor(lambda f: _loss(kernel, {**factors, stack: (f, 1.0)}, dense),
                                  0.5, 4.0, 8)
    m = factors.get("cuda", (1.0, 1.0))[1]  # a stack without MoE rows: the CUDA MoE factor
    if moe:
        m = engine_fit.fit_factor(lambda f: _loss(kernel, {**factors, stack: (d, f)}, moe),
                                  0.3, 3.0, 8)
    return d, m


def folds(subs: list[Submission], k: int) -> list[set[str]]:
    names = sorted({s.submitter for s in subs})
    return [set(names[i::k]) for i in range(k)]


def run_fold(args: tuple) -> tuple[dict, list[dict]]:
    kernel, subs, held, label = args
    factors = fit_factors(kernel, [s for s in subs if s.submitter not in held], label)
    sims = mlperf_engine.EngineSimulators(build_table(kernel, factors))
    rows = []
    for s in subs:
        if s.submitter in held:
            pred, found = sims.predict(s)
            predicted, measured = figure(s, pred)
            rows.append({"key": s.key, "predicted": predicted, "measured": measured,
                         "entry": found.key, "record": _record(s, predicted, measured)})
    return factors, rows


def _record(sub: Submission, predicted: float, measured: float) -> dict:
    vendor = str(catalog.entry("hardware", sub.hardware).get("vendor") or "")
    parts = sub.key.split("/")
    per_gpu = 1.0 / sub.num_gpus
    return Record(group=(sub.benchmark_raw, sub.scenario),
                  system=parts[1] if len(parts) == 4 else sub.system, submitter=sub.submitter,
                  vendor=vendor, gpu=sub.hardware, num_gpus=sub.num_gpus,
                  measured=measured * per_gpu, predicted=predicted * per_gpu).to_dict()


def main(argv: list[str]) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--shared-dir", default="../shared")
    p.add_argument("--kernel-fit", default=str(KERNEL_FIT))
    p.add_argument("--folds", type=int, default=4)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--json", help="write factors, held-out rows and figures here")
    p.add_argument("--write", action="store_true", help="rewrite conf/tables/engine_efficiency.yaml")
    args = p.parse_args(argv)
    start = time.perf_counter()
    kernel = engine_fit.kernel_entries(yaml.safe_load(Path(args.kernel_fit).read_text()), AIC)
    subs = submissions(args.shared_dir)
    tasks = [(kernel, subs, held, f"fold {i}") for i, held in enumerate(folds(subs, args.folds))]
    tasks.append((kernel, subs, set(), "all"))
    with ProcessPoolExecutor(max_workers=args.workers) as pool:
        results = list(pool.map(run_fold, tasks))
    rows = [r for _, fold_rows in results[:-1] for r in fold_rows]
    shipped = results[-1][0]
    table = build_table(kernel, shipped)
    text, figures = report(rows, [r[0] for r in results[:-1]], shipped)
    print(text + f"\nwall time {time.perf_counter() - start:.0f} s")
    if args.json:
        Path(args.json).write_text(json.dumps({"factors": shipped, "rows": rows,
                                               "figures": figures}, indent=1, default=str))
    if args.write:
        write(table, rows, shipped)


def report(rows: list[dict], fold_factors: list[dict], shipped: dict) -> tuple[str, dict]:
    records = [Record.from_dict(r["record"]) for r in rows]
    summary = ranking.summary(records, 0.05)
    lines = [f"factors fitted on every submitter: {shipped}",
             f"factors per fold (fold's submitters held out): {fold_factors}"]
    for flt in ("all", "cross_vendor"):
        t = summary["pairwise"][flt]["pooled"]
        lines.append(f"pairs {flt:13s} {100 * t['share']:.1f} % ({t['correct']}/{t['pairs']}, "
                     f"ties {t['tied']})")
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
                                  "each submitter predicted by factors fitted without it")
            for k, v in by_entry.items()}


def write(table: tuple[dict, ...], rows: list[dict], shipped: dict) -> None:
    path = efficiency.TABLE_PATH
    text = path.read_text()
    old = {"/".join(str(e[k]) for k in ("engine", "stack", "generation", "precision")): e
           for e in (yaml.safe_load(text).get("entries") or [])}
    measured = bands(rows)
    out = []
    for entry in table:
        key = "/".join(str(entry[k]) for k in ("engine", "stack", "generation", "precision"))
        band = measured.get(key) or (old.get(key) or {}).get("band") or {}
        factor = shipped[entry["stack"]]
        out.append({**entry, "band": band,
                    "fitted_on": f"{entry['fitted_on']}; serving factor {factor[0]} (MoE "
                                 f"{factor[1]}) fitted on MLPerf v4.1 Offline ({entry['stack']})"})
    head = text[:text.index("entries:")]
    path.write_text(head + yaml.safe_dump({"entries": out}, sort_keys=False, width=100))
    print(f"wrote {path} ({len(out)} entries)", file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv[1:])
