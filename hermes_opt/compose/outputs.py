"""Write what a simulation produced: summary JSON, per-request records, Perfetto trace."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from hermes_opt.compose import strict_json
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
        strict_json.dumps(summary, sort_keys=True, indent=2) + "\n"))


REQUEST_BATCH_ROWS = 8192  # rows buffered before an append: bounded memory, few writes
# parquet column types (fixed, so every batch appends to one schema; None -> null)
_PARQUET_TYPES = {"id": "int64", "prompt_tokens": "int64", "output_tokens": "int64",
                  "preemptions": "int64", "type": "string", "pool_replica": "string",
                  "status": "string", "drop_reason": "string", "stages": "string"}


class RequestWriter:
    """A ``simulate(config, seed, request_sink=...)`` sink: per-request rows (columns
    ``REQUEST_COLUMNS``) appended to ``path`` (``.csv`` or ``.parquet``, one row group per batch)
    a batch of ``REQUEST_BATCH_ROWS`` at a time as requests finish, so a long run's records never
    sit in memory. Rows are in completion order (``id`` gives arrival order). ``close`` writes
    the last batch."""

    def __init__(self, path: str) -> None:
        self.target = _target(path, "output.requests_path", (".csv", ".parquet"))
        self.rows: list[dict] = []
        self._file = self._csv = self._parquet = None
        if self.target.suffix.lower() == ".parquet":
            # the file is opened now (an unusable path fails before the run, not after it);
            # pyarrow is imported at the first batch, so start-up never pays for it
            self._file = self._io(lambda: open(self.target, "wb"))
        else:
            self._file = self._io(lambda: open(self.target, "w", newline=""))
            self._csv = csv.writer(self._file, lineterminator="\n")  # as pandas writes
            self._io(lambda: self._csv.writerow(REQUEST_COLUMNS))

    def _parquet_writer(self):
        if self._parquet is None:
            import pyarrow as pa  # lazy, like pandas: only a run that writes parquet pays
            import pyarrow.parquet as pq
            schema = pa.schema([(c, getattr(pa, _PARQUET_TYPES.get(c, "float64"))())
                                for c in REQUEST_COLUMNS])
            self._parquet = self._io(lambda: pq.ParquetWriter(self._file, schema))
        return self._parquet

    def _io(self, action):
        try:
            return action()
        except OSError as err:
            raise ConfigError(f"output.requests_path={str(self.target)!r}: cannot write "
                              f"({err.strerror})") from None

    def __call__(self, row: dict) -> None:
        self.rows.append(row)
        if len(self.rows) >= REQUEST_BATCH_ROWS:
            self.flush()

    def flush(self) -> None:
        rows, self.rows = self.rows, []
        if not rows:
            return
        if self._csv is None:
            import pyarrow as pa
            writer = self._parquet_writer()
            table = pa.Table.from_pylist(rows, schema=writer.schema)
            self._io(lambda: writer.write_table(table))
        else:
            self._io(lambda: self._csv.writerows(
                [["" if row[c] is None else row[c] for c in REQUEST_COLUMNS] for row in rows]))

    def close(self) -> None:
        self.flush()
        if self._csv is None:  # parquet: a run without rows still writes the schema
            self._io(self._parquet_writer().close)
        if self._file is not None:
            self._io(self._file.close)


def write_requests(result: SimResult, path: str) -> None:
    import pandas as pd  # lazy: pandas is half of a worker's start-up (docs/performance.md)
    target = _target(path, "output.requests_path", (".csv", ".parquet"))
    frame = pd.DataFrame(result.requests or [], columns=list(REQUEST_COLUMNS))
    writer = frame.to_parquet if target.suffix.lower() == ".parquet" else frame.to_csv
    _write(target, "output.requests_path", lambda: writer(target, index=False))


def chrome_trace(spans: list[tuple], counters: list[tuple] | None = None) -> dict:
    """Chrome trace-event JSON (opens in Perfetto and chrome://tracing): a process per pool,
    a thread per replica (or CPU core, search worker, encoder replica), one complete event per
    engine step, decode run or stage batch (named by its stage kind); KV-tier and pool-to-pool
    transfers appear as ``link <name>`` processes. ``counters`` (``SimResult.counters``) adds
    three counter tracks per LLM replica, sampled at each step or decode-run start:
    ``<replica> KV blocks`` (series ``used``, ``free``: they stack to the cache's capacity),
    ``<replica> queue depth`` (``waiting`` requests) and ``<replica> batch size`` (``seqs`` in
    the step)."""
    events, pids, tids = [], {}, {}
    for track, name, start_s, duration_s, batch in spans:
        pool = track.split("/")[0]
        pid = pids.setdefault(pool, len(pids) + 1)
        tid = tids.setdefault(track, len(tids) + 1)
        events.append({"name": name, "ph": "X", "pid": pid, "tid": tid, "ts": start_s * 1e6,
                       "dur": duration_s * 1e6, "args": {"batch": batch}})
    for track, time_s, kv_used, kv_total, waiting, batch in counters or ():
        pid = pids.setdefault(track.split("/")[0], len(pids) + 1)
        tid = tids.setdefault(track, len(tids) + 1)
        ts = time_s * 1e6
        events += [
            {"name": f"{track} KV blocks", "ph": "C", "pid": pid, "tid": tid, "ts": ts,
             "args": {"used": kv_used, "free": kv_total - kv_used}},
            {"name": f"{track} queue depth", "ph": "C", "pid": pid, "tid": tid, "ts": ts,
             "args": {"waiting": waiting}},
            {"name": f"{track} batch size", "ph": "C", "pid": pid, "tid": tid, "ts": ts,
             "args": {"seqs": batch}}]
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
           lambda: target.write_text(strict_json.dumps(chrome_trace(result.spans or [],
                                                             result.counters))))


SWEEP_METRICS = ("ttft_ms.p99", "tpot_ms.p99", "e2e_ms.p99", "output_tokens_per_s",
                 "cost_usd_per_hour", "slo_tokens_per_usd", "slo_attainment", "num_devices",
                 "requests_completed", "requests_rejected")


def _job_order(path: Path, root: Path) -> tuple:
    """Sort key of a job's summary.json: its folder's numbers (``hydra.sweep.subdir`` is the job
    number by default), so rows follow the job numbers, not the order the jobs finished in."""
    parts = path.parent.relative_to(root).parts
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in parts)


def _metric(summary: dict, path: str):
    value = summary
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return ""
        value = value[part]
    return value


def write_sweep_csv(sweep_dir: str | Path) -> Path | None:
    """``<sweep dir>/summary.csv`` from every job's ``summary.json`` under it: one row per job in
    job-number order; columns: the override keys (first-seen order), ``status`` (ok | infeasible),
    SWEEP_METRICS and ``reason``. None when the sweep wrote no summary."""
    root = Path(sweep_dir)
    files = sorted(root.rglob("summary.json"), key=lambda f: _job_order(f, root))
    rows, keys = [], {}
    for f in files:
        try:
            summary = json.loads(f.read_text())
        except (OSError, ValueError):
            continue
        overrides = {}
        for item in summary.get("overrides") or []:
            key, _, value = str(item).partition("=")
            overrides[key.lstrip("+~")] = value
            keys.setdefault(key.lstrip("+~"), None)
        row = {**overrides, "status": summary.get("status", "ok"),
               "reason": summary.get("reason", "")}
        row.update({m: _metric(summary, m) for m in SWEEP_METRICS})
        rows.append(row)
    if not rows:
        return None
    columns = [k for k in keys if k not in ("status", "reason", *SWEEP_METRICS)]
    columns += ["status", *SWEEP_METRICS, "reason"]
    target = _target(str(root / "summary.csv"), "hydra.sweep.dir", (".csv",))

    def write() -> None:
        with target.open("w", newline="") as out:
            writer = csv.DictWriter(out, fieldnames=columns, extrasaction="ignore", restval="",
                                    lineterminator="\n")
            writer.writeheader()
            writer.writerows(rows)
    _write(target, "hydra.sweep.dir", write)
    return target


def _write(target: Path, field: str, action) -> None:
    try:
        action()
    except OSError as err:
        raise ConfigError(f"{field}={str(target)!r}: cannot write ({err.strerror})") from None
