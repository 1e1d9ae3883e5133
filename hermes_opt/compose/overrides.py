"""A trial's ``hermes-sim`` overrides -> its composed Hydra config.

Composition follows Hydra exactly (so ``hermes-sim <overrides>`` replays a trial) but is cached:
Hydra's Compose API costs ~0.1 s per call, more than many simulations, so each worker composes
once per distinct set of *config-group* choices (``hardware=h200 scheduler=chunked``) and then
applies the trial's *value* overrides (``cluster.tp=2``) to a copy. Hydra applies value
overrides after composing the defaults list, so the result is the same config; a test checks
this against a full Hydra compose.
"""

from __future__ import annotations

import copy
import functools
import re
from collections import OrderedDict
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

from hermes_opt.compose import catalog
from sim.errors import ConfigError

_CACHE: OrderedDict[tuple[str, ...], DictConfig] = OrderedDict()
_CACHE_SIZE = 64


def needs_hydra(override: str) -> bool:
    """Group choices and ``+``/``~`` edits go through Hydra; plain ``a.b=value`` does not."""
    key = override.split("=", 1)[0]
    return key.startswith(("+", "~")) or ("." not in key and bool(catalog.options(key)))


def hydra_compose(overrides: list[str]) -> DictConfig:
    from hydra import compose as hydra_compose_
    from hydra import initialize_config_module
    from hydra.core.global_hydra import GlobalHydra
    # The driver may itself be a Hydra app or a test holding GlobalHydra; do not clobber it.
    if GlobalHydra.instance().is_initialized():
        return hydra_compose_("sim", overrides=list(overrides))
    try:
        with initialize_config_module(config_module="hermes_opt.conf", version_base="1.3"):
            return hydra_compose_("sim", overrides=list(overrides))
    finally:
        GlobalHydra.instance().clear()


def compose_overrides(overrides: list[str]) -> DictConfig:
    """The ``sim`` config for these overrides (same result as ``hermes-sim <overrides>``)."""
    groups = tuple(o for o in overrides if needs_hydra(o))
    values = [o for o in overrides if not needs_hydra(o)]
    base = _CACHE.get(groups)
    if base is None:
        try:
            base = hydra_compose(list(groups))
        except Exception as err:  # Hydra raises several types; all mean a bad override
            raise ConfigError(f"overrides {list(groups)}: {str(err).splitlines()[0]}") from None
        for key in base:  # shared with every copy below unless an override touches it
            node = base._get_node(key)
            if isinstance(node, (DictConfig, ListConfig)):
                OmegaConf.set_readonly(node, True)
        _CACHE[groups] = base
        if len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    else:
        _CACHE.move_to_end(groups)
    cfg = _copy_touched(base, {o.split("=", 1)[0].split(".", 1)[0] for o in values})
    for override in values:
        key, _, text = override.partition("=")
        if OmegaConf.select(cfg, key, default="__missing__") == "__missing__":
            raise ConfigError(f"{key}: not a key of the sim config (override {override!r})")
        OmegaConf.update(cfg, key, _parse_value(text), merge=False)
    return cfg


def _copy_touched(base: DictConfig, touched: set[str]) -> DictConfig:
    """A copy of ``base`` in which only the top-level sections named in ``touched`` are new
    objects; the others (the price set above all: a third of a full copy's ~16 ms) are the
    cached read-only nodes themselves, so writing to one raises instead of changing the cache.
    (OmegaConf's deepcopy reuses a node found in the memo and restores its parent.)"""
    memo: dict[int, Any] = {}
    for key in base:
        node = base._get_node(key)
        if key not in touched and isinstance(node, (DictConfig, ListConfig)):
            memo[id(node)] = node
    cfg = copy.deepcopy(base, memo)
    for key in touched:
        node = cfg._get_node(key) if key in cfg else None
        if isinstance(node, (DictConfig, ListConfig)):
            OmegaConf.set_readonly(node, None)  # a fresh copy: writable like the root
    return cfg


_PARSER: Any = None


@functools.lru_cache(maxsize=4096)
def _parse_value(text: str) -> Any:
    """Hydra's own grammar, so ``8`` is an int, ``0.5`` a float and ``fp8`` a string (cached:
    the grammar costs ~1 ms a value, and studies repeat their values)."""
    global _PARSER
    if _PARSER is None:
        from hydra.core.override_parser.overrides_parser import OverridesParser
        _PARSER = OverridesParser.create()
    return _PARSER.parse_override(f"x={text}").value()


# Mappings whose keys are names the user chooses (pools, links, request types, KV tiers), so a
# ``+`` key may add to them; everywhere else the schema is closed and ``+`` would hide a typo.
OPEN_SECTIONS = ("cluster.pools.", "cluster.links.", "workload.request_types.", "kv_tiers.tiers.",
                 "hydra.")
_NOT_A_KEY = re.compile(r"Could not override '(?P<key>[^']+)'")


def check_added_keys(cfg: DictConfig, overrides: list[str]) -> None:
    """``+a.b=v`` may only add under an open section (a new pool, link, request type, tier);
    ``+cluster.tpp=2`` is a typo of an existing section and one ConfigError."""
    for override in overrides:
        if not override.startswith("+") or override.startswith("++"):
            continue
        key = override[1:].split("=", 1)[0]
        if "." not in key or key.startswith(OPEN_SECTIONS):
            continue  # +group=option appends a config group (e.g. +cluster=qa_disagg_8gpu)
        parent, leaf = key.rsplit(".", 1)
        raise ConfigError(f"{key}={override.split('=', 1)[1] if '=' in override else ''}: unknown "
                          f"key; {_known_under(cfg, parent, exclude=leaf)}")


def _known_under(cfg: DictConfig, parent: str, exclude: str | None = None) -> str:
    node = OmegaConf.select(cfg, parent, default=None)
    if isinstance(node, DictConfig):
        keys = sorted(str(k) for k in node.keys() if str(k) != exclude)
        return f"{parent} has: {', '.join(keys)}"
    return f"{parent} is not a section of the sim config"


def unknown_key_message(error_text: str, overrides: list[str]) -> str | None:
    """Hydra's "Could not override 'x'. To append to your config use +x=..." as our one line,
    without advice to add the key (an unknown key is almost always a typo), listing the keys of
    its section in the config the overrides' group choices give. None: not that error."""
    match = _NOT_A_KEY.search(error_text)
    if match is None:
        return None
    key = match["key"]
    parent = key.rsplit(".", 1)[0] if "." in key else ""
    if not parent:
        return f"{key}: unknown key of the sim config (hermes-sim --help lists every key)"
    groups = [o for o in overrides if "=" in o and "." not in o.split("=", 1)[0]]
    try:
        cfg = compose_overrides(groups)
    except ConfigError:  # a bad group choice too: name the key alone
        return f"{key}: unknown key of the sim config (hermes-sim --help lists every key)"
    return f"{key}: unknown key; {_known_under(cfg, parent)}"
