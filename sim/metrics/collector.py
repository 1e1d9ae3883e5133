"""Append-only records written during a run; summarised once at the end."""

from __future__ import annotations

from dataclasses import dataclass, field

from sim.request import Request


class TraceSpans(list):
    """A run's trace spans (``(track, name, start_s, duration_s, batch)``) when trace recording
    is on, carrying the LLM replicas' counter samples in ``counters``: one
    ``(track, time_s, kv_blocks_used, kv_blocks_total, waiting, batch)`` per step or decode-run
    start, at most ``max_trace_spans`` of them. One object, so ``SimResult.spans`` carries both
    (``SimResult.counters``)."""

    __slots__ = ("counters",)

    def __init__(self, *args) -> None:
        super().__init__(*args)
        self.counters: list[tuple] = []


@dataclass(slots=True)
class ReplicaStats:
    label: str
    pool: str
    itl_runs: list  # shared: (first_step_s, growth_s, steps, batch) per decode run
    spans: list | None  # shared: (track, name, start_s, duration_s, batch) or None when off
    busy_s: float = 0.0
    steps: int = 0  # scheduled activities (a decode run counts once)
    decode_steps: int = 0  # decode iterations inside runs
    preemptions: int = 0
    max_spans: int = 200_000

    def record_itl_run(self, first_step_s: float, growth_s: float, steps: int, batch: int) -> None:
        """``steps`` inter-token gaps of ``first_step_s + k * growth_s``, each for ``batch`` tokens.
        Stalls and preemption gaps are recorded by the replica as runs of their own."""
        if batch:
            self.itl_runs.append((first_step_s, growth_s, steps, batch))

    def add_span(self, track: str, name: str, start_s: float, duration_s: float, batch: int) -> None:
        if len(self.spans) < self.max_spans:
            self.spans.append((track, name, start_s, duration_s, batch))

    def add_counters(self, time_s: float, kv_used: int, kv_total: int, waiting: int,
                     batch: int) -> None:
        """One counter sample of this replica (kept when ``spans`` is a TraceSpans)."""
        counters = getattr(self.spans, "counters", None)
        if counters is not None and len(counters) < self.max_spans:
            counters.append((self.label, time_s, kv_used, kv_total, waiting, batch))


@dataclass(slots=True)
class Collector:
    record_trace: bool = False
    max_spans: int = 200_000
    completed: list[Request] = field(default_factory=list)
    rejected: list[Request] = field(default_factory=list)
    replicas: list[ReplicaStats] = field(default_factory=list)
    itl_runs: list = field(default_factory=list)
    spans: list | None = None
    # pipelines: per stage visit a code for (type, stage kind, pool) and its three times
    # (enqueue_s, start_s, end_s) flat in visit_times (cheap to append, cheap to turn into arrays)
    visit_keys: dict = field(default_factory=dict)  # code -> (type, stage kind, pool)
    visit_codes: list = field(default_factory=list)
    visit_times: list = field(default_factory=list)
    kv_tiers: list = field(default_factory=list)  # sim.kvstore.store.TierStats
    kv_lookups: dict = field(default_factory=dict)  # store pool -> [lookups, misses, in-flight waits]
    links: list = field(default_factory=list)  # sim.network.LinkStats of pool-to-pool links
    generated_tokens: dict = field(default_factory=dict)  # pool -> decode tokens (x samples)
    _visit_cache: tuple | None = None  # sim.metrics.stages: arrays built once per summary

    def __post_init__(self) -> None:
        if self.record_trace:
            self.spans = TraceSpans()

    def replica_stats(self, label: str, pool: str) -> ReplicaStats:
        stats = ReplicaStats(label=label, pool=pool, itl_runs=self.itl_runs, spans=self.spans,
                             max_spans=self.max_spans)
        self.replicas.append(stats)
        return stats
