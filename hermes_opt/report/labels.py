"""Readable labels with units for metric and parameter names (``slo_tokens_per_usd`` ->
"SLO-meeting tokens per $", ``ttft_ms.p99`` -> "p99 TTFT (ms)"), number formatting (a mean with
its replicate spread, never "± 0" from a single replicate) and the grouping of infeasibility
reasons that differ only by their numbers ("over budget: 171.60 $/hour" and "... 165.12 ...")."""

from __future__ import annotations

import math
import re
from collections import Counter
from typing import Any

from hermes_opt.study.metric_labels import (  # noqa: F401  re-exported: the report reads labels here
    LATENCIES,
    METRICS,
    metric_label,
    unit,
)

PARAMS = {
    "hardware": "Hardware", "cluster.tp": "TP", "cluster.num_replicas": "Replicas",
    "cluster.weight_dtype": "Weight precision", "cluster.kv_dtype": "KV precision",
    "scheduler": "Scheduler", "deployment.architecture": "Architecture",
    "deployment.total_devices": "Devices", "deployment.prefill.devices": "Prefill devices",
    "scheduler.max_num_seqs": "Max sequences", "scheduler.chunk_size_tokens": "Chunk (tokens)",
    "scheduler.max_batched_tokens": "Token budget",
}
NUMBER = re.compile(r"(?<![\w.])[-+]?\d+(?:[.,]\d+)*(?![\w])")


def param_label(name: str) -> str:
    if name in PARAMS:
        return PARAMS[name]
    for pool in ("prefill", "decode", "colocated"):
        if name.startswith(f"deployment.{pool}."):
            return f"{pool} {name.rsplit('.', 1)[1].replace('_', ' ')}"
    parts = name.split(".")
    if len(parts) == 4 and parts[:2] == ["cluster", "pools"]:  # a named pool's setting
        key = "replicas" if parts[3] == "num_replicas" else parts[3].replace("_", " ")
        return f"{parts[2]} {key}"
    return name


def column_label(column: str) -> str:
    """A trials.csv column (``objective:x``, ``metric:x``, ``param:x``) as a label."""
    kind, _, name = column.partition(":")
    if not name:
        return metric_label(kind)
    return param_label(name) if kind == "param" else metric_label(name)


def fmt(value: Any) -> str:
    """4 significant digits, thousands separators from 10,000; NaN as a dash."""
    if isinstance(value, bool) or value is None:
        return "–" if value is None else str(value)
    if isinstance(value, (int, float)):
        value = float(value)
        if math.isnan(value):
            return "–"
        if value.is_integer() and abs(value) < 1e15:
            return f"{int(value):,}" if abs(value) >= 1e4 else str(int(value))
        return f"{value:,.0f}" if abs(value) >= 1e4 else f"{value:.4g}"
    return str(value)


def fmt_spread(mean: Any, std: Any, replicates: int) -> str:
    """``mean ± std``, or the mean alone with one replicate (its std is 0 by construction)."""
    if replicates <= 1 or std is None or (isinstance(std, float) and math.isnan(std)):
        return fmt(mean)
    return f"{fmt(mean)} ± {fmt(std)}"


def shorten(text: str, limit: int = 300) -> str:
    """At most ``limit`` characters, cut at a word boundary (never mid-word), "…" when cut."""
    text = " ".join(str(text).split())
    if len(text) <= limit:
        return text
    cut = text[:limit].rsplit(" ", 1)[0].rstrip(" ,;:(")
    return cut + " …"


def reason_key(reason: str) -> str:
    """The reason with standalone numbers replaced: reasons that differ only by an amount
    ("171.60 $/hour" vs "165.12 $/hour", "1 devices" vs "7 devices") share a key. Numbers inside
    names (h100_sxm, qwen3_32b) are kept."""
    return NUMBER.sub("#", " ".join(str(reason).split()))


def group_reasons(reasons: list[str], limit: int = 8) -> list[tuple[int, str]]:
    """(count, one example) per reason key, most common first (ties: first seen)."""
    counts: Counter[str] = Counter()
    example: dict[str, str] = {}
    for reason in reasons:
        if not reason or (isinstance(reason, float) and math.isnan(reason)):
            continue
        key = reason_key(reason)
        counts[key] += 1
        example.setdefault(key, str(reason))
    return [(n, example[key]) for key, n in counts.most_common(limit)]
