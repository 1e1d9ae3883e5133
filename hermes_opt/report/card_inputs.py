"""The post-study assessment the decision card reads, checked: the study's user attribute
``assessment`` (written by the post-study assessment, after the trials), a plain dict whose
sections are each optional:

``headroom``
    ``{"trial": int | None, "capacity_rate_per_s": float, "demand_rate_per_s": float,
    "ratio": float}``: the highest arrival rate the recommended deployment sustains within
    every SLO, the demand it was chosen for, and capacity / demand.
``robustness``
    ``{"p_best": float in [0, 1], "verdict": str, "alternative": str | None,
    "break_even": [str, ...]}``: how often the recommendation stays best when the uncertain
    inputs (replicate noise, the cost model's error band, prices) are resampled, the verdict in
    words ("robust", "within the noise"), the alternative it cannot be told apart from, and the
    conditions under which another choice wins ("H200 below $3.58/hour").
``load_table``
    ``[{"multiple": float > 0, "deployment": str, "usd_per_hour": float > 0 | None,
    "trial": int | None}, ...]``: the cheapest deployment meeting every SLO at each multiple of
    the demand (``usd_per_hour`` None: none does within the search space).

Other keys are ignored (the assessment may carry more than the card shows). A section that is
present but malformed is one ConfigError naming the field, so a report never shows a number it
could not read."""

from __future__ import annotations

import math
from typing import Any

from sim.errors import require

SECTIONS = ("headroom", "robustness", "load_table")


def _number(value: Any) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value))


def _whole(value: Any) -> bool:
    return value is None or (isinstance(value, int) and not isinstance(value, bool) and value >= 0)


def _headroom(section: Any, field: str) -> dict[str, Any]:
    require(isinstance(section, dict), field, section, "must be a mapping")
    for key in ("capacity_rate_per_s", "demand_rate_per_s", "ratio"):
        value = section.get(key)
        require(_number(value) and value >= 0, f"{field}.{key}", value, "must be a number >= 0")
    require(section["demand_rate_per_s"] > 0, f"{field}.demand_rate_per_s",
            section["demand_rate_per_s"], "must be > 0")
    require(_whole(section.get("trial")), f"{field}.trial", section.get("trial"),
            "must be a trial number or null")
    return section


def _robustness(section: Any, field: str) -> dict[str, Any]:
    require(isinstance(section, dict), field, section, "must be a mapping")
    p_best = section.get("p_best")
    require(_number(p_best) and 0 <= p_best <= 1, f"{field}.p_best", p_best,
            "must be a number in [0, 1]")
    verdict = section.get("verdict")
    require(isinstance(verdict, str) and verdict.strip() != "", f"{field}.verdict", verdict,
            "must be a non-empty string")
    alternative = section.get("alternative")
    require(alternative is None or isinstance(alternative, str), f"{field}.alternative",
            alternative, "must be a string or null")
    break_even = section.get("break_even", [])
    require(isinstance(break_even, list) and all(isinstance(b, str) for b in break_even),
            f"{field}.break_even", break_even, "must be a list of strings")
    return {**section, "break_even": break_even}


def _load_table(rows: Any, field: str) -> list[dict[str, Any]]:
    require(isinstance(rows, list) and len(rows) > 0, field, rows, "must be a non-empty list")
    for i, row in enumerate(rows):
        where = f"{field}[{i}]"
        require(isinstance(row, dict), where, row, "must be a mapping")
        multiple = row.get("multiple")
        require(_number(multiple) and multiple > 0, f"{where}.multiple", multiple,
                "must be a number > 0")
        require(isinstance(row.get("deployment"), str), f"{where}.deployment",
                row.get("deployment"), "must be a string")
        cost = row.get("usd_per_hour")
        require(cost is None or (_number(cost) and cost > 0), f"{where}.usd_per_hour", cost,
                "must be a number > 0, or null when no deployment meets the SLOs")
        require(_whole(row.get("trial")), f"{where}.trial", row.get("trial"),
                "must be a trial number or null")
    return sorted(rows, key=lambda r: r["multiple"])


def checked(assessment: Any) -> dict[str, Any]:
    """The sections the card uses, validated ({} for no assessment)."""
    if assessment is None:
        return {}
    require(isinstance(assessment, dict), "assessment", assessment, "must be a mapping")
    readers = {"headroom": _headroom, "robustness": _robustness, "load_table": _load_table}
    return {key: readers[key](assessment[key], f"assessment.{key}") for key in SECTIONS
            if assessment.get(key) is not None}
