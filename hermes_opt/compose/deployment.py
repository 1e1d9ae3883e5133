"""The ``deployment`` section: the main model's LLM pools from a device budget (docs/deployments.md).

With ``deployment.architecture`` null (the default) the main pool is ``cluster.*`` as written.
Otherwise the main model's pools are derived, so a study can search the layout itself:

- ``colocated``: one pool ``cluster.pool_name`` of ``deployment.colocated.hardware`` with
  ``total_devices / colocated.tp`` replicas;
- ``disaggregated``: a ``prefill`` pool with ``prefill.devices`` devices and a ``decode`` pool
  with the rest (``total_devices - prefill.devices``), each on its own hardware and TP. The P:D
  split is one knob, so every candidate has the right total and no trial is wasted.

The plan needs no change: ``generate`` on a prefill pool is served as prefill + decode
(``sim.pipeline.deployment``), and the KV moves over ``cluster.links`` or each prefill worker's
default path (``sim.pipeline.disaggregation``). ``<pool>.router`` picks the pool's router policy.
A device count that the TP does not divide, or a split outside ``1..total_devices-1``, is one
ConfigError (an infeasible trial in a study, never a crash).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from omegaconf import DictConfig, OmegaConf

from hermes_opt.compose import catalog
from hermes_opt.compose.values import spec_default
from sim.config import PoolSpec, RouterPolicy
from sim.errors import ConfigError

ARCHITECTURES = ("colocated", "disaggregated")
SCHEDULER_KEYS = ("policy", "max_num_seqs", "max_batched_tokens", "chunk_size_tokens")
MAX_DEVICES = 100_000


@dataclass(frozen=True)
class LLMPoolPlan:
    """One derived pool: what ``to_sim.pool_spec`` needs."""

    name: str
    hardware: DictConfig
    cluster: dict[str, Any]  # num_replicas, tp, pp, role, ep, attention_dp, number formats
    scheduler: DictConfig
    field: str
    engine: dict[str, Any]  # {'engine': <name>} or {} (the top-level engine group)
    router: DictConfig | None = None  # the pool's own router group (None: the top-level one)


def architecture(cfg: DictConfig) -> str | None:
    node = cfg.get("deployment")
    value = node.get("architecture") if node is not None else None
    if value is None:
        return None
    if value not in ARCHITECTURES:
        raise ConfigError(f"deployment.architecture={value!r}: allowed: "
                          f"{', '.join(ARCHITECTURES)} (or null to use cluster.* as written)")
    return str(value)


def _count(node: Any, key: str, field: str, *, low: int, high: int) -> int:
    value = node.get(key) if node is not None else None
    ok = (not isinstance(value, bool) and isinstance(value, (int, float))
          and math.isfinite(value) and float(value) == int(value) and low <= int(value) <= high)
    if not ok:
        raise ConfigError(f"{field}.{key}={value!r}: must be a whole number in {low}..{high}")
    return int(value)


def _pool(cfg: DictConfig, *, name: str, role: str, section: str, devices: int) -> LLMPoolPlan:
    field = f"deployment.{section}"
    node = cfg.deployment.get(section)
    if node is None:
        raise ConfigError(f"{field}: missing; give {{hardware, tp}}")
    tp = _count(node, "tp", field, low=1, high=MAX_DEVICES)
    if devices % tp:
        raise ConfigError(f"{field}.tp={tp}: does not divide the pool's {devices} devices "
                          f"(every replica needs tp devices)")
    hw_name = node.get("hardware") or cfg.hardware.name
    hardware = catalog.entry("hardware", hw_name, f"{field}.hardware")
    if str(hardware.get("kind")) == "cpu":
        raise ConfigError(f"{field}.hardware={hw_name!r}: a CPU cannot take the {role} role of "
                          f"{cfg.model.name} here; choose a GPU, accelerator or TPU")
    overrides = {k: v for k, v in (node.get("scheduler") or {}).items() if v is not None}
    unknown = sorted(set(overrides) - set(SCHEDULER_KEYS))
    if unknown:
        raise ConfigError(f"{field}.scheduler.{unknown[0]}={overrides[unknown[0]]!r}: unknown "
                          f"key; allowed: {', '.join(SCHEDULER_KEYS)}")
    # read-only from here on: no copy unless the pool changes a scheduler setting
    scheduler = OmegaConf.merge(cfg.scheduler, overrides) if overrides else cfg.scheduler
    main = cfg.cluster
    cluster = {  # a plain mapping: pool_spec only reads it
        "num_replicas": devices // tp, "tp": tp, "pp": 1, "role": role,
        "ep": node.get("ep", spec_default(PoolSpec, "ep")),
        "attention_dp": node.get("attention_dp", spec_default(PoolSpec, "attention_dp")),
        **{key: main.get(key, spec_default(PoolSpec, key))
           for key in ("weight_dtype", "kv_dtype", "precision_fallback")}}
    engine = {"engine": node.get("engine")} if node.get("engine") is not None else {}
    router = node.get("router")
    allowed = [p.value for p in RouterPolicy]
    if router is not None and router not in allowed:
        raise ConfigError(f"{field}.router={router!r}: allowed: {', '.join(allowed)} (or null for "
                          f"the router group's policy)")
    return LLMPoolPlan(name=name, hardware=hardware, cluster=cluster, scheduler=scheduler,
                       field=field, engine=engine,
                       router=OmegaConf.merge(cfg.router, {"policy": router}) if router else None)


def llm_pools(cfg: DictConfig) -> list[LLMPoolPlan] | None:
    """The main model's pools derived from ``deployment`` (None: use ``cluster.*``)."""
    arch = architecture(cfg)
    if arch is None:
        return None
    total = _count(cfg.deployment, "total_devices", "deployment", low=1, high=MAX_DEVICES)
    if arch == "colocated":
        return [_pool(cfg, name=str(cfg.cluster.get("pool_name", "llm")), role="colocated",
                      section="colocated", devices=total)]
    if total < 2:
        raise ConfigError(f"deployment.total_devices={total}: disaggregated needs at least 2 "
                          f"(one prefill and one decode device)")
    prefill = _count(cfg.deployment.prefill, "devices", "deployment.prefill", low=1, high=total - 1)
    return [_pool(cfg, name="prefill", role="prefill", section="prefill", devices=prefill),
            _pool(cfg, name="decode", role="decode", section="decode", devices=total - prefill)]
