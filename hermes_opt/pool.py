"""A persistent process pool for simulations (joblib's loky executor, reused across batches).

Processes, not threads: the simulator is pure Python, so threads share one core (the GIL).
With one worker, jobs run in the driver process (no pickling, easiest to debug).
"""

from __future__ import annotations

import concurrent.futures as cf
import os
import signal
from typing import Any, Callable, Iterable, Iterator, Protocol


class StopFlag(Protocol):
    requested: bool


THREAD_LIMITS = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def _ignore_sigint() -> None:
    # Ctrl-C reaches the whole process group; only the driver decides how to stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _warm_up() -> None:
    """Import the simulator, Hydra and the composer (~1-2 s per process) while the driver opens
    the storage and asks the first batch, instead of on the first trial's clock."""
    import hermes_opt.cli  # noqa: F401  (hydra, omegaconf, sim, pricing)
    import hermes_opt.worker  # noqa: F401


class Pool:
    def __init__(self, n_jobs: int | None) -> None:
        self.n_workers = int(n_jobs or os.cpu_count() or 1)
        self._executor: Any = None

    def __enter__(self) -> "Pool":
        if self.n_workers > 1:
            from joblib.externals.loky import get_reusable_executor
            # idle workers live for 10 minutes so consecutive studies in one process reuse them
            # One BLAS/OpenMP thread per worker: the simulator's arrays are small, and N workers
            # x N threads on N cores measured 2-3x slower than single-threaded workers.
            self._executor = get_reusable_executor(max_workers=self.n_workers, timeout=600,
                                                   initializer=_ignore_sigint, env=THREAD_LIMITS)
            for _ in range(self.n_workers):
                self._executor.submit(_warm_up)
        return self

    def __exit__(self, *exc: object) -> None:
        self._executor = None

    def run(self, jobs: Iterable[tuple[Callable, ...]], stop: StopFlag) -> Iterator[Any]:
        """Yield each job's result as it completes; stop early (dropping the rest) on request.
        Jobs may come from a generator: each is submitted as soon as it is produced, and all are
        submitted before the first result is yielded."""
        if self._executor is None:
            from threadpoolctl import threadpool_limits
            # materialise first: a generator of jobs may sample trials, and no result may be
            # told before every trial of the batch is sampled (1 worker == N workers)
            for fn, *args in list(jobs):
                if stop.requested:
                    return
                # the same single BLAS thread as a pool worker: thread count changes the last
                # bit of numpy reductions, and results must not depend on n_jobs
                with threadpool_limits(limits=1):
                    result = fn(*args)
                yield result
            return
        pending = set()
        for fn, *args in jobs:
            pending.add(self._executor.submit(fn, *args))
        try:
            while pending:
                done, pending = cf.wait(pending, timeout=0.2, return_when=cf.FIRST_COMPLETED)
                for future in done:
                    yield future.result()
                if stop.requested:
                    break
        finally:
            if pending:  # interrupted: running simulations are of no use any more
                for future in pending:
                    future.cancel()
                self._executor.shutdown(wait=False, kill_workers=True)
                self._executor = None
