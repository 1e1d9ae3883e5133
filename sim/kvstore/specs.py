"""Frozen, validated specs of a prefix-KV store: tiers (a storage device and the link that reaches
it), sharing domains, and the store's policies.

A *client* is one LLM replica (an engine, as in MIST/HERMES). A tier's *domain* says which clients
share one copy of it: each replica its own (``replica``), the ``node_replicas`` replicas of a host
(``node``), the ``rack_replicas`` replicas of a rack (``rack``) or every replica of the pool
(``cluster``). A fetch from a copy crosses the copy's *device* (capacity, bandwidth, latency;
shared by every client of the domain) and a *link* to the reading GPU (per client, e.g. each GPU's
PCIe lanes, or one link shared by the domain, e.g. a storage server's NIC). Both contend
(``sim.kvstore.fabric``). Units are in the names.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

from sim.errors import require, require_fraction, require_non_negative
from sim.kvstore.policies import Admission, Eviction


def _us(seconds):
    """A latency for a message in the unit users write it in (microseconds)."""
    return seconds * 1e6 if isinstance(seconds, (int, float)) else seconds


class TierKind(enum.Enum):
    HBM = "hbm"  # the replica's own prefix cache in device memory (no transfer on a hit)
    LPDDR = "lpddr"  # CPU-attached LPDDR next to the accelerator (Grace-style, NVLink-C2C)
    DRAM = "dram"  # host memory over PCIe
    CXL = "cxl"  # CXL memory expander
    SSD = "ssd"  # local NVMe
    RACK = "rack"  # rack-shared storage (NVMe-oF / disaggregated memory in the rack)
    REMOTE = "remote"  # remote KV store across the data-centre network (Mooncake/LMCache server)

    @property
    def price_key(self) -> str:
        """Key in a pricing set's ``memory_usd_per_gb_hour`` (rack storage is priced as SSD,
        LPDDR as DRAM)."""
        return {TierKind.RACK: "ssd", TierKind.LPDDR: "dram"}.get(self, self.value)


class Domain(enum.Enum):
    REPLICA = "replica"  # one copy per replica (its own HBM, a dedicated LPDDR/DRAM/SSD)
    NODE = "node"  # one copy per host of node_replicas replicas (host DRAM shared by its GPUs)
    RACK = "rack"  # one copy per rack of rack_replicas replicas (rack SSD array)
    CLUSTER = "cluster"  # one copy for every replica of the pool (a remote store)


class KVStoreMode(enum.Enum):
    LRU = "lru"  # hit rates emerge from reuse (the eviction policy decides what stays)
    FIXED = "fixed"  # each lookup hits tier i with probability tiers[i].hit_rate; nothing stored


class ClientAffinity(enum.Enum):
    NONE = "none"  # the pool's router picks the replica (prefix_affinity sees every domain)
    PREFER = "prefer"  # least-loaded replica in the home replica's widest sharing domain
    PIN = "pin"  # the request's own client serves it (MIST's engine preference)


@dataclass(frozen=True, slots=True, kw_only=True)
class KVLinkSpec:
    """The path from a tier's device to the GPUs that read it."""

    bandwidth_bytes_per_s: float
    latency_s: float = 0.0
    shared: bool = False  # one link for the whole domain (a NIC) instead of one per client
    per_device: bool = False  # a client's link delivers bandwidth x its devices (PCIe per GPU)

    def validate(self, p: str) -> None:
        _require_bandwidth(f"{p}.bandwidth_gb_per_s", self.bandwidth_bytes_per_s)
        require_non_negative(f"{p}.latency_us", _us(self.latency_s))


def _require_bandwidth(field: str, value) -> None:
    ok = isinstance(value, (int, float)) and value > 0 and math.isfinite(value)
    require(ok, field, value / 1e9 if ok or isinstance(value, (int, float)) else value,
            "must be a finite number > 0")


@dataclass(frozen=True, slots=True, kw_only=True)
class KVTierSpec:
    """One level of the hierarchy. ``capacity_bytes``, ``bandwidth_bytes_per_s`` and
    ``latency_s`` are the device's, per copy; ``per_device`` scales the device bandwidth by the
    GPUs the copy serves. ``link`` is required on every tier but HBM."""

    name: str
    kind: TierKind
    capacity_bytes: float
    bandwidth_bytes_per_s: float
    latency_s: float = 0.0
    domain: Domain = Domain.REPLICA
    per_device: bool = False
    link: KVLinkSpec | None = None
    hit_rate: float | None = None  # fixed-hit-rate mode: share of lookups served by this tier
    usd_per_gb_hour: float | None = None  # overrides the price set's memory price for this kind
    usd_per_hour: float | None = None  # per copy, on top (a storage server, a NIC)
    field_path: str = ""

    def __post_init__(self) -> None:
        p = self.field_path or f"kv_tiers.tiers.{self.name}"
        cap = self.capacity_bytes
        require(isinstance(cap, (int, float)) and cap > 0 and math.isfinite(cap),
                f"{p}.capacity_gb", cap / 1e9 if isinstance(cap, (int, float)) else cap,
                "must be a finite number > 0 (remove the tier instead)")
        _require_bandwidth(f"{p}.bandwidth_gb_per_s", self.bandwidth_bytes_per_s)
        require_non_negative(f"{p}.latency_us", _us(self.latency_s))
        if self.hit_rate is not None:
            require_fraction(f"{p}.hit_rate", self.hit_rate, allow_zero=True)
        for name in ("usd_per_gb_hour", "usd_per_hour"):
            value = getattr(self, name)
            if value is not None:
                require(isinstance(value, (int, float)) and 0 <= value < 1e6
                        and math.isfinite(value), f"{p}.{name}", value,
                        "must be a finite number in [0, 1e6)")
        if self.kind is TierKind.HBM:
            require(self.domain is Domain.REPLICA, f"{p}.domain", self.domain.value,
                    "an hbm tier lives on each replica: domain must be 'replica'")
        else:
            require(self.link is not None, f"{p}.link", None,
                    "a tier other than hbm needs a link to the GPUs: {bandwidth_gb_per_s, "
                    "latency_us, shared, per_device}")
            self.link.validate(f"{p}.link")


@dataclass(frozen=True, slots=True, kw_only=True)
class KVStoreSpec:
    """The tiered prefix-KV store of one LLM pool (tiers fastest first)."""

    pool: str
    tiers: tuple[KVTierSpec, ...]
    mode: KVStoreMode = KVStoreMode.LRU
    eviction: Eviction = Eviction.LRU
    admission: Admission = Admission.ALWAYS
    dedup_inflight: bool = True  # a lookup of a prefix being fetched or computed waits for it
    write_through: bool = False  # a computed prefix is written to every tier, not just the top
    node_replicas: int = 4  # replicas per node domain
    rack_replicas: int = 32  # replicas per rack domain
    client_affinity: ClientAffinity = ClientAffinity.NONE
    field_path: str = "kv_tiers"

    def __post_init__(self) -> None:
        p = self.field_path
        # no tiers: nothing is cached (every lookup misses) but the store still routes requests
        # to their clients (MIST's recompute case E keeps the engine preference of A-D)
        require(len(self.tiers) >= 1 or self.client_affinity is not ClientAffinity.NONE,
                f"{p}.tiers", len(self.tiers),
                "needs at least one tier (or client_affinity prefer/pin: a recompute-only store)")
        names = [t.name for t in self.tiers]
        require(len(set(names)) == len(names), f"{p}.tiers", names, "tier names must be unique")
        for i, tier in enumerate(self.tiers):
            if tier.kind is TierKind.HBM:
                require(i == 0, f"{p}.tiers.{tier.name}", tier.kind.value,
                        "the hbm tier must be the first (fastest) tier")
        for name in ("node_replicas", "rack_replicas"):
            value = getattr(self, name)
            require(isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 10_000,
                    f"{p}.{name}", value, "must be an integer in 1..10,000")
        if self.mode is KVStoreMode.FIXED:
            missing = [t.name for t in self.tiers if t.hit_rate is None]
            require(not missing, f"{p}.tiers", missing, "mode 'fixed' needs a hit_rate on every tier")
            total = sum(t.hit_rate for t in self.tiers)
            require(total <= 1.0 + 1e-9, f"{p}.tiers.hit_rate", round(total, 6),
                    "hit rates must sum to <= 1 (the rest are misses)")

    def domain_replicas(self, tier: KVTierSpec, num_replicas: int) -> int:
        """Replicas sharing one copy of ``tier`` in a pool of ``num_replicas``."""
        return {Domain.REPLICA: 1, Domain.NODE: self.node_replicas, Domain.RACK: self.rack_replicas,
                Domain.CLUSTER: num_replicas}[tier.domain]

    def check_fits(self, num_replicas: int, pool_path: str) -> None:
        """A sharing domain may not be larger than the deployment it shares."""
        for tier in self.tiers:
            size = self.domain_replicas(tier, num_replicas)
            require(size <= num_replicas, f"{tier.field_path or self.field_path}.domain",
                    tier.domain.value,
                    f"a {tier.domain.value} domain of {size} replicas ({self.field_path}."
                    f"{tier.domain.value}_replicas) is larger than the deployment ({pool_path}: "
                    f"{num_replicas} replicas); allowed: a smaller domain or more replicas")

    def copies(self, tier: KVTierSpec, num_replicas: int) -> int:
        size = self.domain_replicas(tier, num_replicas)
        return -(-num_replicas // size)
