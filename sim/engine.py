"""A minimal discrete-event kernel.

Events live in one heap keyed by ``(time_s, priority, seq)``: ``seq`` is a global insertion counter,
so two events at the same time and priority always fire in the order they were scheduled. Nothing
happens except through the heap, which makes a run a pure function of its inputs.
"""

from __future__ import annotations

import heapq
from typing import Any, Callable

# Priorities at equal times: completions free resources before arrivals are routed, and arrivals are
# routed before replicas pick their next batch, so a batch formed at time t sees everything at t.
PRIORITY_COMPLETION = 0
PRIORITY_ARRIVAL = 1
PRIORITY_SCHEDULE = 2


class Engine:
    __slots__ = ("_heap", "_seq", "now_s", "num_events")

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, int, Callable[..., Any], tuple]] = []
        self._seq = 0
        self.now_s = 0.0
        self.num_events = 0

    def schedule(self, time_s: float, callback: Callable[..., Any], *args: Any,
                 priority: int = PRIORITY_SCHEDULE) -> None:
        if time_s < self.now_s:
            raise RuntimeError(f"causality: event at {time_s} scheduled from {self.now_s}")
        self._seq += 1
        heapq.heappush(self._heap, (time_s, priority, self._seq, callback, args))

    def run(self, until_s: float = float("inf")) -> None:
        heap = self._heap
        pop = heapq.heappop
        if until_s == float("inf"):  # the whole run: no bound to test per event
            while heap:
                time_s, _, _, callback, args = pop(heap)
                self.now_s = time_s
                self.num_events += 1
                callback(*args)
            return
        while heap:
            if heap[0][0] > until_s:
                break
            time_s, _, _, callback, args = pop(heap)
            self.now_s = time_s
            self.num_events += 1
            callback(*args)

    def next_time_s(self) -> float:
        """Time of the earliest pending event (inf when none)."""
        return self._heap[0][0] if self._heap else float("inf")

    @property
    def pending(self) -> int:
        return len(self._heap)
