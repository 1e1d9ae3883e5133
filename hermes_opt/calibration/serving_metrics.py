"""Serving-table metric names -> the simulator's summary figures (``sim.metrics.summary``).

Engine benchmark tables name one figure many ways (``output_throughput``, ``output_tok_s``,
``output_token_throughput``, ``Output token throughput (tok/s)``; ``p99_ttft_ms``, ``P99 TTFT``,
``avg_tpot_ms``). A name is read by a small grammar over its words, not a list of spellings:

* **latency**: a statistic (``mean``/``avg``/``average``, ``median``, ``p<N>``) and one quantity
  (``ttft``, ``tpot``, ``itl``, ``e2e``/``e2el``/``e2e_latency``), optionally a unit word (``ms``,
  ``s``); a bare ``TTFT`` is the mean. The unit column (else the name's unit word, else ms) scales
  it to ms. Percentiles the summary does not carry (p95, p97 ...) are computed from the run's
  per-request rows (``needs_requests``).
* **throughput**: ``output``/``total``/``input`` tokens or ``request(s)``/``req`` per second, with
  the words ``throughput``, ``token(s)``, ``tok``, ``per``, ``s``, ``system``; ``per gpu`` divides
  the simulated replica's figure by its GPUs (``_per_gpu`` figures).
* ``total_duration`` (s).

Any other word (``change_vs_HBM_only``, ``linear_fit_slope``, ``request_time``) makes the name
unmapped: the coverage then says so, instead of reading a different figure.
"""

from __future__ import annotations

import re

import numpy as np

LATENCY = {"ttft": "ttft_ms", "tpot": "tpot_ms", "itl": "itl_ms", "e2e": "e2e_ms", "e2el": "e2e_ms"}
MEAN_WORDS = ("mean", "avg", "average")
LATENCY_UNITS_MS = {"ms": 1.0, "s": 1e3, "sec": 1e3, "us": 1e-3}
SUMMARY_STATS = ("mean", "p50", "p90", "p99")  # what sim.metrics.summary reports per latency
THROUGHPUT_WORDS = frozenset({"throughput", "token", "tokens", "tok", "per", "s", "sec", "second",
                              "system", "gpu", "output", "total", "input", "request", "requests",
                              "req", "rate"})
ROW_FIGURES = {"ttft_ms": "ttft_ms", "tpot_ms": "tpot_ms", "e2e_ms": "e2e_ms"}  # per-request columns


def _words(text: str) -> list[str]:
    return [w for w in re.split(r"[^a-z0-9]+", text.lower()) if w]


def parse_metric(name: object, unit: object = "") -> tuple[str, float] | None:
    """(summary figure, scale from the table's unit) or None when the name is not a figure the
    simulator reports. Figures: ``output_tokens_per_s``, ``total_tokens_per_s``,
    ``input_tokens_per_s``, ``requests_per_s`` (each optionally ``..._per_gpu``),
    ``<ttft|tpot|itl|e2e>_ms.<mean|pNN>``, ``duration_s``."""
    words = _words(str(name))
    if not words:
        return None
    if words == ["total", "duration"]:
        return "duration_s", 1.0
    latency = _latency(words, unit)
    return latency if latency else _throughput(words)


def _latency(words: list[str], unit: object) -> tuple[str, float] | None:
    if len(words) >= 2 and words[-2:] == ["e2e", "latency"]:
        words = [*words[:-2], "e2e"]
    words = [w for w in words if w != "latency"]
    quantity = [w for w in words if w in LATENCY]
    if len(quantity) != 1:
        return None
    name_unit = words[-1] if words[-1] in LATENCY_UNITS_MS else ""
    rest = [w for w in words if w not in LATENCY and w != name_unit]
    if len(rest) > 1:
        return None
    stat = rest[0] if rest else "mean"
    if stat in MEAN_WORDS:
        stat = "mean"
    elif stat == "median":
        stat = "p50"
    elif not re.fullmatch(r"p\d{1,2}(\d)?", stat):
        return None
    if quantity[0] == "itl" and stat not in SUMMARY_STATS:
        return None  # inter-token gaps are sketched per run, not kept per request
    table_unit = (str(unit).strip().lower().split(" ")[0] if unit is not None else "")
    scale = LATENCY_UNITS_MS.get(table_unit) or LATENCY_UNITS_MS.get(name_unit) or 1.0
    return f"{LATENCY[quantity[0]]}.{stat}", scale


def _throughput(words: list[str]) -> tuple[str, float] | None:
    if set(words) - THROUGHPUT_WORDS:
        return None
    if not set(words) & {"throughput", "tok", "tokens", "token", "per", "s", "rate"}:
        return None
    per_gpu = "_per_gpu" if "gpu" in words else ""
    if "output" in words:
        figure = "output_tokens_per_s"
    elif "input" in words:
        figure = "input_tokens_per_s"
    elif set(words) & {"request", "requests", "req"}:
        figure = "requests_per_s"
    elif "total" in words:
        figure = "total_tokens_per_s"
    else:
        return None
    return figure + per_gpu, 1.0


def needs_requests(figure: str) -> bool:
    """A latency percentile the summary does not report: computed from per-request rows."""
    base, _, stat = figure.partition(".")
    return base in ROW_FIGURES and stat not in SUMMARY_STATS


def value(summary: dict, figure: str, gpus: int, requests: list[dict] | None = None) -> float:
    """The figure from a run's summary (per-GPU figures: divided by ``gpus``; percentiles the
    summary lacks: from ``requests``, the run's per-request rows, np.percentile as the summary)."""
    if figure.endswith("_per_gpu"):
        return value(summary, figure[: -len("_per_gpu")], gpus, requests) / gpus
    if needs_requests(figure):
        base, _, stat = figure.partition(".")
        got = np.asarray([r[ROW_FIGURES[base]] for r in requests or ()
                          if r.get(ROW_FIGURES[base]) is not None], dtype=float)
        return float(np.percentile(got, float(stat[1:]))) if got.size else float("nan")
    node: object = summary
    for part in figure.split("."):
        node = node[part]  # type: ignore[index]
    return float(node)  # type: ignore[arg-type]
