"""Serving engines (``conf/engine/<name>.yaml``): what a pool's engine decides (docs/engines.md).

An engine entry states, with sources, how the engine sizes its KV cache, its scheduler defaults,
which decode steps replay a captured graph, its host cost per step and per sequence, and which
hardware generations and weight formats it runs. ``resolve`` turns the entry and a pool's hardware
into a plain ``Engine``: the values this pool runs with (device-memory tiers applied) and the
software stack the efficiency table is keyed by (``hermes_opt.compose.efficiency``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from omegaconf import DictConfig, OmegaConf

from hermes_opt.compose import catalog
from sim.errors import ConfigError
from sim.hardware.memory import KV_MEMORY_RULES, KV_RESERVATIONS
from sim.scheduling.policies.registry import BatchPolicy

GIB = float(2**30)
KEYS = ("name", "display_name", "version", "versions", "version_fallback", "runs_on",
        "precisions", "memory", "scheduler", "by_device_memory", "cuda_graph", "host",
        "disaggregation", "sources")
DISAGG_KEYS = ("first_token", "sources")
# when the client gets a disaggregated request's first token (sim.pipeline.specs.FirstToken)
FIRST_TOKEN_RULES = ("decode_step", "decode_admit", "prefill")
SCHEDULER_KEYS = ("policy", "max_num_seqs", "max_batched_tokens", "chunk_size_tokens",
                  "block_size_tokens")
HOST_KEYS = ("graph_step_overhead_s", "step_overhead_s", "seq_overhead_s")
FALLBACKS = ("error", "nearest")


@dataclass(frozen=True, slots=True)
class Engine:
    """One pool's engine, resolved for its hardware."""

    name: str
    version: str
    stack: str  # cuda | rocm | xla | gaudi: the kernels' vendor software
    generation: str
    memory_rule: str
    memory_fraction: float
    activation_reserve_bytes: float
    scheduler: dict[str, Any]
    cuda_graph_max_batch: int
    host: dict[str, float]
    first_token: str = "decode_step"  # disaggregated serving: when the client sees token one
    note: str = ""  # a documented fallback that was taken (version), else ''

    @property
    def label(self) -> str:
        return f"{self.name} {self.version}"


def entry_of(name: Any, field: str) -> DictConfig:
    """A catalog engine by name (a pool's ``engine: <name>``); one error listing the names.
    Read-only: the entry is shared by every pool that names it."""
    node = catalog.entry("engine", name, field)
    OmegaConf.set_readonly(node, True)
    return node


def resolve(node: DictConfig | dict, hardware: DictConfig, weight_dtype: str,
            field: str) -> Engine:
    """The engine ``node`` on ``hardware``: checked (known keys, version with data, runs on this
    hardware, supports the weight format) and with its device-memory tier applied."""
    data = plain(node)
    name = str(data.get("name"))
    unknown = sorted(set(data) - set(KEYS))
    if unknown:
        raise ConfigError(f"{field}.{unknown[0]}={data[unknown[0]]!r}: unknown engine key; "
                          f"allowed: {', '.join(KEYS)}")
    version, note = _version(data, name, field)
    generation = str(hardware.get("generation") or "")
    stack = _stack(data, name, hardware, generation, field)
    _check_precision(data, name, stack, weight_dtype, hardware, field)
    memory, scheduler, graph = _tiered(data, hardware, generation)
    rule = str(memory.get("rule"))
    if rule not in KV_MEMORY_RULES:
        raise ConfigError(f"{field}.memory.rule={rule!r}: allowed: {', '.join(KV_MEMORY_RULES)}")
    missing = [k for k in SCHEDULER_KEYS if scheduler.get(k) is None]
    if missing:
        raise ConfigError(f"{field}.scheduler.{missing[0]}: missing; engine entries state "
                          f"{', '.join(SCHEDULER_KEYS)}")
    # the entry's own block and the device-memory tier's values are checked alike (a tier may
    # replace a value the user edited: the scheduler group is where to change batching)
    for where, values in (("scheduler", data.get("scheduler") or {}), ("scheduler", scheduler)):
        _check_scheduler(values, f"{field}.{where}")
    host = {k: _seconds(data.get("host") or {}, k, f"{field}.host") for k in HOST_KEYS}
    first_token = _first_token(data.get("disaggregation"), f"{field}.disaggregation")
    return Engine(name=name, version=version, stack=stack, generation=generation,
                  memory_rule=rule, memory_fraction=float(memory.get("fraction")),
                  activation_reserve_bytes=float(memory.get("activation_reserve_gib", 0)) * GIB,
                  scheduler=scheduler, cuda_graph_max_batch=_graph_max(graph, scheduler, field),
                  host=host, first_token=first_token, note=note)


# Read-only nodes (a study's untouched sections, catalog entries) are the same object for every
# candidate: their plain form is made once. The node is kept with it, so its id is never reused.
_PLAIN: dict[int, tuple[DictConfig, dict]] = {}
_PLAIN_MAX = 256


def plain(node: Any) -> dict:
    """A config node as a plain mapping (callers only read it)."""
    if not isinstance(node, DictConfig):
        return node if isinstance(node, dict) else dict(node or {})
    if not OmegaConf.is_readonly(node):
        return OmegaConf.to_container(node, resolve=True)
    hit = _PLAIN.get(id(node))
    if hit is None or hit[0] is not node:
        if len(_PLAIN) >= _PLAIN_MAX:
            _PLAIN.clear()
        hit = _PLAIN[id(node)] = (node, OmegaConf.to_container(node, resolve=True))
    return hit[1]


def set_values(node: Any) -> dict[str, Any]:
    """The keys a node sets (null = not set)."""
    return {k: v for k, v in plain(node).items() if v is not None}


def _version(data: dict, name: str, field: str) -> tuple[str, str]:
    version = str(data.get("version"))
    versions = [str(v) for v in data.get("versions") or []]
    fallback = str(data.get("version_fallback") or "error")
    if fallback not in FALLBACKS:
        raise ConfigError(f"{field}.version_fallback={fallback!r}: allowed: {', '.join(FALLBACKS)}")
    if version in versions:
        return version, ""
    if fallback == "error" or not versions:
        raise ConfigError(f"{field}.version={version!r}: no data for {name} {version}; versions "
                          f"with data: {', '.join(versions) or 'none'} (or set "
                          f"{field}.version_fallback=nearest to use the first of them, recorded)")
    return versions[0], f"version {version} has no data: using {name} {versions[0]}'s defaults"


def _stack(data: dict, name: str, hardware: DictConfig, generation: str, field: str) -> str:
    runs_on = data.get("runs_on") or {}
    for stack, generations in runs_on.items():
        if generation in (generations or []):
            return str(stack)
    where = sorted({g for gens in runs_on.values() for g in gens or []})
    raise ConfigError(f"{field}={name!r}: does not run on {hardware.get('name')} "
                      f"(generation {generation or 'unknown'}); {name} runs on: {', '.join(where)}. "
                      f"Choose another engine (conf/engine: {', '.join(catalog.options('engine'))})")


def _check_precision(data: dict, name: str, stack: str, weight_dtype: str, hardware: DictConfig,
                     field: str) -> None:
    allowed = [str(p) for p in (data.get("precisions") or {}).get(stack, [])]
    dtype = str(weight_dtype).lower()
    if allowed and dtype not in allowed:
        raise ConfigError(f"weight_dtype={weight_dtype!r}: {name} on {hardware.get('name')} "
                          f"({stack}) does not run it; allowed: {', '.join(allowed)} ({field})")


def _tiered(data: dict, hardware: DictConfig, generation: str) -> tuple[dict, dict, dict]:
    """Memory, scheduler and graph settings with the first matching device-memory tier merged in
    (engines pick budgets and graph sizes by device memory)."""
    memory, scheduler = dict(data.get("memory") or {}), dict(data.get("scheduler") or {})
    graph = dict(data.get("cuda_graph") or {})
    gib = float(hardware.get("memory_gb") or 0) * 1e9 / GIB
    for tier in data.get("by_device_memory") or []:
        if gib >= float(tier.get("min_gib", 0)) and \
                generation not in (tier.get("except_generations") or []):
            memory.update(tier.get("memory") or {})
            scheduler.update(tier.get("scheduler") or {})
            graph.update(tier.get("cuda_graph") or {})
            break
    return memory, scheduler, graph


def _check_scheduler(values: dict, field: str) -> None:
    for key in SCHEDULER_KEYS[1:]:
        value = values.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                  or value < 1):
            raise ConfigError(f"{field}.{key}={value!r}: must be a whole number >= 1 (to change "
                              f"a pool's batching, set scheduler.{key})")
    policy = values.get("policy")
    allowed = [p.value for p in BatchPolicy]
    if policy is not None and policy not in allowed:
        raise ConfigError(f"{field}.policy={policy!r}: allowed: {', '.join(allowed)}")
    reservation = values.get("kv_reservation")
    if reservation is not None and reservation not in KV_RESERVATIONS:
        raise ConfigError(f"{field}.kv_reservation={reservation!r}: allowed: "
                          f"{', '.join(KV_RESERVATIONS)}")


def _graph_max(graph: dict, scheduler: dict, field: str) -> int:
    value = graph.get("max_batch", 0)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(f"{field}.cuda_graph.max_batch={value!r}: must be a whole number >= 0")
    # a graph never holds more sequences than one step admits
    return min(value, int(scheduler["max_num_seqs"]))


def _first_token(node: Any, field: str) -> str:
    """The entry's disaggregated first-token rule (``decode_step`` when it states none)."""
    if node is None:
        return "decode_step"
    if not isinstance(node, dict):
        raise ConfigError(f"{field}={node!r}: must be a mapping of {', '.join(DISAGG_KEYS)}")
    unknown = sorted(set(node) - set(DISAGG_KEYS))
    if unknown:
        raise ConfigError(f"{field}.{unknown[0]}={node[unknown[0]]!r}: unknown key; allowed: "
                          f"{', '.join(DISAGG_KEYS)}")
    value = node.get("first_token", "decode_step")
    if value not in FIRST_TOKEN_RULES:
        raise ConfigError(f"{field}.first_token={value!r}: allowed: {', '.join(FIRST_TOKEN_RULES)}")
    return str(value)


def _seconds(node: dict, key: str, field: str) -> float:
    value = node.get(key, 0.0)
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value < 1
    if not ok:
        raise ConfigError(f"{field}.{key}={value!r}: must be a number of seconds in [0, 1)")
    return float(value)


def with_engine_defaults(scheduler: DictConfig, engine: Engine) -> dict[str, Any]:
    """The pool's scheduler settings: the ``scheduler`` group's values, its null keys filled with
    the engine's (policy, budgets, block size) and its memory rule."""
    values = set_values(scheduler)
    for key, value in engine.scheduler.items():
        values.setdefault(key, value)
    values.setdefault("gpu_memory_utilization", engine.memory_fraction)
    values.setdefault("kv_memory_rule", engine.memory_rule)
    values.setdefault("activation_reserve_bytes", engine.activation_reserve_bytes)
    return values


def engine_field(field: str) -> str:
    """Where the user chose this pool's engine (error messages)."""
    return "engine" if field == "cluster" else f"{field}.engine"


def pool_engine(node: Any, cfg: DictConfig, field: str) -> DictConfig | None:
    """A pool's engine: its own ``engine: <name>`` if set, else the top-level ``engine`` group."""
    name = node.get("engine") if node is not None else None
    if name is not None:
        return entry_of(name, field)
    return cfg.get("engine")
