"""Trace files -> ``sim.TraceRecords``: read (``trace_formats``, format detected from the
content), window, and (Mooncake) map shared ``hash_ids`` blocks to prefixes for the KV store.

Keys of ``workload.trace`` (docs/traces.md): ``path``, ``format`` (auto or a name of
``trace_formats.FORMATS``), ``time_unit`` (auto | s | ms: JSON lines' unit-less time key),
``start_s`` / ``duration_s`` (the replayed window, seconds after the file's first request),
``busiest`` (true: the ``duration_s`` window holding the most requests). Replay speed is
``workload.arrival.time_scale`` (0.5 = twice as fast).

Prefixes from ``hash_ids`` (``shared_prefixes``): the simulator's store keeps whole prefixes
under one id (``sim.kvstore``), Mooncake shares 512-token blocks; the ids are nodes of the
replayed window's block trie. A request looks up the longest leading run of its blocks that an
earlier request of the window also had (what a per-block cache could hold for it; none: no
lookup), and once computed keeps the longest leading run of its blocks that a later request
looks up (so turn 2 of a conversation finds turn 1's history, and turn 3 turn 2's). With an
unbounded cache this reproduces the block-level reuse to within 1% on the Mooncake traces
(docs/traces.md has the figures).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from hermes_opt.compose import trace_formats
from hermes_opt.compose.catalog import DATA_DIR
from hermes_opt.compose.trace_formats import FORMATS, MOONCAKE_BLOCK_TOKENS, TIME_UNITS
from hermes_opt.compose.values import number
from sim.errors import ConfigError
from sim.workload.spec import TraceRecords

if TYPE_CHECKING:
    from omegaconf import DictConfig

TRACES_DIR = DATA_DIR / "traces"  # shipped sample traces (hermes_opt/data/traces)
KEYS = ("path", "format", "time_unit", "start_s", "duration_s", "busiest")


def resolve(path: str) -> Path:
    """A relative path is looked up in the working directory, then in the shipped traces."""
    candidate = Path(path).expanduser()
    if candidate.is_absolute() or candidate.exists():
        return candidate
    shipped = TRACES_DIR / candidate
    return shipped if shipped.exists() else candidate


def from_config(node: DictConfig | None) -> TraceRecords | None:
    """``workload.trace`` (KEYS) -> the replayed rows, or None without a path."""
    if not node or not node.get("path"):
        return None
    unknown = [k for k in node if k not in KEYS]
    if unknown:
        raise ConfigError(f"workload.trace.{unknown[0]}: unknown key; allowed: "
                          f"{', '.join(KEYS)}")
    given = {}  # keys left out (or null) take read_trace's own defaults
    for key in ("format", "time_unit"):
        if node.get(key) is not None:
            given["fmt" if key == "format" else key] = str(node.get(key))
    for key in ("start_s", "duration_s"):
        if node.get(key) is not None:
            given[key] = number(node, key, "workload.trace")
    if node.get("busiest") is not None:
        if not isinstance(node.busiest, bool):
            raise ConfigError(f"workload.trace.busiest={node.busiest!r}: must be true or false")
        given["busiest"] = node.busiest
    return read_trace(resolve(str(node.path)), **given)


def read_trace(path: str | Path, fmt: str = "auto", *, time_unit: str = "auto",
               start_s: float = 0.0, duration_s: float | None = None,
               busiest: bool = False) -> TraceRecords:
    """The replayed rows of a trace file: read, windowed, prefixes mapped."""
    path = Path(path)
    where = f"workload.trace.path={str(path)!r}"
    if fmt not in ("auto", *FORMATS):
        raise ConfigError(f"workload.trace.format={fmt!r}: allowed: auto, {', '.join(FORMATS)}")
    if time_unit not in TIME_UNITS:
        raise ConfigError(f"workload.trace.time_unit={time_unit!r}: allowed: "
                          f"{', '.join(TIME_UNITS)}")
    if not path.is_file():
        raise ConfigError(f"{where}: no such file")
    raw = trace_formats.read(path, trace_formats.detect(path) if fmt == "auto" else fmt, time_unit)
    if not raw.lines.size:
        raise ConfigError(f"{where}: has no request with tokens to replay ({raw.skipped_rows} "
                          f"rows skipped as failed calls)")
    keep = window(raw.arrival_s, start_s, duration_s, busiest)
    if not keep.any():
        span = raw.arrival_s[-1] - raw.arrival_s[0]
        raise ConfigError(f"workload.trace.start_s={start_s!r}: the window holds no request; the "
                          f"trace spans {span:g} s after its first request")
    prefixes: dict[str, tuple[int, ...]] = {}
    if raw.hash_ids is not None:
        hashes = [h for h, k in zip(raw.hash_ids, keep.tolist(), strict=True) if k]
        prefixes = dict(zip(("prefix_id", "prefix_tokens", "store_id", "store_tokens"),
                            shared_prefixes(hashes, raw.prompt_tokens[keep]), strict=True))
    return TraceRecords(arrival_s=tuple(raw.arrival_s[keep].tolist()),
                        prompt_tokens=tuple(raw.prompt_tokens[keep].tolist()),
                        output_tokens=tuple(raw.output_tokens[keep].tolist()), source=str(path),
                        skipped_rows=raw.skipped_rows, fmt=raw.fmt, **prefixes)


def window(arrival_s: np.ndarray, start_s: float, duration_s: float | None,
           busiest: bool) -> np.ndarray:
    """Which rows the window keeps (times relative to the first request)."""
    if not isinstance(start_s, (int, float)) or isinstance(start_s, bool) or not start_s >= 0:
        raise ConfigError(f"workload.trace.start_s={start_s!r}: must be a number of seconds >= 0")
    if duration_s is not None and (isinstance(duration_s, bool) or not duration_s > 0):
        raise ConfigError(f"workload.trace.duration_s={duration_s!r}: must be seconds > 0, or "
                          f"null for the rest of the trace")
    if busiest and duration_s is None:
        raise ConfigError("workload.trace.busiest=true: needs workload.trace.duration_s (the "
                          "window's length)")
    rel = arrival_s - arrival_s[0]
    if busiest:
        # every window starting at a request: the one holding the most (the earliest on ties)
        ends = np.searchsorted(rel, rel + duration_s, side="left")
        start_s = float(rel[int(np.argmax(ends - np.arange(rel.size)))])
    keep = rel >= start_s
    if duration_s is not None:
        keep &= rel < start_s + duration_s
    return keep


def shared_prefixes(hash_ids: list[tuple[int, ...]], prompt_tokens: np.ndarray
                    ) -> tuple[tuple[int, ...], ...]:
    """Per request (module note): the prefix it looks up (id or -1, tokens) and the prefix it
    keeps once computed (id or -1, tokens). Ids are nodes of the block trie; tokens are the
    node's blocks x 512, at most the prompt minus one (the last prompt token is computed)."""
    node_of: dict[tuple[int, int], int] = {}  # (parent node, block hash) -> node
    paths: list[list[int]] = []
    looked_depth: list[int] = []
    earlier: set[int] = set()  # nodes an earlier request passed through (closed under parents)
    for blocks in hash_ids:
        node, path = -1, []
        for block in blocks:
            node = node_of.setdefault((node, block), len(node_of))
            path.append(node)
        depth = 0
        while depth < len(path) and path[depth] in earlier:
            depth += 1
        looked_depth.append(depth)
        earlier.update(path)
        paths.append(path)
    kept_depth = [0] * len(paths)
    looked_later: set[int] = set()
    for i in range(len(paths) - 1, -1, -1):
        path = paths[i]
        kept_depth[i] = next((d for d in range(len(path), 0, -1) if path[d - 1] in looked_later), 0)
        if looked_depth[i]:
            looked_later.add(path[looked_depth[i] - 1])
    prompts = prompt_tokens.tolist()
    return (*_ids_and_tokens(paths, looked_depth, prompts),
            *_ids_and_tokens(paths, kept_depth, prompts))


def _ids_and_tokens(paths: list[list[int]], depths: list[int], prompts: list[int]
                    ) -> tuple[tuple[int, ...], tuple[int, ...]]:
    ids, tokens = [], []
    for path, depth, prompt in zip(paths, depths, prompts, strict=True):
        length = min(depth * MOONCAKE_BLOCK_TOKENS, prompt - 1)
        ids.append(path[depth - 1] if depth and length >= 1 else -1)
        tokens.append(length if depth and length >= 1 else 0)
    return tuple(ids), tuple(tokens)


def summary(trace: TraceRecords, num_requests: int, time_scale: float) -> dict[str, Any]:
    """What a run replays of ``trace``: its real rate and lengths (the deployment record's
    ``traffic``, the report's demand)."""
    n = min(num_requests, len(trace.arrival_s))
    times = np.asarray(trace.arrival_s[:n], dtype=float)
    span_s = float(times[-1] - times[0]) * time_scale
    out: dict[str, Any] = {
        "source": Path(trace.source).name, "format": trace.fmt, "requests": n,
        "span_s": round(span_s, 6),
        # n arrivals over the span: n - 1 gaps (a one-request trace has no rate)
        "rate_per_s": round((n - 1) / span_s, 6) if span_s > 0 else None,
        "time_scale": time_scale,
        "prompt_tokens": _lengths(trace.prompt_tokens[:n]),
        "output_tokens": _lengths(trace.output_tokens[:n])}
    if trace.skipped_rows:
        out["skipped_rows"] = trace.skipped_rows
    if trace.prefix_id is not None:
        shared = np.asarray(trace.prefix_tokens[:n], dtype=float)
        out["shared_prefix"] = {
            "requests": int((np.asarray(trace.prefix_id[:n]) >= 0).sum()),
            "token_fraction": round(float(shared.sum() / np.sum(trace.prompt_tokens[:n])), 4),
            "block_tokens": MOONCAKE_BLOCK_TOKENS}
    return out


def _lengths(values: tuple[int, ...]) -> dict[str, float]:
    arr = np.asarray(values, dtype=float)
    return {"mean": round(float(arr.mean()), 1), "p50": round(float(np.percentile(arr, 50)), 1),
            "p90": round(float(np.percentile(arr, 90)), 1), "max": float(arr.max())}

