"""The evaluation pool on a Dask distributed cluster (study key ``executor: dask``).

Same interface as ``hermes_opt.run.pool.Pool`` (submit, next_result, run, pending), so the
driver is unchanged: it still asks fixed batches and tells results in trial-number order, which
is why a Dask run gives exactly the loky run's trials. With ``executor.address`` the pool
connects to a running scheduler (``dask scheduler`` + ``dask worker`` on other machines, or a
dask-jobqueue cluster on SLURM, see docs/opt.md "Distributed execution"); without one it starts
a ``distributed.LocalCluster`` of ``n_jobs`` single-threaded worker processes for the study.

Each job runs under one BLAS thread (``threadpoolctl``), as loky workers and the in-process pool
do, because the thread count changes the last bits of numpy reductions.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Protocol

from sim.errors import ConfigError


class StopFlag(Protocol):  # hermes_opt.run.pool.StopFlag (that module imports this one)
    requested: bool

HANDSHAKE_GRACE_S = 5  # beyond Dask's own timeout, for the handshake it does not bound
CONNECT_TIMEOUT_S = 10


def _limited(fn: Callable, *args: Any) -> Any:
    from threadpoolctl import threadpool_limits
    with threadpool_limits(limits=1):
        return fn(*args)


def _warm() -> None:
    """Import the simulator and the composer once per worker, before the first job."""
    import hermes_opt.compose.evaluate  # noqa: F401
    import hermes_opt.run.worker  # noqa: F401


class DaskPool:
    """Submit jobs to a Dask cluster; take results back one at a time as they complete."""

    def __init__(self, n_jobs: int | None, address: str | None) -> None:
        self.address = address
        self.n_workers = int(n_jobs or os.cpu_count() or 1)
        self._client: Any = None
        self._cluster: Any = None
        self._running: set[Any] = set()
        self._ready: deque[Any] = deque()

    def __enter__(self) -> DaskPool:
        try:
            from distributed import Client, LocalCluster
        except ImportError:
            raise ConfigError("executor.kind='dask': the distributed package is not installed; "
                              "pip install 'hermes-opt[dask]' (or use executor=loky)") from None
        if self.address:
            self._client, workers = self._connect(Client)
            self.n_workers = max(1, sum(w.get("nthreads", 1) for w in workers.values()))
        else:
            self._cluster = LocalCluster(n_workers=self.n_workers, threads_per_worker=1,
                                         processes=True, dashboard_address=None,
                                         silence_logs=logging.ERROR)
            self._client = Client(self._cluster)
        self._client.run(_warm)
        return self

    def _connect(self, client_class: Any) -> tuple[Any, dict]:
        """The client and the scheduler's workers, or one line. The whole handshake is bounded:
        Dask's own timeout covers the TCP connect, but a listener that accepts and then says
        nothing kept it waiting for ever, and an HTTP server's reply was read as a message
        length (a 3 EiB allocation): any failure there means "not a Dask scheduler"."""
        box: dict[str, Any] = {}

        def connect() -> None:
            try:
                client = client_class(self.address, timeout=CONNECT_TIMEOUT_S)
                box["workers"] = client.scheduler_info().get("workers", {})
                box["client"] = client
            except BaseException as err:  # noqa: BLE001 -- reported as one line below
                box["error"] = err
        thread = threading.Thread(target=connect, name="hermes-dask-connect", daemon=True)
        thread.start()
        thread.join(CONNECT_TIMEOUT_S + HANDSHAKE_GRACE_S)
        advice = ("start one with `dask scheduler`, or omit executor.address for a local "
                  "cluster")
        if thread.is_alive():
            raise ConfigError(f"executor.address={self.address!r}: something answers there but "
                              f"no Dask handshake came within "
                              f"{CONNECT_TIMEOUT_S + HANDSHAKE_GRACE_S} s; {advice}")
        if "error" in box:
            err = box["error"]
            first = (str(err).splitlines() or [""])[0][:200] or type(err).__name__
            what = ("cannot connect to a Dask scheduler there" if isinstance(
                err, (OSError, TimeoutError)) else "not a Dask scheduler (its reply is not Dask's)")
            raise ConfigError(f"executor.address={self.address!r}: {what} within "
                              f"{CONNECT_TIMEOUT_S} s ({first}); {advice}")
        return box["client"], box["workers"]

    def __exit__(self, *exc: object) -> None:
        self._abort()
        if self._client is not None:
            self._client.close()
        if self._cluster is not None:
            self._cluster.close()
        self._client = self._cluster = None

    @property
    def pending(self) -> int:
        return len(self._running) + len(self._ready)

    def submit(self, fn: Callable, *args: Any) -> None:
        self._running.add(self._client.submit(_limited, fn, *args, pure=False))

    def next_result(self, stop: StopFlag) -> Any | None:
        """The next completed job's result (any order), or None when nothing is pending or a
        stop was requested (then every pending job is cancelled)."""
        from distributed import wait
        while not self._ready and self._running:
            if stop.requested:
                break
            try:
                done, not_done = wait(list(self._running), timeout=0.2,
                                      return_when="FIRST_COMPLETED")
            except TimeoutError:  # nothing finished within the timeout: look at `stop` again
                continue
            self._running = set(not_done)
            self._ready.extend(done)
        if stop.requested:
            self._abort()
            return None
        return self._ready.popleft().result() if self._ready else None

    def run(self, jobs: Iterable[tuple[Callable, ...]], stop: StopFlag) -> Iterator[Any]:
        for fn, *args in jobs:
            self.submit(fn, *args)
        while (result := self.next_result(stop)) is not None:
            yield result

    def _abort(self) -> None:
        if self._running and self._client is not None:
            self._client.cancel(list(self._running))
        self._running, self._ready = set(), deque()
