"""Deployment records for report tests: what a study stores with each trial, built from a
``hermes-sim`` command line the way the worker builds it (``compose.candidate``)."""

from __future__ import annotations

import shlex
from functools import cache

from hermes_opt.compose.candidate import record_of_overrides


def overrides_of(replay: str) -> list[str]:
    """The overrides of a ``hermes-sim ...`` command, without the seed."""
    return [w for w in shlex.split(replay)[1:] if not w.startswith("seed=")]


@cache
def _record(replay: str) -> dict | None:
    return record_of_overrides(overrides_of(replay))


def record_of(replay: str) -> dict | None:
    """The stored record of the trial this command replays (None: it does not compose)."""
    return _record(replay)


def trial_row(replay: str) -> dict:
    """The report's columns for one trial's record: ``_deployment`` and ``_overrides``."""
    return {"_deployment": record_of(replay), "_overrides": overrides_of(replay)}
