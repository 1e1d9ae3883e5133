"""Read a user-supplied CSV: every problem is one ConfigError naming the field and the file."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from sim.errors import ConfigError


def read_csv(path: str | Path, field: str, required: tuple[str, ...] = ()) -> pd.DataFrame:
    """The CSV at ``path`` as a frame; ConfigError if missing, unreadable or lacking columns."""
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
    return frame
