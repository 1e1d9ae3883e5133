"""Frozen, validated specs of pipeline parts (the vocabulary ``sim.config`` is built from).

Units are in the names; every check names the field, the value and what is allowed.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field

from sim.errors import require, require_fraction, require_non_negative
from sim.workload.spec import LengthKind, LengthSpec


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


class TierKind(enum.Enum):
    HBM = "hbm"  # the replica's own prefix cache in device memory (no transfer on a hit)
    DRAM = "dram"  # host memory over PCIe
    CXL = "cxl"  # CXL memory expander
    SSD = "ssd"  # local NVMe
    RACK = "rack"  # rack-shared storage (NVMe-oF / disaggregated memory in the rack)
    REMOTE = "remote"  # remote KV store across the data-centre network (Mooncake/LMCache server)

    @property
    def price_key(self) -> str:
        """Key in a pricing set's ``memory_usd_per_gb_hour`` (rack storage is priced as SSD)."""
        return "ssd" if self is TierKind.RACK else self.value


class TierScope(enum.Enum):
    REPLICA = "replica"  # one copy of the tier per LLM replica (local memory, local disk)
    SHARED = "shared"  # one tier shared by all replicas of the pool (rack / remote store)


@dataclass(frozen=True, slots=True, kw_only=True)
class KVTierSpec:
    """One level of the prefix-KV hierarchy. Bandwidth is what one copy of the tier delivers to
    the GPUs it serves (shared by concurrent transfers); capacity is per copy."""

    name: str
    kind: TierKind
    capacity_bytes: float
    bandwidth_bytes_per_s: float
    latency_s: float = 0.0
    scope: TierScope = TierScope.REPLICA
    per_device: bool = False  # bandwidth is per device: a copy delivers it x the replica's devices
    hit_rate: float | None = None  # fixed-hit-rate mode: share of lookups served by this tier
    field_path: str = ""

    def __post_init__(self) -> None:
        p = self.field_path or f"kv_tiers.tiers.{self.name}"
        require(isinstance(self.capacity_bytes, (int, float)) and self.capacity_bytes > 0,
                f"{p}.capacity_gb", self.capacity_bytes / 1e9 if isinstance(
                    self.capacity_bytes, (int, float)) else self.capacity_bytes,
                "must be > 0 (remove the tier instead)")
        require(isinstance(self.bandwidth_bytes_per_s, (int, float))
                and self.bandwidth_bytes_per_s > 0 and math.isfinite(self.bandwidth_bytes_per_s),
                f"{p}.bandwidth_gb_per_s", self.bandwidth_bytes_per_s / 1e9 if isinstance(
                    self.bandwidth_bytes_per_s, (int, float)) else self.bandwidth_bytes_per_s,
                "must be a finite number > 0")
        require_non_negative(f"{p}.latency_us", self.latency_s)
        if self.hit_rate is not None:
            require_fraction(f"{p}.hit_rate", self.hit_rate, allow_zero=True)
        if self.kind is TierKind.HBM:
            require(self.scope is TierScope.REPLICA, f"{p}.scope", self.scope.value,
                    "an hbm tier lives on each replica: scope must be 'replica'")


class KVStoreMode(enum.Enum):
    LRU = "lru"  # hit rates emerge from reuse: LRU per tier, promotion on hit, demotion on evict
    FIXED = "fixed"  # each lookup hits tier i with probability tiers[i].hit_rate


@dataclass(frozen=True, slots=True, kw_only=True)
class KVStoreSpec:
    """The tiered prefix-KV store of one LLM pool (tiers fastest first)."""

    pool: str
    tiers: tuple[KVTierSpec, ...]
    mode: KVStoreMode = KVStoreMode.LRU
    field_path: str = "kv_tiers"

    def __post_init__(self) -> None:
        p = self.field_path
        require(len(self.tiers) >= 1, f"{p}.tiers", len(self.tiers), "needs at least one tier")
        names = [t.name for t in self.tiers]
        require(len(set(names)) == len(names), f"{p}.tiers", names, "tier names must be unique")
        for i, tier in enumerate(self.tiers):
            if tier.kind is TierKind.HBM:
                require(i == 0, f"{p}.tiers.{tier.name}", tier.kind.value,
                        "the hbm tier must be the first (fastest) tier")
        if self.mode is KVStoreMode.FIXED:
            missing = [t.name for t in self.tiers if t.hit_rate is None]
            require(not missing, f"{p}.tiers", missing, "mode 'fixed' needs a hit_rate on every tier")
            total = sum(t.hit_rate for t in self.tiers)
            require(total <= 1.0 + 1e-9, f"{p}.tiers.hit_rate", round(total, 6),
                    "hit rates must sum to <= 1 (the rest are misses)")


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
        require_non_negative(f"{p}.latency_us", self.latency_s)


@dataclass(frozen=True, slots=True, kw_only=True)
class PrefixSpec:
    """Shared prefixes (system prompts, documents, chat sessions): each request draws a prefix id
    from a Zipf(s) popularity over ``num_prefixes``; a prefix's length is drawn once per id. The
    prefix is part of the prompt (prompt = prefix + the request's own tokens)."""

    num_prefixes: int = 100
    zipf_s: float = 1.0  # popularity exponent (0 = uniform)
    prefix_tokens: LengthSpec = field(default_factory=lambda: LengthSpec(mean=1024))

    def validate(self, p: str) -> None:
        require(isinstance(self.num_prefixes, int) and self.num_prefixes >= 1,
                f"{p}.num_prefixes", self.num_prefixes, "must be an integer >= 1")
        require_non_negative(f"{p}.zipf_s", self.zipf_s)
        require(self.prefix_tokens.kind is not LengthKind.TRACE, f"{p}.prefix_tokens.kind",
                "trace", "prefix lengths cannot come from a trace")
        self.prefix_tokens.validate(f"{p}.prefix_tokens")


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
