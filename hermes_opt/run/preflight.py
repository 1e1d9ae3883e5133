"""Before a study runs: its evaluator and a check of its base scenario (one clear line instead of
every trial infeasible)."""

from __future__ import annotations

import importlib

from omegaconf import OmegaConf

from hermes_opt.compose.candidate import check_user_entries
from hermes_opt.compose.overrides import check_added_keys, hydra_compose, unknown_key_message
from hermes_opt.run.worker import Evaluator, simulate_overrides
from hermes_opt.study.definition import StudySpec
from sim.errors import ConfigError


def resolve_evaluator(path: str | None) -> Evaluator:
    if path is None:
        return simulate_overrides
    module, _, name = path.partition(":")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as err:
        raise ConfigError(f"evaluator={path!r}: cannot import: {err}") from None


def check_base(spec: StudySpec) -> None:
    """Fail fast (one line, exit 2) if the base scenario or a parameter path is wrong, instead of
    marking every trial infeasible. Skipped for custom evaluators, whose keys may differ."""
    if spec.evaluator is not None:
        return
    try:
        cfg = hydra_compose(list(spec.base))
    except Exception as err:  # Hydra raises several types; all mean a bad override
        lines = [line.strip() for line in str(err).splitlines() if line.strip()]
        text = " ".join(lines[:2])
        text = unknown_key_message(text, list(spec.base)) or text
        raise ConfigError(f"base {list(spec.base)}: {text}") from None
    try:
        check_added_keys(cfg, list(spec.base))
    except ConfigError as err:
        raise ConfigError(f"base: {err}") from None
    check_user_entries(cfg)  # a user's hardware, model or price set: its file, key and rule
    arrival = str(OmegaConf.select(cfg, "workload.arrival.kind", default=""))
    if spec.headroom > 1 and arrival == "max_load":
        raise ConfigError(f"headroom={spec.headroom:g}: the base workload has arrival kind "
                          f"max_load (every request at once), so there is no demand to scale; "
                          f"use poisson, gamma, trace or closed_loop arrivals, or headroom: 1")
    group_cfgs = None
    for param in spec.space.parameters:
        if param.is_group:
            continue
        if OmegaConf.select(cfg, param.name, default="__missing__") != "__missing__":
            continue
        if group_cfgs is None:  # a key may exist only under a group choice (kv_tiers=kv_design)
            group_cfgs = _group_choice_configs(spec)
        if not any(OmegaConf.select(c, param.name, default="__missing__") != "__missing__"
                   for c in group_cfgs):
            raise ConfigError(f"space.{param.name}: not a key of the sim config; parameter names "
                              f"are hermes-sim override paths such as cluster.tp, "
                              f"scheduler.max_num_seqs or workload.arrival.rate_per_s")


def _group_choice_configs(spec: StudySpec) -> list:
    """The base composed with each choice of each group parameter (one at a time)."""
    configs = []
    for param in spec.space.parameters:
        if not param.is_group:
            continue
        for choice in param.choices:
            try:
                configs.append(hydra_compose([*spec.base, f"{param.name}={choice}"]))
            except Exception as err:  # Hydra raises several types; all mean a bad choice
                first = next((ln.strip() for ln in str(err).splitlines() if ln.strip()), "")
                raise ConfigError(f"space.{param.name}: choice {choice!r}: {first}") from None
    return configs
