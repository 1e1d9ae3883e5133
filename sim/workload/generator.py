"""Draw the requests a workload emits: arrival times, request types and token lengths."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim.config import WorkloadSpec
from sim.random_streams import stream
from sim.workload.spec import ArrivalKind, LengthKind


@dataclass(frozen=True, slots=True)
class DrawnWorkload:
    arrival_s: np.ndarray | None  # None for closed loop: arrivals follow completions
    type_index: np.ndarray
    prompt_tokens: np.ndarray
    output_tokens: np.ndarray


def draw(spec: WorkloadSpec, seed: int) -> DrawnWorkload:
    n = spec.num_requests
    trace = spec.trace
    if trace is not None and spec.arrival.kind is ArrivalKind.TRACE:
        n = min(n, len(trace.arrival_s))
    weights = np.array([rt.weight for rt in spec.request_types], dtype=float)
    type_index = (stream(seed, "workload.types").choice(len(weights), n, p=weights / weights.sum())
                  if len(weights) > 1 else np.zeros(n, dtype=np.int64))
    prompt = np.empty(n, dtype=np.int64)
    output = np.empty(n, dtype=np.int64)
    for i, rt in enumerate(spec.request_types):
        mask = type_index == i
        count = int(mask.sum())
        for name, target in (("prompt_tokens", prompt), ("output_tokens", output)):
            length = getattr(rt, name)
            if length.kind is LengthKind.TRACE:
                column = np.asarray(getattr(trace, name), dtype=np.int64)
                idx = np.nonzero(mask)[0] % column.size
                target[mask] = np.clip(column[idx], length.min_tokens, length.max_tokens)
            else:
                target[mask] = length.sample(stream(seed, f"workload.{rt.name}.{name}"), count)
    kind = spec.arrival.kind
    if kind is ArrivalKind.CLOSED_LOOP:
        arrival = None
    elif kind is ArrivalKind.TRACE:
        times = np.asarray(trace.arrival_s[:n], dtype=float)
        arrival = (times - times.min()) * spec.arrival.time_scale
    else:
        arrival = np.cumsum(spec.arrival.gaps_s(stream(seed, "workload.arrivals"), n))
    return DrawnWorkload(arrival, type_index, prompt, output)


class WorkloadStream:
    """The draws of ``draw``, a chunk at a time (``take``), byte-identical to one whole draw, so a
    run's memory does not grow with ``num_requests``.

    Why the values match: every sampler used here (``choice`` with ``p``, i.e. uniforms and a
    search; ``normal``/``lognormal``/``exponential``/``gamma``/``uniform``) consumes its
    ``Generator`` value by value, so n draws followed by m draws equal n + m draws. Each type's
    lengths come from that type's own stream, so drawing them per chunk in type order keeps each
    stream's sequence. Arrival times carry the exact running sum: a chunk is
    ``cumsum([last time, gaps...])[1:]``, the same additions in the same order as one ``cumsum``
    (``last + cumsum(gaps)`` would round differently). Trace lengths index the trace by the
    request's global position. ``tests/sim/test_chunked_draws.py`` checks all of this.
    """

    def __init__(self, spec: WorkloadSpec, seed: int) -> None:
        n = spec.num_requests
        trace = spec.trace
        self.kind = spec.arrival.kind
        if trace is not None and self.kind is ArrivalKind.TRACE:
            n = min(n, len(trace.arrival_s))
        self.num_requests = n
        self._spec, self._seed = spec, seed
        weights = np.array([rt.weight for rt in spec.request_types], dtype=float)
        self._p = weights / weights.sum() if len(weights) > 1 else None
        self._types_rng = stream(seed, "workload.types") if self._p is not None else None
        self._lengths = []  # per type: ((name, length spec, rng or trace column), ...)
        for rt in spec.request_types:
            per = []
            for name in ("prompt_tokens", "output_tokens"):
                length = getattr(rt, name)
                source = (np.asarray(getattr(trace, name), dtype=np.int64)
                          if length.kind is LengthKind.TRACE
                          else stream(seed, f"workload.{rt.name}.{name}"))
                per.append((name, length, source))
            self._lengths.append(per)
        self._arrival_rng = (stream(seed, "workload.arrivals")
                             if self.kind not in (ArrivalKind.CLOSED_LOOP, ArrivalKind.TRACE)
                             else None)
        if self.kind is ArrivalKind.TRACE:
            self._trace_times = np.asarray(trace.arrival_s[:n], dtype=float)
            self._trace_min = self._trace_times.min()
        self._last_s: float | None = None  # the previous chunk's last arrival (running sum)
        self.start = 0  # index of the next request to draw

    def whole(self) -> DrawnWorkload:
        """Every request's draws at once (``draw``), leaving this stream where it is."""
        return draw(self._spec, self._seed)

    def take(self, count: int) -> DrawnWorkload:
        """The next ``count`` requests (fewer at the end of the workload)."""
        start = self.start
        stop = min(start + count, self.num_requests)
        m = max(stop - start, 0)
        self.start = start + m
        type_index = (self._types_rng.choice(len(self._p), m, p=self._p)
                      if self._p is not None else np.zeros(m, dtype=np.int64))
        prompt = np.empty(m, dtype=np.int64)
        output = np.empty(m, dtype=np.int64)
        for i, per in enumerate(self._lengths):
            mask = type_index == i
            count_i = int(mask.sum())
            for name, length, source in per:
                target = prompt if name == "prompt_tokens" else output
                if length.kind is LengthKind.TRACE:
                    idx = (start + np.nonzero(mask)[0]) % source.size
                    target[mask] = np.clip(source[idx], length.min_tokens, length.max_tokens)
                else:
                    target[mask] = length.sample(source, count_i)
        if self.kind is ArrivalKind.CLOSED_LOOP:
            arrival = None
        elif self.kind is ArrivalKind.TRACE:
            arrival = (self._trace_times[start:stop] - self._trace_min) * self._spec.arrival.time_scale
        else:
            gaps = self._spec.arrival.gaps_s(self._arrival_rng, m)
            if self._last_s is None:
                arrival = np.cumsum(gaps)
            else:
                arrival = np.cumsum(np.concatenate(([self._last_s], gaps)))[1:]
            if m:
                self._last_s = arrival[-1]
        return DrawnWorkload(arrival, type_index, prompt, output)


class DrawnChunks:
    """``WorkloadStream``'s interface over a workload drawn whole (pipeline workloads, whose
    per-type merge and prefix/session draws need every request at once)."""

    def __init__(self, drawn: DrawnWorkload) -> None:
        self.drawn = drawn
        self.num_requests = drawn.type_index.size
        self.start = 0

    def whole(self) -> DrawnWorkload:
        return self.drawn

    def take(self, count: int) -> DrawnWorkload:
        d, start = self.drawn, self.start
        stop = min(start + count, self.num_requests)
        self.start = stop
        return DrawnWorkload(d.arrival_s[start:stop] if d.arrival_s is not None else None,
                             d.type_index[start:stop], d.prompt_tokens[start:stop],
                             d.output_tokens[start:stop])
