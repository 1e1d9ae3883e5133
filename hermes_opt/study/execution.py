"""Three study keys about how trials are evaluated, parsed and checked here:

* ``screening`` (part of the definition: it decides which candidates are simulated) — the
  analytical tier (``sim.analytic``) answers candidates that cannot meet an SLO even if the
  estimate were off by the factor ``1 + margin``, or that cannot beat the best simulated trial
  even if off by ``1 + objective_margin``; the simulator runs the rest
  (``hermes_opt.run.screen``).
* ``executor`` (a run setting: results do not depend on it) — where the simulations run:
  ``loky`` (processes on this machine, the default) or ``dask`` (a Dask distributed cluster at
  ``address``, or a local one started for the study when no address is given).
* ``capacity`` — the bisection on the arrival rate that capacity mode and the
  ``capacity_tokens_per_usd`` objective run (``hermes_opt.run.capacity``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from hermes_opt.compose import catalog
from sim.errors import require

EXECUTORS = ("loky", "dask")
# Metrics the analytical tier estimates (constraints on others are never screened).
ESTIMATED_LATENCIES = ("ttft_ms", "tpot_ms", "e2e_ms")
ESTIMATED_OBJECTIVES = ("slo_tokens_per_usd", "output_tokens_per_usd")
# benchmarks/analytic_error.py on dse_chat_wide (1,147 simulated candidates) and dse_chat: among
# candidates the simulator finds SLO-feasible, estimated / simulated p99 latency was at most
# 1.12 and simulated / estimated objective at most 1.06; the margins leave 4x and 2.5x that
# (docs/opt.md "Screening").
DEFAULT_MARGIN = 0.5  # latency constraints
DEFAULT_OBJECTIVE_MARGIN = 0.15  # the objective (dominance by the best simulated value)


@dataclass(frozen=True, slots=True, kw_only=True)
class ScreeningSpec:
    enabled: bool = False
    margin: float = DEFAULT_MARGIN
    objective_margin: float = DEFAULT_OBJECTIVE_MARGIN

    def __post_init__(self) -> None:
        require(isinstance(self.enabled, bool), "screening.enabled", self.enabled,
                "must be true or false")
        for key in ("margin", "objective_margin"):
            value = getattr(self, key)
            require(isinstance(value, (int, float)) and not isinstance(value, bool)
                    and math.isfinite(value) and 0 <= value <= 10, f"screening.{key}", value,
                    "must be a number in [0, 10]: the estimate's error factor minus 1 that a "
                    "pruned candidate must clear (0.5: off by up to 1.5x)")

    def definition(self) -> list[Any] | None:
        return [self.margin, self.objective_margin] if self.enabled else None

    def to_raw(self) -> dict[str, Any]:
        return {"enabled": self.enabled, "margin": self.margin,
                "objective_margin": self.objective_margin}


@dataclass(frozen=True, slots=True, kw_only=True)
class ExecutorSpec:
    kind: str = "loky"
    address: str | None = None  # dask: tcp://host:8786; None = a local cluster for the study

    def __post_init__(self) -> None:
        require(self.kind in EXECUTORS, "executor.kind", self.kind,
                f"allowed: {', '.join(EXECUTORS)}")
        require(self.address is None or (self.kind == "dask" and isinstance(self.address, str)
                                         and "://" in self.address), "executor.address",
                self.address, "a Dask scheduler address like tcp://host:8786 (executor kind dask "
                "only; omit it for a local cluster)")

    def to_raw(self) -> dict[str, Any]:
        return {"kind": self.kind, "address": self.address}


@dataclass(frozen=True, slots=True, kw_only=True)
class CapacitySpec:
    """Capacity mode: the highest arrival rate at which a deployment still meets the SLOs."""

    param: str = "workload.arrival.rate_per_s"
    low: float = 0.5
    high: float = 64.0
    rel_tol: float = 0.05

    def __post_init__(self) -> None:
        require(0 < self.low < self.high, "capacity.low", self.low,
                f"must be > 0 and < capacity.high={self.high}")
        require(0 < self.rel_tol < 1, "capacity.rel_tol", self.rel_tol, "must be in (0, 1)")


def parse_screening(raw: Any) -> ScreeningSpec:
    if raw is None:
        return ScreeningSpec()
    if isinstance(raw, bool):
        return ScreeningSpec(enabled=raw)
    require(isinstance(raw, dict), "screening", raw,
            "must be {enabled: true|false, margin: <number>, objective_margin: <number>}")
    unknown = sorted(set(raw) - {"enabled", "margin", "objective_margin"})
    require(not unknown, "screening", unknown, "allowed: enabled, margin, objective_margin")
    return ScreeningSpec(enabled=raw.get("enabled", False),
                         margin=raw.get("margin", DEFAULT_MARGIN),
                         objective_margin=raw.get("objective_margin", DEFAULT_OBJECTIVE_MARGIN))


def parse_executor(raw: Any) -> ExecutorSpec:
    if raw is None:
        return ExecutorSpec()
    if isinstance(raw, str):
        require(raw in EXECUTORS, "executor", raw, f"allowed: {', '.join(EXECUTORS)} (or "
                "{kind: dask, address: tcp://host:8786})")
        return ExecutorSpec(kind=raw)
    require(isinstance(raw, dict), "executor", raw,
            "must be loky, dask or {kind: dask, address: tcp://host:8786}")
    unknown = sorted(set(raw) - {"kind", "address"})
    require(not unknown, "executor", unknown, "allowed: kind, address")
    return ExecutorSpec(kind=raw.get("kind", "loky"), address=raw.get("address"))


def parse_price_ranges(raw: Any) -> tuple[tuple[str, float, float], ...]:
    """``price_ranges: {h200: [3.5, 5.0]}``: the $/hour range of a device's price the robustness
    analysis draws from (uniformly) instead of its trust grade's spread (docs/opt.md)."""
    if raw is None:
        return ()
    require(isinstance(raw, dict), "price_ranges", raw,
            "must be a mapping {<hardware>: [low_usd_per_hour, high_usd_per_hour]}")
    out = []
    known = catalog.options("hardware")
    for name, pair in sorted(raw.items(), key=lambda kv: str(kv[0])):
        field = f"price_ranges.{name}"
        require(name in known, "price_ranges", name,
                f"unknown hardware; allowed: {', '.join(known)}")
        require(isinstance(pair, (list, tuple)) and len(pair) == 2 and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
            for v in pair) and 0 < pair[0] <= pair[1] <= 1e4, field, pair,
            "must be [low, high] $/hour per device with 0 < low <= high <= 10000")
        out.append((str(name), float(pair[0]), float(pair[1])))
    return tuple(out)
