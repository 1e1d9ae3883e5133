"""Validation study: wall time and the issue-5 figures (held-out error, calibrated vs roofline).

    python benchmarks/bench_validation.py [--shared-dir ../shared] [--fast] [--out validation_report]

Prints one JSON line per target (dataset, metric, calibrated and roofline median/p90 on held-out
rows, status) and one line with the wall time. The same figures are in <out>/summary.md.
"""

from __future__ import annotations

import argparse
import json
import time

from hermes_opt.validation import study


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared-dir", default="../shared")
    parser.add_argument("--out", default="validation_report")
    parser.add_argument("--fast", action="store_true")
    args = parser.parse_args()
    start = time.perf_counter()
    result = study.run(shared_dir=args.shared_dir, out_dir=args.out, fast=args.fast,
                       command="python benchmarks/bench_validation.py"
                               + (" --fast" if args.fast else ""))
    wall = time.perf_counter() - start
    for r in result.targets.to_dict(orient="records"):
        print(json.dumps({"benchmark": "validation_target", **r}, default=float))
    if not result.tp_split.empty:
        for r in result.tp_split.to_dict(orient="records"):
            print(json.dumps({"benchmark": "splitwise_tp4_heldout", **r}, default=float))
    print(json.dumps({"benchmark": "validation_wall_s", "fast": args.fast, "rows": len(result.rows),
                      "wall_s": round(wall, 2)}))


if __name__ == "__main__":
    main()
