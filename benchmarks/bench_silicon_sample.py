"""hermes-sim against NVIDIA AIConfigurator's measured ``silicon_sample.csv`` (a validation set:
nothing is fitted on it).

    python benchmarks/bench_silicon_sample.py [--csv PATH] [--limit N] [--systems b200_sxm ...]
        [--json FILE] [--workers N] [--aic CSV] [--mode agg|disagg]

Prints, per (system, backend, mode) and overall, n and the median / mean absolute percentage
error (APE) of TTFT, TPOT and output throughput per GPU, then the coverage (rows simulated, rows
with a reason, by reason). The measured throughput per GPU is that of the closed loop:
``concurrency * osl / (ttft + (osl - 1) * tpot) / gpus``. When
``benchmarks/data/aic_silicon_predictions.csv`` (written by ``aic_predict_silicon.py`` under a
separate venv) exists, AIConfigurator's own APE is printed beside ours on the rows both predict.

The CSV is read from the installed ``aiconfigurator_core`` package (located, not imported) or
``--csv``; without either the benchmark prints one line and exits 0. ``--mode`` keeps only the
rows of that mode (``agg``: aggregated serving, ``disagg``: disaggregated prefill/decode) before
``--limit``. ``--limit N`` keeps every k-th row of each partition (k = ceil(rows / N), file
order), so subsamples are deterministic.
Progress goes to stderr; results are in file order whatever the worker count.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import statistics
import sys
import time
from collections import Counter, defaultdict
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

from hermes_opt.validation import silicon

AIC_DEFAULT = Path(__file__).resolve().parent / "data" / "aic_silicon_predictions.csv"
METRICS = ("ttft", "tpot", "tput")


def subsample(mapped: list[silicon.Mapped], limit: int | None) -> list[silicon.Mapped]:
    if not limit or limit >= len(mapped):
        return mapped
    k = math.ceil(len(mapped) / limit)
    seen: Counter = Counter()
    out = []
    for m in mapped:
        if seen[m.partition] % k == 0:
            out.append(m)
        seen[m.partition] += 1
    return out


def ape(pred: float | None, meas: float | None) -> float | None:
    if pred is None or meas is None or not meas or math.isnan(pred) or math.isnan(meas):
        return None
    return abs(pred - meas) / abs(meas) * 100.0


def errors(m: silicon.Mapped, ttft: float | None, tpot: float | None,
           tput: float | None = None) -> dict[str, float | None]:
    if tput is None and ttft is not None and tpot is not None:
        tput = silicon.closed_loop_throughput_per_gpu(m.concurrency, m.osl, ttft, tpot, m.gpus)
    return {"ttft": ape(ttft, m.ttft_ms), "tpot": ape(tpot, m.tpot_ms),
            "tput": ape(tput, m.throughput_per_gpu)}


def stats(values: list[float]) -> str:
    if not values:
        return f"{'-':>6} {'-':>6}"
    return f"{statistics.median(values):6.1f} {statistics.fmean(values):6.1f}"


def read_aic(path: Path) -> dict[str, dict[str, str]]:
    if not path.is_file():
        return {}
    with open(path, newline="") as f:
        return {r["id"]: r for r in csv.DictReader(f)}


def _float(value: str | None) -> float | None:
    try:
        return float(value) if value not in (None, "") else None
    except ValueError:
        return None


def table(title: str, groups: dict[tuple, list[dict]], lines: list[str]) -> None:
    lines.append(title)
    head = "  ".join(f"{m.upper() + ' medAPE':>13} {'MAPE':>6}" for m in METRICS)
    lines.append(f"{'partition':34} {'n':>5}  {head}")
    for key in sorted(groups) + [("overall",)]:
        rows = ([e for g in groups.values() for e in g] if key == ("overall",) else groups[key])
        cells = "  ".join(f"{'':7}{stats([e[m] for e in rows if e[m] is not None])}"
                          for m in METRICS)
        lines.append(f"{'/'.join(key):34} {len(rows):5}  {cells}")
    lines.append("")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--csv", type=Path)
    ap.add_argument("--limit", type=int)
    ap.add_argument("--systems", nargs="*")
    ap.add_argument("--mode", choices=("agg", "disagg"),
                    help="only rows of this serving mode (before --limit)")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--aic", type=Path, default=AIC_DEFAULT)
    args = ap.parse_args(argv)

    path = args.csv or silicon.installed_csv_path()
    if path is None or not Path(path).is_file():
        print("bench_silicon_sample: skipped: no silicon_sample.csv (install aiconfigurator-core "
              "or pass --csv PATH)")
        return 0
    t0 = time.perf_counter()
    mapped = [silicon.map_row(r) for r in silicon.read_rows(path)]
    if args.systems:
        mapped = [m for m in mapped if m.system in set(args.systems)]
    if args.mode:
        mapped = [m for m in mapped if m.mode == args.mode]
    mapped = subsample(mapped, args.limit)
    results: list[dict | None] = [None] * len(mapped)
    todo = [i for i, m in enumerate(mapped) if m.reason is None]
    for i, m in enumerate(mapped):
        if m.reason is not None:
            results[i] = {"id": m.id, "reason": m.reason}
    print(f"silicon: {len(mapped)} rows from {path}, simulating {len(todo)} on "
          f"{args.workers} workers", file=sys.stderr)
    with ProcessPoolExecutor(max_workers=max(1, args.workers)) as pool:
        futures = {pool.submit(silicon.predict, mapped[i]): i for i in todo}
        for done, fut in enumerate(as_completed(futures), 1):
            results[futures[fut]] = fut.result()
            if done % 100 == 0 or done == len(todo):
                print(f"  {done}/{len(todo)}  {time.perf_counter() - t0:6.1f} s", file=sys.stderr)
    wall = time.perf_counter() - t0

    aic = read_aic(args.aic)
    ours: dict[tuple, list[dict]] = defaultdict(list)
    both_ours: dict[tuple, list[dict]] = defaultdict(list)
    both_aic: dict[tuple, list[dict]] = defaultdict(list)
    coverage: Counter = Counter()
    aic_coverage: Counter = Counter()
    records = []
    for m, r in zip(mapped, results, strict=True):
        assert r is not None
        rec = {"id": m.id, "system": m.system, "backend": m.backend, "mode": m.mode,
               "model": m.model_path, "isl": m.isl, "osl": m.osl, "concurrency": m.concurrency,
               "gpus": m.gpus, "silicon_ttft_ms": m.ttft_ms, "silicon_tpot_ms": m.tpot_ms,
               "silicon_tput_per_gpu": m.throughput_per_gpu, **r}
        if "reason" in r:
            coverage[r["reason"]] += 1
            records.append(rec)
            continue
        coverage["simulated"] += 1
        e = errors(m, r["ttft_ms"], r["tpot_ms"], r["throughput_per_gpu"])
        rec["ape"] = e
        ours[m.partition].append(e)
        a = aic.get(m.id)
        if aic:
            at, ap_ = (_float(a.get("aic_ttft_ms")), _float(a.get("aic_tpot_ms"))) if a else (None, None)
            if at is not None and ap_ is not None:
                ea = errors(m, at, ap_)
                rec["aic_ape"] = ea
                both_ours[m.partition].append(e)
                both_aic[m.partition].append(ea)
                aic_coverage["predicted"] += 1
            else:
                aic_coverage[(a or {}).get("reason") or ("disagg: not attempted" if m.mode == "disagg"
                                                         else "no AIC row")] += 1
        records.append(rec)

    lines = [f"hermes-sim vs AIConfigurator silicon_sample.csv ({path})",
             f"rows {len(mapped)}{f' (--limit {args.limit})' if args.limit else ''}, simulated "
             f"{coverage['simulated']}, wall {wall:.0f} s on {args.workers} workers",
             "APE in %; TTFT/TPOT = simulated mean vs measured mean; TPUT = output tokens/s per GPU "
             "(measured: closed loop, concurrency*osl/(ttft+(osl-1)*tpot)/gpus)", ""]
    table("hermes-sim (all simulated rows)", ours, lines)
    if both_ours:
        table("hermes-sim, rows AIConfigurator also predicts", both_ours, lines)
        table("AIConfigurator, same rows", both_aic, lines)
    lines.append("coverage:")
    for reason, n in coverage.most_common():
        lines.append(f"  {n:5}  {reason}")
    if aic:
        lines.append("AIConfigurator coverage of simulated rows:")
        for reason, n in aic_coverage.most_common():
            lines.append(f"  {n:5}  {reason}")
    print("\n".join(lines))
    if args.json:
        args.json.write_text(json.dumps({"csv": str(path), "wall_s": wall, "rows": records,
                                         "coverage": dict(coverage)}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
