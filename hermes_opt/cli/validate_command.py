"""``hermes-sim validate``: reproduce every expressible measurement and write the report.

Bad input prints one line ``hermes-sim validate: error: ...`` and exits with status 2.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import textwrap

from hermes_opt.cli.calibrate_command import CSV_COLUMNS, OneLineParser
from hermes_opt.cli.common import output_dir
from sim.errors import ConfigError

PROG = "hermes-sim validate"

EPILOG = """\
what it reproduces (see docs/validation.md):
  splitwise        prefill, decode-step and end-to-end times (Splitwise perf_model.csv), cost model
  vidur            per-layer non-attention operator times and all-reduce times (Vidur CSVs)
  trtllm max load  TensorRT-LLM v0.17 throughput table: sim.simulate, all requests at t=0
  trtllm online    TensorRT-LLM v0.14 QPS sweep: sim.simulate, Poisson arrivals (TTFT, ITL, throughput)
  vllm itl fits    decode latency vs context (intercept, slope) at concurrency 1, cost model
  mlperf           MLPerf Inference results tables (reference/mlperf*.csv, --measurements): LoadGen
                   Offline (all samples at t=0, each replica kept busy, output tokens/s and
                   samples/s over the steady middle of the run) and Server/Interactive
                   (Poisson: SLO capacity = highest rate meeting p99 TTFT/TPOT vs the target QPS;
                   TTFT/TPOT/throughput at the target QPS); datasets mlperf-offline/-server/-interactive
every row is predicted by the uncalibrated roofline and, where a profile exists for its source and
hardware, by the calibrated model; errors are reported on held-out rows (not fitted on).

outputs in --out: summary.md, summary.json, rows.csv (predicted vs measured per row), errors.csv,
targets.csv, coverage.csv, coverage_rows.csv, splitwise_tp_split.csv, *.png plots.
input files under --shared-dir (or the shipped copies): hw-traces/splitwise/perf_model.csv,
hw-traces/vidur/compute__*__mlp.csv and network__*__all_reduce.csv, reference/measurements.csv,
reference/mlperf*.csv (every MLPerf results table there).

MLPerf tables (--measurements FILE, or reference/mlperf*.csv) have the columns of measurements.csv:
  source, url, engine, engine_version, model, precision, gpu, num_gpus, tp, pp, isl, osl,
  concurrency_or_qps_or_batch, metric, value, unit, notes   (required: model, precision, gpu,
  num_gpus, concurrency_or_qps_or_batch, metric, value; any other column is an error)
  model      benchmark id (llama2-70b-99, mixtral-8x7b, llama3.1-405b, ...), looked up in
             conf/tables/mlperf_benchmarks.yaml (dataset lengths, latency constraints)
  gpu        any spelling conf/tables/aliases.yaml maps ("NVIDIA H100-SXM-80GB", "AMD Instinct
             MI300X-...", ...); --aliases FILE adds your own
  concurrency_or_qps_or_batch   "Offline ...", "Server: target_qps=<q> ...", "Interactive: target_qps=<q>"
  metric     offline_/server_/interactive_ + output_tokens_per_s, samples_per_s,
             completed_samples_per_s, mean_TTFT, p99_TTFT, mean_TPOT, p99_TPOT, mean_E2E_latency
             (ms/s/us units for latencies); others are listed in coverage as "metric not mapped"
  rows the simulator cannot express (num_gpus=0 CPU systems, unknown GPU/model/benchmark, a
             layout that does not exist, a value that is not a number) are counted in
             coverage_rows.csv with their reason; the rest of the table still runs
  notes      "weights=fp16 (quantization ...)" -> FP8 on FP8 hardware; "constraints: p99
             TTFT<=2000 ms, p99 TPOT<=200 ms" overrides the benchmark table
  url        .../<submitter>/results/<system>/<benchmark>/<scenario>/... groups rows into submissions

Their accepted columns (the same readers as `hermes-sim calibrate`):
""" + CSV_COLUMNS


def parser() -> OneLineParser:
    p = OneLineParser(prog=PROG, description=textwrap.fill(
        "Validation study: reproduce the published measurements the simulator can express and "
        "report predicted vs measured, error per source and metric (mean and tail), coverage "
        "and plots.", 96), epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--study", default="validation",
                   help="validation study name in studies/ or a YAML path (default validation): "
                        "data location, report directory, CI subset and targets")
    p.add_argument("--shared-dir", default=None,
                   help="directory with hw-traces/ and reference/measurements.csv, or 'none' for "
                        "the copies shipped in hermes_opt/data (default: the study's shared_dir, "
                        "../shared, when present, else the shipped copies); a path that is not "
                        "such a folder is an error")
    p.add_argument("--out", default=None,
                   help="report directory (default: the study's out, validation_report)")
    p.add_argument("--fast", action="store_true",
                   help="CI subset: every Splitwise row, every 9th Vidur row, serving rows on H100 "
                        "only, single-GPU MLPerf submissions on the study's fast.mlperf_hardware")
    p.add_argument("--measurements", action="append", default=[], metavar="FILE",
                   help="another table in the columns of reference/measurements.csv (e.g. an MLPerf "
                        "v5.0 results table); repeatable; MLPerf scenario rows are simulated as "
                        "LoadGen does, other serving rows as reference/measurements.csv's")
    p.add_argument("--aliases", action="append", default=[], metavar="FILE",
                   help="hardware/model alias table merged over conf/tables/aliases.yaml (its "
                        "entries are tried first); repeatable")
    p.add_argument("--mlperf-benchmarks", action="append", default=[], metavar="FILE",
                   help="MLPerf benchmark table merged over conf/tables/mlperf_benchmarks.yaml "
                        "(datasets, length distributions, latency constraints); repeatable")
    p.add_argument("--fail-on-miss", action="store_true",
                   help="exit 1 when a target of issue 5 is missed (held-out calibrated error)")
    return p


def validate_main(argv: list[str]) -> None:
    args = parser().parse_args(list(argv))
    from hermes_opt.validation import study
    try:
        shared_dir = study.check_shared_dir(args.shared_dir) if args.shared_dir is not None else None
        spec = study.load_spec(args.study)
        if args.shared_dir is None:
            shared_dir = spec.shared_dir  # the default: used when present, else the shipped copies
        out_dir = output_dir(str(args.out or spec.out), "--out")
        result = study.run(shared_dir=shared_dir, out_dir=out_dir,
                           fast=args.fast, spec=spec, measurements=args.measurements,
                           aliases_files=args.aliases, mlperf_benchmarks=args.mlperf_benchmarks,
                           command="hermes-sim validate " + " ".join(shlex.quote(a) for a in argv))
    except ConfigError as err:
        print(f"{PROG}: error: {err}", file=sys.stderr)
        sys.exit(2)
    t = result.targets
    print(f"wrote {result.out_dir}/summary.md ({len(result.rows)} rows)")
    for r in t.itertuples(index=False):
        print(f"  {r.status:6s} {r.dataset:24s} {r.metric:22s} n={r.n_held_out:4d} "
              f"median={r.calibrated_median:6.2f}% p90={r.calibrated_p90:6.2f}% "
              f"(roofline {r.roofline_median:6.2f}% / {r.roofline_p90:6.2f}%)  target {r.target}")
    totals = result.coverage[result.coverage.source.str.startswith(("ALL ", "ALL rows of"))]
    for r in totals.itertuples(index=False):  # coverage.csv's totals: in scope first (docs/validation.md)
        print(f"  coverage {r.source}: {r.reproduced}/{r.in_scope} in-scope rows ({r.coverage_pct}%), "
              f"{r.reproduced}/{r.rows} of all rows ({r.coverage_all_pct}%), "
              f"{r.out_of_scope} out of scope")
    if args.fail_on_miss and (t.status == "MISSED").any():
        sys.exit(1)
