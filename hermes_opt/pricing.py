"""What a deployment costs per hour under a price set (every priced part, with provenance)."""

from __future__ import annotations

from dataclasses import dataclass

from omegaconf import DictConfig

from sim.config import SimConfig
from sim.errors import ConfigError


@dataclass(frozen=True, slots=True)
class CostBreakdown:
    usd_per_hour: float
    parts: dict[str, float]  # pool name -> $/hour
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
        parts[pool.name] = float(prices[name].value) * pool.num_devices
    return CostBreakdown(usd_per_hour=sum(parts.values()), parts=parts,
                         price_set=str(pricing.name), price_date=str(pricing.date))
