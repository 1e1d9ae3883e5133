"""The engine flag table, ``conf/tables/engine_flags.yaml`` (its header explains the format): per
engine and version the command, the container images, every flag and options-file key with the
URL it was checked against, and how each simulated setting is expressed.

``check_command`` is the independent side of the contract: it reads an emitted command line (as a
shell would split it) and names every flag the table does not list for that engine version, so a
test can parse the written scripts rather than trust the code that wrote them."""

from __future__ import annotations

import re
import shlex
from functools import cache
from typing import Any

import yaml

from hermes_opt.compose.catalog import CONF_DIR
from sim.errors import ConfigError

TABLE_PATH = CONF_DIR / "tables" / "engine_flags.yaml"
RULE_KINDS = ("emit", "option", "checkpoint", "not_expressible")
# a flag token: --long-name or a one-letter -c; "-1" (a value) is not one
FLAG = re.compile(r"^(--[A-Za-z][\w-]*|-[A-Za-z])$")


@cache
def table(path: str = str(TABLE_PATH)) -> dict[str, Any]:
    """The parsed table (PyYAML, so the anchors give every flag its own source URL)."""
    try:
        with open(path, encoding="utf-8") as handle:
            data = yaml.safe_load(handle)
    except (OSError, yaml.YAMLError) as err:
        raise ConfigError(f"engine flag table {path}: {err}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"engine flag table {path}: must be a mapping of engines")
    return data


def split_engine(label: str | None) -> tuple[str, str]:
    """("vllm", "0.11") from a record's "vllm 0.11"; ("", "") for none."""
    name, _, version = str(label or "").partition(" ")
    return name, version.strip()


def display(engine: str) -> str:
    return str((table().get(engine) or {}).get("display") or engine)


def entry(engine: str, version: str) -> dict[str, Any] | None:
    """The table's entry for one engine version; None when the table has none."""
    versions = (table().get(engine) or {}).get("versions") or {}
    found = versions.get(version)
    return found if isinstance(found, dict) else None


def rule(version_entry: dict[str, Any], setting: str, value: Any = None) -> dict[str, Any]:
    """How ``setting`` (with ``value``, for settings that map values) is expressed. A setting
    the table leaves out is not expressible, never dropped."""
    found = (version_entry.get("settings") or {}).get(setting)
    if found is None:
        return {"not_expressible": f"the flag table has no rule for {setting} in this version"}
    if any(kind in found for kind in RULE_KINDS):
        return found
    by_value = found.get(str(value)) if value is not None else None
    if by_value is None:
        by_value = found.get("other")
    if by_value is None:
        return {"not_expressible": f"the flag table has no rule for {setting}={value}"}
    return by_value


def known_flags(engine: str, version: str) -> set[str]:
    """The flags of ``engine version``; ``engine`` may also name a benchmark client of the
    table's ``clients`` (``vllm_bench``, ``sglang_bench``; ``version`` ignored)."""
    client = (table().get("clients") or {}).get(engine)
    if client is not None:
        return set(client.get("flags") or {})
    return set((entry(engine, version) or {}).get("flags") or {})


def known_options(engine: str, version: str) -> set[str]:
    return set((entry(engine, version) or {}).get("options") or {})


def commands(engine: str, version: str) -> list[list[str]]:
    """The command prefixes the table names for ``engine version`` (the server's, its router's)
    or for a benchmark client."""
    client = (table().get("clients") or {}).get(engine)
    if client is not None:
        return [list(client["command"])]
    found = entry(engine, version) or {}
    router = (found.get("settings") or {}).get("disagg_router") or {}
    return [list(c) for c in (found.get("command"), router.get("command")) if c]


def check_command(line: str, engine: str, version: str) -> list[str]:
    """The flags of one command line (``vllm serve m --x 1``) that the table does not list for
    ``engine version``, and the line itself when it starts with none of the table's commands;
    [] when every flag is known. Values are not flags ("-1")."""
    flags = known_flags(engine, version)
    words = shlex.split(line, comments=True)
    prefix = next((c for c in commands(engine, version) if words[:len(c)] == c), None)
    if prefix is None:
        return [f"not a {engine} {version} command: {line[:60]}"]
    return [w.split("=", 1)[0] for w in words[len(prefix):]
            if FLAG.match(w.split("=", 1)[0]) and w.split("=", 1)[0] not in flags]


def flatten(options: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}``: the dotted keys the table lists."""
    out: dict[str, Any] = {}
    for key, value in options.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, f"{name}."))
        else:
            out[name] = value
    return out


def check_options(options: dict[str, Any], engine: str, version: str) -> list[str]:
    """The keys of an options file the table does not list for ``engine version``."""
    known = known_options(engine, version)
    return [key for key in flatten(options) if key not in known]
