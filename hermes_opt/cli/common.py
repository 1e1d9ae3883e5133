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
    if "hydra/sweeper=hermes_optuna" in argv:
        precheck_sweeper(prog, argv)
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


_SWEEPER_ARG = re.compile(r"^[+~]*hydra\.sweeper\.(?P<key>[^=]+)=")
_FULL_KEY = re.compile(r"full_key: (?P<key>\S+)")
_UNKNOWN_KEY = re.compile(r"Key '(?P<key>[^']+)' (is )?not in")


def _sweeper_node(overrides: list[str]):  # noqa: ANN202 (a DictConfig; Hydra imported lazily)
    from hydra import compose as hydra_compose, initialize_config_module
    from hydra.core.global_hydra import GlobalHydra
    try:
        with initialize_config_module(config_module="hermes_opt.conf", version_base="1.3"):
            cfg = hydra_compose(config_name="sim", return_hydra_config=True,
                                overrides=["hydra/sweeper=hermes_optuna", *overrides])
            return cfg.hydra.sweeper
    finally:
        GlobalHydra.instance().clear()


def _composes(overrides: list[str]) -> bool:
    try:
        _sweeper_node(overrides)
    except Exception:  # any composition error
        return False
    return True


def precheck_sweeper(prog: str, argv: list[str]) -> None:
    """``hydra/sweeper=hermes_optuna``: compose the ``hydra.sweeper.*`` settings and check them as
    a study would, so a bad setting is one line naming it, not an OmegaConf traceback from
    inside Hydra's launch."""
    mine = [a for a in argv if _SWEEPER_ARG.match(a)]
    try:
        node = _sweeper_node(mine)
    except Exception as err:  # Hydra/OmegaConf raise several types; the cause names the key
        cause = err.__cause__ or err
        lines = [line.strip() for line in str(cause).splitlines() if line.strip()]
        full = next((m["key"] for m in map(_FULL_KEY.search, lines) if m), "")
        # the override as typed whose key is the longest prefix of the failing key
        typed = max((a for a in mine
                     if full.startswith("hydra.sweeper." + _SWEEPER_ARG.match(a)["key"])),
                    key=len, default=None) or next((a for a in mine if a in str(err)), None)
        if typed is None:  # a parse error names no key: find the override that fails alone
            typed = next((a for a in mine if not _composes([a])), None)
        what = lines[0] if lines else type(err).__name__
        if "BudgetConf" in what and not _UNKNOWN_KEY.match(what):
            what = "must be a mapping {max_usd_per_hour: <number>, max_devices: <int>} or null"
        unknown = _UNKNOWN_KEY.match(what)
        if unknown and full:
            parent = full.rsplit(".", 1)[0]
            defaults = _sweeper_node([])
            node = defaults if parent == "hydra.sweeper" else defaults.get(parent.split(".")[-1])
            keys = [k for k in (node or {}) if k != "_target_"]
            what = (f"unknown key {unknown['key']!r}"
                    + (f"; allowed: {', '.join(keys)}" if keys else ""))
        fail(prog, f"{typed or full or 'hydra.sweeper'}: {what}")
        return
    from omegaconf import OmegaConf

    from hermes_opt.study.definition import from_dict
    from sim.errors import ConfigError
    settings = OmegaConf.to_container(node, resolve=True)
    budget = {k: v for k, v in (settings.get("budget") or {}).items() if v is not None}
    try:
        from_dict({"name": settings["study_name"], "n_trials": settings["n_trials"],
                   "batch_size": settings["batch_size"], "seed": settings["seed"],
                   "sampler": settings["sampler"], "objectives": settings["objectives"],
                   "constraints": settings["constraints"], "budget": budget or None})
    except ConfigError as err:
        text = str(err)
        fail(prog, "hydra.sweeper." + ("study_name" + text[4:] if text.startswith("name=")
                                       else text))


def run_hydra(prog: str, app: Callable[[], None]) -> None:
    """Run a Hydra app; Hydra's own config errors (exit 1) become usage errors (exit 2)."""
    try:
        app()
    except SystemExit as exc:
        if exc.code == 1:
            sys.exit(EXIT_USAGE)
        raise
