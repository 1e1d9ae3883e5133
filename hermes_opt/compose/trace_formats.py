"""Trace file formats -> ``RawTrace`` rows (seconds, token counts, Mooncake block hashes).

The format is recognised from the content (``detect``): a first line starting with ``{`` is JSON
lines (``mooncake`` when its records carry ``hash_ids``, else ``jsonl``); otherwise a CSV whose
header names the columns of one of ``CSV_FORMATS``. Every bad row is one ConfigError
``<file>:<line>: <field>=<value>: <allowed>``, the first one met; nothing is sorted or repaired
silently (an unsorted trace is an error: replaying it sorted would hide a broken export).

* ``azure``: Azure LLM inference trace (2023/2024) ``TIMESTAMP,ContextTokens,GeneratedTokens``,
  timestamps ``YYYY-MM-DD HH:MM:SS.fffffff``.
* ``burstgpt``: BurstGPT (HPMLL/BurstGPT) ``Timestamp,Model,Request tokens,Response tokens,Total
  tokens,Log Type`` (BurstGPT_3 adds ``Session ID,Elapsed time``); ``Timestamp`` in seconds. Rows
  with 0 request or response tokens are the log's failed calls (the README's "failure that
  Response tokens are 0s"): they are skipped and counted, not replayed.
* ``splitwise``: ``arrival_timestamp,prompt_size,token_size`` (seconds).
* ``hermes``: ``arrival_s,prompt_tokens,output_tokens``.
* ``jsonl``: one JSON object per line with a time and two token counts under any spelling of
  ``TIME_KEYS`` / ``INPUT_KEYS`` / ``OUTPUT_KEYS`` (case-insensitive).
* ``mooncake``: kvcache-ai/Mooncake FAST'25 traces: ``{"timestamp": ms, "input_length",
  "output_length", "hash_ids": [...]}``, ``hash_ids`` the 512-token prefix blocks.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hermes_opt.compose.csv_input import read_csv
from sim.errors import ConfigError

CSV_FORMATS = {  # name: (time column, prompt column, output column)
    "azure": ("TIMESTAMP", "ContextTokens", "GeneratedTokens"),
    "burstgpt": ("Timestamp", "Request tokens", "Response tokens"),
    "splitwise": ("arrival_timestamp", "prompt_size", "token_size"),
    "hermes": ("arrival_s", "prompt_tokens", "output_tokens"),
}
JSON_FORMATS = ("jsonl", "mooncake")
FORMATS = (*CSV_FORMATS, *JSON_FORMATS)
MOONCAKE_BLOCK_TOKENS = 512  # Mooncake's hash_ids are 512-token blocks (FAST25-release README)

# JSONL spellings, first match wins. A name without a unit is seconds (``trace.time_unit: ms``
# reads it as milliseconds); ``_ms`` names are milliseconds whatever time_unit says.
TIME_KEYS = ("arrival_s", "timestamp_s", "time_s", "arrival_ms", "timestamp_ms", "time_ms",
             "timestamp", "arrival_time", "arrival", "time", "ts", "created")
INPUT_KEYS = ("input_length", "input_tokens", "prompt_tokens", "prompt_length", "prompt_len",
              "num_prompt_tokens", "context_tokens", "request_tokens", "prompt_size")
OUTPUT_KEYS = ("output_length", "output_tokens", "completion_tokens", "generated_tokens",
               "response_tokens", "num_output_tokens", "output_len", "token_size")
TIME_UNITS = ("auto", "s", "ms")


@dataclass(frozen=True, slots=True)
class RawTrace:
    """A file's rows in file order: arrival seconds (from the file's own zero), tokens, the line
    each row came from, Mooncake block hashes (None for other formats), skipped rows."""

    fmt: str
    arrival_s: np.ndarray
    prompt_tokens: np.ndarray
    output_tokens: np.ndarray
    lines: np.ndarray
    hash_ids: list[tuple[int, ...]] | None
    skipped_rows: int = 0


def detect(path: Path) -> str:
    """The format of ``path`` from its first non-empty line."""
    with path.open("r", encoding="utf-8", errors="replace") as handle:
        first = next((line.strip() for line in handle if line.strip()), "")
    where = f"workload.trace.path={str(path)!r}"
    if not first:
        raise ConfigError(f"{where}: the file is empty")
    if first.startswith("{"):
        try:
            record = json.loads(first)
        except json.JSONDecodeError:
            raise ConfigError(f"{path}:1: not a JSON object; a JSON-lines trace has one request "
                              f"object per line") from None
        return "mooncake" if isinstance(record, dict) and "hash_ids" in record else "jsonl"
    header = {c.strip() for c in first.split(",")}
    for name, columns in CSV_FORMATS.items():
        if set(columns) <= header:
            return name
    raise ConfigError(f"{where}: header {first[:120]!r} matches no known format; allowed: JSON "
                      f"lines (jsonl, mooncake) or a CSV with the columns of one of "
                      f"{ {k: list(v) for k, v in CSV_FORMATS.items()} }")


def read(path: Path, fmt: str, time_unit: str = "auto") -> RawTrace:
    if fmt in JSON_FORMATS:
        return _read_jsonl(path, fmt, time_unit)
    return _read_csv(path, fmt)


# --- CSV ------------------------------------------------------------------------------------
def _read_csv(path: Path, fmt: str) -> RawTrace:
    import pandas as pd  # lazy: half of a worker's start-up (docs/performance.md)
    time_col, prompt_col, output_col = CSV_FORMATS[fmt]
    frame = read_csv(path, "workload.trace.path")
    frame.columns = [str(c).strip() for c in frame.columns]
    missing = [c for c in CSV_FORMATS[fmt] if c not in frame.columns]
    if missing:
        raise ConfigError(f"workload.trace.path={str(path)!r}: format {fmt!r} needs columns "
                          f"{missing}")
    if frame.empty:
        raise ConfigError(f"workload.trace.path={str(path)!r}: has no rows")
    lines = np.arange(len(frame), dtype=np.int64) + 2  # the header is line 1
    if fmt == "azure":
        stamps = pd.to_datetime(frame[time_col], errors="coerce", format="mixed")
        times = (stamps - stamps.min()).dt.total_seconds().to_numpy(dtype=float)
        _first_bad(path, lines, frame[time_col], ~np.isfinite(times), time_col,
                   "a timestamp YYYY-MM-DD HH:MM:SS[.fffffff]")
    else:
        times = pd.to_numeric(frame[time_col], errors="coerce").to_numpy(dtype=float)
        _first_bad(path, lines, frame[time_col], ~np.isfinite(times) | (times < 0), time_col,
                   "a finite number of seconds >= 0")
    tokens = []
    for col in (prompt_col, output_col):
        values = pd.to_numeric(frame[col], errors="coerce").to_numpy(dtype=float)
        low = 0 if fmt == "burstgpt" else 1  # BurstGPT's 0s are failed calls, skipped below
        bad = ~np.isfinite(values) | (values < low) | (np.floor(np.nan_to_num(values)) != values)
        _first_bad(path, lines, frame[col], bad, col, f"a whole number >= {low}")
        tokens.append(values.astype(np.int64))
    _check_sorted(path, lines, frame[time_col], times, time_col)
    keep = (tokens[0] >= 1) & (tokens[1] >= 1)
    return RawTrace(fmt, times[keep], tokens[0][keep], tokens[1][keep], lines[keep], None,
                    int((~keep).sum()))


def _first_bad(path: Path, lines: np.ndarray, raw, bad: np.ndarray, field: str,
               allowed: str) -> None:
    if bad.any():
        i = int(np.argmax(bad))
        raise ConfigError(f"{path}:{int(lines[i])}: {field}={_shown(raw.iloc[i])}: must be "
                          f"{allowed}")


def _shown(value: object) -> str:
    try:
        return repr(float(value))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return repr(value)


def _check_sorted(path: Path, lines: np.ndarray, raw, times: np.ndarray, field: str) -> None:
    back = np.flatnonzero(np.diff(times) < 0)
    if back.size:
        i = int(back[0]) + 1
        shown = raw.iloc[i] if hasattr(raw, "iloc") else raw[i]
        raise ConfigError(f"{path}:{int(lines[i])}: {field}={_shown(shown)}: must not be earlier "
                          f"than the previous request's (line {int(lines[i - 1])}); the trace must "
                          f"be sorted by arrival time")


# --- JSON lines -----------------------------------------------------------------------------
def _read_jsonl(path: Path, fmt: str, time_unit: str) -> RawTrace:
    times, prompts, outputs, lines, hashes = [], [], [], [], []
    keys: tuple[str, str, str] | None = None
    with path.open("r", encoding="utf-8", errors="replace") as handle:
        for number, text in enumerate(handle, start=1):
            if not text.strip():
                continue
            try:
                record = json.loads(text)
            except json.JSONDecodeError as err:
                raise ConfigError(f"{path}:{number}: not valid JSON ({err.msg}); a JSON-lines "
                                  f"trace has one request object per line") from None
            if not isinstance(record, dict):
                raise ConfigError(f"{path}:{number}: {record!r:.60}: must be a JSON object")
            if keys is None:
                keys = _keys(path, number, record, fmt)
            scale = _time_scale(keys[0], fmt, time_unit)
            times.append(_number(path, number, record, keys[0], "a finite time >= 0", 0) * scale)
            prompts.append(int(_number(path, number, record, keys[1], "a whole number >= 1", 1,
                                       whole=True)))
            outputs.append(int(_number(path, number, record, keys[2], "a whole number >= 1", 1,
                                       whole=True)))
            if fmt == "mooncake":
                hashes.append(_hash_ids(path, number, record))
            lines.append(number)
    if not lines:
        raise ConfigError(f"workload.trace.path={str(path)!r}: has no rows")
    arrival = np.asarray(times, dtype=float)
    line_arr = np.asarray(lines, dtype=np.int64)
    _check_sorted(path, line_arr, [t / _time_scale(keys[0], fmt, time_unit) for t in times],
                  arrival, keys[0])
    return RawTrace(fmt, arrival, np.asarray(prompts, dtype=np.int64),
                    np.asarray(outputs, dtype=np.int64), line_arr,
                    hashes if fmt == "mooncake" else None)


def _keys(path: Path, number: int, record: dict, fmt: str) -> tuple[str, str, str]:
    """The record's time, input and output keys (by the first record; later ones must match)."""
    lower = {k.lower(): k for k in record}
    found = []
    for what, spellings in (("time", TIME_KEYS), ("input tokens", INPUT_KEYS),
                            ("output tokens", OUTPUT_KEYS)):
        key = next((lower[s] for s in spellings if s in lower), None)
        if key is None:
            raise ConfigError(f"{path}:{number}: no {what} key among {sorted(record)}; allowed "
                              f"spellings: {', '.join(spellings)}")
        found.append(key)
    if fmt == "mooncake" and "hash_ids" not in record:
        raise ConfigError(f"{path}:{number}: hash_ids missing; format 'mooncake' needs it on "
                          f"every line")
    return found[0], found[1], found[2]


def _time_scale(key: str, fmt: str, time_unit: str) -> float:
    """Seconds per unit of the time key: ms for ``_ms`` names and Mooncake's ``timestamp``."""
    if key.lower().endswith("_ms") or time_unit == "ms":
        return 1e-3
    if time_unit == "s" or key.lower().endswith("_s"):
        return 1.0
    return 1e-3 if fmt == "mooncake" else 1.0


def _number(path: Path, number: int, record: dict, key: str, allowed: str, low: float,
            whole: bool = False) -> float:
    value = record.get(key)
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) \
        and value >= low and (not whole or float(value).is_integer())
    if not ok:
        raise ConfigError(f"{path}:{number}: {key}={value!r}: must be {allowed}")
    return float(value)


def _hash_ids(path: Path, number: int, record: dict) -> tuple[int, ...]:
    value = record.get("hash_ids")
    if not isinstance(value, list) or not all(isinstance(h, int) and not isinstance(h, bool)
                                              for h in value):
        raise ConfigError(f"{path}:{number}: hash_ids={value!r:.60}: must be a list of integer "
                          f"block hashes (512-token blocks)")
    return tuple(value)
