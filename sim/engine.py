"""A minimal discrete-event kernel.

Events live in one heap keyed by ``(time_s, priority, seq)``: ``seq`` is a global insertion counter,
so two events at the same time and priority always fire in the order they were scheduled. Nothing
happens except through the heap, which makes a run a pure function of its inputs. Only this module
touches the heap (SimPy's rule; ``tests/layout`` checks it): other modules call ``schedule`` or, on
hot paths, ``push``, and peek with ``next_time_s``. That is also why ``num_events`` needs no
counter of its own: every sequence number drawn is an event pushed or one run at once
(``run_now``), so the events fired are the numbers drawn minus the events still pending.
"""

from __future__ import annotations

from collections.abc import Callable
from heapq import heappop, heappush
from typing import Any

_INF = float("inf")

# Priorities at equal times: completions free resources before arrivals are routed, and arrivals are
# routed before replicas pick their next batch, so a batch formed at time t sees everything at t.
PRIORITY_COMPLETION = 0
PRIORITY_ARRIVAL = 1
PRIORITY_SCHEDULE = 2


class Engine:
    __slots__ = ("_heap", "_seq", "now_s")

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, int, Callable[..., Any], tuple]] = []
        self._seq = 0
        self.now_s = 0.0

    def schedule(self, time_s: float, callback: Callable[..., Any], *args: Any,
                 priority: int = PRIORITY_SCHEDULE) -> None:
        if time_s < self.now_s:
            raise RuntimeError(f"causality: event at {time_s} scheduled from {self.now_s}")
        self._seq += 1
        heappush(self._heap, (time_s, priority, self._seq, callback, args))

    def push(self, time_s: float, priority: int, callback: Callable[..., Any],
             args: tuple = ()) -> None:
        """``schedule(time_s, callback, *args, priority=priority)`` for hot paths: positional
        arguments, no ``*args`` packing and no causality check. Callers pass ``now_s`` plus a
        duration that is never negative (a step's or a decode run's end, a server's job, a
        dispatch at ``now_s``), so the check could never fire there; it stays in ``schedule``
        for everything else. Draws the next sequence number exactly as ``schedule`` does, so
        replacing one by the other changes no tie-break. Hot loops may bind it once
        (``push = engine.push``)."""
        self._seq = seq = self._seq + 1
        heappush(self._heap, (time_s, priority, seq, callback, args))

    def run_now(self, callback: Callable[..., Any], args: tuple = ()) -> None:
        """Run ``callback(*args)`` at once, as the event ``push(now_s, priority, callback,
        args)`` would run if it were the very next event popped.

        Only for a caller whose own event does nothing after this call returns, and only when
        no other event is due now (``next_time_s() > now_s``): then that event would be popped
        next, with nothing in between, whatever its priority. It draws that event's sequence
        number, so every later tie-break is unchanged and it counts in ``num_events``."""
        self._seq += 1
        callback(*args)

    def run(self, until_s: float = float("inf")) -> None:
        heap = self._heap
        pop = heappop
        if until_s == float("inf"):  # the whole run: no bound to test per event
            while heap:
                time_s, _, _, callback, args = pop(heap)
                self.now_s = time_s
                callback(*args)
            return
        while heap:
            if heap[0][0] > until_s:
                break
            time_s, _, _, callback, args = pop(heap)
            self.now_s = time_s
            callback(*args)

    def next_time_s(self) -> float:
        """Time of the earliest pending event (inf when none)."""
        heap = self._heap
        return heap[0][0] if heap else _INF

    @property
    def num_events(self) -> int:
        """Events fired so far (the one running included): sequence numbers drawn, less the
        events still pending."""
        return self._seq - len(self._heap)

    @property
    def pending(self) -> int:
        return len(self._heap)
