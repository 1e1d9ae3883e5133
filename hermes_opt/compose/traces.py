"""Trace files -> ``sim.TraceRecords``. Formats are recognised by their header.

- ``azure``: Azure LLM inference trace (2023/2024): ``TIMESTAMP,ContextTokens,GeneratedTokens``,
  timestamps as ``YYYY-MM-DD HH:MM:SS.fffffff`` (seconds since the first row are used).
- ``splitwise``: splitwise-sim traces: ``arrival_timestamp,prompt_size,token_size`` (seconds).
- ``hermes``: ``arrival_s,prompt_tokens,output_tokens``.
Rows are sorted by arrival time. Any problem raises ConfigError naming the file, row and column.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from hermes_opt.compose.catalog import DATA_DIR
from hermes_opt.compose.csv_input import read_csv
from sim.errors import ConfigError
from sim.workload.spec import TraceRecords

TRACES_DIR = DATA_DIR / "traces"  # shipped sample traces (hermes_opt/data/traces)

# pandas is imported where a file is read or written, not at import: it is half of a worker's
# start-up (docs/performance.md)
if TYPE_CHECKING:
    import pandas as pd


FORMATS = {
    "azure": ("TIMESTAMP", "ContextTokens", "GeneratedTokens"),
    "splitwise": ("arrival_timestamp", "prompt_size", "token_size"),
    "hermes": ("arrival_s", "prompt_tokens", "output_tokens"),
}


def resolve(path: str) -> Path:
    """A relative path is looked up in the working directory, then in the shipped traces."""
    candidate = Path(path).expanduser()
    if candidate.is_absolute() or candidate.exists():
        return candidate
    shipped = TRACES_DIR / candidate
    return shipped if shipped.exists() else candidate


def read_trace(path: str | Path, fmt: str = "auto") -> TraceRecords:
    import pandas as pd  # noqa: F811 -- lazy (see the module note)
    path = Path(path)
    where = f"workload.trace.path={str(path)!r}"
    frame = read_csv(path, "workload.trace.path")
    if fmt == "auto":
        fmt = next((name for name, cols in FORMATS.items() if set(cols) <= set(frame.columns)), "")
        if not fmt:
            raise ConfigError(f"{where}: header {list(frame.columns)} matches no known format; "
                              f"expected columns of one of {FORMATS}")
    elif fmt not in FORMATS:
        raise ConfigError(f"workload.trace.format={fmt!r}: allowed: auto, {', '.join(FORMATS)}")
    time_col, prompt_col, output_col = FORMATS[fmt]
    missing = [c for c in FORMATS[fmt] if c not in frame.columns]
    if missing:
        raise ConfigError(f"{where}: format {fmt!r} needs columns {missing}")
    if frame.empty:
        raise ConfigError(f"{where}: has no rows")
    if fmt == "azure":
        stamps = pd.to_datetime(frame[time_col], errors="coerce", format="mixed")
        bad = stamps.isna()
        times = (stamps - stamps.min()).dt.total_seconds().to_numpy()
    else:
        numeric = pd.to_numeric(frame[time_col], errors="coerce")
        bad = numeric.isna() | (numeric < 0)
        times = numeric.to_numpy(dtype=float)
    _check(bad, where, time_col)
    columns = []
    for col in (prompt_col, output_col):
        values = pd.to_numeric(frame[col], errors="coerce")
        bad = values.isna() | (values < 1) | (values != values.round())
        _check(bad, where, col, "a whole number >= 1")
        columns.append(values.to_numpy(dtype=np.int64))
    order = np.argsort(times, kind="stable")
    return TraceRecords(arrival_s=tuple(times[order].tolist()),
                        prompt_tokens=tuple(columns[0][order].tolist()),
                        output_tokens=tuple(columns[1][order].tolist()), source=str(path))


def _check(bad: pd.Series, where: str, column: str, allowed: str = "a valid timestamp") -> None:
    if bad.any():
        row = int(np.argmax(bad.to_numpy()))
        raise ConfigError(f"{where}: row {row + 2} column {column!r} is not {allowed}")
