"""Best deployment per vendor (NVIDIA, AMD, Google, Intel, ..., and ``mixed`` for deployments
whose model pools use more than one vendor), as in MIST's Fig. 8: which vendor mix to buy.

A trial's vendor and layout come from the deployment record stored with it
(``hermes_opt.compose.candidate``: the catalog ``vendor`` of each model pool's accelerator), so
they are right for any way a study names hardware (the ``hardware`` group, ``deployment.*.hardware``
or ``cluster.pools.*.hardware``) and the report never composes a configuration again. CPU pools
are infrastructure, not the vendor choice, and are left out of the label.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import pandas as pd

from hermes_opt.compose.candidate import MIXED
from hermes_opt.study.definition import StudySpec

RECORD = "_deployment"  # trial-table column holding the stored deployment record (not in CSVs)


@dataclass(frozen=True, slots=True)
class Layout:
    vendor: str  # one vendor, or "mixed"
    description: str  # "prefill 2 x h200 (1 replica of tp 2) + decode 6 x mi300x (6 replicas of tp 1)"


def record(row: Any) -> dict | None:
    """The trial's deployment record (None: a custom evaluator's trial, or not composable)."""
    value = row.get(RECORD)
    return value if isinstance(value, dict) else None


def cost_models(row: Any) -> dict[str, tuple[str, str]]:
    """{model pool on an accelerator: (cost model kind, calibration profile or "none")}."""
    dep = record(row)
    return {p["name"]: (p["cost_model"], p["calibration"]) for p in dep["pools"]
            if p["accelerated_model"]} if dep else {}


def offered_rate(row: Any) -> float | None:
    """The workload's offered arrival rate (requests/s) of the trial, when it has one."""
    dep = record(row)
    rate = dep.get("offered_rate_per_s") if dep else None
    return float(rate) if isinstance(rate, (int, float)) else None


def layout(row: Any) -> Layout | None:
    """The vendor label and pool layout of the trial."""
    dep = record(row)
    if dep is None or not dep.get("vendor") or not dep.get("layout"):
        return None
    engines = list(dict.fromkeys(p["engine"] for p in dep.get("pools", []) if p.get("engine")))
    # the engine is part of the deployment: name it where one engine serves every LLM pool
    # (mixed engines are in each pool's record and the trials table's engine column)
    suffix = f" on {engines[0]}" if len(engines) == 1 else ""
    return Layout(vendor=str(dep["vendor"]), description=str(dep["layout"]) + suffix)


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
    for _, row in ranked.iterrows():
        lay = layout(row)
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
