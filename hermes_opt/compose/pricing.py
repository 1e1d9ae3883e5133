"""What a deployment costs per hour under a price set (every priced part, with provenance).

Priced parts: every pool's devices (GPUs/accelerators per device, CPU pools per instance) from
``usd_per_hour``, and every KV-store tier's capacity (all its copies) from
``memory_usd_per_gb_hour`` (HBM is priced with the device, i.e. 0; rack storage as SSD, LPDDR
as DRAM) unless the tier sets its own ``usd_per_gb_hour``, plus a tier's ``usd_per_hour`` per copy
(a storage server, its NIC). A tier has one copy per sharing domain. Capacity is what is bought,
so it is what is priced, in both store modes; in fixed-hit-rate mode nothing is ever stored and
the breakdown says so (``notes``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from omegaconf import DictConfig

from sim.config import SimConfig
from sim.errors import ConfigError
from sim.hardware.specs import DeviceKind
from sim.kvstore.specs import KVStoreMode

GB = 1e9
# What kind of price an entry is (``usd_per_hour.<hardware>.kind``): a list price paid by the hour,
# a committed-use or reserved rate, a spot/preemptible rate, a capacity-block booking, or a
# total-cost-of-ownership estimate of owning the hardware. A buyer weighs them differently, so the
# report names the kind next to the price.
PRICE_KINDS = ("on_demand", "reserved", "spot", "capacity_block", "tco")


@dataclass(frozen=True, slots=True)
class CostBreakdown:
    usd_per_hour: float
    parts: dict[str, float]  # pool name (or "kv_tier:<pool>/<tier>") -> $/hour
    price_set: str
    price_date: str
    notes: tuple[str, ...] = ()


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
        kind = prices[name].get("kind")
        if kind is not None and kind not in PRICE_KINDS:
            raise ConfigError(f"pricing={pricing.name!r}: usd_per_hour.{name}.kind={kind!r}: "
                              f"allowed: {', '.join(PRICE_KINDS)}")
        # GPU prices include their host CPUs; a CPU pool pays one CPU-only instance per replica
        parts[pool.name] = float(prices[name].value) * pool.num_devices
    memory = pricing.get("memory_usd_per_gb_hour") or {}
    notes = []
    for store in config.kv_stores:
        replicas = config.pool(store.pool).num_replicas
        for tier in store.tiers:
            key = tier.kind.price_key
            if tier.usd_per_gb_hour is not None:
                usd_per_gb_hour = tier.usd_per_gb_hour
            elif key in memory:
                usd_per_gb_hour = float(memory[key].value)
            else:
                raise ConfigError(f"pricing={pricing.name!r}: no memory_usd_per_gb_hour.{key} for "
                                  f"kv tier {tier.name!r} (or set kv_tiers.tiers.{tier.name}."
                                  f"usd_per_gb_hour); priced: {', '.join(sorted(memory))}")
            copies = store.copies(tier, replicas)
            parts[f"kv_tier:{store.pool}/{tier.name}"] = copies * (
                usd_per_gb_hour * tier.capacity_bytes / GB + (tier.usd_per_hour or 0.0))
        if store.mode is KVStoreMode.FIXED:
            notes.append(f"kv_tiers ({store.pool}) mode=fixed: tiers are priced at their "
                         "configured capacity, but fixed-hit-rate mode stores nothing")
    return CostBreakdown(usd_per_hour=sum(parts.values()), parts=parts,
                         price_set=str(pricing.name), price_date=str(pricing.date),
                         notes=tuple(notes))


def price_record(pricing: DictConfig, hardware_name: str) -> dict[str, Any] | None:
    """Where one hardware kind's price comes from, as plain JSON (the deployment record's per-pool
    ``price``): the set, the $/hour per unit, its provider, product, date observed, kind and trust
    grade. None when the set does not price the hardware (the cost check reports that)."""
    entry = (pricing.get("usd_per_hour") or {}).get(hardware_name)
    if entry is None:
        return None

    def text(key: str) -> str | None:
        value = entry.get(key)
        return None if value is None else str(value)
    return {"set": str(pricing.name), "set_date": str(pricing.get("date")),
            "usd_per_hour": float(entry.value), "unit": str(entry.get("unit") or "device"),
            "provider": text("provider"), "product": text("product"),
            "date_observed": text("date_observed"), "kind": text("kind"), "trust": text("trust")}
