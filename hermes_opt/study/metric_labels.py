"""Readable names with units for summary metrics (``slo_tokens_per_usd`` -> "SLO-meeting tokens
per $", ``ttft_ms.p99`` -> "p99 TTFT (ms)"). Here rather than in ``report/`` because a study names
its objectives with them when it is created (``Study.set_metric_names``: optuna-dashboard shows
these instead of "Objective 0"); the report reads them through ``hermes_opt.report.labels``."""

from __future__ import annotations

METRICS = {
    "slo_tokens_per_usd": "SLO-meeting tokens per $",
    "slo_answers_per_usd": "SLO-meeting answers per $",
    "capacity_tokens_per_usd": "Tokens per $ at capacity",
    "output_tokens_per_usd": "Output tokens per $",
    "goodput_tokens_per_usd": "SLO-meeting tokens per $ (whole run)",
    "cost_usd_per_hour": "Cost ($/hour)",
    "num_devices": "Devices",
    "num_accelerators": "Accelerators",
    "slo_attainment": "SLO attainment",
    "capacity_rate_per_s": "Capacity (requests/s)",
    "requests_per_s": "Throughput (requests/s)",
    "goodput_requests_per_s": "SLO-meeting requests/s",
    "output_tokens_per_s": "Output tokens/s",
    "goodput_output_tokens_per_s": "SLO-meeting output tokens/s",
    "total_tokens_per_s": "Total tokens/s",
    "input_tokens_per_s": "Input tokens/s",
    "preemptions": "Preemptions",
    "requests_completed": "Requests completed",
}
LATENCIES = {"ttft_ms": "TTFT", "tpot_ms": "TPOT", "itl_ms": "ITL", "e2e_ms": "E2E latency",
             "ttfat_ms": "time to first answer token",
             "queue_ms": "queueing", "service_ms": "service time", "total_ms": "stage time"}
def metric_label(name: str) -> str:
    """A metric name (no ``metric:`` prefix) as a chart axis / table header, with its unit."""
    if name in METRICS:
        return METRICS[name]
    for prefix, word in (("request_types.", "type"), ("pools.", "pool"), ("stages.", "stage")):
        if name.startswith(prefix):
            head, _, rest = name[len(prefix):].partition(".")
            if rest and prefix == "stages." and "@" in head:
                return f"{head}: {metric_label(rest)}"
            if rest:
                tail = "utilisation" if rest == "utilization" else metric_label(rest)
                return f"{head} ({word}): {tail}"
    base, _, stat = name.rpartition(".")
    if base in LATENCIES:
        return f"{stat} {LATENCIES[base]} (ms)"
    if name in LATENCIES:
        return f"{LATENCIES[name]} (ms)"
    if name.startswith("steady_state."):
        return metric_label(name.split(".", 1)[1]) + " (steady state)"
    if name.startswith("cost_breakdown_usd_per_hour."):
        return f"{name.split('.', 1)[1]} cost ($/hour)"
    text = name.replace("_", " ")
    for suffix, unit in ((" usd per hour", " ($/hour)"), (" ms", " (ms)"), (" per s", " (/s)"),
                         (" per usd", " per $"), (" s", " (s)")):
        if text.endswith(suffix):
            return text[: -len(suffix)] + unit
    return text


def unit(metric: str) -> str:
    """The unit written after a value in a sentence ("180 ms", "$12/hour" is written by hand)."""
    if metric.rsplit(".", 1)[0] in LATENCIES or metric.endswith("_ms"):
        return " ms"
    if metric.endswith("_per_s"):
        return "/s"
    return ""
