"""How the report names the load a trial was simulated at: a configured arrival rate ("the
offered 4 requests/s"), or a replayed trace's real rate and lengths, read from the deployment
record's ``traffic`` (``hermes_opt.compose.traces.summary``), never the YAML's unused
``rate_per_s`` (a trace workload's placeholder)."""

from __future__ import annotations

from typing import Any

from hermes_opt.report import vendors
from hermes_opt.report.labels import fmt


def of(row: Any) -> dict | None:
    """The replayed trace's summary of the trial (None: its workload draws its arrivals)."""
    found = (vendors.record(row) or {}).get("traffic")
    return found if isinstance(found, dict) else None


def load_phrase(row: Any) -> str | None:
    """``"the offered 4 requests/s"``, ``"the trace's 2.83 requests/s (400 requests over 141 s
    of mooncake_conversation_sample.jsonl)"``, or None when the trial has no rate."""
    trace = of(row)
    if trace and trace.get("rate_per_s"):
        return (f"the trace's {fmt(trace['rate_per_s'])} requests/s ({fmt(trace['requests'])} "
                f"requests over {fmt(trace['span_s'])} s of {trace['source']})")
    rate = vendors.offered_rate(row)
    return f"the offered {fmt(rate)} requests/s" if rate else None


def rate_phrase(row: Any) -> str | None:
    """``"the 4 requests/s offered"`` or ``"the trace's 2.83 requests/s"`` (a headroom's
    yardstick)."""
    trace = of(row)
    if trace and trace.get("rate_per_s"):
        return f"the trace's {fmt(trace['rate_per_s'])} requests/s"
    rate = vendors.offered_rate(row)
    return f"the {fmt(rate)} requests/s offered" if rate else None


def line(trace: dict) -> str:
    """The report's traffic row: rate over the window, the length distribution, shared prefixes."""
    def lengths(name: str) -> str:
        d = trace[name]
        return f"mean {fmt(d['mean'])}, p50 {fmt(d['p50'])}, p90 {fmt(d['p90'])}, max {fmt(d['max'])}"
    rate = fmt(trace["rate_per_s"]) if trace.get("rate_per_s") else "–"
    scale = trace.get("time_scale", 1.0)
    text = (f"{trace['source']} ({trace['format']}): {fmt(trace['requests'])} requests over "
            f"{fmt(trace['span_s'])} s = {rate} requests/s"
            + (f" (timestamps x {fmt(scale)})" if scale != 1.0 else "")
            + f"; prompt tokens {lengths('prompt_tokens')}; output tokens "
            f"{lengths('output_tokens')}")
    if trace.get("skipped_rows"):
        text += f"; {fmt(trace['skipped_rows'])} failed calls (0 tokens) skipped"
    shared = trace.get("shared_prefix")
    if shared:
        text += (f"; {fmt(shared['requests'])} requests start with blocks an earlier one had "
                 f"({shared['token_fraction']:.1%} of prompt tokens reusable, "
                 f"{shared['block_tokens']}-token blocks)")
    return text
