"""``hermes-sim``: one simulation of one deployment (a Hydra app), plus the ``calibrate``,
``validate`` and ``import-model`` subcommands. Prints one JSON line of results; see docs/cli.md."""

from __future__ import annotations

import gc
import os
import sys

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from hermes_opt.cli import hydra_once
from hermes_opt.cli.common import (
    EXIT_USAGE,
    check_group_choices,
    composition_error,
    fail,
    precheck_sweeper,
    run_hydra,
    skip_unknown_in_sweep,
    use_search_dirs,
)
from hermes_opt.compose import outputs, strict_json
from hermes_opt.compose.evaluate import simulate_config
from hermes_opt.compose.overrides import check_added_keys
from sim.errors import ConfigError

CONFIG_PATH = "pkg://hermes_opt.conf"
CONFIG_NAME = "sim"


def _sim_task(cfg: DictConfig) -> dict:
    hydra_cfg = HydraConfig.get()
    multirun = hydra_cfg.mode is not None and hydra_cfg.mode.name == "MULTIRUN"
    try:
        _use_config_sources(hydra_cfg)
        check_added_keys(cfg, list(hydra_cfg.overrides.task))  # sweeps skip the pre-check
        summary = simulate_config(cfg)
        _add_chosen_sources(summary, hydra_cfg)
    except ConfigError as err:
        if not multirun:
            fail("hermes-sim", str(err))
        # One point of a sweep that cannot run (does not fit, TP does not divide, ...): record
        # why next to the others' summaries and go on with the sweep.
        overrides = list(hydra_cfg.overrides.task)
        print(f"hermes-sim: infeasible: {' '.join(overrides)}: {err}", file=sys.stderr, flush=True)
        summary = {"status": "infeasible", "reason": str(err), "overrides": overrides}
        outputs.write_summary(summary, f"{hydra_cfg.runtime.output_dir}/summary.json")
        return summary
    if multirun:  # sweep jobs finish in any order (joblib): each line says which job it is
        summary["overrides"] = list(hydra_cfg.overrides.task)
    try:
        _print_line(strict_json.dumps(summary, sort_keys=True),
                    hydra_cfg.sweep.dir if multirun else None)
    except BrokenPipeError:  # the reader closed the pipe (`hermes-sim ... | head`): not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second one at exit
    if multirun:
        outputs.write_summary(summary, f"{hydra_cfg.runtime.output_dir}/summary.json")
    return summary  # the hermes_optuna sweeper reads objectives and SLOs from it


def _use_config_sources(hydra_cfg: DictConfig) -> None:
    """A sweep's job may run in another process (joblib) that never saw the command line: take
    the search directories from the job's own Hydra config, as Hydra composed it."""
    from hermes_opt.compose import catalog
    catalog.add_search_dirs([src.path for src in hydra_cfg.runtime.config_sources
                             if src.schema == "file" and src.provider in COMMAND_LINE_SOURCES])


COMMAND_LINE_SOURCES = ("command-line", "hydra.searchpath in command-line")


def _add_chosen_sources(summary: dict, hydra_cfg: DictConfig) -> None:
    """The record names the entries it can see by name (hardware, model, price set, ...); Hydra
    knows every group option chosen (a workload has no name of its own): add the files of
    those that are not shipped to ``catalog_sources``."""
    from hermes_opt.compose import catalog
    record = summary.get("deployment")
    chosen = {f"{group}/{name}": catalog.source(str(group), str(name))
              for group, name in hydra_cfg.runtime.choices.items()
              if name is not None and "/" not in str(group)}
    found = {key: where for key, where in chosen.items() if where}
    if found and isinstance(record, dict):
        record["catalog_sources"] = dict(sorted({**record.get("catalog_sources", {}),
                                                 **found}.items()))


def _print_line(line: str, sweep_dir: str | None) -> None:
    """One JSON line on stdout. Parallel sweep jobs (joblib) share the pipe, and a write longer
    than PIPE_BUF (4 KiB; a summary with its deployment record is longer) is not atomic, so two
    jobs' lines interleaved: the jobs take turns under a lock file in the sweep directory."""
    if sweep_dir is None:
        print(line, flush=True)
        return
    try:
        import fcntl
    except ImportError:  # no POSIX locks (Windows): lines may interleave under joblib
        print(line, flush=True)
        return
    os.makedirs(sweep_dir, exist_ok=True)
    with open(os.path.join(sweep_dir, ".stdout.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            print(line, flush=True)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


_sim_app = hydra.main(version_base="1.3", config_path=CONFIG_PATH, config_name=CONFIG_NAME)(_sim_task)


class SweepSummary(Callback):
    """Registered in conf/sim.yaml (``hydra.callbacks``): at the end of a ``--multirun`` sweep,
    gather the jobs' summary.json files into ``<hydra.sweep.dir>/summary.csv`` (job order)."""

    def on_multirun_end(self, config: DictConfig, **kwargs: object) -> None:
        try:
            outputs.write_sweep_csv(str(config.hydra.sweep.dir))
        except ConfigError as err:  # the sweep itself succeeded: say why there is no CSV
            print(f"hermes-sim: {err}", file=sys.stderr, flush=True)


def main() -> None:
    """``hermes-sim [calibrate|validate|import-model] ...``: the subcommands are tools, not one simulation."""
    if len(sys.argv) > 1 and sys.argv[1] == "calibrate":
        from hermes_opt.cli.calibrate_command import calibrate_main
        return calibrate_main(sys.argv[2:])
    if len(sys.argv) > 1 and sys.argv[1] == "validate":
        from hermes_opt.cli.validate_command import validate_main
        return validate_main(sys.argv[2:])
    if len(sys.argv) > 1 and sys.argv[1] == "import-model":
        from hermes_opt.cli.import_model_command import import_main
        return import_main(sys.argv[2:])
    # The modules imported so far live as long as the process: freezing them keeps the garbage
    # collector from scanning them again (the first full collection, ~25 ms CPU, fell inside
    # start-up; every later one, during the run, is shorter too).
    gc.freeze()
    argv = sys.argv[1:]
    use_search_dirs("hermes-sim", argv)
    argv, skipped = skip_unknown_in_sweep("hermes-sim", argv)
    sys.argv[1:] = argv  # what Hydra's own CLI parses below
    check_group_choices("hermes-sim", argv)
    if "hydra/sweeper=hermes_optuna" in argv:
        precheck_sweeper("hermes-sim", argv)
    if hydra_once.plain_run(argv) and run_hydra("hermes-sim", lambda: hydra_once.run_once(
            _sim_task, CONFIG_PATH, CONFIG_NAME, argv, check=_check_added_keys,
            on_error=lambda err: fail("hermes-sim", composition_error(err, argv)))):
        return  # one run, composed once; a bad override was one line
    run_hydra("hermes-sim", _sim_app)  # Hydra's own CLI: flags, --multirun, --cfg, --help
    if skipped:  # the sweep ran without its unknown names: say so in the exit status
        sys.exit(EXIT_USAGE)


def _check_added_keys(cfg: DictConfig) -> None:
    try:
        check_added_keys(cfg, list(cfg.hydra.overrides.task))
    except ConfigError as err:
        fail("hermes-sim", str(err))
