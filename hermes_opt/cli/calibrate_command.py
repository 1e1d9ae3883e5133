"""``hermes-sim calibrate``: fit a calibration profile from measurements and write it to the user
catalog's ``calibration/`` folder (``$HERMES_OPT_CONFIG_DIR`` or ``~/.config/hermes-opt``), where
``calibration=<name>`` finds it, or to ``--out``; never into the installed package.

Bad input prints one line ``hermes-sim calibrate: error: ...`` and exits with status 2.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import textwrap
from pathlib import Path

from hermes_opt.calibration import calibrate
from hermes_opt.calibration.recipes import RECIPES, recipe_argv
from hermes_opt.cli import calibrate_benchmark
from hermes_opt.cli.common import output_dir
from hermes_opt.compose import calibration_profile as profile
from hermes_opt.compose import catalog
from hermes_opt.compose.calibration_profile import Holdout
from sim.errors import ConfigError

PROG = "hermes-sim calibrate"

CSV_COLUMNS = """\
  --splitwise CSV     Splitwise perf_model.csv: model, hardware, tensor_parallel, batch_size,
                      prompt_size, token_size, prompt_time (ms, prefill of the batch),
                      token_time (ms per decode step); repeats are reduced to their median.
  --steps CSV         your engine's step timings, one row per measured step shape:
                        model           catalog name (e.g. llama3_1_8b) or a known HF id
                        tp              tensor-parallel degree
                        phase           prefill | decode
                        batch_size      prompts in the prefill step / sequences in the decode step
                        prompt_tokens   prefill: tokens per prompt (decode: any, e.g. 0)
                        context_tokens  decode: mean context per sequence during the step(s)
                        time_ms         measured step time in milliseconds
                        hardware        (optional) catalog name; default --hardware
  --vidur-compute CSV [CSV ...]  Vidur compute__<gpu>__<org>__<model>__mlp.csv per-operator
                      profiles (per-layer ms of norms, projections, rope, MLP, add vs num_tokens, TP)
  --vidur-network CSV Vidur network__<gpu>_<topology>__all_reduce.csv (ms vs fp16 elements, workers)
  --serving CSV       serving-level table shaped like reference/measurements.csv: source, model,
                      precision, gpu, tp, isl, osl, concurrency_or_qps_or_batch ('max load ...',
                      'QPS=4', 'QPS=INF', 'concurrency=16', 'max-concurrency 1, 50 prompts',
                      '50 requests, no concurrency limit'), metric (output_throughput_total,
                      output_throughput, output_throughput_per_gpu, total_token_throughput,
                      request_throughput; mean/median/pNN + TTFT, TPOT, ITL, E2E, e.g. mean_TTFT,
                      p99_TPOT, avg_ttft_ms: docs/validation.md), value, unit (tokens/s, req/s, ms,
                      s); optional engine, engine_version (engine settings by version), notes
                      ('500 requests'). Fitted by running the simulator on the training rows.
  --mlperf CSV        MLPerf results table in the same columns (reference/mlperf_v4.1.csv): one
                      row per metric of a submission's mlperf_log_summary.txt. The rows of
                      --fit-submitters on --hardware (model family --model-family) are fitted by
                      simulating the LoadGen scenarios (Offline throughput, Server mean TPOT at the
                      target QPS); the other submitters' rows are the held-out set.
"""

BENCHMARKS = """\
  --from-benchmark FILE...  serving-benchmark client outputs, with --deployment RECORD (a
                      deployment artifact's record.json or a hermes-sim JSON summary) or
                      --deployment-overrides "hardware=... model=... engine=... cluster.tp=...":
                      fits prefill and decode efficiency scales, the KV capacity factor and the
                      serving front end's latency by re-simulating the deployment at each
                      benchmark's load; prints the error before and after per file and metric
                      (--holdout-runs: runs kept out of the fit; docs/validation.md).
"""

EPILOG = "accepted inputs (exactly one kind per run):\n" + CSV_COLUMNS + BENCHMARKS + """
held-out rows: a row is held out if any coordinate is in a --holdout-* list; with no list, every
--holdout-every-th configuration (sorted) is held out (0 = fit on everything, no held-out error).

examples:
  hermes-sim calibrate --recipe splitwise_h100_fp16 --out p.yaml  # rebuild a shipped profile
  hermes-sim calibrate --name my_h100 --hardware h100_sxm --engine "vLLM 0.8" --steps steps.csv
  hermes-sim calibrate --list-recipes
  hermes-sim calibrate --name my_h200 --from-benchmark online.jsonl \\
      --deployment-overrides "hardware=h200 model=llama3_3_70b engine=sglang cluster.tp=4"
"""


def parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog=PROG, description=textwrap.fill(
        "Fit the roofline cost model's free parameters (compute/memory efficiency curves, attention "
        "efficiency, collective latency and bandwidth, per-step/layer/sequence overheads) for one "
        "(hardware, engine, precision) and write a calibration profile "
        "(conf/calibration/<name>.yaml) with its provenance, fit error and held-out error.", 96),
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--recipe", help=f"rebuild a shipped profile ({', '.join(RECIPES)})")
    p.add_argument("--list-recipes", action="store_true", help="print the shipped recipes and exit")
    p.add_argument("--name", help="profile name (file <user catalog>/calibration/<name>.yaml)")
    p.add_argument("--hardware", help="catalog hardware name the measurements ran on")
    p.add_argument("--engine", default="unspecified engine", help="engine and version (provenance)")
    p.add_argument("--precision", default="bf16", help="bf16 (also fp16) | fp8: weights and KV cache")
    p.add_argument("--model-family", default="dense", help="dense | moe: models the profile composes with")
    p.add_argument("--variant", default="", help="Splitwise hardware variant: '' or 'pcap' (power-capped)")
    p.add_argument("--splitwise", default="", metavar="CSV", help="see 'accepted inputs' below")
    p.add_argument("--steps", default="", metavar="CSV", help="see 'accepted inputs' below")
    p.add_argument("--vidur-compute", nargs="+", default=[], metavar="CSV",
                   help="see 'accepted inputs' below")
    p.add_argument("--vidur-network", default="", metavar="CSV", help="see 'accepted inputs' below")
    p.add_argument("--serving", default="", metavar="CSV", help="see 'accepted inputs' below")
    p.add_argument("--serving-source", default="",
                   help="substring of the serving CSV's `source` column selecting one measurement set")
    p.add_argument("--mlperf", default="", metavar="CSV", help="see 'accepted inputs' below")
    p.add_argument("--fit-submitters", default="NVIDIA",
                   help="--mlperf: comma-separated submitters whose rows are fitted; every other "
                        "submitter on the hardware is held out (default NVIDIA)")
    p.add_argument("--models", default="",
                   help="step data (--splitwise/--steps): comma-separated catalog models to fit; "
                        "rows of other models are left out (default: every catalog model)")
    p.add_argument("--holdout-models", default="", help="comma-separated catalog models held out")
    p.add_argument("--holdout-tp", default="", help="comma-separated TP degrees held out")
    p.add_argument("--holdout-batch", default="", help="comma-separated batch sizes held out")
    p.add_argument("--holdout-prompt", default="", help="comma-separated prompt sizes held out")
    p.add_argument("--holdout-decode-tokens", default="",
                   help="comma-separated Splitwise token_size values held out")
    p.add_argument("--holdout-isl-osl", default="",
                   help="comma-separated ISL/OSL pairs held out, e.g. 128/2048")
    p.add_argument("--holdout-num-tokens", default="", help="comma-separated Vidur num_tokens held out")
    p.add_argument("--holdout-every", type=int, default=3,
                   help="without holdout lists: hold out every N-th configuration (0 = none)")
    p.add_argument("--start-profile", default="", help="start the fit from this profile's parameters")
    p.add_argument("--max-evals", type=int, default=120,
                   help="serving fits: simulator evaluations of the training rows (default 120)")
    p.add_argument("--no-frontend-latency", action="store_true",
                   help="serving fits: keep the serving front end's latency (HTTP, tokenizer, "
                        "Triton ensemble; added to TTFT and E2E) at 0 instead of fitting it")
    p.add_argument("--shrink", type=float, default=1.0,
                   help="operator fits: move the fitted terms only this fraction of the way from "
                        "the roofline defaults (1 = plain fit; helps transfer across model sizes)")
    calibrate_benchmark.add_arguments(p)
    p.add_argument("--out", default="", help="output path (default <user catalog>/calibration/<name>.yaml: "
                   "$HERMES_OPT_CONFIG_DIR or ~/.config/hermes-opt; never inside the package)")
    return p


class OneLineParser(argparse.ArgumentParser):
    """Usage errors are one line ``<prog>: error: ...`` with exit status 2 (no usage dump)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        sys.exit(2)


def _ints(text: str, flag: str) -> tuple[int, ...]:
    try:
        return tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise ConfigError(f"{flag}={text!r}: must be comma-separated integers") from None


def _words(text: str) -> tuple[str, ...]:
    return tuple(x.strip() for x in text.split(",") if x.strip())


def request_from(args: argparse.Namespace, argv: list[str]) -> calibrate.Request:
    if not args.name or not args.hardware:
        raise ConfigError("--name and --hardware are required (or use --recipe NAME)")
    holdout = Holdout(models=_words(args.holdout_models), tp=_ints(args.holdout_tp, "--holdout-tp"),
                      batch=_ints(args.holdout_batch, "--holdout-batch"),
                      prompt=_ints(args.holdout_prompt, "--holdout-prompt"),
                      decode_tokens=_ints(args.holdout_decode_tokens, "--holdout-decode-tokens"),
                      isl_osl=_words(args.holdout_isl_osl),
                      num_tokens=_ints(args.holdout_num_tokens, "--holdout-num-tokens"),
                      every=args.holdout_every)
    start = profile.load(args.start_profile).params if args.start_profile else calibrate.RooflineParams()
    if args.max_evals < 1:
        raise ConfigError(f"--max-evals={args.max_evals}: must be >= 1")
    return calibrate.Request(
        name=args.name, hardware=args.hardware, engine=args.engine, precision=args.precision,
        model_family=args.model_family, variant=args.variant, models=_words(args.models),
        splitwise=args.splitwise,
        steps=args.steps, vidur_compute=tuple(args.vidur_compute), vidur_network=args.vidur_network,
        serving=args.serving, serving_source=args.serving_source, holdout=holdout, start=start,
        max_evals=args.max_evals, fit_frontend_latency=not args.no_frontend_latency,
        shrink=args.shrink, mlperf=args.mlperf, fit_submitters=_words(args.fit_submitters),
        command=command_line(argv))


def command_line(argv: list[str]) -> str:
    """The command as a user would retype it (shipped data paths relative to the repository)."""
    data = str(catalog.DATA_DIR)
    return "hermes-sim calibrate " + " ".join(shlex.quote(a.replace(data, "hermes_opt/data")) for a in argv)


def output_path(name: str, out: str) -> Path:
    """Where the profile goes: ``--out``, else the user catalog's ``calibration/<name>.yaml``.
    Never inside the installed package (an upgrade would lose it, and it could replace a shipped
    profile that reports and tests rely on); never a shipped profile's name in the user catalog,
    where it would shadow the shipped one for every later run."""
    user_dir = catalog.user_root() / profile.GROUP
    path = Path(out).expanduser() if out else user_dir / f"{name}.yaml"
    field = f"--out={out!r}" if out else f"--name={name!r}"
    if path.resolve().is_relative_to(catalog.PACKAGE_DIR):
        raise ConfigError(f"{field}: {path.resolve()} is inside the installed package "
                          f"({catalog.PACKAGE_DIR}); write to the user catalog (leave out --out: "
                          f"{user_dir}) or to another file")
    shipped = (catalog.CONF_DIR / profile.GROUP / f"{path.stem}.yaml").is_file()
    if shipped and path.resolve().parent == user_dir.resolve():
        raise ConfigError(f"{field}: {path.stem!r} is a shipped calibration profile, which a "
                          f"profile in the user catalog ({user_dir}) would shadow; choose another "
                          f"--name, or write elsewhere with --out FILE")
    # a folder under a file, or not writable: said now, not after a fit of minutes
    output_dir(str(path.parent), "--out" if out else "the user catalog's calibration folder")
    return path


def main(argv: list[str]) -> Path:
    """Parse, fit, write; returns the profile path. Raises ConfigError on bad input."""
    p = parser()
    args = p.parse_args(argv)
    if args.list_recipes:
        for name in RECIPES:
            print(f"{name}: {command_line(recipe_argv(name))}")
        raise SystemExit(0)
    if args.from_benchmark:
        if not args.name:
            raise ConfigError("--name: required (the profile's name: calibration=<name>)")
        out = output_path(args.name, args.out)  # before the fit
        return calibrate_benchmark.run(args, command_line(argv), out)
    if args.deployment or args.deployment_overrides:
        raise ConfigError("--deployment/--deployment-overrides: only with --from-benchmark FILE...")
    recipe = args.recipe
    if args.recipe:
        if args.recipe not in RECIPES:
            raise ConfigError(f"--recipe={args.recipe!r}: unknown; allowed: {', '.join(RECIPES)}")
        out_arg = args.out
        argv = recipe_argv(args.recipe)
        args = p.parse_args(argv)
        args.out = out_arg
    req = request_from(args, argv)
    out = output_path(req.name, args.out)  # before the fit, which can take minutes
    result = calibrate.run(req)
    if recipe:
        result.provenance["recipe"] = f"hermes-sim calibrate --recipe {recipe}"
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ConfigError(f"--out={str(out)!r}: cannot create its folder ({err.strerror})") from None
    try:
        out.write_text(result.to_yaml())
    except OSError as err:  # a full disk, a read-only folder
        raise ConfigError(f"--out={str(out)!r}: cannot write ({err.strerror})") from None
    prov = result.provenance
    print(f"wrote {out}")
    print(f"  split: {prov['split']}  rows fit={prov['rows']['fit']} held_out={prov['rows']['held_out']}")
    for label, key in (("fit error", "fit_error_pct"), ("held-out error", "heldout_error_pct"),
                       ("uncalibrated held-out error", "uncalibrated_heldout_error_pct")):
        for group, stats in prov[key].items():
            if stats.get("n"):
                print(f"  {label:28s} {group:22s} n={stats['n']:4d} median={stats['median']:6.2f}% "
                      f"p90={stats['p90']:6.2f}% mean={stats['mean']:6.2f}%")
    return out


def calibrate_main(argv: list[str]) -> None:
    try:
        main(list(argv))
    except ConfigError as err:
        print(f"{PROG}: error: {err}", file=sys.stderr)
        sys.exit(2)
