"""Where the TTFT error on silicon_sample.csv comes from: a reading of ``bench_silicon_sample.py
--json`` output (no simulation).

    python benchmarks/bench_silicon_sample.py --mode agg --json silicon.json
    python benchmarks/silicon_ttft_breakdown.py silicon.json [--mode agg|disagg]

Prints, per engine, by concurrency and by input length: n, the median predicted / measured TTFT
ratio with its p10-p90, the median APE, and the median share of the predicted TTFT spent waiting
for admission (``queue_mean_ms``; the rest is prefill steps and chunking); then a text scatter of
log2(predicted / measured) TTFT per engine (each column one factor-of-two bin).
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
from collections import defaultdict

BINS = (-5, -4, -3, -2, -1, 0, 1, 2, 3)  # log2(pred / meas) bin edges: 1/32 .. 8x
CONC = ((4, "c<=4"), (16, "c5-16"), (64, "c17-64"), (256, "c65-256"), (math.inf, "c>256"))
ISL = ((1100, "isl<=1.1k"), (2100, "isl<=2.1k"), (4200, "isl<=4.2k"), (8300, "isl<=8.3k"),
       (math.inf, "isl>8.3k"))


def bucket(value: int, edges: tuple) -> str:
    return next(label for hi, label in edges if value <= hi)


def summary(rows: list[dict]) -> str:
    ratio = sorted(r["ttft_ms"] / r["silicon_ttft_ms"] for r in rows)
    ape = [abs(x - 1) * 100 for x in ratio]
    queue = [r["queue_mean_ms"] / r["ttft_ms"] for r in rows if r.get("queue_mean_ms") is not None
             and r["ttft_ms"] > 0]
    p10, p90 = ratio[len(ratio) // 10], ratio[min(len(ratio) - 1, 9 * len(ratio) // 10)]
    share = f"{statistics.median(queue):5.2f}" if queue else "    -"
    return (f"n {len(rows):4}  pred/meas {statistics.median(ratio):5.2f} (p10 {p10:5.2f}, p90 "
            f"{p90:5.2f})  medAPE {statistics.median(ape):5.1f}  queue share {share}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("json")
    ap.add_argument("--mode", choices=("agg", "disagg"), help="only rows of this serving mode")
    args = ap.parse_args(argv)
    with open(args.json) as f:
        rows = [r for r in json.load(f)["rows"] if r.get("ttft_ms") and r.get("silicon_ttft_ms")
                and args.mode in (None, r.get("mode"))]
    by_engine: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        by_engine[r["backend"]].append(r)
    for engine in sorted(by_engine):
        print(f"{engine:8} {'all':10} {summary(by_engine[engine])}")
        for key, edges in (("concurrency", CONC), ("isl", ISL)):
            groups: dict[str, list[dict]] = defaultdict(list)
            for r in by_engine[engine]:
                groups[bucket(r[key], edges)].append(r)
            for _, label in edges:
                if groups[label]:
                    print(f"{'':8} {label:10} {summary(groups[label])}")
    print("\nscatter: rows per bin of predicted / measured TTFT (each bin a factor of two, "
          "labelled by its upper edge)")
    labels = [f"<{2.0 ** b:g}" for b in BINS] + [f">={2.0 ** BINS[-1]:g}"]
    print(f"{'':8} " + " ".join(f"{e:>8}" for e in labels))
    for engine in sorted(by_engine):
        counts = [0] * (len(BINS) + 1)
        for r in by_engine[engine]:
            x = math.log2(r["ttft_ms"] / r["silicon_ttft_ms"])
            counts[sum(x >= b for b in BINS)] += 1
        print(f"{engine:8} " + " ".join(f"{c:8}" for c in counts))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
