"""Frozen, validated specs of pipeline parts (the vocabulary ``sim.config`` is built from).

Units are in the names; every check names the field, the value and what is allowed.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from sim.errors import require, require_fraction, require_non_negative
from sim.workload.spec import LengthKind, LengthSpec


def _us(seconds):
    """A latency for a message in the unit users write it in (microseconds)."""
    return seconds * 1e6 if isinstance(seconds, (int, float)) else seconds


class IndexKind(enum.Enum):
    FLAT = "flat"  # exhaustive scan: a GEMM against every vector
    IVF_PQ = "ivf_pq"  # coarse quantizer + nprobe inverted lists of product-quantized codes
    HNSW = "hnsw"  # graph walk: ef_search candidates, ~2M neighbours expanded per candidate


@dataclass(frozen=True, slots=True, kw_only=True)
class IndexSpec:
    """A vector index held in the memory of every node of a retrieval pool."""

    kind: IndexKind = IndexKind.IVF_PQ
    num_vectors: int = 10_000_000
    dim: int = 1024
    bytes_per_scalar: int = 4  # float32 vectors / centroids
    nlist: int = 16384  # ivf_pq: inverted lists
    nprobe: int = 32  # ivf_pq: lists scanned per query
    pq_bytes: int = 64  # ivf_pq: code bytes per vector (m sub-quantizers x 8 bits)
    hnsw_m: int = 32  # hnsw: graph degree (layer 0 has 2M)
    ef_search: int = 64  # hnsw: candidate list size
    field_path: str = "index"

    def __post_init__(self) -> None:
        p = self.field_path
        for name in ("num_vectors", "dim", "bytes_per_scalar", "nlist", "nprobe", "pq_bytes",
                     "hnsw_m", "ef_search"):
            value = getattr(self, name)
            require(isinstance(value, int) and value >= 1, f"{p}.{name}", value,
                    "must be an integer >= 1")
        if self.kind is IndexKind.IVF_PQ:
            require(self.nprobe <= self.nlist, f"{p}.nprobe", self.nprobe,
                    f"must be <= nlist={self.nlist}")
            require(self.nlist <= self.num_vectors, f"{p}.nlist", self.nlist,
                    f"must be <= num_vectors={self.num_vectors}")

    @property
    def memory_bytes(self) -> float:
        vec = self.dim * self.bytes_per_scalar
        if self.kind is IndexKind.FLAT:
            return self.num_vectors * vec
        if self.kind is IndexKind.IVF_PQ:  # codes + 8-byte ids + centroids
            return self.num_vectors * (self.pq_bytes + 8) + self.nlist * vec
        return self.num_vectors * (vec + 2 * self.hnsw_m * 4)  # vectors + layer-0 links


class FirstToken(enum.Enum):
    """When the client of a disaggregated deployment receives a request's first token (the decode
    pool's engine decides; docs/deployments.md has the sources):

    * ``decode_step``: the decode worker admits the transferred KV and samples the first token in
      its next step (vLLM's NixlConnector: the decode scheduler recomputes the last prompt token,
      the proxy drops the prefill worker's token; TensorRT-LLM's generation-only request streams
      from its generation step), so the decode worker runs ``output_tokens`` steps;
    * ``decode_admit``: the prefill worker's token travels with the KV and the decode worker
      streams it when it admits the request, before any forward pass (SGLang's PrebuiltExtendBatch);
    * ``prefill``: at the end of prefill on the prefill worker (a proxy streaming the prefill
      worker's token at once; no queue, transfer or decode admission in TTFT).
    """

    DECODE_STEP = "decode_step"
    DECODE_ADMIT = "decode_admit"
    PREFILL = "prefill"


@dataclass(frozen=True, slots=True, kw_only=True)
class LinkSpec:
    """A network path between two pools; concurrent transfers share its bandwidth fairly."""

    name: str
    src_pool: str
    dst_pool: str
    bandwidth_bytes_per_s: float
    latency_s: float = 10e-6
    field_path: str = ""

    def __post_init__(self) -> None:
        p = self.field_path or f"cluster.links.{self.name}"
        require(isinstance(self.bandwidth_bytes_per_s, (int, float))
                and self.bandwidth_bytes_per_s > 0, f"{p}.bandwidth_gb_per_s",
                self.bandwidth_bytes_per_s, "must be > 0")
        require_non_negative(f"{p}.latency_us", _us(self.latency_s))


@dataclass(frozen=True, slots=True, kw_only=True)
class PrefixSpec:
    """Shared prefixes (system prompts, documents, chat sessions) and who reads them. A prefix's
    length is drawn once per id; the prefix is part of the prompt (prompt = prefix + the
    request's own tokens). Access patterns (``pattern``):

    * ``shared``: every request draws an id from one Zipf(s) popularity over ``num_prefixes``,
      whichever client sends it (hot spots: the head of the Zipf);
    * ``private``: each of ``clients`` clients has its own ``num_prefixes`` ids (its users'
      histories) and draws from its own Zipf(s);
    * ``sessions``: multi-turn chat; ``num_prefixes`` sessions are open at once, each request
      continues one of them uniformly at random, and a session closes after ``turns`` requests
      (a new one, with a new id and length, opens). A session belongs to client ``id % clients``;
    * ``trace``: each request's prefix is its trace row's (``TraceRecords.prefix_id`` /
      ``prefix_tokens``, from Mooncake ``hash_ids``), already part of the row's prompt;
      ``num_prefixes``, ``zipf_s`` and ``prefix_tokens`` are not used.

    ``clients`` (0: requests are not tied to clients) are the pool's engines: client ``c`` is
    replica ``c % num_replicas`` (see ``kv_tiers.client_affinity``). A request's client is drawn
    uniformly (``shared``, ``private``) or is its session's."""

    num_prefixes: int = 100
    zipf_s: float = 1.0  # popularity exponent (0 = uniform)
    prefix_tokens: LengthSpec = field(default_factory=lambda: LengthSpec(mean=1024))
    pattern: str = "shared"
    clients: int = 0
    turns: int = 8  # sessions: requests per session

    def validate(self, p: str) -> None:
        require(isinstance(self.num_prefixes, int) and 1 <= self.num_prefixes <= 10_000_000,
                f"{p}.num_prefixes", self.num_prefixes, "must be an integer in 1..10,000,000")
        require_non_negative(f"{p}.zipf_s", self.zipf_s)
        require(self.prefix_tokens.kind is not LengthKind.TRACE, f"{p}.prefix_tokens.kind",
                "trace", "prefix lengths cannot come from a trace")
        self.prefix_tokens.validate(f"{p}.prefix_tokens")
        require(self.pattern in PREFIX_PATTERNS, f"{p}.pattern", self.pattern,
                f"allowed: {', '.join(PREFIX_PATTERNS)}")
        require(isinstance(self.clients, int) and not isinstance(self.clients, bool)
                and 0 <= self.clients <= 10_000, f"{p}.clients", self.clients,
                "must be an integer in 0..10,000 (0: requests not tied to clients)")
        require(self.pattern != "private" or self.clients >= 1, f"{p}.clients", self.clients,
                "pattern 'private' needs clients >= 1 (each client owns its prefixes)")
        require(self.pattern != "private" or self.clients * self.num_prefixes <= 10_000_000,
                f"{p}.num_prefixes", self.num_prefixes,
                "clients x num_prefixes must be <= 10,000,000")
        require(isinstance(self.turns, int) and not isinstance(self.turns, bool)
                and 1 <= self.turns <= 100_000, f"{p}.turns", self.turns,
                "must be an integer in 1..100,000")


PREFIX_PATTERNS = ("shared", "private", "sessions", "trace")


@dataclass(frozen=True, slots=True, kw_only=True)
class ReasoningSpec:
    """Long thinking: a bimodal mixture of short and long thinking lengths, optionally split over
    several rounds whose context grows, and best-of-N samples sharing the prompt's KV."""

    think_short: LengthSpec = field(default_factory=lambda: LengthSpec(mean=512))
    think_long: LengthSpec = field(default_factory=lambda: LengthSpec(mean=4096))
    long_fraction: float = 0.3
    num_rounds: int = 1  # prefill/decode rounds; thinking is split evenly across rounds
    feedback_tokens: int = 0  # tokens appended between rounds (tool output, critique)
    num_samples: int = 1  # best-of-N / self-consistency: decode sequences sharing the prompt KV
    budget_tokens: int = 0  # thinking budget: thinking is cut at this many tokens (0: no budget)

    def validate(self, p: str) -> None:
        for name in ("think_short", "think_long"):
            spec = getattr(self, name)
            require(spec.kind is not LengthKind.TRACE, f"{p}.{name}.kind", "trace",
                    "thinking lengths cannot come from a trace")
            spec.validate(f"{p}.{name}")
        require_fraction(f"{p}.long_fraction", self.long_fraction, allow_zero=True)
        for name in ("num_rounds", "num_samples"):
            value = getattr(self, name)
            require(isinstance(value, int) and 1 <= value <= 256, f"{p}.{name}", value,
                    "must be an integer in [1, 256]")
        require(isinstance(self.feedback_tokens, int) and self.feedback_tokens >= 0,
                f"{p}.feedback_tokens", self.feedback_tokens, "must be an integer >= 0")
        require(isinstance(self.budget_tokens, int) and not isinstance(self.budget_tokens, bool)
                and 0 <= self.budget_tokens <= 1_000_000, f"{p}.budget_tokens", self.budget_tokens,
                "must be an integer in 0..1,000,000 (0: no thinking budget)")
