"""Every alternative accounted for: the best feasible deployment per vendor, hardware kind,
serving engine and architecture (colocated or disaggregated), and for each choice the study's
space offers without one a row saying why none (``why_none``: "never proposed", "2 proposed,
both over budget", "3 simulated, all violated p99 TPOT (best 62 ms against 50 ms)").

A trial's labels come from its stored deployment record (``hermes_opt.compose.candidate``):
the accelerators of its model pools ("b200", or "mi355x + gaudi3" for a mix), their vendor
("mixed" across vendors), the engines' names, and the architecture (prefill/decode pools:
disaggregated). A trial that never composed (e.g. weights that do not fit) has no record: its
labels come from its parameters (the ``hardware`` / ``*.hardware``, ``engine`` / ``*.engine``
and ``deployment.architecture`` keys). The choices offered are those keys' values (vendors: the
catalog vendor of each hardware choice); a space without such keys offers none, and the tables
list only what was proposed."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pandas as pd

from hermes_opt.compose import catalog
from hermes_opt.compose.candidate import MIXED
from hermes_opt.report import vendors
from hermes_opt.report.why_none import why_none
from hermes_opt.study.coverage import COVERAGE
from hermes_opt.study.definition import StudySpec
from sim.errors import ConfigError

COLUMNS = ["label", "trial", "deployment", "objective", "usd_per_hour", "ttft_p99_ms",
           "tpot_p99_ms", "why_none"]
DISAGGREGATED_ROLES = ("prefill", "decode")


@dataclass(frozen=True, slots=True)
class Table:
    """One "best deployment per ..." table: feasible rows best first, then why-none rows."""

    title: str  # "Best deployment per hardware kind"
    column: str  # the label column's header: "hardware"
    rows: pd.DataFrame  # COLUMNS; trial is None and why_none set on a why-none row
    note: str | None = None


def _keys(spec: StudySpec, word: str) -> list[str]:
    return [n for n in spec.space.names if n == word or n.endswith(f".{word}")]


def _params(row: Any, names: list[str]) -> list[str]:
    values = [row.get(f"param:{n}") for n in names]
    return list(dict.fromkeys(str(v) for v in values
                              if v is not None and not (isinstance(v, float) and math.isnan(v))))


def _pools(row: Any) -> list[dict] | None:
    record = vendors.record(row)
    return [p for p in record.get("pools", []) if p.get("accelerated_model")] if record else None


def vendor_of(hardware: str) -> str:
    try:
        return str(catalog.entry("hardware", hardware).get("vendor", "unknown"))
    except ConfigError:  # hardware given inline rather than by catalog name
        return "unknown"


def hardware_label(row: Any, spec: StudySpec) -> str | None:
    pools = _pools(row)
    names = (list(dict.fromkeys(p["hardware"] for p in pools)) if pools
             else _params(row, _keys(spec, "hardware")))
    return " + ".join(names) or None


def vendor_label(row: Any, spec: StudySpec) -> str | None:
    record = vendors.record(row)
    if record is not None and record.get("vendor"):
        return str(record["vendor"])
    found = list(dict.fromkeys(vendor_of(h) for h in _params(row, _keys(spec, "hardware"))))
    return None if not found else found[0] if len(found) == 1 else MIXED


def engine_label(row: Any, spec: StudySpec) -> str | None:
    pools = _pools(row)
    names = (list(dict.fromkeys(str(p["engine"]).split()[0] for p in pools if p.get("engine")))
             if pools else _params(row, _keys(spec, "engine")))
    return " + ".join(names) or None


def architecture_label(row: Any, spec: StudySpec) -> str | None:
    pools = _pools(row)
    if pools:
        llm = [p["role"] for p in pools if p.get("role") in (*DISAGGREGATED_ROLES, "colocated")]
        if llm:
            return "disaggregated" if set(llm) & set(DISAGGREGATED_ROLES) else "colocated"
    found = _params(row, ["deployment.architecture"])
    return found[0] if found else None


def offered(spec: StudySpec, word: str) -> list[str]:
    """The values the space offers for a dimension, in space order."""
    if word == "vendor":
        return list(dict.fromkeys(vendor_of(h) for h in offered(spec, "hardware")))
    names = ["deployment.architecture"] if word == "architecture" else _keys(spec, word)
    params = {p.name: p for p in spec.space.parameters}
    return list(dict.fromkeys(str(c) for n in names if n in params for c in params[n].choices))


def _best_row(label: str, row: Any, spec: StudySpec) -> dict:
    lay = vendors.layout(row)
    return {"label": label, "trial": int(row.trial),
            "deployment": lay.description if lay else str(row.get("deployment") or ""),
            "objective": float(row[f"objective:{spec.objectives[0].metric}"]),
            "usd_per_hour": float(row.get("metric:cost_usd_per_hour", math.nan)),
            "ttft_p99_ms": float(row.get("metric:ttft_ms.p99", math.nan)),
            "tpot_p99_ms": float(row.get("metric:tpot_ms.p99", math.nan)), "why_none": ""}


def best_per(frame: pd.DataFrame, spec: StudySpec, word: str,
             label_of: Callable[[Any, StudySpec], str | None]) -> pd.DataFrame:
    """Feasible labels' best trials (best first), then a why-none row for every offered value
    without one (in space order)."""
    if frame.empty:
        return pd.DataFrame(columns=COLUMNS)
    labels = frame.apply(lambda r: label_of(r, spec), axis=1)
    best: dict[str, dict] = {}
    for index, row in vendors.ranked_feasible(frame, spec).iterrows():
        label = labels[index]
        if label is not None and label not in best:
            best[label] = _best_row(label, row, spec)
    rows = list(best.values())
    for value in offered(spec, word):
        if value not in best:
            why = why_none(frame[labels == value], spec)
            rows.append({**dict.fromkeys(COLUMNS, math.nan), "label": value, "trial": None,
                         "deployment": "", "why_none": _in_a_mix(value, best, why, word)})
    return pd.DataFrame(rows, columns=COLUMNS)


def _in_a_mix(value: str, best: dict[str, dict], why: str, word: str) -> str:
    """A hardware kind with no feasible deployment of its own may still be feasible mixed."""
    mixes = [b for label, b in best.items() if word == "hardware" and value in label.split(" + ")]
    if not mixes:
        return why
    return f"{why}; feasible mixed: {mixes[0]['label']} (trial {mixes[0]['trial']})"


def coverage_note(frame: pd.DataFrame, spec: StudySpec) -> str | None:
    """How many trials coverage added, per choice (None: none)."""
    if frame.empty or COVERAGE not in frame:
        return None
    added = frame[frame[COVERAGE].astype(bool)][COVERAGE].value_counts(sort=False)
    if added.empty:
        return None
    per = ", ".join(f"{label} {n}" for label, n in added.items())
    return (f"Coverage: {int(added.sum())} trials were added after the sampler's "
            f"n_trials={spec.n_trials} so that each hardware, engine and architecture choice "
            f"has {spec.coverage.min_per_choice} simulated candidates where the space and "
            f"{spec.coverage.max_attempts} attempts allow ({per}); trials.csv's coverage column "
            f"marks them.")


DIMENSIONS = (("vendor", "vendor", vendor_label), ("hardware kind", "hardware", hardware_label),
              ("serving engine", "engine", engine_label),
              ("architecture", "architecture", architecture_label))


def tables(frame: pd.DataFrame, spec: StudySpec) -> dict[str, Table]:
    """Per vendor, hardware kind, engine and architecture, keyed by the label column."""
    out = {}
    for what, word, label_of in DIMENSIONS:
        note = coverage_note(frame, spec) if word == "hardware" else None
        out[word] = Table(title=f"Best deployment per {what}", column=word,
                          rows=best_per(frame, spec, word, label_of), note=note)
    return out
