"""Read-only access to the catalogs shipped in ``hermes_opt/conf`` (hardware, models, prices)."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from sim.errors import ConfigError

PACKAGE_DIR = Path(__file__).resolve().parent.parent  # hermes_opt/: conf/, studies/ and data/ ship inside it
CONF_DIR = PACKAGE_DIR / "conf"
STUDIES_DIR = PACKAGE_DIR / "studies"
DATA_DIR = PACKAGE_DIR / "data"


def options(group: str) -> list[str]:
    """Names a config group offers (file stems), sorted."""
    folder = CONF_DIR / group
    return sorted(p.stem for p in folder.glob("*.yaml")) if folder.is_dir() else []


@cache
def _load(group: str, name: str) -> DictConfig:
    return OmegaConf.load(CONF_DIR / group / f"{name}.yaml")


def entry(group: str, name: str, field: str | None = None) -> DictConfig:
    """One catalog entry by name; ConfigError listing the allowed names if unknown."""
    allowed = options(group)
    if not isinstance(name, str) or name not in allowed:
        raise ConfigError(f"{field or group}={name!r}: unknown {group}; allowed: {', '.join(allowed)}")
    return _load(group, name)
