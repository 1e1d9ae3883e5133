"""A persistent process pool for simulations (joblib's loky executor, reused across batches).

Processes, not threads: the simulator is pure Python, so threads share one core (the GIL).
With one worker, jobs run in the driver process (no pickling, easiest to debug).
"""

from __future__ import annotations

import concurrent.futures as cf
import os
import signal
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Protocol


class StopFlag(Protocol):
    requested: bool


THREAD_LIMITS = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


PARENT_POLL_S = 1.0  # how often a worker checks that the process that started it is alive


def _exit_with_parent(parent: int) -> None:
    """A worker's watchdog thread: exit as soon as ``parent`` (the driver) is gone. Loky notices
    a dead parent only when its idle timeout runs out (minutes), so a SIGKILLed driver left its
    workers simulating and holding memory for 11-16 minutes. A dead parent shows as a changed
    ``getppid()`` (the orphan is re-parented to init or a subreaper)."""
    while True:
        time.sleep(PARENT_POLL_S)
        if os.getppid() != parent:
            os._exit(0)


def _init_worker(parent: int | None = None) -> None:
    """Ctrl-C reaches the whole process group; only the driver decides how to stop. Exit when the
    driver ``parent`` dies (``_exit_with_parent``). Then import the simulator, Hydra and the
    composer (~1 s) before the first job, and freeze what they allocated, so Python's full
    collections during simulations skip them. (Without psutil, a dependency for this reason,
    loky would also run a full ``gc.collect()`` after a job once a second: ~70 ms each, 5% of a
    2-worker study's worker time, measured.)"""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if parent is not None:
        if os.getppid() != parent:  # the driver died while this worker started
            os._exit(0)
        threading.Thread(target=_exit_with_parent, args=(parent,), name="hermes-parent-watch",
                         daemon=True).start()
    import gc

    import hermes_opt.compose.evaluate  # noqa: F401  (hydra, omegaconf, sim, pricing)
    import hermes_opt.run.worker  # noqa: F401
    gc.collect()
    gc.freeze()


def _spawned() -> None:
    """A no-op job: submitting one per worker makes loky start them now, while the driver opens
    the storage and asks the first batch."""


class Pool:
    """Submit jobs as they are produced; take results back one at a time as they complete."""

    def __init__(self, n_jobs: int | None) -> None:
        self.n_workers = int(n_jobs or os.cpu_count() or 1)
        self._executor: Any = None
        self._queued: deque[tuple[Callable, tuple]] = deque()  # one worker: run in-process, FIFO
        self._running: set[cf.Future] = set()
        self._ready: deque[cf.Future] = deque()

    def __enter__(self) -> Pool:
        if self.n_workers > 1:
            from joblib.externals.loky import get_reusable_executor
            # idle workers live for 10 minutes so consecutive studies in one process reuse them
            # One BLAS/OpenMP thread per worker: the simulator's arrays are small, and N workers
            # x N threads on N cores measured 2-3x slower than single-threaded workers.
            self._executor = get_reusable_executor(max_workers=self.n_workers, timeout=600,
                                                   initializer=_init_worker,
                                                   initargs=(os.getpid(),), env=THREAD_LIMITS)
            for _ in range(self.n_workers):
                self._executor.submit(_spawned)
        return self

    def __exit__(self, *exc: object) -> None:
        self._abort()
        self._executor = None

    @property
    def pending(self) -> int:
        """Jobs submitted whose results have not been taken yet."""
        return len(self._queued) + len(self._running) + len(self._ready)

    def submit(self, fn: Callable, *args: Any) -> None:
        if self._executor is None:
            self._queued.append((fn, args))
        else:
            self._running.add(self._executor.submit(fn, *args))

    def next_result(self, stop: StopFlag) -> Any | None:
        """The next completed job's result (any order), or None when nothing is pending or a
        stop was requested (then every pending job is dropped)."""
        if self._executor is None:
            if stop.requested or not self._queued:
                self._queued.clear()
                return None
            from threadpoolctl import threadpool_limits
            fn, args = self._queued.popleft()
            # the same single BLAS thread as a pool worker: thread count changes the last bit
            # of numpy reductions, and results must not depend on n_jobs
            with threadpool_limits(limits=1):
                return fn(*args)
        while not self._ready and self._running:
            if stop.requested:
                break
            done, self._running = cf.wait(self._running, timeout=0.2,
                                          return_when=cf.FIRST_COMPLETED)
            self._ready.extend(done)
        if stop.requested:
            self._abort()
            return None
        return self._ready.popleft().result() if self._ready else None

    def run(self, jobs: Iterable[tuple[Callable, ...]], stop: StopFlag) -> Iterator[Any]:
        """Submit every job, then yield each result as it completes (for benchmarks)."""
        for fn, *args in jobs:
            self.submit(fn, *args)
        while (result := self.next_result(stop)) is not None:
            yield result

    def _abort(self) -> None:
        """Drop pending jobs; running simulations are of no use any more."""
        self._queued.clear()
        self._ready.clear()
        if self._running and self._executor is not None:
            # Kill the workers, then let loky notice. Its own shutdown(kill_workers=True) races
            # with jobs still queued (its manager thread dies with a KeyError traceback), and
            # cancelling futures first kills that thread before the workers (exit then hangs).
            for pid in list(getattr(self._executor, "_processes", {})):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            self._executor.shutdown(wait=True)
            self._executor = None
        self._running = set()
