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
