"""Command-line entry points: ``hermes-sim`` (one simulation, Hydra app) and ``hermes-opt``.

Errors in user input print one line ``<prog>: error: <field>=<value>: <what is allowed>`` to
stderr and exit with status 2; nothing prints a traceback for bad input.
"""

from __future__ import annotations

import json
import re
import sys
from typing import Callable

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from hermes_opt import catalog, compose, outputs, pricing
from sim import ConfigError, simulate

EXIT_USAGE = 2
GROUPS = ("hardware", "model", "scheduler", "router", "cost_model", "workload", "slo", "pricing",
          "calibration", "kv_tiers", "cluster")
_GROUP_ARG = re.compile(r"^[+~]?(?P<group>[a-z_]+)=(?P<value>[A-Za-z0-9_.,\-]+)$")


def fail(prog: str, message: str) -> None:
    print(f"{prog}: error: {message}", file=sys.stderr)
    sys.exit(EXIT_USAGE)


def check_group_choices(prog: str, argv: list[str], groups: tuple[str, ...] = GROUPS) -> None:
    """Catch unknown catalog names before Hydra does, with the list of valid ones."""
    for arg in argv:
        match = _GROUP_ARG.match(arg)
        if not match or match["group"] not in groups:
            continue
        allowed = catalog.options(match["group"])
        for value in match["value"].split(","):
            if value not in allowed:
                fail(prog, f"{match['group']}={value!r}: unknown {match['group']}; allowed: "
                           f"{', '.join(allowed)}")


def precheck_overrides(prog: str, config_name: str, argv: list[str]) -> None:
    """Compose once with the Compose API so a bad key or value is one line, not Hydra's page."""
    if any(a in ("-m", "--multirun", "--help", "-h", "--hydra-help", "--info", "-c", "--cfg")
           or a.startswith(("--", "hydra")) for a in argv):
        return  # sweeps and Hydra's own flags go straight to Hydra
    from hydra import compose as hydra_compose, initialize_config_module
    from hydra.core.global_hydra import GlobalHydra
    try:
        with initialize_config_module(config_module="hermes_opt.conf", version_base="1.3"):
            hydra_compose(config_name=config_name, overrides=list(argv))
    except Exception as err:  # Hydra raises several types; all mean the overrides are wrong
        lines = [line.strip() for line in str(err).splitlines() if line.strip()]
        fail(prog, " ".join(lines[:3]) or type(err).__name__)
    finally:
        GlobalHydra.instance().clear()


def run_hydra(prog: str, app: Callable[[], None]) -> None:
    """Run a Hydra app; Hydra's own config errors (exit 1) become usage errors (exit 2)."""
    try:
        app()
    except SystemExit as exc:
        if exc.code == 1:
            sys.exit(EXIT_USAGE)
        raise


# --- hermes-sim --------------------------------------------------------------------------
def simulate_config(cfg: DictConfig) -> dict:
    """Compose, simulate, price; return the JSON summary (also used by the optimizer)."""
    want_requests = bool(cfg.output.get("requests_path"))
    want_trace = bool(cfg.output.get("trace_path"))
    config = compose.sim_config(cfg, record_requests=want_requests, record_trace=want_trace)
    result = simulate(config, int(cfg.seed))
    cost = pricing.deployment_cost(config, cfg.pricing)
    summary = dict(result.summary)
    hours_per_s = 1 / 3600
    usd_per_s = cost.usd_per_hour * hours_per_s
    summary.update({
        "cost_usd_per_hour": cost.usd_per_hour,
        "cost_breakdown_usd_per_hour": cost.parts,
        "output_tokens_per_usd": summary["output_tokens_per_s"] / usd_per_s if usd_per_s else 0.0,
        "goodput_tokens_per_usd": (summary["goodput_output_tokens_per_s"] / usd_per_s
                                   if usd_per_s else 0.0),
        "price_set": cost.price_set, "price_date": cost.price_date,
        "num_devices": sum(p.num_devices for p in config.pools),  # accelerators + CPU hosts
        "num_accelerators": sum(p.num_accelerators for p in config.pools),
        "calibration": {p.name: p.cost_model.calibration or "none" for p in config.pools},
        "seed": int(cfg.seed),
    })
    summary = compose.numpy_safe(summary)
    if want_requests:
        outputs.write_requests(result, cfg.output.requests_path)
    if want_trace:
        outputs.write_trace(result, cfg.output.trace_path)
    if cfg.output.get("summary_path"):
        outputs.write_summary(summary, cfg.output.summary_path)
    return summary


@hydra.main(version_base="1.3", config_path="conf", config_name="sim")
def _sim_app(cfg: DictConfig) -> dict:
    try:
        summary = simulate_config(cfg)
    except ConfigError as err:
        fail("hermes-sim", str(err))
    print(json.dumps(summary, sort_keys=True), flush=True)
    hydra_cfg = HydraConfig.get()
    if hydra_cfg.mode is not None and hydra_cfg.mode.name == "MULTIRUN":
        summary["overrides"] = list(hydra_cfg.overrides.task)
        outputs.write_summary(summary, f"{hydra_cfg.runtime.output_dir}/summary.json")
    return summary  # the hermes_optuna sweeper reads objectives and SLOs from it


# `hermes-sim <subcommand> ...`: tools that are not a single simulation.
SUBCOMMANDS = {
    "calibrate": ("hermes_opt.calibration.cli", "calibrate_main"),
    "validate": ("hermes_opt.validation.cli", "validate_main"),
}


def sim_main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] in SUBCOMMANDS:
        import importlib
        module, function = SUBCOMMANDS[sys.argv[1]]
        getattr(importlib.import_module(module), function)(sys.argv[2:])
        return
    check_group_choices("hermes-sim", sys.argv[1:])
    precheck_overrides("hermes-sim", "sim", sys.argv[1:])
    run_hydra("hermes-sim", _sim_app)


def opt_main() -> None:
    from hermes_opt.opt_cli import main  # the optimizer pulls in Optuna; keep hermes-sim light
    main()
