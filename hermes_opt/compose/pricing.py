"""What a deployment costs per hour under a price set (every priced part, with provenance).

Priced parts: every pool's devices (GPUs/accelerators per device, CPU pools per instance) from
``usd_per_hour``, and every KV-store tier's capacity (all its copies) from
``memory_usd_per_gb_hour`` (HBM is priced with the device, i.e. 0; rack storage as SSD).
"""

from __future__ import annotations

from dataclasses import dataclass

from omegaconf import DictConfig

from sim.config import SimConfig
from sim.errors import ConfigError
from sim.hardware.specs import DeviceKind
from sim.pipeline.specs import TierScope

GB = 1e9


@dataclass(frozen=True, slots=True)
class CostBreakdown:
    usd_per_hour: float
    parts: dict[str, float]  # pool name (or "kv_tier:<pool>/<tier>") -> $/hour
    price_set: str
    price_date: str


def deployment_cost(config: SimConfig, pricing: DictConfig) -> CostBreakdown:
    prices = pricing.usd_per_hour
    parts: dict[str, float] = {}
    for pool in config.pools:
        name = pool.hardware.name
        if name not in prices:
            raise ConfigError(f"pricing={pricing.name!r}: no price for hardware {name!r}; priced: "
                              f"{', '.join(sorted(prices))}")
        unit = str(prices[name].get("unit") or "device")
        if unit not in ("device", "instance") or (
                unit == "instance" and pool.hardware.kind is not DeviceKind.CPU):
            raise ConfigError(f"pricing={pricing.name!r}: usd_per_hour.{name}.unit={unit!r}: allowed: "
                              f"device (GPUs, accelerators, TPUs; per device), instance (CPU "
                              f"hardware only; one CPU-only instance per replica)")
        # GPU prices include their host CPUs; a CPU pool pays one CPU-only instance per replica
        parts[pool.name] = float(prices[name].value) * pool.num_devices
    memory = pricing.get("memory_usd_per_gb_hour") or {}
    for store in config.kv_stores:
        replicas = config.pool(store.pool).num_replicas
        for tier in store.tiers:
            key = tier.kind.price_key
            if key not in memory:
                raise ConfigError(f"pricing={pricing.name!r}: no memory_usd_per_gb_hour.{key} for "
                                  f"kv tier {tier.name!r}; priced: {', '.join(sorted(memory))}")
            copies = replicas if tier.scope is TierScope.REPLICA else 1
            parts[f"kv_tier:{store.pool}/{tier.name}"] = (float(memory[key].value)
                                                          * tier.capacity_bytes / GB * copies)
    return CostBreakdown(usd_per_hour=sum(parts.values()), parts=parts,
                         price_set=str(pricing.name), price_date=str(pricing.date))
