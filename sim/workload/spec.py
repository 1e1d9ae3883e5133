"""Workload specifications: arrival processes and token-length distributions."""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

import numpy as np

from sim.errors import ConfigError, require, require_non_negative, require_positive

# Limits of physical sense, checked wherever a workload is built (hermes-sim, studies, traces):
# a simulated run spans at most MAX_SPAN_S of arrivals (longer: several seeds, or fewer
# requests), a rate a large fleet would take, gamma gaps no burstier than a burst.
MAX_SPAN_S = 30 * 86_400.0
MAX_RATE_PER_S = 1e6
MAX_CV = 100.0
# a request's length: at most 2**24 tokens, above the longest published context window (Llama 4
# Scout, 10,485,760 tokens); a mean of 1e15 tokens is a typo, not a workload
MAX_TOKENS = 2**24


def span_text(span_s: float) -> str:
    """A duration a reader takes in at a glance: "3.2e+06 years", "12 days", "40 s"."""
    for unit, seconds in (("years", 365.25 * 86_400), ("days", 86_400), ("hours", 3_600)):
        if span_s >= seconds:
            return f"{span_s / seconds:.3g} {unit}"
    return f"{span_s:.3g} s"


class ArrivalKind(enum.Enum):
    POISSON = "poisson"  # open loop, exponential gaps at rate_per_s
    GAMMA = "gamma"  # open loop, gamma gaps with coefficient of variation cv (bursty when cv > 1)
    MAX_LOAD = "max_load"  # every request arrives at t = 0 (offline throughput)
    CLOSED_LOOP = "closed_loop"  # fixed concurrency; a finished request frees a slot after think time
    TRACE = "trace"  # timestamps replayed from a trace


class LengthKind(enum.Enum):
    FIXED = "fixed"
    NORMAL = "normal"
    LOGNORMAL = "lognormal"
    UNIFORM = "uniform"
    TRACE = "trace"


@dataclass(frozen=True, slots=True, kw_only=True)
class LengthSpec:
    """Token-length distribution; samples are rounded and clipped to [min_tokens, max_tokens]."""

    kind: LengthKind = LengthKind.FIXED
    mean: float = 128
    std: float = 0.0  # normal/lognormal: standard deviation of the resulting lengths
    min_tokens: int = 1
    max_tokens: int = 1_000_000

    def validate(self, field: str) -> None:
        if self.kind is not LengthKind.TRACE:
            require_positive(f"{field}.mean", self.mean)
            require(self.mean <= MAX_TOKENS, f"{field}.mean", self.mean,
                    f"must be <= {MAX_TOKENS:,} tokens (longer than any model's context)")
        require_non_negative(f"{field}.std", self.std)
        require(isinstance(self.min_tokens, int) and self.min_tokens >= 1, f"{field}.min_tokens",
                self.min_tokens, "must be an integer >= 1")
        require(self.max_tokens >= self.min_tokens, f"{field}.max_tokens", self.max_tokens,
                f"must be >= min_tokens={self.min_tokens}")
        require(self.max_tokens <= MAX_TOKENS, f"{field}.max_tokens", self.max_tokens,
                f"must be <= {MAX_TOKENS:,} tokens (longer than any model's context)")
        if self.kind is LengthKind.UNIFORM:
            require(self.std > 0 or self.mean >= 1, f"{field}.std", self.std, "uniform needs std >= 0")

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        if self.kind is LengthKind.FIXED:
            values = np.full(n, self.mean, dtype=float)
        elif self.kind is LengthKind.NORMAL:
            values = rng.normal(self.mean, self.std, n)
        elif self.kind is LengthKind.LOGNORMAL:
            # Parameterised by the lengths' own mean and std, which is what papers report.
            sigma2 = math.log1p((self.std / self.mean) ** 2)
            values = rng.lognormal(math.log(self.mean) - sigma2 / 2, math.sqrt(sigma2), n)
        elif self.kind is LengthKind.UNIFORM:
            half = self.std * math.sqrt(3.0)  # a uniform of this std
            values = rng.uniform(self.mean - half, self.mean + half, n)
        else:
            raise ConfigError("length kind 'trace' takes its lengths from the trace records")
        return np.clip(np.rint(values), self.min_tokens, self.max_tokens).astype(np.int64)


@dataclass(frozen=True, slots=True, kw_only=True)
class ArrivalSpec:
    kind: ArrivalKind = ArrivalKind.POISSON
    rate_per_s: float = 1.0  # poisson / gamma
    cv: float = 1.0  # gamma: coefficient of variation of inter-arrival gaps
    concurrency: int = 1  # closed loop
    think_time_s: float = 0.0  # closed loop
    time_scale: float = 1.0  # trace: multiply trace timestamps (0.5 = replay twice as fast)

    def validate(self) -> None:
        if self.kind in (ArrivalKind.POISSON, ArrivalKind.GAMMA):
            require_positive("workload.arrival.rate_per_s", self.rate_per_s)
            require(self.rate_per_s <= MAX_RATE_PER_S, "workload.arrival.rate_per_s",
                    self.rate_per_s, f"must be <= {MAX_RATE_PER_S:g} requests/s")
        if self.kind is ArrivalKind.GAMMA:
            require_positive("workload.arrival.cv", self.cv)
            require(self.cv <= MAX_CV, "workload.arrival.cv", self.cv,
                    f"must be <= {MAX_CV:g} (burstier arrivals than that are a burst: use "
                    f"max_load)")
        if self.kind is ArrivalKind.CLOSED_LOOP:
            require(isinstance(self.concurrency, int) and self.concurrency >= 1,
                    "workload.arrival.concurrency", self.concurrency, "must be an integer >= 1")
            require_non_negative("workload.arrival.think_time_s", self.think_time_s)
        require_positive("workload.arrival.time_scale", self.time_scale)

    def gaps_s(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """Inter-arrival gaps for open-loop kinds (the first request arrives after one gap)."""
        if self.kind is ArrivalKind.POISSON:
            return rng.exponential(1.0 / self.rate_per_s, n)
        if self.kind is ArrivalKind.GAMMA:
            shape = 1.0 / (self.cv ** 2)
            return rng.gamma(shape, 1.0 / (shape * self.rate_per_s), n)
        return np.zeros(n)


@dataclass(frozen=True, slots=True, kw_only=True)
class TraceRecords:
    """Trace rows already parsed (``hermes_opt.compose.traces`` reads the files): seconds and
    tokens, and for traces that say which prompt blocks requests share (Mooncake ``hash_ids``)
    per row the prefix it looks up (an id, -1: none, and its tokens, part of the row's prompt)
    and the prefix it keeps once computed (``store_id``: its longest prefix a later row looks
    up; -1: none). A request type with ``prefix.pattern: trace`` replays them."""

    arrival_s: tuple[float, ...]
    prompt_tokens: tuple[int, ...]
    output_tokens: tuple[int, ...]
    source: str = "trace"
    prefix_id: tuple[int, ...] | None = None
    prefix_tokens: tuple[int, ...] | None = None
    store_id: tuple[int, ...] | None = None
    store_tokens: tuple[int, ...] | None = None
    skipped_rows: int = 0  # rows of the file not replayed (BurstGPT's failed calls)
    fmt: str = ""  # the file's format, for records

    def __post_init__(self) -> None:
        n = len(self.arrival_s)
        require(n > 0, "workload.trace", self.source, "has no rows")
        require(len(self.prompt_tokens) == n and len(self.output_tokens) == n, "workload.trace",
                self.source, "columns differ in length")
        times = np.asarray(self.arrival_s, dtype=float)
        require(bool(np.all(np.isfinite(times))) and bool(np.all(np.diff(times) >= 0)),
                "workload.trace", self.source, "arrival times must be finite and sorted")
        for name in ("prompt_tokens", "output_tokens"):
            column = np.asarray(getattr(self, name))
            require(bool(np.all(column >= 1)), f"workload.trace.{name}", self.source,
                    "token counts must be >= 1")
        columns = (self.prefix_id, self.prefix_tokens, self.store_id, self.store_tokens)
        if any(c is not None for c in columns):
            require(all(c is not None and len(c) == n for c in columns), "workload.trace.prefix_id",
                    self.source, "prefix ids and tokens (looked up and kept) need one value per row")
            prompt = np.asarray(self.prompt_tokens)
            for ids, tokens in ((self.prefix_id, self.prefix_tokens),
                                (self.store_id, self.store_tokens)):
                ids, tokens = np.asarray(ids), np.asarray(tokens)
                require(bool(np.all((ids < 0) | ((tokens >= 1) & (tokens < prompt)))),
                        "workload.trace.prefix_tokens", self.source,
                        "a shared prefix must be at least 1 token and shorter than its prompt")

    @property
    def has_prefixes(self) -> bool:
        return self.prefix_id is not None


def check_span(num_requests: int, arrival: ArrivalSpec, trace: TraceRecords | None) -> None:
    """At most MAX_SPAN_S of arrivals: 100 requests at 1e-12/s would span 3e6 years."""
    if arrival.kind in (ArrivalKind.POISSON, ArrivalKind.GAMMA):
        span_s, field, value = (num_requests / arrival.rate_per_s, "workload.arrival.rate_per_s",
                                arrival.rate_per_s)
    elif arrival.kind is ArrivalKind.TRACE and trace is not None:
        # the rows the run replays: the first num_requests
        first, last = trace.arrival_s[0], trace.arrival_s[min(num_requests, len(trace.arrival_s)) - 1]
        span_s = (last - first) * arrival.time_scale
        field, value = f"workload.trace ({trace.source})", f"{last - first:g} s"
    else:
        return
    require(span_s <= MAX_SPAN_S, field, value,
            f"the run would span {span_text(span_s)} of arrivals; at most {span_text(MAX_SPAN_S)} "
            f"(raise the rate, lower workload.num_requests or workload.arrival.time_scale)")


def check_trace_prefix(rt, request_types, trace: TraceRecords | None) -> None:
    """``prefix.pattern: trace`` of request type ``rt``: a trace row's prefix is part of that
    row's prompt, so the request must replay the row's prompt, and rows must map to requests by
    position (per-type arrivals re-order them)."""
    field = f"workload.request_types.{rt.name}.prefix.pattern"
    require(trace is not None and trace.has_prefixes, field, "trace",
            "needs a trace with shared-prefix blocks (format mooncake: hash_ids)")
    require(rt.prompt_tokens.kind is LengthKind.TRACE, field, "trace",
            f"needs workload.request_types.{rt.name}.prompt_tokens.kind=trace (the prefix is part "
            f"of the trace row's prompt)")
    require(all(t.arrival is None for t in request_types), field, "trace",
            "cannot be used with per-type arrivals (they re-order the trace's rows)")
