"""A persistent process pool for simulations (joblib's loky executor, reused across batches).

Processes, not threads: the simulator is pure Python, so threads share one core (the GIL).
With one worker, jobs run in the driver process (no pickling, easiest to debug).

Worker loss: a worker that dies (SIGKILL, the kernel's OOM killer, a crash in a C extension)
breaks loky's executor, and every job not yet finished fails with ``BrokenProcessPool``. Those
jobs are submitted again to a fresh executor: the simulator is deterministic, so a re-run gives
the result the lost run would have. Loky does not say which job the dead worker held (it kills
the other workers too), so a loss counts against every job pending when the pool broke, and a job
lost once is re-run alone (nothing else in the pool, later jobs held back): a further loss is
then its own. Each job is re-run at most ``MAX_RETRIES`` times; a job lost once more raises
``JobLost`` from ``next_result`` and the caller records its failure (the driver marks the trial
FAIL with the reason and the study goes on). A job that kills its worker every time (one that
runs out of memory) thus costs three losses and fails alone; the others finish.
"""

from __future__ import annotations

import concurrent.futures as cf
import os
import signal
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any, Protocol


class StopFlag(Protocol):
    requested: bool


THREAD_LIMITS = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


MAX_RETRIES = 2  # re-runs of one job after worker losses; docs/opt.md "Worker loss"


class JobLost(RuntimeError):
    """A job whose worker died more than ``MAX_RETRIES`` times: ``args`` as submitted."""

    def __init__(self, args: tuple, reason: str) -> None:
        super().__init__(reason)
        self.job_args = args
        self.reason = reason


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
        # every submitted job not yet taken: what to submit again after a worker loss
        self._jobs: dict[cf.Future, _Job] = {}
        self._suspects: deque[_Job] = deque()  # lost at least once: re-run one at a time, alone
        self._held: deque[_Job] = deque()  # never lost, waiting for the suspects to finish
        self._alone: cf.Future | None = None  # the suspect running alone
        self.lost_workers = 0  # times the executor broke (a worker died)
        self.retried_jobs = 0  # jobs submitted again after a loss

    def __enter__(self) -> Pool:
        if self.n_workers > 1:
            self._executor = self._new_executor()
            for _ in range(self.n_workers):
                self._executor.submit(_spawned)
        return self

    def _new_executor(self) -> Any:
        from joblib.externals.loky import get_reusable_executor
        # idle workers live for 10 minutes so consecutive studies in one process reuse them
        # One BLAS/OpenMP thread per worker: the simulator's arrays are small, and N workers
        # x N threads on N cores measured 2-3x slower than single-threaded workers.
        # A broken executor (a worker died) is replaced by a new one here.
        return get_reusable_executor(max_workers=self.n_workers, timeout=600,
                                     initializer=_init_worker, initargs=(os.getpid(),),
                                     env=THREAD_LIMITS)

    def __exit__(self, *exc: object) -> None:
        self._abort()
        self._executor = None

    @property
    def pending(self) -> int:
        """Jobs submitted whose results have not been taken yet."""
        return (len(self._queued) + len(self._running) + len(self._ready) + len(self._suspects)
                + len(self._held))

    def submit(self, fn: Callable, *args: Any) -> None:
        if self._executor is None:
            self._queued.append((fn, args))
        else:
            self._submit(_Job(fn, args))

    def _submit(self, job: _Job) -> cf.Future | None:
        if self._suspects or self._alone is not None:
            self._held.append(job)
            return None
        return self._to_executor(job)

    def _to_executor(self, job: _Job) -> cf.Future:
        job.executor = self._executor
        future = self._executor.submit(job.fn, *job.args)
        self._jobs[future] = job
        self._running.add(future)
        return future

    def _next_alone(self) -> None:
        """Nothing running alone: start the next suspect alone, or release the held jobs."""
        if self._suspects:
            self._alone = self._to_executor(self._suspects.popleft())
            return
        while self._held:
            self._to_executor(self._held.popleft())

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
        if not self._ready:
            return None
        future = self._ready.popleft()
        job = self._jobs.pop(future)
        err = future.exception()
        if future is self._alone:
            self._alone = None
        if isinstance(err, BrokenProcessPool):
            self._resubmit(job, err)  # or JobLost
        if self._alone is None and not self._running:
            self._next_alone()
        if not isinstance(err, BrokenProcessPool):
            return future.result()
        return self.next_result(stop)

    def _resubmit(self, job: _Job, err: BaseException) -> None:
        """A job whose worker pool broke: submit it again to a new executor, or raise
        ``JobLost`` once it was lost ``MAX_RETRIES + 1`` times. Each job of the broken pool
        comes here when its own future fails."""
        if job.executor is self._executor:  # the first job of this break: a new executor
            self.lost_workers += 1
            self._executor = self._new_executor()  # loky replaces a broken executor
        job.losses += 1
        if job.losses > MAX_RETRIES:
            if self._alone is None and not self._running:
                self._next_alone()  # the others go on
            raise JobLost(job.args, f"its worker process died {job.losses} times (killed, out "
                                    f"of memory or crashed: {_first_line(err)})")
        self.retried_jobs += 1
        if job.losses > 1:  # it was alone: it goes first again
            self._suspects.appendleft(job)
        else:
            self._suspects.append(job)

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
        self._jobs.clear()
        self._suspects.clear()
        self._held.clear()
        self._alone = None


@dataclass(slots=True)
class _Job:
    fn: Callable
    args: tuple
    losses: int = 0  # times its worker pool broke before it finished
    executor: Any = None  # the executor it was last submitted to


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return (text[0] if text else type(err).__name__)[:200]
