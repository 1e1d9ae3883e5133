"""``WorkloadStream`` (chunked draws) equals ``draw`` (one whole draw) bit for bit, for every
arrival kind, length kind, several types and traces, at sizes that cross chunk boundaries."""

from __future__ import annotations

import numpy as np
import pytest

from sim import (
    ArrivalKind,
    ArrivalSpec,
    LengthKind,
    LengthSpec,
    RequestTypeSpec,
    Stage,
    StageKind,
    WorkloadSpec,
)
from sim.workload.generator import DrawnChunks, WorkloadStream, draw
from sim.workload.spec import TraceRecords

PLAN = (Stage(kind=StageKind.GENERATE, pool="llm"),)
TRACE = TraceRecords(arrival_s=tuple(np.cumsum(np.linspace(0.01, 0.5, 2500)).tolist()),
                     prompt_tokens=tuple(range(1, 2501)), output_tokens=tuple(range(2500, 0, -1)))


def lengths(kind: LengthKind, mean: float) -> LengthSpec:
    return LengthSpec(kind=kind, mean=mean, std=0 if kind is LengthKind.FIXED else mean / 3,
                      min_tokens=1, max_tokens=4 * int(mean))


ARRIVALS = [ArrivalSpec(kind=ArrivalKind.POISSON, rate_per_s=3.0),
            ArrivalSpec(kind=ArrivalKind.GAMMA, rate_per_s=2.0, cv=3.0),
            ArrivalSpec(kind=ArrivalKind.GAMMA, rate_per_s=2.0, cv=0.5),
            ArrivalSpec(kind=ArrivalKind.MAX_LOAD),
            ArrivalSpec(kind=ArrivalKind.CLOSED_LOOP, concurrency=4),
            ArrivalSpec(kind=ArrivalKind.TRACE, time_scale=0.5)]


def spec_of(arrival: ArrivalSpec, kinds: tuple[LengthKind, ...], n: int) -> WorkloadSpec:
    types = tuple(RequestTypeSpec(name=f"t{i}", plan=PLAN, weight=1.0 + i,
                                  prompt_tokens=lengths(kind, 300 + 50 * i),
                                  output_tokens=(LengthSpec(kind=LengthKind.TRACE)
                                                 if kind is LengthKind.TRACE
                                                 else lengths(kind, 90 + 10 * i)))
                  for i, kind in enumerate(kinds))
    return WorkloadSpec(num_requests=n, arrival=arrival, request_types=types, trace=TRACE)


def chunked(spec: WorkloadSpec, seed: int, sizes: list[int]):
    source = WorkloadStream(spec, seed)
    parts, i = [], 0
    while source.start < source.num_requests:
        parts.append(source.take(sizes[i % len(sizes)]))
        i += 1
    return source.num_requests, parts


def assert_same(whole, parts) -> None:
    for name in ("type_index", "prompt_tokens", "output_tokens"):
        got = np.concatenate([getattr(p, name) for p in parts])
        assert got.dtype == getattr(whole, name).dtype
        assert np.array_equal(got, getattr(whole, name)), name
    if whole.arrival_s is None:
        assert all(p.arrival_s is None for p in parts)
    else:
        got = np.concatenate([p.arrival_s for p in parts])
        assert got.tobytes() == whole.arrival_s.tobytes()  # bit for bit, not approximately


@pytest.mark.parametrize("arrival", ARRIVALS, ids=lambda a: f"{a.kind.value}-{a.cv}")
@pytest.mark.parametrize("kinds", [
    (LengthKind.FIXED,), (LengthKind.NORMAL,), (LengthKind.LOGNORMAL,), (LengthKind.UNIFORM,),
    (LengthKind.TRACE,),
    (LengthKind.FIXED, LengthKind.NORMAL, LengthKind.LOGNORMAL, LengthKind.UNIFORM,
     LengthKind.TRACE)], ids=lambda k: "+".join(x.value for x in k))
@pytest.mark.parametrize("n", [1, 999, 3001])
def test_chunked_draws_equal_the_whole_draw(arrival, kinds, n):
    spec = spec_of(arrival, kinds, n)
    whole = draw(spec, 7)
    for sizes in ([1000], [1], [7, 1024, 333], [n + 5]):
        count, parts = chunked(spec, 7, sizes)
        assert count == whole.type_index.size
        assert_same(whole, parts)


def test_trace_arrivals_stop_at_the_trace_length():
    spec = spec_of(ArrivalSpec(kind=ArrivalKind.TRACE), (LengthKind.TRACE,), 10_000)
    count, parts = chunked(spec, 3, [1024])
    assert count == len(TRACE.arrival_s)
    assert_same(draw(spec, 3), parts)
    assert WorkloadStream(spec, 3).take(0).type_index.size == 0


def test_drawn_chunks_slice_a_whole_draw():
    whole = draw(spec_of(ARRIVALS[0], (LengthKind.NORMAL, LengthKind.FIXED), 5000), 1)
    source = DrawnChunks(whole)
    parts = [source.take(4096) for _ in range(3)]
    assert [p.type_index.size for p in parts] == [4096, 904, 0]
    assert_same(whole, parts)
