"""Per-request draws the pipeline needs on top of ``sim.workload.generator.draw``.

* Per-type arrival processes: when any request type has its own ``arrival``, each type is drawn
  as its own open-loop stream (``num_requests`` split by weight, the last type taking the
  remainder; types without their own arrival use the workload's, with the rate scaled by their
  share) from a seed derived from ``(seed, type name)``, and the streams are merged by time
  (stable sort, so ties keep type order).
* Prefix identities under the type's access pattern (``PrefixSpec``: shared / private /
  sessions; stream ``workload.<type>.prefix``), the client of each request
  (``workload.<type>.client``); each id's length is drawn once (``workload.<type>.prefix_len``).
  The prefix is prepended to the drawn prompt.
* Pattern ``trace``: the prefix of the trace row each request replays (Mooncake ``hash_ids``),
  which is already part of that row's prompt (nothing is prepended).
* Thinking lengths for reasoning types (``workload.<type>.thinking``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from sim.config import WorkloadSpec
from sim.pipeline.reasoning import draw_thinking
from sim.random_streams import stable_hash, stream
from sim.workload.generator import DrawnWorkload, draw
from sim.workload.spec import ArrivalKind


@dataclass(frozen=True, slots=True)
class PipelineDraws:
    drawn: DrawnWorkload
    prefix_id: np.ndarray | None  # -1 = no prefix; None when no type has prefixes
    prefix_tokens: np.ndarray | None
    client: np.ndarray | None  # the client that sent each request (-1: none); None: no clients
    thinking: np.ndarray | None  # thinking tokens (0 for types without reasoning)
    store_id: np.ndarray | None = None  # pattern trace: the prefix to keep (-1: prefix_id's)
    store_tokens: np.ndarray | None = None


def _derived_seed(seed: int, name: str) -> int:
    return int(np.random.SeedSequence([int(seed), stable_hash(f"type-arrivals.{name}")])
               .generate_state(1)[0])


def _per_type(spec: WorkloadSpec, seed: int) -> DrawnWorkload:
    types = spec.request_types
    weights = np.array([rt.weight for rt in types], dtype=float)
    shares = weights / weights.sum()
    counts = np.floor(shares * spec.num_requests).astype(int)
    counts[-1] = spec.num_requests - counts[:-1].sum()
    parts = []
    for i, rt in enumerate(types):
        if counts[i] <= 0:
            continue
        arrival = rt.arrival
        if arrival is None:
            arrival = spec.arrival
            if arrival.kind in (ArrivalKind.POISSON, ArrivalKind.GAMMA):
                arrival = dataclasses.replace(arrival, rate_per_s=arrival.rate_per_s * shares[i])
        sub = WorkloadSpec(num_requests=int(counts[i]), arrival=arrival, request_types=(rt,),
                           trace=spec.trace)
        d = draw(sub, _derived_seed(seed, rt.name))
        parts.append((d, np.full(d.type_index.size, i, dtype=np.int64)))
    arrival = np.concatenate([d.arrival_s for d, _ in parts])
    order = np.argsort(arrival, kind="stable")
    return DrawnWorkload(arrival[order], np.concatenate([t for _, t in parts])[order],
                         np.concatenate([d.prompt_tokens for d, _ in parts])[order],
                         np.concatenate([d.output_tokens for d, _ in parts])[order])


def zipf_ids(rng: np.random.Generator, num_ids: int, s: float, n: int) -> np.ndarray:
    ranks = np.arange(1, num_ids + 1, dtype=float)
    p = ranks ** -s
    return rng.choice(num_ids, size=n, p=p / p.sum())


def _prefix_draws(p, seed: int, name: str, count: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(ids, lengths, clients) of ``count`` requests of one type under its access pattern."""
    rng = stream(seed, f"workload.{name}.prefix")
    clients = (stream(seed, f"workload.{name}.client").integers(0, p.clients, size=count)
               if p.clients else np.full(count, -1, dtype=np.int64))
    if p.pattern == "sessions":
        ids = _session_ids(rng, p.num_prefixes, p.turns, count)
        num_ids = int(ids.max()) + 1 if count else 1
        if p.clients:
            clients = ids % p.clients
    else:
        ids = zipf_ids(rng, p.num_prefixes, p.zipf_s, count)
        num_ids = p.num_prefixes
        if p.pattern == "private":  # each client's ids are its own
            ids = clients * p.num_prefixes + ids
            num_ids *= p.clients
    lengths = p.prefix_tokens.sample(stream(seed, f"workload.{name}.prefix_len"), num_ids)
    return ids, lengths[ids], clients


def _trace_prefixes(trace, rows: np.ndarray) -> tuple[np.ndarray, ...]:
    """(looked-up ids, tokens, kept ids, tokens) of the trace rows the requests at ``rows``
    replay (lengths of kind trace index the trace by the request's position, modulo its rows:
    the same row here)."""
    at = rows % len(trace.prefix_id)
    return tuple(np.asarray(column, dtype=np.int64)[at] for column in
                 (trace.prefix_id, trace.prefix_tokens, trace.store_id, trace.store_tokens))


def _session_ids(rng: np.random.Generator, open_sessions: int, turns: int, count: int) -> np.ndarray:
    """Multi-turn chat: each request continues one of ``open_sessions`` open sessions (uniform);
    a session closes after ``turns`` requests and a fresh one takes its place."""
    slots = rng.integers(0, open_sessions, size=count)
    session = np.arange(open_sessions, dtype=np.int64)
    turn = np.zeros(open_sessions, dtype=np.int64)
    ids = np.empty(count, dtype=np.int64)
    next_id = open_sessions
    for j, slot in enumerate(slots.tolist()):
        ids[j] = session[slot]
        turn[slot] += 1
        if turn[slot] == turns:
            session[slot], turn[slot] = next_id, 0
            next_id += 1
    return ids


def draw_pipeline(spec: WorkloadSpec, seed: int) -> PipelineDraws:
    types = spec.request_types
    drawn = _per_type(spec, seed) if any(rt.arrival is not None for rt in types) else draw(spec, seed)
    n = drawn.type_index.size
    prefix_id = prefix_tokens = thinking = client = None
    if any(rt.prefix is not None for rt in types):
        prefix_id = np.full(n, -1, dtype=np.int64)
        prefix_tokens = np.zeros(n, dtype=np.int64)
        added = np.ones(n, dtype=np.int64)  # 1: the prefix is prepended to the drawn prompt
    store_id = store_tokens = None
    if any(rt.prefix is not None and rt.prefix.pattern == "trace" for rt in types):
        store_id = np.full(n, -1, dtype=np.int64)
        store_tokens = np.zeros(n, dtype=np.int64)
    if any(rt.prefix is not None and rt.prefix.clients for rt in types):
        client = np.full(n, -1, dtype=np.int64)
    if any(rt.reasoning is not None for rt in types):
        thinking = np.zeros(n, dtype=np.int64)
    for i, rt in enumerate(types):
        mask = drawn.type_index == i
        count = int(mask.sum())
        if not count:
            continue
        if rt.prefix is not None:
            ids, lengths, clients = _prefix_draws(rt.prefix, seed, rt.name, count)
            offset = stable_hash(rt.name) << 30  # ids are global: two types never share one
            if rt.prefix.pattern == "trace":  # the trace row's prefixes (request i is row i)
                ids, lengths, kept, kept_tokens = _trace_prefixes(spec.trace, np.flatnonzero(mask))
                added[mask] = 0  # already part of the row's prompt
                store_id[mask] = np.where(kept >= 0, kept + offset, -1)
                store_tokens[mask] = kept_tokens
            prefix_id[mask] = np.where(ids >= 0, ids + offset, -1)
            prefix_tokens[mask] = lengths
            if client is not None:
                client[mask] = clients
        if rt.reasoning is not None:
            thinking[mask] = draw_thinking(rt.reasoning, stream(seed, f"workload.{rt.name}.thinking"),
                                           count)
    if prefix_tokens is not None:
        drawn = DrawnWorkload(drawn.arrival_s, drawn.type_index,
                              drawn.prompt_tokens + prefix_tokens * added, drawn.output_tokens)
    return PipelineDraws(drawn, prefix_id, prefix_tokens, client, thinking, store_id, store_tokens)
