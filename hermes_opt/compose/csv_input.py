"""Read a user-supplied CSV: every problem is one ConfigError naming the field and the file."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from sim.errors import ConfigError

# The largest number a measurement table may hold: no time, rate, size or count we read comes
# near it in any unit (a day is 8.64e10 us; 1e12 tokens/s is a million H100s); a value above it
# (1e308) is a corrupt or mistyped cell, not a measurement.
MAX_MEASURED = 1e12

# pandas is imported where a file is read or written, not at import: it is half of a worker's
# start-up (docs/performance.md)
if TYPE_CHECKING:
    import pandas as pd


def read_csv(path: str | Path, field: str, required: tuple[str, ...] = ()) -> pd.DataFrame:
    """The CSV at ``path`` as a frame; ConfigError if missing, unreadable or lacking columns."""
    import pandas as pd  # noqa: F811 -- lazy (see the module note)
    path = Path(path)
    where = f"{field}={str(path)!r}"
    if not path.is_file():
        raise ConfigError(f"{where}: no such file")
    try:
        frame = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise ConfigError(f"{where}: not a readable CSV ({str(err).splitlines()[0]})") from None
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise ConfigError(f"{where}: missing column(s) {missing}; required: {list(required)}")
    if frame.empty:
        raise ConfigError(f"{where}: has no rows (only a header)")
    return frame


def _shown(raw: object) -> str:
    """A cell as the message shows it: numbers as floats (-5.0, inf, nan), text quoted."""
    try:
        return repr(float(raw))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return repr(str(raw))


def bad_cell(path: str | Path, frame: pd.DataFrame, position: int, column: str, allowed: str) -> ConfigError:
    """``<file>:<line>: <column>=<value>: <allowed>`` (line of the file; the header is line 1)."""
    return ConfigError(f"{path}:{position + 2}: {column}={_shown(frame[column].iloc[position])}: {allowed}")


def check_numbers(frame: pd.DataFrame, path: str | Path, *, positive: tuple[str, ...] = (),
                  counts: tuple[str, ...] = (), non_negative_ints: tuple[str, ...] = (),
                  non_negative: tuple[str, ...] = ()) -> None:
    """Convert columns to numbers in place; ConfigError naming the first bad cell.

    ``positive``: measurements (times, sizes), finite and > 0. ``counts``: integers >= 1 (TP,
    batch size). ``non_negative_ints``: integers >= 0 (token counts). ``non_negative``: finite >= 0.
    """
    import pandas as pd  # noqa: F811 -- lazy (see the module note)
    rules = ([(c, 0.0, False, False, "must be a finite number > 0") for c in positive]
             + [(c, 1.0, True, True, "must be an integer >= 1") for c in counts]
             + [(c, 0.0, True, True, "must be an integer >= 0") for c in non_negative_ints]
             + [(c, 0.0, True, False, "must be a finite number >= 0") for c in non_negative])
    for column, low, low_ok, integer, allowed in rules:
        values = pd.to_numeric(frame[column], errors="coerce").astype(float)
        arr = values.to_numpy()
        allowed += f" and <= {MAX_MEASURED:g}"
        ok = np.isfinite(arr) & ((arr >= low) if low_ok else (arr > low)) & (arr <= MAX_MEASURED)
        if integer:
            ok &= np.isfinite(arr) & (np.floor(np.where(np.isfinite(arr), arr, 0.0)) == arr)
        bad = np.flatnonzero(~ok)
        if len(bad):
            raise bad_cell(path, frame, int(bad[0]), column, allowed)
        frame[column] = values.astype("int64") if integer else values


def positive_number(value: object) -> bool:
    """True for a finite number > 0 (a measurement)."""
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False
    return math.isfinite(number) and 0 < number <= MAX_MEASURED
