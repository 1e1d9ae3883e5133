"""Hydra config -> pipeline parts of ``sim.SimConfig`` (called from ``hermes_opt.compose``).

Route targets, per-type prefixes / reasoning / arrivals / SLOs, retrieval indexes and links
(``cluster.links``); KV stores are in ``kv_store``. Units in YAML: GB, GB/s, microseconds.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from omegaconf import DictConfig, ListConfig

from hermes_opt.compose import catalog
from hermes_opt.compose.values import spec_default, spec_number
from sim.config import SLO_FIELDS, SLOSpec
from sim.errors import ConfigError
from sim.pipeline.specs import IndexKind, IndexSpec, LinkSpec, PrefixSpec, ReasoningSpec
from sim.request import RouteMode, RouteTarget

GB = 1e9


def route_targets(node: Any, field: str, number: Callable) -> tuple[RouteTarget, ...]:
    if not isinstance(node, (ListConfig, list)) or not node:
        raise ConfigError(f"{field}={node!r}: must be a non-empty list of {{model, pool, weight}}")
    targets = []
    for j, item in enumerate(node):
        where = f"{field}[{j}]"
        if not isinstance(item, (DictConfig, dict)) or not item.get("model") or not item.get("pool"):
            raise ConfigError(f"{where}={item!r}: needs model (catalog name) and pool")
        targets.append(RouteTarget(model=str(item["model"]), pool=str(item["pool"]),
                                   weight=number(item, "weight", where, default=1.0)))
    return tuple(targets)


def route_mode(value: Any, field: str, enum_value: Callable) -> RouteMode:
    return enum_value(RouteMode, value or "weighted", field)


def index_spec(node: DictConfig | None, field: str, number: Callable,
               enum_value: Callable) -> IndexSpec | None:
    if node is None:
        return None
    ints = {k: number(node, k, field, integer=True) for k in (
        "num_vectors", "dim", "bytes_per_scalar", "nlist", "nprobe", "pq_bytes", "hnsw_m",
        "ef_search") if node.get(k) is not None}
    return IndexSpec(kind=enum_value(IndexKind, node.get("kind", "ivf_pq"), f"{field}.kind"),
                     field_path=field, **ints)


def prefix_spec(node: DictConfig | None, field: str, number: Callable,
                length_spec: Callable) -> PrefixSpec | None:
    if node is None:
        return None
    allowed = ("num_prefixes", "zipf_s", "prefix_tokens", "pattern", "clients", "turns")
    unknown = [k for k in node if k not in allowed]
    if unknown:
        raise ConfigError(f"{field}.{unknown[0]}: unknown key; allowed: {', '.join(allowed)}")
    def default(key: str) -> Any:
        return spec_default(PrefixSpec, key)
    return PrefixSpec(num_prefixes=number(node, "num_prefixes", field, integer=True,
                                          default=default("num_prefixes")),
                      zipf_s=number(node, "zipf_s", field, default=default("zipf_s")),
                      # pattern trace: the lengths are the trace rows' (none to give)
                      prefix_tokens=(PrefixSpec().prefix_tokens
                                     if node.get("pattern") == "trace"
                                     and node.get("prefix_tokens") is None
                                     else length_spec(node.get("prefix_tokens"),
                                                      f"{field}.prefix_tokens")),
                      pattern=str(node.get("pattern", default("pattern"))),
                      clients=number(node, "clients", field, integer=True, default=default("clients")),
                      turns=number(node, "turns", field, integer=True, default=default("turns")))


def type_slo_spec(node: Any, field: str, number: Callable) -> SLOSpec | None:
    """A request type's own SLO: each of ``ttft_ms``/``tpot_ms``/``e2e_ms`` given replaces the
    global ``slo`` target for this type (``.inf``: no target for it); unset or null ones inherit."""
    if node is None:
        return None
    allowed = ", ".join(SLO_FIELDS)
    if not isinstance(node, (DictConfig, dict)):
        raise ConfigError(f"{field}={node!r}: must be a mapping with keys {allowed} (milliseconds)")
    for key in node:
        if key not in SLO_FIELDS:
            raise ConfigError(f"{field}.{key}={node[key]!r}: unknown key; allowed: {allowed}")
    return SLOSpec(**{key: number(node, key, field, allow_inf=True) for key in SLO_FIELDS})


def reasoning_spec(node: DictConfig | None, field: str, number: Callable,
                   length_spec: Callable) -> ReasoningSpec | None:
    if node is None:
        return None
    return ReasoningSpec(
        think_short=length_spec(node.get("think_short"), f"{field}.think_short"),
        think_long=length_spec(node.get("think_long"), f"{field}.think_long"),
        long_fraction=spec_number(ReasoningSpec, node, "long_fraction", field),
        num_rounds=spec_number(ReasoningSpec, node, "num_rounds", field, integer=True),
        feedback_tokens=spec_number(ReasoningSpec, node, "feedback_tokens", field, integer=True),
        num_samples=spec_number(ReasoningSpec, node, "num_samples", field, integer=True),
        budget_tokens=spec_number(ReasoningSpec, node, "budget_tokens", field, integer=True))


def link_specs(node: DictConfig | None, number: Callable) -> tuple[LinkSpec, ...]:
    links = []
    for name, link in (node or {}).items():
        field = f"cluster.links.{name}"
        if not link.get("src") or not link.get("dst"):
            raise ConfigError(f"{field}: needs src and dst pool names")
        links.append(LinkSpec(name=str(name), src_pool=str(link.src), dst_pool=str(link.dst),
                              bandwidth_bytes_per_s=number(link, "bandwidth_gb_per_s", field,
                                                           default=0.0) * GB,
                              latency_s=number(link, "latency_us", field, default=10.0) * 1e-6,
                              field_path=field))
    return tuple(links)


PLACEMENTS = ("cpu", "gpu", "colocated")
PLACEABLE_ROLES = ("embed", "rerank", "reward", "classifier", "retrieval")
MAX_BATCH_TIMEOUT_MS = 60_000.0


def stage_placement(node: DictConfig, field: str, host_pool: str, cfg: DictConfig,
                    number: Callable) -> tuple[DictConfig, str, float]:
    """Where a non-LLM stage pool runs (``placement``): ``cpu`` on its ``cpu_hardware``, ``gpu``
    on a pool of its own ``gpu_hardware``, ``colocated`` on the GPUs of the LLM pool
    ``colocate_with`` (default: the main pool; ``sim.pipeline.colocation.apply`` gives it the
    host's hardware, here ``cfg.hardware`` stands in). Returns ``(hardware catalog entry, host
    pool, batch timeout in s)``; without ``placement`` the pool's ``hardware`` and no host."""
    timeout_s = batch_timeout_s(node, field, number)
    placement = node.get("placement")
    if placement is None:
        return catalog.entry("hardware", node.get("hardware"), f"{field}.hardware"), "", timeout_s
    if placement not in PLACEMENTS:
        raise ConfigError(f"{field}.placement={placement!r}: allowed: {', '.join(PLACEMENTS)}")
    role = str(node.get("role"))
    if role not in PLACEABLE_ROLES:
        raise ConfigError(f"{field}.placement={placement}: only pools of role "
                          f"{', '.join(PLACEABLE_ROLES)} are placed (this one is {role})")
    if placement == "colocated":
        return cfg.hardware, str(node.get("colocate_with") or host_pool), timeout_s
    key = f"{placement}_hardware"
    if not node.get(key):
        raise ConfigError(f"{field}.{key}=None: placement={placement} needs the hardware "
                          "(a catalog name) to run the stage on")
    return catalog.entry("hardware", node.get(key), f"{field}.hardware"), "", timeout_s


def batch_timeout_s(node: DictConfig, field: str, number: Callable) -> float:
    """``batch_timeout_ms`` of a non-LLM pool, in seconds (0: dispatch as soon as a server is
    free)."""
    value = number(node, "batch_timeout_ms", field, default=0.0)
    if not 0.0 <= value <= MAX_BATCH_TIMEOUT_MS:
        raise ConfigError(f"{field}.batch_timeout_ms={value!r}: must be in 0..{MAX_BATCH_TIMEOUT_MS:.0f}")
    return value / 1e3
