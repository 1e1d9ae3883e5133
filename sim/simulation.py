"""``simulate(config, seed) -> SimResult``: the one entry point of the library."""

from __future__ import annotations

from dataclasses import dataclass

from sim.config import SimConfig
from sim.engine import PRIORITY_ARRIVAL, Engine
from sim.metrics.collector import Collector
from sim.metrics.summary import summarize
from sim.request import Request
from sim.scheduling.pool import LLMPool
from sim.workload.generator import DrawnWorkload, draw
from sim.workload.spec import ArrivalKind


@dataclass(frozen=True, slots=True)
class SimResult:
    summary: dict  # JSON-ready figures (see sim.metrics.summary)
    requests: list[dict] | None  # per-request rows when config.record_requests
    spans: list[tuple] | None  # (track, name, start_s, duration_s, batch) when config.record_trace


REQUEST_COLUMNS = ("id", "type", "pool_replica", "arrival_s", "gen_start_s", "first_token_s",
                   "finish_s", "prompt_tokens", "output_tokens", "preemptions", "ttft_ms", "e2e_ms",
                   "tpot_ms", "status", "drop_reason")


class _Run:
    """Wires workload, pools and collector together for one simulation."""

    def __init__(self, config: SimConfig, seed: int) -> None:
        self.config = config
        self.engine = Engine()
        self.collector = Collector(record_trace=config.record_trace,
                                   max_spans=config.max_trace_spans)
        self.pools = {p.name: LLMPool(self.engine, p, self.collector, self._stage_done,
                                      self._rejected) for p in config.pools}
        self.drawn: DrawnWorkload = draw(config.workload, seed)
        self.types = config.workload.request_types
        self.next_index = 0
        self.arrival = config.workload.arrival

    def start(self) -> None:
        if self.drawn.arrival_s is None:  # closed loop: fill every slot at t = 0
            for _ in range(min(self.arrival.concurrency, self.drawn.type_index.size)):
                self._issue(0.0)
        else:
            self._schedule_arrival()

    def _schedule_arrival(self) -> None:
        # Arrivals are chained one at a time so the event heap stays small.
        if self.next_index < self.drawn.arrival_s.size:
            self.engine.schedule(float(self.drawn.arrival_s[self.next_index]), self._arrive,
                                 priority=PRIORITY_ARRIVAL)

    def _arrive(self) -> None:
        self._issue(self.engine.now_s)
        self._schedule_arrival()

    def _issue(self, now: float) -> None:
        i = self.next_index
        if i >= self.drawn.type_index.size:
            return
        self.next_index += 1
        rt = self.types[int(self.drawn.type_index[i])]
        req = Request(i, now, int(self.drawn.prompt_tokens[i]), int(self.drawn.output_tokens[i]),
                      rt.plan, rt.name)
        self.pools[req.stage.pool].submit(req)

    def _stage_done(self, req: Request) -> None:
        req.stage_index += 1
        if req.stage_index < len(req.plan):
            self.pools[req.stage.pool].submit(req)
            return
        self.collector.completed.append(req)
        self._closed_loop_next()

    def _rejected(self, req: Request) -> None:
        req.finish_s = self.engine.now_s
        self.collector.rejected.append(req)
        self._closed_loop_next()

    def _closed_loop_next(self) -> None:
        if self.arrival.kind is ArrivalKind.CLOSED_LOOP:
            self.engine.schedule(self.engine.now_s + self.arrival.think_time_s, self._arrive_closed,
                                 priority=PRIORITY_ARRIVAL)

    def _arrive_closed(self) -> None:
        self._issue(self.engine.now_s)


def simulate(config: SimConfig, seed: int = 0) -> SimResult:
    """Run one simulation. Pure: the same config and seed give the same result."""
    run = _Run(config, seed)
    run.start()
    run.engine.run()
    summary = summarize(config, run.collector, run.engine.num_events, run.engine.now_s)
    requests = _request_rows(run) if config.record_requests else None
    return SimResult(summary=summary, requests=requests, spans=run.collector.spans)


def _request_rows(run: _Run) -> list[dict]:
    rows = []
    for req in sorted(run.collector.completed + run.collector.rejected, key=lambda r: r.id):
        done = req.drop_reason is None
        ttft = (req.first_token_s - req.arrival_s) * 1e3 if done else None
        tpot = ((req.finish_s - req.first_token_s) / (req.output_tokens - 1) * 1e3
                if done and req.output_tokens > 1 else None)
        rows.append({
            "id": req.id, "type": req.type_name,
            "pool_replica": f"{req.plan[-1].pool}" if not done else f"{req.plan[-1].pool}",
            "arrival_s": req.arrival_s, "gen_start_s": req.gen_start_s if done else None,
            "first_token_s": req.first_token_s if done else None, "finish_s": req.finish_s,
            "prompt_tokens": req.prompt_tokens, "output_tokens": req.output_tokens,
            "preemptions": req.preemptions, "ttft_ms": ttft,
            "e2e_ms": (req.finish_s - req.arrival_s) * 1e3 if done else None, "tpot_ms": tpot,
            "status": "completed" if done else "rejected",
            "drop_reason": req.drop_reason.value if req.drop_reason else None,
        })
    return rows
