"""Shared measurement for the simulator speed benchmarks: load at a fraction of saturation, then
time repeated runs (the best of the repeats is the figure; the others show the noise)."""

from __future__ import annotations

import time
from collections.abc import Callable

from sim import ArrivalKind, ArrivalSpec, SimConfig, SimResult, simulate


def time_at_load(make_config: Callable[[int, ArrivalSpec], SimConfig], requests: int, load: float,
                 repeat: int) -> tuple[float, float, list[float], SimResult]:
    """``(capacity_req_per_s, rate_per_s, wall_times_s, last_result)`` for ``requests`` Poisson
    arrivals at ``load`` x the saturation throughput (measured with 20,000 requests at t=0)."""
    saturated = simulate(make_config(20_000, ArrivalSpec(kind=ArrivalKind.MAX_LOAD)), 0)
    capacity = saturated.summary["requests_per_s"]
    rate = load * capacity
    config = make_config(requests, ArrivalSpec(kind=ArrivalKind.POISSON, rate_per_s=rate))
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        result = simulate(config, 1)
        times.append(time.perf_counter() - start)
    return capacity, rate, times, result
