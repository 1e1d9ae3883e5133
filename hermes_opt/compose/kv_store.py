"""Hydra ``kv_tiers`` group -> ``sim.kvstore.specs.KVStoreSpec``. Units in YAML: GB, GB/s, us.

```
kv_tiers:
  pool: null            # the LLM pool it serves (null: the main pool)
  mode: lru             # lru: hit rates emerge (the eviction policy decides) | fixed: hit_rate per tier
  eviction: lru         # lru | lfu | s3fifo
  admission: always     # always | second_access
  dedup_inflight: true  # wait for a prefix being fetched or computed instead of missing
  write_through: false  # store a computed prefix in every tier, not only the top one
  node_replicas: 4      # replicas per `node` domain;  rack_replicas: replicas per `rack` domain
  client_affinity: none # none | prefer | pin  (requests of a client stay in its domain / replica)
  tiers:
    dram:
      kind: dram        # hbm | lpddr | dram | cxl | ssd | rack | remote
      enabled: true     # false drops the tier (a search knob)
      capacity_gb: 512  # per copy; the device's bandwidth_gb_per_s and latency_us
      domain: node      # replica | node | rack | cluster: who shares one copy
      link: {bandwidth_gb_per_s: 41.7, latency_us: 5, shared: false, per_device: true}
```
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from omegaconf import DictConfig

from hermes_opt.compose.values import spec_default, spec_number
from sim.errors import ConfigError
from sim.kvstore.policies import Admission, Eviction
from sim.kvstore.specs import (
    ClientAffinity,
    Domain,
    KVLinkSpec,
    KVStoreMode,
    KVStoreSpec,
    KVTierSpec,
    TierKind,
)

GB = 1e9
STORE_KEYS = ("name", "pool", "mode", "eviction", "admission", "dedup_inflight", "write_through",
              "node_replicas", "rack_replicas", "client_affinity", "tiers")
TIER_KEYS = ("kind", "enabled", "capacity_gb", "bandwidth_gb_per_s", "latency_us", "domain",
             "per_device", "link", "hit_rate", "usd_per_gb_hour", "usd_per_hour")
LINK_KEYS = ("bandwidth_gb_per_s", "latency_us", "shared", "per_device")
RENAMED = {"scope": "domain (replica | node | rack | cluster; 'shared' is now 'cluster')"}


def _check_keys(node: DictConfig, allowed: tuple[str, ...], field: str) -> None:
    for key in node:
        if key in RENAMED:
            raise ConfigError(f"{field}.{key}={node[key]!r}: renamed to {RENAMED[key]}")
        if key not in allowed:
            raise ConfigError(f"{field}.{key}: unknown key; allowed: {', '.join(allowed)}")


def _flag(node: Any, key: str, field: str, default: bool) -> bool:
    value = node.get(key, default)
    if not isinstance(value, bool):
        raise ConfigError(f"{field}.{key}={value!r}: must be true or false")
    return value


def _link(node: Any, field: str, number: Callable) -> KVLinkSpec | None:
    if node is None:
        return None
    if not isinstance(node, (DictConfig, dict)):
        raise ConfigError(f"{field}={node!r}: must be a mapping {{{', '.join(LINK_KEYS)}}}")
    _check_keys(node, LINK_KEYS, field)
    return KVLinkSpec(bandwidth_bytes_per_s=number(node, "bandwidth_gb_per_s", field, default=0.0) * GB,
                      latency_s=number(node, "latency_us", field, default=0.0) * 1e-6,
                      shared=_flag(node, "shared", field, False),
                      per_device=_flag(node, "per_device", field, False))


def kv_store_spec(node: DictConfig | None, default_pool: str, number: Callable,
                  enum_value: Callable) -> tuple[KVStoreSpec, ...]:
    if node is None:
        return ()
    _check_keys(node, STORE_KEYS, "kv_tiers")
    tiers = []
    for name, t in (node.get("tiers") or {}).items():
        field = f"kv_tiers.tiers.{name}"
        if not isinstance(t, (DictConfig, dict)):
            raise ConfigError(f"{field}={t!r}: must be a mapping of {', '.join(TIER_KEYS)}")
        _check_keys(t, TIER_KEYS, field)
        if not _flag(t, "enabled", field, True):
            continue
        tiers.append(KVTierSpec(
            name=str(name), kind=enum_value(TierKind, t.get("kind"), f"{field}.kind"),
            capacity_bytes=number(t, "capacity_gb", field, default=0.0) * GB,
            bandwidth_bytes_per_s=number(t, "bandwidth_gb_per_s", field, default=0.0) * GB,
            latency_s=number(t, "latency_us", field, default=0.0) * 1e-6,
            domain=enum_value(Domain, t.get("domain", "replica"), f"{field}.domain"),
            per_device=_flag(t, "per_device", field, False),
            link=_link(t.get("link"), f"{field}.link", number),
            hit_rate=number(t, "hit_rate", field),
            usd_per_gb_hour=number(t, "usd_per_gb_hour", field),
            usd_per_hour=number(t, "usd_per_hour", field), field_path=field))
    affinity = enum_value(ClientAffinity, node.get("client_affinity", "none"),
                          "kv_tiers.client_affinity")
    if not tiers and affinity is ClientAffinity.NONE:
        return ()  # no store at all: kv_retrieval stages miss, the pool's router routes
    return (KVStoreSpec(
        pool=str(node.get("pool") or default_pool), tiers=tuple(tiers),
        mode=enum_value(KVStoreMode, node.get("mode", spec_default(KVStoreSpec, "mode")),
                        "kv_tiers.mode"),
        eviction=enum_value(Eviction, node.get("eviction", spec_default(KVStoreSpec, "eviction")),
                            "kv_tiers.eviction"),
        admission=enum_value(Admission, node.get("admission",
                                                 spec_default(KVStoreSpec, "admission")),
                             "kv_tiers.admission"),
        dedup_inflight=_flag(node, "dedup_inflight", "kv_tiers", True),
        write_through=_flag(node, "write_through", "kv_tiers", False),
        node_replicas=spec_number(KVStoreSpec, node, "node_replicas", "kv_tiers", integer=True),
        rack_replicas=spec_number(KVStoreSpec, node, "rack_replicas", "kv_tiers", integer=True),
        client_affinity=affinity),)
