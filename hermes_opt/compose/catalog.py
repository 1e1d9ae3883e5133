"""Catalog entries by group and name: the package's own ``hermes_opt/conf`` plus the user's.

Where an entry is looked up, first match wins (the order Hydra's search path has, so the entry
read here and the config Hydra composes for the same name are one file):

1. the user catalog root, ``$HERMES_OPT_CONFIG_DIR`` if set, else ``~/.config/hermes-opt``;
   ``hydra_plugins/hermes_user_catalog`` puts it ahead of the package's conf on Hydra's search
   path, so a user entry may shadow a shipped one of the same name;
2. the package's ``conf/``;
3. directories named on the command line (``--config-dir DIR``, ``hydra.searchpath=[file://DIR]``,
   registered with ``add_search_dirs``): Hydra appends them after the package's conf, so they
   add names but cannot shadow shipped ones.

Groups are subfolders named like the package's (``hardware/``, ``pricing/``, ...); study files
live in ``<root>/studies``. Every hardware, model and pricing entry is checked by
``catalog_schema`` when read, shipped or not; ``source`` says which file a non-shipped entry
came from (the deployment record's ``catalog_sources``).
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path

import yaml
from omegaconf import DictConfig, OmegaConf

from hermes_opt.compose import catalog_schema
from sim.errors import ConfigError

PACKAGE_DIR = Path(__file__).resolve().parent.parent  # hermes_opt/: conf/, studies/ and data/ ship inside it
CONF_DIR = PACKAGE_DIR / "conf"
STUDIES_DIR = PACKAGE_DIR / "studies"
DATA_DIR = PACKAGE_DIR / "data"
USER_ROOT_ENV = "HERMES_OPT_CONFIG_DIR"
STUDIES_GROUP = "studies"  # a user root's folder of study files

_search_dirs: list[Path] = []  # from the command line, after the package's conf (Hydra's order)


def user_root() -> Path:
    """The user catalog root (it need not exist: then it offers nothing)."""
    env = os.environ.get(USER_ROOT_ENV)
    return Path(env).expanduser() if env else Path.home() / ".config" / "hermes-opt"


def add_search_dirs(dirs: list[str | Path]) -> None:
    """Directories Hydra was told to search too; a missing or unreadable one is a ConfigError."""
    for text in dirs:
        folder = Path(str(text).removeprefix("file://")).expanduser().resolve()
        _check_readable(folder, "--config-dir / hydra.searchpath", must_exist=True)
        if folder not in _search_dirs:
            _search_dirs.append(folder)


def _check_readable(folder: Path, field: str, must_exist: bool = False) -> None:
    if not folder.exists():
        if must_exist:
            raise ConfigError(f"{field}={str(folder)!r}: no such directory")
        return
    if not folder.is_dir():
        raise ConfigError(f"{field}={str(folder)!r}: not a directory")
    if not os.access(folder, os.R_OK | os.X_OK):
        raise ConfigError(f"{field}={str(folder)!r}: directory not readable")


def roots() -> list[Path]:
    """Catalog roots, highest priority first (module docstring)."""
    user = user_root()
    _check_readable(user, USER_ROOT_ENV if os.environ.get(USER_ROOT_ENV) else "user catalog")
    return [user, CONF_DIR, *_search_dirs]


def _group_dir(root: Path, group: str) -> Path:
    return STUDIES_DIR if root == CONF_DIR and group == STUDIES_GROUP else root / group


def _files(group: str) -> dict[str, Path]:
    """Name -> the file that wins for it."""
    found: dict[str, Path] = {}
    for root in roots():
        folder = _group_dir(root, group)
        if not folder.is_dir():
            continue
        _check_readable(folder, "catalog folder")
        for path in sorted(folder.glob("*.yaml")):
            found.setdefault(path.stem, path)
    return found


def options(group: str) -> list[str]:
    """Names a config group offers (file stems, shipped and the user's), sorted."""
    return sorted(_files(group))


def path(group: str, name: str) -> Path | None:
    """The file an entry comes from; None when no root has it."""
    return _files(group).get(name)


def source(group: str, name: str) -> str | None:
    """Where a non-shipped entry comes from (its path); None for a shipped or unknown entry."""
    found = path(group, name)
    if found is None or found.is_relative_to(PACKAGE_DIR):
        return None
    return str(found)


@cache
def _load(file: Path, group: str, mtime_ns: int) -> DictConfig:
    try:
        node = OmegaConf.load(file)
    except yaml.MarkedYAMLError as err:  # the line and what the parser found there
        mark = err.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "somewhere"
        raise ConfigError(f"{file}: {where}: {err.problem or err.context}: must be valid YAML") \
            from None
    except Exception as err:  # OSError, a duplicate key (OmegaConf): one line naming the file
        first = next((line.strip() for line in str(err).splitlines() if line.strip()), "")
        raise ConfigError(f"{file}: not a readable YAML mapping ({first})") from None
    if not isinstance(node, DictConfig):
        raise ConfigError(f"{file}: must be a YAML mapping of keys, not {type(node).__name__}")
    catalog_schema.check(group, file, OmegaConf.to_container(node))
    return node


def entry(group: str, name: str, field: str | None = None) -> DictConfig:
    """One catalog entry by name; ConfigError listing the allowed names if unknown, or naming
    the file, the key and what is allowed if the entry is malformed."""
    files = _files(group)
    if not isinstance(name, str) or name not in files:
        raise ConfigError(f"{field or group}={name!r}: unknown {group}; allowed: "
                          f"{', '.join(sorted(files))}")
    file = files[name]
    return _load(file, group, file.stat().st_mtime_ns)


def _boards() -> dict[tuple[str, int], str]:
    return _boards_in(tuple(roots()))


@cache
def _boards_in(folders: tuple) -> dict[tuple[str, int], str]:
    """(product name, devices per server) -> catalog entry (the first by name), over the catalog
    folders ``folders`` (a user catalog can add boards)."""
    boards: dict[tuple[str, int], list[str]] = {}
    for name in options("hardware"):
        e = entry("hardware", name)
        product, node = e.get("product_name"), e.get("node")
        if product and node is not None:
            boards.setdefault((str(product), int(node.devices)), []).append(name)
    return {key: sorted(names)[0] for key, names in boards.items()}


def board_of(hardware: str, num_gpus: int) -> str:
    """The catalog entry of ``hardware``'s product on a server of ``num_gpus`` devices, if the
    catalog has one, else ``hardware``. For readers of whole-system results (MLPerf systems are
    whole servers): a 4-GPU H100 SXM system is an HGX 4-GPU board (GPUs linked point to point,
    a pair sharing 6 of 18 NVLinks), not half of an 8-GPU NVSwitch board."""
    e = entry("hardware", hardware)
    product, node = e.get("product_name"), e.get("node")
    if not product or node is None or int(node.devices) == num_gpus:
        return hardware
    return _boards().get((str(product), num_gpus), hardware)
