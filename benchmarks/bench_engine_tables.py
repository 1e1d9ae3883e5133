"""The engine model on TensorRT-LLM's published throughput tables (a source it is not fitted on).

    python benchmarks/bench_engine_tables.py [--measurements ../shared/reference/measurements.csv]

Every row of the TensorRT-LLM perf-overview tables in ``measurements.csv`` (v0.17 max-load
throughput: Llama 3.1 8B and Mistral 7B on H100/H200/GH200/L40S/A100; v0.14 online sweep: Llama
3.1 8B BF16 on H100/H200) is reproduced as ``hermes-sim validate`` sets it up
(``calibration.serving.setup``: the tables' published engine settings), with the roofline terms
of the TensorRT-LLM engine entry and the efficiency table (``mlperf_engine.params_of``) instead of
a profile fitted on those rows. Prints median / p90 absolute % error per table and metric, beside
the uncalibrated roofline's. Without ``../shared`` it uses the shipped copy of the table.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from hermes_opt.calibration import mlperf_engine, serving
from hermes_opt.calibration.observations import ape, load_serving
from hermes_opt.compose import catalog, engines
from sim.cost.roofline import RooflineParams

SHIPPED = catalog.DATA_DIR / "reference" / "trtllm_measurements.csv"
TABLES = ("TensorRT-LLM perf-overview (v0.17 table)",
          "TensorRT-LLM perf-overview (online serving table, v0.14)")


def engine_params(hardware: str, precision: str) -> RooflineParams:
    engine = engines.resolve(catalog.entry("engine", "trtllm"), catalog.entry("hardware", hardware),
                             precision, "engine")
    return mlperf_engine.params_of(engine, precision)[0]


def main(argv: list[str]) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    default = Path("../shared/reference/measurements.csv")
    p.add_argument("--measurements", type=Path, default=default if default.is_file() else SHIPPED)
    args = p.parse_args(argv)
    rows = [r for r in load_serving(args.measurements)[0] if r.source in TABLES]
    print(f"{len(rows)} TensorRT-LLM table rows from {args.measurements}", file=sys.stderr)
    groups: dict[tuple[str, str], list] = {}
    for row in rows:
        groups.setdefault((row.source, row.metric), []).append(row)
    for (source, metric), group in sorted(groups.items()):
        measured = np.array([r.measured for r in group])
        by_setup: dict[tuple[str, str], list] = {}
        for r in group:
            by_setup.setdefault((r.hardware, r.precision), []).append(r)
        predicted = {id(r): v for (hw, prec), rs in by_setup.items()
                     for r, v in zip(rs, serving.simulate_rows(rs, engine_params(hw, prec)))}
        engine = ape(np.array([predicted[id(r)] for r in group]), measured)
        roof = ape(np.array(serving.simulate_rows(group, RooflineParams())), measured)
        print(f"{source[:48]:48s} {metric:24s} n={len(group):3d}  engine median "
              f"{np.nanmedian(engine):5.1f} % p90 {np.nanpercentile(engine, 90):5.1f} %   "
              f"roofline median {np.nanmedian(roof):5.1f} % p90 {np.nanpercentile(roof, 90):5.1f} %")


if __name__ == "__main__":
    main(sys.argv[1:])
