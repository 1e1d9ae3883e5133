"""Best deployment per vendor (NVIDIA, AMD, Google, Intel, ..., and ``mixed`` for deployments
whose model pools use more than one vendor), as in MIST's Fig. 8: which vendor mix to buy.

A trial's vendors come from its composed config (``hermes-sim`` overrides -> pools -> catalog
``vendor`` of each LLM pool's hardware), so they are right for any way a study names hardware
(the ``hardware`` group, ``deployment.*.hardware`` or ``cluster.pools.*.hardware``). CPU pools
are infrastructure, not the vendor choice, and are left out of the label.
"""

from __future__ import annotations

import math
import shlex
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import pandas as pd

from hermes_opt.compose import catalog, to_sim
from hermes_opt.compose.overrides import compose_overrides
from hermes_opt.study.definition import StudySpec
from sim.errors import ConfigError
from sim.hardware.specs import DeviceKind
from sim.roles import MODEL_ROLES

MIXED = "mixed"


@dataclass(frozen=True, slots=True)
class Layout:
    vendor: str  # one vendor, or "mixed"
    description: str  # "prefill 2 x h200 (1 replica of tp 2) + decode 6 x mi300x (6 replicas of tp 1)"


def _overrides(replay: str) -> list[str]:
    words = shlex.split(replay)[1:]  # drop "hermes-sim"
    return [w for w in words if not w.startswith("seed=")]


@lru_cache(maxsize=4096)
def _composed(replay: str) -> tuple[Any, tuple] | None:
    """(composed config, pools) of a replay command; None when it does not compose."""
    try:
        cfg = compose_overrides(_overrides(replay))
        return cfg, tuple(to_sim.pools(cfg))
    except ConfigError:
        return None


def cost_models(replay: str) -> dict[str, tuple[str, str]]:
    """{LLM pool: (cost model kind, calibration profile or "none")} of a replay command."""
    composed = _composed(replay)
    if composed is None:
        return {}
    return {p.name: (getattr(p.cost_model.kind, "value", str(p.cost_model.kind)),
                     p.cost_model.calibration or "none")
            for p in composed[1] if p.role in MODEL_ROLES and p.hardware.kind is not DeviceKind.CPU}


def offered_rate(replay: str) -> float | None:
    """The workload's offered arrival rate (requests/s) of a replay command, when it has one."""
    composed = _composed(replay)
    try:
        return float(composed[0].workload.arrival.rate_per_s) if composed else None
    except (AttributeError, KeyError, TypeError, ValueError):
        return None


@lru_cache(maxsize=4096)
def layout(replay: str) -> Layout | None:
    """The vendor label and pool layout of the trial a replay command describes."""
    composed = _composed(replay)
    if composed is None:
        return None
    pools = composed[1]
    vendors, parts = [], []
    for pool in pools:
        if pool.role not in MODEL_ROLES or pool.hardware.kind is DeviceKind.CPU:
            continue  # CPU hosts (tokenizers, encoders on Xeon) are infrastructure
        vendor = str(catalog.entry("hardware", pool.hardware.name).get("vendor", "unknown"))
        if vendor not in vendors:
            vendors.append(vendor)
        replicas = f"{pool.num_replicas} replica{'s' if pool.num_replicas != 1 else ''}"
        parts.append(f"{pool.name} {pool.num_devices} x {pool.hardware.name} ({replicas} of "
                     f"tp {pool.tp})")
    if not vendors:
        return None
    return Layout(vendor=vendors[0] if len(vendors) == 1 else MIXED, description=" + ".join(parts))


def ranked_feasible(frame: pd.DataFrame, spec: StudySpec) -> pd.DataFrame:
    """Feasible trials, best first under the first objective (ties: the earlier trial)."""
    feasible = frame[frame.outcome == "feasible"] if len(frame) else frame
    first = spec.objectives[0]
    return feasible.sort_values([f"objective:{first.metric}", "trial"],
                                ascending=[first.direction == "minimize", True])


def best_per_vendor(frame: pd.DataFrame, spec: StudySpec) -> pd.DataFrame:
    """One row per vendor label: its best feasible trial under the first objective."""
    ranked = ranked_feasible(frame, spec)
    if ranked.empty:
        return pd.DataFrame()
    col = f"objective:{spec.objectives[0].metric}"
    best: dict[str, dict] = {}
    cache: dict[str, Layout | None] = {}
    for _, row in ranked.iterrows():
        key = row.replay
        if key not in cache:
            cache[key] = layout(key)
        lay = cache[key]
        if lay is None or lay.vendor in best:
            continue
        best[lay.vendor] = {"vendor": lay.vendor, "trial": int(row.trial),
                            "deployment": lay.description, "objective": float(row[col]),
                            "usd_per_hour": float(row.get("metric:cost_usd_per_hour", math.nan)),
                            "ttft_p99_ms": float(row.get("metric:ttft_ms.p99", math.nan)),
                            "tpot_p99_ms": float(row.get("metric:tpot_ms.p99", math.nan))}
    if not best:  # no feasible trial describes a deployment (e.g. a custom evaluator's keys)
        return pd.DataFrame()
    out = pd.DataFrame(list(best.values()))
    return out.sort_values("objective", ascending=spec.objectives[0].direction == "minimize",
                           ignore_index=True)


def mixed_vs_single(table: pd.DataFrame, spec: StudySpec) -> str | None:
    """"best mixed vs best single-vendor" as one sentence (None without both)."""
    if table.empty or MIXED not in set(table.vendor) or len(table) < 2:
        return None
    mixed = table[table.vendor == MIXED].iloc[0]
    single = table[table.vendor != MIXED]
    top = single.iloc[0]  # sorted best first
    gain = (mixed.objective / top.objective - 1) * 100 if top.objective else math.nan
    cost = (mixed.usd_per_hour / top.usd_per_hour - 1) * 100 if top.usd_per_hour else math.nan
    return (f"Best mixed-vendor deployment (trial {mixed.trial}: {mixed.deployment}) vs best "
            f"single-vendor ({top.vendor}, trial {top.trial}: {top.deployment}): "
            f"{gain:+.1f}% {spec.objectives[0].metric} at {cost:+.1f}% $/hour.")


def without_feasible(frame: pd.DataFrame, table: pd.DataFrame) -> list[str]:
    """Vendor labels that were simulated but never met the SLOs (sorted)."""
    found = set(table.vendor) if not table.empty else set()
    violating = frame[frame.outcome == "violates SLO"] if len(frame) else frame
    missing = set()
    for replay in dict.fromkeys(violating.replay if len(violating) else []):
        lay = layout(replay)
        if lay is not None and lay.vendor not in found:
            missing.add(lay.vendor)
    return sorted(missing)
