"""What runs in a worker process: compose a trial's config, check it, simulate, price.

Composition follows Hydra exactly (so ``hermes-sim <overrides>`` replays a trial) but is cached:
Hydra's Compose API costs ~0.1 s per call, more than many simulations, so each worker composes
once per distinct set of *config-group* choices (``hardware=h200 scheduler=chunked``) and then
applies the trial's *value* overrides (``cluster.tp=2``) to a copy. Hydra applies value
overrides after composing the defaults list, so the result is the same config; a test checks
this against a full Hydra compose.
"""

from __future__ import annotations

import copy
import traceback
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Callable

from omegaconf import DictConfig, OmegaConf

from hermes_opt import catalog, compose
from hermes_opt.objective import Budget
from sim.errors import ConfigError
from sim.config import LLM_ROLES
from sim.hardware.memory import kv_capacity_blocks, weight_bytes_per_device

_CACHE: "OrderedDict[tuple[str, ...], DictConfig]" = OrderedDict()
_CACHE_SIZE = 64


class Infeasible(Exception):
    """A candidate that cannot run (invalid, does not fit, over budget); never a crash."""


@dataclass(frozen=True, slots=True)
class JobResult:
    trial_number: int
    replicate: int
    status: str  # "ok" | "infeasible" | "error"
    summary: dict | None = None
    reason: str = ""
    sim_s: float = 0.0  # wall time inside the evaluator (for the overhead figure)
    cpu_s: float = 0.0  # CPU time of this process inside the evaluator
    started_s: float = 0.0  # time.time() when the evaluation began (start-up figure)


def needs_hydra(override: str) -> bool:
    """Group choices and ``+``/``~`` edits go through Hydra; plain ``a.b=value`` does not."""
    key = override.split("=", 1)[0]
    return key.startswith(("+", "~")) or ("." not in key and bool(catalog.options(key)))


def hydra_compose(overrides: list[str]) -> DictConfig:
    from hydra import compose as hydra_compose_, initialize_config_module
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
        _CACHE[groups] = base
        if len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    else:
        _CACHE.move_to_end(groups)
    cfg = copy.deepcopy(base)
    for override in values:
        key, _, text = override.partition("=")
        if OmegaConf.select(cfg, key, default="__missing__") == "__missing__":
            raise ConfigError(f"{key}: not a key of the sim config (override {override!r})")
        OmegaConf.update(cfg, key, _parse_value(text), merge=False)
    return cfg


_PARSER: Any = None


def _parse_value(text: str) -> Any:
    """Hydra's own grammar, so ``8`` is an int, ``0.5`` a float and ``fp8`` a string."""
    global _PARSER
    if _PARSER is None:
        from hydra.core.override_parser.overrides_parser import OverridesParser
        _PARSER = OverridesParser.create()
    return _PARSER.parse_override(f"x={text}").value()


def check_feasible(cfg: DictConfig, budget: Budget | None) -> None:
    """Everything that makes a candidate impossible, found before simulating (Infeasible)."""
    from hermes_opt import pricing
    try:
        config = compose.sim_config(cfg)
        for pool in config.pools:
            check_memory(pool)
        cost = pricing.deployment_cost(config, cfg.pricing)
    except ConfigError as err:
        raise Infeasible(str(err)) from None
    if budget is not None:
        reason = budget.violation(cost.usd_per_hour, sum(p.num_devices for p in config.pools))
        if reason:
            raise Infeasible(reason)


def check_memory(pool: Any) -> None:
    """The simulator's own memory rules, applied before simulating: LLM pools need their weights
    plus at least one KV block per device; other model pools (embed, rerank, reward) their
    weights; CPU and retrieval pools hold no model. Other ConfigErrors the simulator raises while
    building a run (e.g. a KV tier too large) are still caught and reported as infeasible."""
    sched = pool.scheduler
    if pool.role in LLM_ROLES:
        kv_capacity_blocks(pool.model, pool.hardware, tp=pool.tp, pp=pool.pp,
                           weight_dtype=pool.weight_dtype, kv_dtype=pool.kv_dtype,
                           block_size_tokens=sched.block_size_tokens,
                           gpu_memory_utilization=sched.gpu_memory_utilization,
                           activation_reserve_fraction=sched.activation_reserve_fraction,
                           pool_name=pool.field_path)
    elif pool.model is not None:
        usable = pool.hardware.memory_bytes * sched.gpu_memory_utilization
        weights = weight_bytes_per_device(pool.model, pool.tp, pool.pp, pool.weight_dtype)
        if weights > usable:
            raise ConfigError(f"{pool.field_path}: model {pool.model.name} does not fit: needs "
                              f"{weights / 1e9:.1f} GB per device, {pool.hardware.name} offers "
                              f"{usable / 1e9:.1f} GB")


def simulate_overrides(overrides: list[str], seed: int, budget: Budget | None) -> dict:
    """The default evaluator: the real simulator, priced (the ``hermes-sim`` JSON summary)."""
    from hermes_opt.cli import simulate_config
    cfg = compose_overrides(overrides)
    cfg.seed = int(seed)
    check_feasible(cfg, budget)
    try:
        return simulate_config(cfg)
    except ConfigError as err:  # found only while simulating: still a property of the candidate
        raise Infeasible(str(err)) from None


Evaluator = Callable[[list[str], int, "Budget | None"], dict]


def run_job(evaluator: Evaluator, trial_number: int, replicate: int, overrides: list[str],
            seed: int, budget: Budget | None) -> JobResult:
    """One (trial, replicate) in a worker; never raises, so one bad candidate cannot stop a batch."""
    import time
    started, start, cpu = time.time(), time.perf_counter(), time.process_time()
    timing = lambda: {"sim_s": time.perf_counter() - start,  # noqa: E731
                      "cpu_s": time.process_time() - cpu, "started_s": started}
    try:
        summary = evaluator(list(overrides), seed, budget)
        return JobResult(trial_number, replicate, "ok", summary=summary, **timing())
    except (Infeasible, ConfigError) as err:
        return JobResult(trial_number, replicate, "infeasible", reason=str(err), **timing())
    except Exception as err:  # a simulator bug: the trial fails, the study goes on, we report it
        tb = traceback.format_exc(limit=5)
        return JobResult(trial_number, replicate, "error",
                         reason=f"{type(err).__name__}: {err}\n{tb}", **timing())
