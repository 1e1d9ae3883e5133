"""Write what a simulation produced: summary JSON, per-request records, Perfetto trace."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from sim.errors import ConfigError
from sim.results import REQUEST_COLUMNS, SimResult


def _target(path: str, field: str, suffixes: tuple[str, ...]) -> Path:
    target = Path(path)
    if target.suffix.lower() not in suffixes:
        raise ConfigError(f"{field}={path!r}: file name must end in one of {', '.join(suffixes)}")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ConfigError(f"{field}={path!r}: cannot create its folder ({err.strerror})") from None
    return target


def write_summary(summary: dict, path: str) -> None:
    target = _target(path, "output.summary_path", (".json",))
    _write(target, "output.summary_path", lambda: target.write_text(
        json.dumps(summary, sort_keys=True, indent=2) + "\n"))


def write_requests(result: SimResult, path: str) -> None:
    target = _target(path, "output.requests_path", (".csv", ".parquet"))
    frame = pd.DataFrame(result.requests or [], columns=list(REQUEST_COLUMNS))
    writer = frame.to_parquet if target.suffix.lower() == ".parquet" else frame.to_csv
    _write(target, "output.requests_path", lambda: writer(target, index=False))


def chrome_trace(spans: list[tuple]) -> dict:
    """Chrome trace-event JSON (opens in Perfetto and chrome://tracing): a process per pool,
    a thread per replica (or CPU core, search worker, encoder replica), one complete event per
    engine step, decode run or stage batch (named by its stage kind); KV-tier and pool-to-pool
    transfers appear as ``link <name>`` processes."""
    events, pids, tids = [], {}, {}
    for track, name, start_s, duration_s, batch in spans:
        pool = track.split("/")[0]
        pid = pids.setdefault(pool, len(pids) + 1)
        tid = tids.setdefault(track, len(tids) + 1)
        events.append({"name": name, "ph": "X", "pid": pid, "tid": tid, "ts": start_s * 1e6,
                       "dur": duration_s * 1e6, "args": {"batch": batch}})
    meta = [{"name": "process_name", "ph": "M", "pid": pid,
             "args": {"name": pool if pool.startswith("link ") else f"pool {pool}"}}
            for pool, pid in pids.items()]
    meta += [{"name": "thread_name", "ph": "M", "pid": pids[t.split("/")[0]], "tid": tid,
              "args": {"name": t if t.startswith("link ") else f"replica {t}"}}
             for t, tid in tids.items()]
    return {"traceEvents": meta + events, "displayTimeUnit": "ms"}


def write_trace(result: SimResult, path: str) -> None:
    target = _target(path, "output.trace_path", (".json",))
    _write(target, "output.trace_path",
           lambda: target.write_text(json.dumps(chrome_trace(result.spans or []))))


def _write(target: Path, field: str, action) -> None:
    try:
        action()
    except OSError as err:
        raise ConfigError(f"{field}={str(target)!r}: cannot write ({err.strerror})") from None
