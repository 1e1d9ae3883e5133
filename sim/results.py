"""What ``simulate`` returns: the summary, optional per-request rows and trace spans."""

from __future__ import annotations

from dataclasses import dataclass

from sim.metrics.collector import Collector
from sim.request import Request


@dataclass(frozen=True, slots=True)
class SimResult:
    summary: dict  # JSON-ready figures (see sim.metrics.summary)
    requests: list[dict] | None  # per-request rows when config.record_requests
    spans: list[tuple] | None  # (track, name, start_s, duration_s, batch) when config.record_trace

    @property
    def counters(self) -> list[tuple] | None:
        """LLM replicas' counter samples when config.record_trace: ``(track, time_s,
        kv_blocks_used, kv_blocks_total, waiting, batch)`` at each step or decode-run start
        (``sim.metrics.collector.TraceSpans``)."""
        return getattr(self.spans, "counters", None)


REQUEST_COLUMNS = ("id", "type", "pool_replica", "arrival_s", "gen_start_s", "first_token_s",
                   "finish_s", "prompt_tokens", "output_tokens", "preemptions", "ttft_ms", "e2e_ms",
                   "tpot_ms", "status", "drop_reason", "stages")


def _stages_cell(req: Request) -> str:
    """Per-request breakdown: ``kind@pool:queue_ms/service_ms`` per visit, ``;``-separated."""
    return ";".join(f"{kind}@{pool}:{queue * 1e3:.3f}/{service * 1e3:.3f}"
                    for kind, pool, queue, service in req.visits or ())


LLM_STAGE_KINDS = ("generate", "prefill", "decode")


def _served_by(req: Request) -> str:
    """``pool/replica`` of the last LLM replica that served the request (its pool if none did)."""
    pool = next((visit[1] for visit in reversed(req.visits or ()) if visit[0] in LLM_STAGE_KINDS),
                None)
    if pool is None or req.replica < 0:
        return pool or req.plan[-1].pool
    return f"{pool}/{req.replica}"


def request_row(req: Request) -> dict:
    """A finished request's row (completed or rejected); columns REQUEST_COLUMNS."""
    done = req.drop_reason is None
    last = req.last_token_s if req.last_token_s >= 0 else req.finish_s
    ttft = (req.first_token_s - req.arrival_s) * 1e3 if done else None
    tpot = ((last - req.first_token_s) / (req.output_tokens - 1) * 1e3
            if done and req.output_tokens > 1 else None)
    return {
        "id": req.id, "type": req.type_name,
        "pool_replica": _served_by(req),
        "arrival_s": req.arrival_s, "gen_start_s": req.gen_start_s if done else None,
        "first_token_s": req.first_token_s if done else None, "finish_s": req.finish_s,
        "prompt_tokens": req.prompt_tokens, "output_tokens": req.output_tokens,
        "preemptions": req.preemptions, "ttft_ms": ttft,
        "e2e_ms": (req.finish_s - req.arrival_s) * 1e3 if done else None, "tpot_ms": tpot,
        "status": "completed" if done else "rejected",
        "drop_reason": req.drop_reason.value if req.drop_reason else None,
        "stages": _stages_cell(req),
    }


def request_rows(collector: Collector) -> list[dict]:
    """One row per finished request (completed or rejected), by id; columns REQUEST_COLUMNS."""
    return [request_row(req)
            for req in sorted(collector.completed + collector.rejected, key=lambda r: r.id)]
