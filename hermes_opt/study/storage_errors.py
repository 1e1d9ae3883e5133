"""A study's storage failing while it runs (disk full, read-only, locked, connection lost) as one
line instead of SQLAlchemy's and Optuna's tracebacks (``hermes-opt`` exits with status 2).

Nothing is lost by stopping there: every trial told before the failure is stored (each tell is
one commit), and trials the failure left RUNNING are re-run under their own numbers by the next
run of the same command (``hermes_opt.run.replay``), so once the cause is fixed the study resumes
and ends as an uninterrupted one would (docs/opt.md "Storage errors")."""

from __future__ import annotations

import errno
import shutil
import sqlite3
from pathlib import Path

import optuna

from hermes_opt.study.storage import mask, sqlite_path
from sim.errors import ConfigError

FILE_ERRNOS = {errno.ENOSPC: "no space left on the device",
               errno.EDQUOT: "disk quota exceeded",
               errno.EROFS: "read-only file system",
               errno.EACCES: "permission denied",
               errno.EIO: "input/output error"}
# SQLite's own words for the same causes (sqlite3.OperationalError carries no errno)
SQLITE_CAUSES = (("disk is full", "the disk is full"),
                 ("readonly database", "the database or its folder is read-only"),
                 ("database is locked", "another process holds a lock on the database"),
                 ("disk i/o error", "a disk input/output error"),
                 ("unable to open database file", "the database file cannot be opened"))


def _chain(err: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    while err is not None and err not in seen:
        seen.append(err)
        err = err.__cause__ or err.__context__
    return seen


def cause(err: BaseException) -> str | None:
    """What went wrong with the storage, in a few words, or None when ``err`` is not a storage
    failure (a bug elsewhere keeps its traceback)."""
    chain = _chain(err)
    for each in chain:
        if isinstance(each, OSError) and each.errno in FILE_ERRNOS:
            return FILE_ERRNOS[each.errno]
    for each in chain:
        if isinstance(each, sqlite3.Error):
            text = str(each).lower()
            return next((why for key, why in SQLITE_CAUSES if key in text), str(each))
    import sqlalchemy.exc
    for each in chain:
        if isinstance(each, sqlalchemy.exc.OperationalError | optuna.exceptions.StorageInternalError):
            lines = [line.strip() for line in str(each).splitlines() if line.strip()]
            return lines[0] if lines else type(each).__name__
    return None


def storage_failure(err: BaseException, url: str) -> ConfigError | None:
    """The one-line error for ``err`` raised while using the storage at ``url``, or None."""
    why = cause(err)
    if why is None:
        return None
    where = ""
    path = sqlite_path(url)
    if path is not None:
        folder = next((p for p in (path.parent, *path.parents) if p.exists()), Path("/"))
        where = f" ({shutil.disk_usage(folder).free:,} bytes free in {folder})"
    return ConfigError(f"storage={mask(url)!r}: cannot write the study: {why}{where}; every "
                       f"trial told so far is saved: fix this and run the same command again "
                       f"to resume")
