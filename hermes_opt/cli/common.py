"""What every command shares: one-line usage errors with exit status 2, the pre-checks of group
choices and sweeper settings, and the one line a failed composition becomes (instead of Hydra's
multi-line errors).

Errors in user input print one line ``<prog>: error: <field>=<value>: <what is allowed>`` to
stderr and exit with status 2; nothing prints a traceback for bad input.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable
from typing import TypeVar

from hermes_opt.compose import catalog
from sim.errors import ConfigError

EXIT_USAGE = 2
T = TypeVar("T")
GROUPS = ("hardware", "model", "scheduler", "router", "cost_model", "workload", "slo", "pricing",
          "calibration", "kv_tiers", "cluster")
_GROUP_ARG = re.compile(r"^[+~]?(?P<group>[a-z_]+)=(?P<value>[A-Za-z0-9_.,\-]+)$")


def fail(prog: str, message: str) -> None:
    print(f"{prog}: error: {message}", file=sys.stderr)
    sys.exit(EXIT_USAGE)


def output_dir(path: str, field: str) -> str:
    """``path`` if this command will be able to make it and write into it, checked now and made
    by whoever writes (a bad input elsewhere must leave nothing behind): a report folder under a
    file, or in a folder without write permission, is one line before hours of work, not a
    traceback after them."""
    from pathlib import Path
    folder = Path(path).expanduser().absolute()
    existing = next(p for p in (folder, *folder.parents) if p.exists())
    if not existing.is_dir():
        raise ConfigError(f"{field}={path!r}: cannot create this folder ({existing} is a file)")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ConfigError(f"{field}={path!r}: {existing} is not writable")
    return path


def check_group_choices(prog: str, argv: list[str], groups: tuple[str, ...] = GROUPS) -> None:
    """Catch unknown catalog names before Hydra does, with the list of valid ones (the user
    catalog's and the search directories' included), and a malformed user entry by its file."""
    try:
        for arg in argv:
            match = _GROUP_ARG.match(arg)
            if not match or match["group"] not in groups:
                continue
            allowed = catalog.options(match["group"])
            for value in match["value"].split(","):
                if value not in allowed:
                    fail(prog, f"{match['group']}={value!r}: unknown {match['group']}; allowed: "
                               f"{', '.join(allowed)}")
                if catalog.source(match["group"], value):  # shipped entries: checked by tests
                    catalog.entry(match["group"], value)
    except ConfigError as err:  # an unreadable user catalog or a malformed user entry
        fail(prog, str(err))


def skip_unknown_in_sweep(prog: str, argv: list[str],
                          groups: tuple[str, ...] = GROUPS) -> tuple[list[str], int]:
    """A ``--multirun`` sweep: an unknown catalog name in a list (``model=a,b,typo``) skips its
    points, as a point that cannot run does, instead of refusing the whole sweep: one line names
    it and the allowed names, the other points run, and the command exits with status 2 at the
    end (the caller's job; the count of skipped names is returned). A list with no known name
    left is one line and exit 2 at once. Plain runs are untouched (``check_group_choices``)."""
    if not ({"--multirun", "-m"} & set(argv)):
        return argv, 0
    out, skipped = [], 0
    for arg in argv:
        match = _GROUP_ARG.match(arg)
        values = match["value"].split(",") if match and match["group"] in groups else []
        if len(values) < 2:
            out.append(arg)
            continue
        try:
            allowed = catalog.options(match["group"])
        except ConfigError as err:  # an unreadable user catalog: check_group_choices says so
            fail(prog, str(err))
        known = [v for v in values if v in allowed]
        if not known:
            fail(prog, f"{match['group']}={match['value']!r}: no known {match['group']} in "
                       f"this sweep list; allowed: {', '.join(allowed)}")
        for value in values:
            if value not in allowed:
                skipped += 1
                print(f"{prog}: skipped: {match['group']}={value!r}: unknown {match['group']}; "
                      f"allowed: {', '.join(allowed)} (the sweep's other points run; exit "
                      f"status 2 at the end)", file=sys.stderr, flush=True)
        out.append(arg[:match.start("value")] + ",".join(known))
    return out, skipped


_CONFIG_DIR_FLAGS = ("--config-dir", "-cd")
_SEARCHPATH = re.compile(r"^hydra\.searchpath=\[(?P<paths>.*)\]$")


def search_dirs(argv: list[str]) -> list[str]:
    """The directories ``--config-dir DIR`` and ``hydra.searchpath=[file://DIR,...]`` add to
    Hydra's search path (``pkg://`` entries name packages, not folders: not catalog roots)."""
    dirs = []
    for i, arg in enumerate(argv):
        flag, eq, value = arg.partition("=")
        if flag in _CONFIG_DIR_FLAGS:
            value = value if eq else (argv[i + 1] if i + 1 < len(argv) else "")
            dirs.append(value)
        match = _SEARCHPATH.match(arg)
        if match:
            dirs += [p.strip().strip("'\"") for p in match["paths"].split(",")
                     if p.strip().strip("'\"").startswith("file://")]
    return [d for d in dirs if d]


def use_search_dirs(prog: str, argv: list[str]) -> None:
    """Let the catalog read what Hydra will compose from those directories."""
    try:
        catalog.add_search_dirs(search_dirs(argv))
    except ConfigError as err:
        fail(prog, str(err))


def composition_error(err: Exception, argv: list[str]) -> str:
    """A failed composition of the ``sim`` config as one line: an unknown key names what its
    section has instead of Hydra's advice to add it; a bad ``hydra.*`` value says why (OmegaConf's
    reason, which Hydra keeps in the cause); a missing group option lists the options."""
    from hermes_opt.compose import overrides as composed
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    message = " ".join(lines[:3]) or type(err).__name__
    hydra_key = _HYDRA_KEY.search(message)
    if hydra_key:  # the sim config's own sections are composed.unknown_key_message's
        return _unknown_hydra_key(hydra_key["key"], argv)
    known = composed.unknown_key_message(message, argv)
    if known:
        return known
    if "Available options in" in str(err):  # e.g. hydra/launcher=nope: every option, not 3 lines
        at = next(i for i, line in enumerate(lines) if line.startswith("Available options in"))
        options = []
        for line in lines[at + 1:]:
            if line.endswith(":"):  # "Config search path:" follows the options
                break
            options.append(line)
        return f"{lines[0]}; allowed: {', '.join(options)}"
    cause = err.__cause__
    if cause is not None and lines and lines[0].startswith("Error merging override"):
        why = next((line.strip() for line in str(cause).splitlines() if line.strip()), "")
        return f"{lines[0].removeprefix('Error merging override ')}: {why}"
    return message


_HYDRA_KEY = re.compile(r"Could not override '(?P<key>hydra\.[^']+)'")
_SWEEPER_ARG = re.compile(r"^[+~]*hydra\.sweeper\.(?P<key>[^=]+)=")
_FULL_KEY = re.compile(r"full_key: (?P<key>\S+)")
_UNKNOWN_KEY = re.compile(r"Key '(?P<key>[^']+)' (is )?not in")


def _with_hydra_node(overrides: list[str]):  # noqa: ANN202 (a DictConfig; Hydra imported lazily)
    """The ``sim`` config with Hydra's own part (``hydra.*``) for these overrides."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_module
    from hydra.core.global_hydra import GlobalHydra
    try:
        with initialize_config_module(config_module="hermes_opt.conf", version_base="1.3"):
            return hydra_compose(config_name="sim", return_hydra_config=True,
                                 overrides=list(overrides))
    finally:
        GlobalHydra.instance().clear()


def _unknown_hydra_key(key: str, argv: list[str]) -> str:
    """``hydra.foo=1``: the keys Hydra's section has, with the group choices given (the launcher
    and sweeper sections depend on them)."""
    from omegaconf import DictConfig, OmegaConf
    parent = key.rsplit(".", 1)[0]
    groups = [a for a in argv if "=" in a and "." not in a.split("=", 1)[0]]
    try:
        node = OmegaConf.select(_with_hydra_node(groups), parent, default=None)
    except Exception:  # a bad group choice as well: name the key alone
        node = None
    if not isinstance(node, DictConfig):
        return f"{key}: unknown key of Hydra's config (hermes-sim --hydra-help)"
    return f"{key}: unknown key; {parent} has: {', '.join(sorted(str(k) for k in node))}"


def _sweeper_node(overrides: list[str]):  # noqa: ANN202 (a DictConfig; Hydra imported lazily)
    return _with_hydra_node(["hydra/sweeper=hermes_optuna", *overrides]).hydra.sweeper


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


def run_hydra(prog: str, app: Callable[[], T]) -> T:
    """Run a Hydra app; Hydra's own config errors (exit 1) become usage errors (exit 2)."""
    try:
        return app()
    except SystemExit as exc:
        if exc.code == 1:
            sys.exit(EXIT_USAGE)
        raise
