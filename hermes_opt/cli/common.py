"""What every command shares: one-line usage errors with exit status 2, and the pre-checks that turn
Hydra's multi-line errors for bad group choices or overrides into one line.

Errors in user input print one line ``<prog>: error: <field>=<value>: <what is allowed>`` to
stderr and exit with status 2; nothing prints a traceback for bad input.
"""

from __future__ import annotations

import re
import sys
from typing import Callable

from hermes_opt.compose import catalog

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

    from hermes_opt.compose import overrides as composed
    from sim.errors import ConfigError
    message = None
    try:
        with initialize_config_module(config_module="hermes_opt.conf", version_base="1.3"):
            cfg = hydra_compose(config_name=config_name, overrides=list(argv))
    except Exception as err:  # Hydra raises several types; all mean the overrides are wrong
        lines = [line.strip() for line in str(err).splitlines() if line.strip()]
        message = " ".join(lines[:3]) or type(err).__name__
    finally:
        GlobalHydra.instance().clear()
    if config_name != "sim":
        if message:
            fail(prog, message)
        return
    if message is not None:
        # an unknown key: name what the section has instead of Hydra's advice to add it
        fail(prog, composed.unknown_key_message(message, list(argv)) or message)
    try:
        composed.check_added_keys(cfg, list(argv))
    except ConfigError as err:
        fail(prog, str(err))


def run_hydra(prog: str, app: Callable[[], None]) -> None:
    """Run a Hydra app; Hydra's own config errors (exit 1) become usage errors (exit 2)."""
    try:
        app()
    except SystemExit as exc:
        if exc.code == 1:
            sys.exit(EXIT_USAGE)
        raise
