"""The stored assessment (``hermes_opt.run.assess``) and its robustness analysis
(``hermes_opt.report.robustness``) in the form the decision card reads (``card_inputs``), and the
recommendation they lead to: the best configuration, or a simpler one within its noise."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from hermes_opt.report import robustness
from hermes_opt.report.products import pool_hardware
from hermes_opt.study.definition import StudySpec


def _product(sku: str) -> str:
    """A device's product name ("NVIDIA H200 SXM"), or its catalog name."""
    return pool_hardware({"hardware": sku}).product


def _break_even_text(item: dict[str, Any], layouts: dict[int, str]) -> str:
    side = "below" if item["side"] == "alternative" else "above"
    trial = item["alternative_trial"]
    return (f"{_product(item['device'])} is {side} ${item['break_even_usd_per_hour']:.2f}/hour "
            f"(now ${item['now_usd_per_hour']:.2f}; trial {trial}, {layouts.get(trial, '')})")


def view(spec: StudySpec, frame: pd.DataFrame, assessment: dict | None) -> dict[str, Any]:
    """``{"headroom", "robustness", "load_table", "choice", "skipped"}`` for the card; {} without
    an assessment."""
    if not assessment:
        return {}
    if assessment.get("skipped"):
        return {"skipped": assessment["skipped"]}
    objective = (spec.objectives[0].metric, spec.objectives[0].direction)
    ranges = {name: (low, high) for name, low, high in spec.price_ranges}
    analysis = robustness.analyse(assessment, objective, spec.seed, ranges or None)
    cands = {c["trial"]: c for c in assessment["candidates"]}
    best = assessment["candidates"][0]["trial"]  # ranked as the report ranks: the top row
    # a simpler configuration within the noise of the best is recommended instead (robustness)
    choice = analysis["choice"] if analysis.get("why") else best
    demand = assessment.get("demand_rate_per_s") or 0.0
    out: dict[str, Any] = {"choice": choice if choice != best else None}
    if demand > 0:
        low = cands[choice]["capacity_multiple"]["low"]
        out["headroom"] = {"trial": choice, "capacity_rate_per_s": low * demand,
                           "demand_rate_per_s": demand, "ratio": low,
                           "upper_ratio": cands[choice]["capacity_multiple"]["high"]}
    if "skipped" not in analysis:
        layouts = {t: c["layout"] for t, c in cands.items()}
        robust = analysis["p_best"] >= robustness.ROBUST_P_BEST
        rival = analysis.get("rival")
        shares = analysis.get("shares") or {}
        if robust:
            verdict = "robust"
        elif rival is not None and shares.get(rival, 0.0) > 0:
            verdict = "within the noise"
        else:  # it loses to nothing measured: the model's error alone can sink it
            need = assessment.get("headroom_required", 1.0)
            verdict = (f"at risk: in {analysis['none_holds']:.0%} of the draws of the model's "
                       f"error no measured configuration keeps "
                       f"{'up with the demand' if need <= 1 else f'{need:g}x the demand'}")
        if analysis.get("why"):
            verdict += f"; recommended over the best because {analysis['why']}"
        # the break-even prices against the best alternative on other hardware
        alt = analysis["alternative"]
        evens = [e for e in analysis["break_even"] if e["alternative_trial"] == alt]
        out["robustness"] = {"p_best": analysis["p_best"], "verdict": verdict,
                             "alternative": (f"trial {rival} ({layouts[rival]})"
                                             if verdict == "within the noise" else None),
                             "break_even": [_break_even_text(e, layouts) for e in evens],
                             "detail": analysis}
    table = assessment.get("load_table") or []
    out["load_table"] = [{"multiple": r["multiple"], "deployment": r["layout"] or r["basis"],
                          "usd_per_hour": r["usd_per_hour"], "trial": r["trial"]}
                         for r in table]
    return out


def recommended_first(top: pd.DataFrame, frame: pd.DataFrame, choice: int | None) -> pd.DataFrame:
    """``top`` with the recommended trial first (a simpler one within the noise of the best may
    not be the best-ranked row)."""
    if choice is None or top.empty or int(top.iloc[0].trial) == choice:
        return top
    if (top.trial == choice).any():
        return pd.concat([top[top.trial == choice], top[top.trial != choice]])
    row = frame[frame.trial == choice]
    if row.empty or math.isnan(float(row.iloc[0].get("trial", math.nan))):
        return top
    return pd.concat([row, top]).reset_index(drop=True)
