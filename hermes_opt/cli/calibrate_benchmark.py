"""``hermes-sim calibrate --from-benchmark FILE... (--deployment RECORD | --deployment-overrides
"..."`)``: parse, fit, print the error before and after per file and metric, write the profile.

The profile is written once, at the end, through a temporary file renamed into place: bad input
or an interrupted fit leaves nothing behind.
"""

from __future__ import annotations

import argparse
import math
import os
import tempfile
from pathlib import Path

from hermes_opt.calibration import bench_calibrate
from sim.errors import ConfigError


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--from-benchmark", nargs="+", default=[], metavar="FILE",
                   help="serving-benchmark outputs: vLLM `bench serve --save-result` JSON, SGLang "
                        "bench_serving JSONL, genai-perf or aiperf profile export JSON (format "
                        "read from the content)")
    p.add_argument("--deployment", default="", metavar="RECORD",
                   help="--from-benchmark: the deployment the benchmarks ran on: a deployment "
                        "artifact's record.json or a hermes-sim JSON summary")
    p.add_argument("--deployment-overrides", default="", metavar="OVERRIDES",
                   help="--from-benchmark: instead of --deployment, the hermes-sim overrides "
                        "that describe it, e.g. \"hardware=h200 model=llama3_3_70b engine=sglang "
                        "cluster.tp=4\"")
    p.add_argument("--holdout-runs", default="", metavar="N,N...",
                   help="--from-benchmark: positions (1-based, files in order, a JSON Lines "
                        "file's lines in order) of runs kept out of the fit; their error is "
                        "printed and stored as held-out error")
    p.add_argument("--served-model-name", default="",
                   help="--from-benchmark: the model name the server reported, when it is not "
                        "the deployment model's HF id or catalog name")


def run(args: argparse.Namespace, command: str, out: Path) -> Path:
    """Fit and write; ``out`` was checked by the caller before the fit."""
    if not args.name:
        raise ConfigError("--name: required (the profile's name: calibration=<name>)")
    req = bench_calibrate.Request(
        name=args.name, benchmarks=tuple(args.from_benchmark), deployment=args.deployment,
        overrides=args.deployment_overrides, served_model_name=args.served_model_name,
        max_evals=args.max_evals, fit_frontend=not args.no_frontend_latency,
        holdout_runs=_positions(args.holdout_runs), command=command)
    bench_calibrate.prepare(req)  # every check before the first simulation
    outcome = bench_calibrate.run(req)
    write_atomically(out, outcome.profile.to_yaml())
    print(f"wrote {out}  (select with calibration={args.name})")
    print("  fitted: " + ", ".join(f"{k}={v:g}" for k, v in outcome.knobs.as_dict().items())
          + f"  ({outcome.fit['evaluations']} evaluations)")
    print(f"  kv_capacity_factor: {outcome.fit['kv_capacity_factor']}")
    print(f"  frontend_latency_s: {outcome.fit['frontend_latency']}")
    print(f"  {'benchmark':44s} {'metric':32s} {'measured':>10s} {'before':>10s} {'err%':>7s} "
          f"{'after':>10s} {'err%':>7s}")
    for i, (run_, row) in enumerate(zip(outcome.runs, outcome.table)):
        label = _short(f"{'*' if outcome.held_out[i] else ''}{i + 1} {run_.where}")
        for metric, (measured, before, after) in row.items():
            print(f"  {label:44s} {metric:32s} {measured:10.2f} {before:10.2f} "
                  f"{_pct(before, measured):>7s} {after:10.2f} {_pct(after, measured):>7s}")
    groups = [("fitted", tuple(not h for h in outcome.held_out))]
    if any(outcome.held_out):
        groups.append(("held out (*)", outcome.held_out))
    for group, rows in groups:
        before = bench_calibrate.error_summary(outcome.table, 1, rows)
        after = bench_calibrate.error_summary(outcome.table, 2, rows)
        for metric in after:
            print(f"  median |error| {group:12s} {metric:32s} before "
                  f"{before[metric]['median']:6.1f} %  after {after[metric]['median']:6.1f} %  "
                  f"(n={after[metric]['n']})")
    return out


def _positions(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise ConfigError(f"--holdout-runs={text!r}: must be comma-separated run positions "
                          "(1-based)") from None


def _short(where: str) -> str:
    return where if len(where) <= 44 else where[:where.index(" ") + 1] + "..." + where[-36:]


def _pct(predicted: float, measured: float) -> str:
    if not math.isfinite(predicted):
        return "n/a"
    return f"{(predicted / measured - 1) * 100:+.1f}"


def write_atomically(path: Path, text: str) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as err:
        raise ConfigError(f"--out={str(path)!r}: cannot write there ({err.strerror})") from None
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
