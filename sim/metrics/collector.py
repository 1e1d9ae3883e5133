"""Records written during a run, folded as it goes; summarised once at the end.

Memory model (docs/performance.md): a finished request leaves seven numbers in compact
``array('d')`` columns (``RequestColumns``), not its ``Request`` object, unless ``keep_requests``
(``record_requests``, or code that inspects ``completed``/``rejected`` itself). Decode runs leave
four floats each in ``itl_runs``; once the inter-token gaps they stand for exceed
``ITL_EXACT_MAX_SAMPLES``, they are folded into a ``RelativeSketch`` (relative error
``sketch.DEFAULT_ALPHA``) a buffer at a time, so ITL memory stays bounded however long the run.
Past ``REQUEST_EXACT_MAX`` completed requests the request columns, rejected arrivals and stage
visits are folded the same way (``sim.metrics.folded``: exact counters and sums, sketches, time
bins), a buffer of ``REQUEST_FOLD_ROWS`` at a time, so no per-request state outlives its buffer.
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass, field

import numpy as np

from sim.config import SLOSpec
from sim.metrics.folded import FoldedRequests, FoldedVisits
from sim.metrics.sketch import RelativeSketch
from sim.request import Request

# Inter-token gaps (sum of the runs' steps) kept exactly; beyond this the ITL percentiles come
# from the sketch. No golden or unit-test run comes near it.
ITL_EXACT_MAX_SAMPLES = 4_000_000
ITL_FOLD_RUNS = 65_536  # once sketching: fold the run buffer when it holds this many runs
# Completed requests kept as exact columns (the summary is then the exact one, byte for byte);
# beyond this they are folded into sim.metrics.folded. No golden or unit-test run comes near it.
REQUEST_EXACT_MAX = 1_000_000
REQUEST_FOLD_ROWS = 65_536  # once folding: fold the buffered rows when this many have finished


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
    itl_runs: array  # shared, flat: (first_step_s, growth_s, steps, batch) per decode run
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
            self.itl_runs.extend((first_step_s, growth_s, steps, batch))

    def add_span(self, track: str, name: str, start_s: float, duration_s: float, batch: int) -> None:
        if len(self.spans) < self.max_spans:
            self.spans.append((track, name, start_s, duration_s, batch))

    def add_counters(self, time_s: float, kv_used: int, kv_total: int, waiting: int,
                     batch: int) -> None:
        """One counter sample of this replica (kept when ``spans`` is a TraceSpans)."""
        counters = getattr(self.spans, "counters", None)
        if counters is not None and len(counters) < self.max_spans:
            counters.append((self.label, time_s, kv_used, kv_total, waiting, batch))


class RequestColumns:
    """One row per finished request, column-wise in ``array('d')``: what the summary reads."""

    __slots__ = ("arrival", "first", "finish", "last", "prompt", "output", "answer", "kind")

    def __init__(self) -> None:
        for name in self.__slots__:
            setattr(self, name, array("q" if name == "kind" else "d"))

    def __len__(self) -> int:
        return len(self.arrival)

    def np(self, name: str) -> np.ndarray:
        """A column as a numpy array (a copy, so the collector may go on growing)."""
        col = getattr(self, name)
        return np.frombuffer(col, dtype=np.int64 if name == "kind" else float).copy() \
            if len(col) else np.empty(0, dtype=np.int64 if name == "kind" else float)


@dataclass(slots=True)
class Collector:
    record_trace: bool = False
    max_spans: int = 200_000
    # keep the finished Request objects in completed / rejected (per-request rows, tests)
    keep_requests: bool = True
    type_index: dict = field(default_factory=dict)  # request type name -> workload order
    completed: list[Request] = field(default_factory=list)
    rejected: list[Request] = field(default_factory=list)
    done: RequestColumns = field(default_factory=RequestColumns)
    rejected_arrival: array = field(default_factory=lambda: array("d"))
    rejected_reasons: dict = field(default_factory=dict)  # drop reason value -> count
    rejected_types: dict = field(default_factory=dict)  # type name -> count
    replicas: list[ReplicaStats] = field(default_factory=list)
    itl_runs: array = field(default_factory=lambda: array("d"))
    itl_sketch: RelativeSketch | None = None  # set once the ITL samples outgrow exact keeping
    _itl_checked: int = 0  # floats of itl_runs whose steps are counted in _itl_samples
    _itl_samples: int = 0
    spans: list | None = None
    # pipelines: per stage visit a code for (type, stage kind, pool) and its three times
    # (enqueue_s, start_s, end_s) flat in visit_times (cheap to append, cheap to turn into arrays)
    visit_keys: dict = field(default_factory=dict)  # code -> (type, stage kind, pool)
    visit_codes: array = field(default_factory=lambda: array("q"))
    visit_times: array = field(default_factory=lambda: array("d"))
    kv_tiers: list = field(default_factory=list)  # sim.kvstore.store.TierStats
    kv_lookups: dict = field(default_factory=dict)  # store pool -> KVStore.counts
    links: list = field(default_factory=list)  # sim.network.LinkStats of pool-to-pool links
    generated_tokens: dict = field(default_factory=dict)  # pool -> decode tokens (x samples)
    _visit_cache: tuple | None = None  # sim.metrics.stages: arrays built once per summary
    slos: list | None = None  # per type (workload order): its SLOSpec, for folded goodput
    on_finished: object = None  # called with each finished Request (streamed per-request rows)
    folded: FoldedRequests | None = None  # set once the run outgrows REQUEST_EXACT_MAX
    folded_visits: FoldedVisits | None = None

    def __post_init__(self) -> None:
        if self.record_trace:
            self.spans = TraceSpans()

    def replica_stats(self, label: str, pool: str) -> ReplicaStats:
        stats = ReplicaStats(label=label, pool=pool, itl_runs=self.itl_runs, spans=self.spans,
                             max_spans=self.max_spans)
        self.replicas.append(stats)
        return stats

    def complete(self, req: Request) -> None:
        """A request has finished its plan: keep its row (and the object if asked to)."""
        d = self.done
        d.arrival.append(req.arrival_s)
        d.first.append(req.first_token_s)
        d.finish.append(req.finish_s)
        d.last.append(req.last_token_s if req.last_token_s >= 0 else req.finish_s)
        d.prompt.append(req.prompt_tokens)
        d.output.append(req.output_tokens)
        d.answer.append(req.answer_token_s if req.rich and req.answer_token_s >= 0
                        else req.first_token_s)
        d.kind.append(self.type_index.get(req.type_name, 0))
        if self.keep_requests:
            self.completed.append(req)
        if self.on_finished is not None:
            self.on_finished(req)

    def reject(self, req: Request) -> None:
        self.rejected_arrival.append(req.arrival_s)
        reason = req.drop_reason.value
        self.rejected_reasons[reason] = self.rejected_reasons.get(reason, 0) + 1
        self.rejected_types[req.type_name] = self.rejected_types.get(req.type_name, 0) + 1
        if self.keep_requests:
            self.rejected.append(req)
        if self.on_finished is not None:
            self.on_finished(req)

    @property
    def num_completed(self) -> int:
        return len(self.done) + (sum(self.folded.completed) if self.folded else 0)

    @property
    def num_rejected(self) -> int:
        return len(self.rejected_arrival) + (self.folded.rejected if self.folded else 0)

    def fold_requests(self, final: bool = False) -> None:
        """Past ``REQUEST_EXACT_MAX`` completed requests, move the buffered request rows,
        rejected arrivals and stage visits into the folded state (every ``REQUEST_FOLD_ROWS``
        rows, and with ``final`` before the summary). Buffers are emptied in place: the run
        holds references to them."""
        d = self.done
        if self.folded is None:
            if len(d) <= REQUEST_EXACT_MAX:
                return
            slos = self.slos or [SLOSpec()] * max(len(self.type_index), 1)
            self.folded, self.folded_visits = FoldedRequests(slos), FoldedVisits()
        elif not final and len(d) < REQUEST_FOLD_ROWS:
            return
        cols = {name: d.np(name) for name in RequestColumns.__slots__}
        for name in RequestColumns.__slots__:
            del getattr(d, name)[:]
        if self.folded.warmup_e2e_s is None and cols["arrival"].size:
            self.folded.note_warmup(cols["arrival"], cols["finish"])
        # the first fold holds REQUEST_EXACT_MAX rows: fold them a buffer at a time, so the
        # summary's temporaries stay the size of one buffer
        for start in range(0, len(cols["arrival"]), REQUEST_FOLD_ROWS):
            self.folded.add(**{k: v[start:start + REQUEST_FOLD_ROWS] for k, v in cols.items()})
        if len(self.rejected_arrival):
            self.folded.add_rejected(np.array(self.rejected_arrival, dtype=float))
            del self.rejected_arrival[:]
        if len(self.visit_codes):
            codes = np.array(self.visit_codes, dtype=np.int64)
            times = np.array(self.visit_times, dtype=float).reshape(-1, 3)
            del self.visit_codes[:], self.visit_times[:]
            self.folded_visits.add(codes, times)
        self._visit_cache = None

    def fold_itl(self, final: bool = False) -> None:
        """Count the new decode runs' gaps; past ``ITL_EXACT_MAX_SAMPLES`` move the buffered
        runs into the sketch (called every few thousand requests, and with ``final`` at the end
        once sketching). The buffer is emptied in place: replicas share it."""
        runs = self.itl_runs
        if self.itl_sketch is None:
            # a copy, not a view: a live view of the array would make the replicas' next append
            # fail ("cannot resize an array that is exporting buffers")
            new = np.array(runs[self._itl_checked:], dtype=float)
            self._itl_samples += int(new[2::4].sum())
            self._itl_checked = len(runs)
            if self._itl_samples <= ITL_EXACT_MAX_SAMPLES:
                return
            self.itl_sketch = RelativeSketch()
        elif not final and len(runs) < 4 * ITL_FOLD_RUNS:
            return
        if len(runs):
            buffered = np.frombuffer(runs, dtype=float).copy()
            del runs[:]
            self.itl_sketch.add_runs(buffered)
