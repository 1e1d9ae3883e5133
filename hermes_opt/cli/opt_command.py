"""``hermes-opt``: run SLO-constrained tokens-per-dollar studies and write their reports.

    hermes-opt                                  run studies/default.yaml, write its report
    hermes-opt study=<name|file.yaml> [k=v ...] run/resume a study; k=v sets a study field
                                                (n_trials=100, storage=postgresql://...) or,
                                                for any other key, a hermes-sim override of the
                                                base scenario (workload.arrival.rate_per_s=20)
    hermes-opt report <study> [storage=URL] [out=DIR]   rewrite the report (and its deploy/
                                                artifacts) from storage
    hermes-opt capacity [study=<name>] [k=v ...]         max arrival rate meeting the SLOs
    hermes-opt list                             the studies shipped in studies/

Bad input prints one line ``hermes-opt: error: ...`` and exits with status 2. Ctrl-C stops
cleanly (completed trials are kept; re-running the same command resumes) and exits with 130.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

from sim.errors import ConfigError

PROG = "hermes-opt"
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def _fail(message: str) -> None:
    print(f"{PROG}: error: {message}", file=sys.stderr)
    sys.exit(EXIT_USAGE)


def _pop(args: list[str], key: str) -> str | None:
    for arg in list(args):
        if arg.startswith(f"{key}="):
            args.remove(arg)
            return arg.split("=", 1)[1]
    return None


def _deployed(paths: dict[str, Path]) -> str:
    """The line's mention of the deployment artifacts (report/deploy/), if written."""
    return f"; deployment artifacts: {paths['deploy'].parent}" if "deploy" in paths else ""


def run(args: list[str]) -> int:
    from hermes_opt.report import study_report
    from hermes_opt.report.deploy.writer import write_all
    from hermes_opt.run import runner
    from hermes_opt.run.preflight import check_base
    from hermes_opt.study import definition as study
    name = _pop(args, "study") or "default"
    if study.kind(name) == "validation":  # not an optimization: hand it to its own command
        from hermes_opt.cli.validate_command import validate_main
        if args:
            raise ConfigError(f"study={name!r} is a validation study and takes no k=v fields "
                              f"(got {args}); use `hermes-sim validate --help` for its options")
        validate_main(["--study", name])
        return 0
    spec = study.load(name, args)
    check_base(spec)
    if spec.evaluator is not None:  # a study file that names code is trusted input (docs/opt.md)
        print(f"{PROG}: study {spec.name!r} runs code from module "
              f"{spec.evaluator.partition(':')[0]!r} named by the study file (evaluator: "
              f"{spec.evaluator}); a study file that names an evaluator is trusted input",
              file=sys.stderr)
    result, stats = runner.run_study(spec)
    stored = (result.user_attrs.get("spec") or {}).get("n_trials")
    if isinstance(stored, int) and stored != spec.n_trials:  # n_trials below the trials done:
        spec = dataclasses.replace(spec, n_trials=stored)  # the report keeps the stored target
    out_dir = spec.run_dir() / "report"
    try:
        paths = study_report.write(result, spec, out_dir, spec.storage_url(), write_all)
    except Exception as err:  # a report bug must not hide that every trial is safely stored
        from hermes_opt.study.storage import mask
        from hermes_opt.study.storage_errors import FILE_ERRNOS
        if isinstance(err, OSError) and err.errno in FILE_ERRNOS:  # full disk, read-only
            raise ConfigError(f"report: cannot write {out_dir}: {FILE_ERRNOS[err.errno]}; the "
                              f"study is saved in {mask(spec.storage_url())}: fix this and run "
                              f"`hermes-opt report {spec.name}`") from None
        print(f"{PROG}: the study is saved in {spec.storage_url()}, but writing its report "
              f"failed ({type(err).__name__}: {err}); please report this bug", file=sys.stderr)
        return 1
    print(f"{PROG}: report: {paths['html']} (also summary.md, trials.csv, pareto.png, "
          f"history.png in {out_dir}){_deployed(paths)}", file=sys.stderr)
    return EXIT_INTERRUPTED if stats.interrupted else 0


def report_cmd(args: list[str]) -> int:
    from hermes_opt.report import study_report
    from hermes_opt.report.deploy.writer import write_all
    from hermes_opt.study import definition as study
    storage_url = _pop(args, "storage")
    out = _pop(args, "out")
    if len(args) != 1 or "=" in args[0]:
        raise ConfigError(f"report {' '.join(args)!r}: usage: hermes-opt report <study> "
                          f"[storage=URL] [out=DIR]")
    name = args[0]
    if name.endswith((".yaml", ".yml")):
        name = study.load(name).name
    storage_url = storage_url or f"sqlite:///{Path('runs') / name / 'study.db'}"
    result, spec = study_report.load(storage_url, name)
    out_dir = Path(out) if out else Path("runs") / name / "report"
    paths = study_report.write(result, spec, out_dir, storage_url, write_all)
    print(f"{PROG}: report: {paths['html']}{_deployed(paths)}", file=sys.stderr)
    return 0


def capacity_cmd(args: list[str]) -> int:
    from hermes_opt.compose import strict_json
    from hermes_opt.run import capacity
    from hermes_opt.study import definition as study
    name = _pop(args, "study") or "default"
    spec = study.load(name, args, without_space=True)
    result = capacity.find_capacity(spec)
    print(strict_json.dumps(result, sort_keys=True))
    return 0


def main(argv: list[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] in ("-h", "--help", "help"):
        print(__doc__)
        return
    if len(args) > 1 and args[0] in ("report", "capacity", "list") and \
            any(a in ("-h", "--help", "help") for a in args[1:]):
        print(__doc__)  # `hermes-opt report --help` is a question, not a study named --help
        return
    try:
        if args and args[0] == "list":
            from hermes_opt.study import definition as study
            print("\n".join(study.available()))
            code = 0
        elif args and args[0] == "report":
            code = report_cmd(args[1:])
        elif args and args[0] == "capacity":
            code = capacity_cmd(args[1:])
        else:
            code = run(args)
    except ConfigError as err:
        _fail(str(err))
    except KeyboardInterrupt:  # a second Ctrl-C: completed trials are already stored
        print(f"\n{PROG}: aborted; completed trials are kept, re-run the command to resume",
              file=sys.stderr)
        code = EXIT_INTERRUPTED
    sys.exit(code)
