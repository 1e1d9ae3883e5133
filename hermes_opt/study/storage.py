"""Optuna storage for a study, and the locks that keep trials from being lost or duplicated.

* SQLite (default, ``runs/<study>/study.db``): one driver per study, enforced by a lock file.
  Trials a dead driver left RUNNING are re-evaluated with their stored parameters on resume.
* PostgreSQL (``storage=postgresql://...``): any number of drivers on any machines. Each driver
  records heartbeats for its running trials; trials whose driver stopped beating are failed and
  re-queued (``RetryHeartbeatStaleTrialCallback``) and taken by whoever asks next. Asking is
  serialised with an advisory lock so the study stops at exactly ``n_trials``.
"""

from __future__ import annotations

import copy
import errno
import fcntl
import os
import re
import tempfile
import threading
import time
import warnings
import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import optuna
import sqlalchemy
from optuna import distributions
from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback
from optuna.storages._cached_storage import _CachedStorage  # subclassed: SingleDriverCache
from optuna.trial import FrozenTrial, TrialState

from sim.errors import ConfigError

MAX_RETRY = 3


def mask(url: str) -> str:
    """The URL without its password (for reports and messages)."""
    return re.sub(r"(://[^:/@]+):[^@]*@", r"\1:***@", url)


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite:")


def sqlite_path(url: str) -> Path | None:
    if not is_sqlite(url) or url.endswith(":memory:"):
        return None
    return Path(url.split(":///", 1)[1])


def absolute_url(url: str) -> str:
    """SQLite paths are relative to the working directory; make them absolute once. A bare
    ``postgresql://`` gets the installed driver: SQLAlchemy 2.1 defaults to psycopg 3, while
    many machines (and our ``postgres`` extra) have psycopg2."""
    path = sqlite_path(url)
    if path is not None:
        return f"sqlite:///{path.resolve()}"
    if url.startswith("postgresql://"):
        import importlib.util
        if importlib.util.find_spec("psycopg") is None and importlib.util.find_spec("psycopg2"):
            return "postgresql+psycopg2://" + url[len("postgresql://"):]
    return url


def open_storage(url: str, *, heartbeat_interval_s: int = 10, grace_period_s: int = 60,
                 create: bool = True) -> RDBStorage:
    """An RDBStorage, or ConfigError ('storage=<url>: cannot open: <why>') if unreachable."""
    path = sqlite_path(url)
    if path is not None:
        if not create and not path.is_file():
            raise ConfigError(f"storage={url!r}: no such study database (run the study first)")
        if create:
            _check_creatable(url, path)
        path.parent.mkdir(parents=True, exist_ok=True)
    kwargs: dict = {}
    if not is_sqlite(url):
        kwargs.update(heartbeat_interval=heartbeat_interval_s, grace_period=grace_period_s,
                      heartbeat_stale_trial_callback=None)
    if url.startswith("postgresql"):
        kwargs["engine_kwargs"] = {"connect_args": {"connect_timeout": 10}, "pool_pre_ping": True}
    for attempt in range(4):
        try:
            with warnings.catch_warnings():  # heartbeats are "experimental" since Optuna 2.9
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                kwargs_ = dict(kwargs)
                if "heartbeat_stale_trial_callback" in kwargs_:
                    kwargs_["heartbeat_stale_trial_callback"] = RetryHeartbeatStaleTrialCallback(
                        max_retry=MAX_RETRY)
                storage = RDBStorage(absolute_url(url), **kwargs_)
            if path is not None:
                _fast_sqlite(storage)
            return storage
        except Exception as err:  # sqlalchemy raises many types; all mean "cannot use this URL"
            text = str(err)
            # Workers started together race to create the schema; the loser just retries.
            if attempt < 3 and any(s in text for s in ("UNIQUE", "duplicate key", "already exists")):
                time.sleep(0.2 * (attempt + 1))
                continue
            first = next((line.strip() for line in text.splitlines() if line.strip()),
                         type(err).__name__)
            if "Can't load plugin" in first or "Could not parse" in first:
                scheme = url.split("://", 1)[0] if "://" in url else None
                first = ((f"unknown database URL scheme {scheme!r}" if scheme else
                          "not a database URL") + "; use sqlite:///<path> or "
                         "postgresql://<user>@<host>/<database>")
            if "Failed to import DB access module" in first:
                first = ("no database driver for this URL; for PostgreSQL install it with "
                         "`pip install 'hermes-opt[postgres]'` (psycopg2-binary)")
            raise ConfigError(f"storage={mask(url)!r}: cannot open: {first}") from None
    raise AssertionError("unreachable")


def _check_creatable(url: str, path: Path) -> None:
    """ConfigError ('storage=<url>: cannot create the database: <why>') unless SQLite can
    create ``path`` and its journal files: the parent directory (made if missing) must be a
    writable directory. Tried by creating a file, because ``os.access`` says yes to root even on
    read-only file systems (``/proc``)."""
    def fail(why: str) -> None:
        raise ConfigError(f"storage={url!r}: cannot create the database: {why}")

    if path.is_dir():
        fail(f"{path} is a directory (name a file, e.g. {path / 'study.db'})")
    ancestor = path.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        fail(f"{ancestor} is a file, not a directory")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".hermes-probe-", dir=path.parent)
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        where = path.parent if path.parent.is_dir() else ancestor
        why = err.strerror if err.errno not in (None, errno.ENOENT) else None
        fail(f"{where} is not writable" + (f" ({why})" if why else ""))


def _fast_sqlite(storage: RDBStorage) -> None:
    """WAL journal with synchronous=NORMAL: a commit no longer waits for an fsync (~9 ms each,
    ~20 commits per trial), and a crashed *process* still loses nothing that was committed."""
    from sqlalchemy import event

    def pragmas(dbapi_connection, _record) -> None:  # noqa: ANN001 (DB-API connection)
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    event.listen(storage.engine, "connect", pragmas)
    storage.engine.dispose()  # connections opened before the listener reconnect with the pragmas


class DriverLock:
    """One driver per SQLite study: a second ``hermes-opt`` on the same file is refused, because
    resuming re-runs RUNNING trials, which would duplicate a live driver's work."""

    def __init__(self, url: str) -> None:
        path = sqlite_path(url)
        self.path = path.with_suffix(path.suffix + ".lock") if path is not None else None
        self._fd: int | None = None

    def __enter__(self) -> DriverLock:
        if self.path is None:
            return self
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._fd)
            self._fd = None
            raise ConfigError(f"storage={str(self.path)[:-5]!r}: another hermes-opt is running "
                              f"this study (lock {self.path}); use a PostgreSQL storage for "
                              f"several workers") from None
        return self

    def __exit__(self, *exc: object) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


@contextmanager
def ask_lock(storage: RDBStorage, study_name: str) -> Iterator[None]:
    """Serialise 'count trials, then ask' across drivers sharing a PostgreSQL study."""
    url = str(storage.engine.url)
    if not url.startswith("postgresql"):
        yield  # SQLite has a single driver (DriverLock)
        return
    from sqlalchemy import text
    key = zlib.crc32(f"hermes-opt:{study_name}".encode())
    with storage.engine.connect() as conn:
        conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": key})
        try:
            yield
        finally:
            conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
            conn.commit()


class Heartbeat:
    """Records heartbeats for this driver's running trials (PostgreSQL only), from a thread, so
    long simulations are not mistaken for a dead driver."""

    def __init__(self, storage: RDBStorage) -> None:
        self.storage = storage
        self.interval_s = storage.get_heartbeat_interval()
        self.trial_ids: set[int] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def add(self, trial_id: int) -> None:
        if self.interval_s:
            self.storage.record_heartbeat(trial_id)
        with self._lock:
            self.trial_ids.add(trial_id)

    def discard(self, trial_id: int) -> None:
        with self._lock:
            self.trial_ids.discard(trial_id)

    def _beat(self) -> None:
        while not self._stop.wait(self.interval_s):
            with self._lock:
                ids = sorted(self.trial_ids)
            for trial_id in ids:
                try:
                    self.storage.record_heartbeat(trial_id)
                except Exception:  # a transient DB error; the next beat retries
                    pass

    def __enter__(self) -> Heartbeat:
        if self.interval_s:
            self._thread = threading.Thread(target=self._beat, name="hermes-heartbeat", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)


def fail_stale(study: optuna.Study) -> None:
    """Fail (and re-queue) trials whose driver stopped sending heartbeats, or died before its
    first one."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)
        _fail_never_beaten(study)


def _fail_never_beaten(study: optuna.Study) -> None:
    """Optuna only judges trials that have a heartbeat row, so a driver killed between ``ask()``
    and its first ``record_heartbeat`` leaves a trial RUNNING for ever and the study one trial
    short. A live driver records the first beat right after asking, so a trial with no beat
    that started more than a grace period ago has a dead driver. ``datetime_start`` is the
    asking machine's clock: skew between machines only shifts this by the skew."""
    storage = study._storage  # Optuna wraps an RDBStorage in a write-through cache
    rdb = getattr(storage, "_backend", storage)
    if not isinstance(rdb, RDBStorage) or not rdb.get_heartbeat_interval():
        return
    grace_s = rdb.grace_period or 2 * rdb.get_heartbeat_interval()
    now = datetime.now()
    old = {t._trial_id for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
           if t.datetime_start is not None
           and (now - t.datetime_start).total_seconds() > grace_s}
    if not old:
        return
    with rdb.engine.connect() as conn:  # the table is part of Optuna's stable schema
        beaten = {row[0] for row in conn.execute(
            sqlalchemy.text("SELECT trial_id FROM trial_heartbeats WHERE trial_id IN :ids")
            .bindparams(sqlalchemy.bindparam("ids", expanding=True)), {"ids": sorted(old)})}
    callback = rdb.get_heartbeat_stale_trial_callback()
    for trial_id in sorted(old - beaten):
        try:
            if not storage.set_trial_state_values(trial_id, state=TrialState.FAIL):
                continue
        except optuna.exceptions.UpdateFinishedTrialError:  # another driver got there first
            continue
        if callback is not None:
            callback(study, storage.get_trial(trial_id))


class _FinishedTrial(FrozenTrial):
    """A finished trial in the single-driver cache. Its attributes never change again, so its
    constraints are parsed once: TPE reads every trial's constraints at every suggestion (its
    infeasibility score), a quarter of the driver's CPU in dse_chat's 600 trials when parsed
    from the system attributes each time."""

    @property
    def constraints(self) -> dict[str, float]:
        cached = self.__dict__.get("_parsed_constraints")
        if cached is None:
            cached = self.__dict__["_parsed_constraints"] = FrozenTrial.constraints.fget(self)
        return dict(cached)


class SingleDriverCache(_CachedStorage):
    """Optuna's RDB cache for a study only this process writes (SQLite under ``DriverLock``).

    Optuna's cache re-reads every unfinished trial from the database on each ``get_all_trials``
    and ``get_trial``, because another process might have changed it. With two batches in
    flight that is ~16 ORM-built trials, two or three times per trial: 40% of the driver's CPU.
    Here no other process writes, so after one full read the cache is kept current by applying
    each write to the cached trial as well. Every write still goes to the database first, in
    the same order, so what is stored (and resumed from) is unchanged.
    """

    def __init__(self, backend: RDBStorage) -> None:
        super().__init__(backend)
        self._loaded: set[int] = set()

    def _read_trials_from_remote_storage(self, study_id: int) -> None:
        if study_id not in self._loaded:
            super()._read_trials_from_remote_storage(study_id)
            self._loaded.add(study_id)

    def _add_trials_to_cache(self, study_id: int, trials: list[FrozenTrial]) -> None:
        for trial in trials:
            if trial.state.is_finished() and type(trial) is FrozenTrial:
                trial.__class__ = _FinishedTrial  # same object and fields; constraints cached
        super()._add_trials_to_cache(study_id, trials)

    def _cached(self, trial_id: int) -> FrozenTrial | None:
        with self._lock:
            where = self._trial_id_to_study_id_and_number.get(trial_id)
            return None if where is None else self._studies[where[0]].trials[where[1]]

    def get_trial(self, trial_id: int) -> FrozenTrial:
        trial = self._cached(trial_id)
        if trial is None:
            return self._backend.get_trial(trial_id)
        # callers (optuna.Trial) update the copy they hold; the cache is updated by the writes
        return trial if trial.state.is_finished() else copy.deepcopy(trial)

    def set_trial_param(self, trial_id: int, param_name: str, param_value_internal: float,
                        distribution: distributions.BaseDistribution) -> None:
        super().set_trial_param(trial_id, param_name, param_value_internal, distribution)
        trial = self._cached(trial_id)
        if trial is not None:
            trial.distributions = {**trial.distributions, param_name: distribution}
            trial.params = {**trial.params,
                            param_name: distribution.to_external_repr(param_value_internal)}

    def set_trial_state_values(self, trial_id: int, state: TrialState,
                               values: Sequence[float] | None = None) -> bool:
        changed = super().set_trial_state_values(trial_id, state, values)
        if changed:  # the database set the timestamps: take the stored trial as it is
            fresh = self._backend.get_trial(trial_id)
            with self._lock:
                self._add_trials_to_cache(self._trial_id_to_study_id_and_number[trial_id][0],
                                          [fresh])
        return changed

    def set_trial_user_attr(self, trial_id: int, key: str, value: Any) -> None:
        super().set_trial_user_attr(trial_id, key, value)
        trial = self._cached(trial_id)
        if trial is not None:
            trial.user_attrs = {**trial.user_attrs, key: value}

    def set_trial_system_attr(self, trial_id: int, key: str, value: Any) -> None:
        super().set_trial_system_attr(trial_id, key, value)
        trial = self._cached(trial_id)
        if trial is not None:
            trial.system_attrs = {**trial.system_attrs, key: value}

    def set_trial_intermediate_value(self, trial_id: int, step: int,
                                     intermediate_value: float) -> None:
        super().set_trial_intermediate_value(trial_id, step, intermediate_value)
        trial = self._cached(trial_id)
        if trial is not None:
            trial.intermediate_values = {**trial.intermediate_values, step: intermediate_value}
