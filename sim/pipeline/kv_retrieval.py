"""A tiered prefix-KV store (HBM, host DRAM, CXL, local SSD, rack storage, remote store).

Each tier has a capacity, a bandwidth, a latency and a scope: ``replica`` tiers have one copy per
LLM replica (device HBM, host DRAM/CXL/SSD), ``shared`` tiers one copy for the whole pool (rack
storage, a remote store). Every copy of a tier is a ``sim.network.Link``: concurrent reads and
writes on it share its bandwidth.

LRU mode (hit rates emerge from reuse): a lookup searches the replica's tiers fastest first. A hit
in HBM costs nothing (the blocks are on the device); a hit in a lower tier reads the prefix's KV
bytes over that tier's link, then *promotes* the prefix into the top tier. A miss falls back to
recomputing the prefix in prefill; when that generation ends the prefix's KV is *stored* in the
top tier. Inserting into a full tier evicts its least recently used prefixes, which are *demoted*
into the next tier (a background write on that tier's link); the last tier's victims are evicted.
Lower tiers keep their copy after a promotion (inclusive hierarchy, as LMCache does).

Fixed mode: a lookup hits tier ``i`` with probability ``hit_rate_i`` (named random stream) and the
transfer is timed the same way; nothing is stored.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable

import numpy as np

from sim.engine import Engine
from sim.network import Link, LinkStats
from sim.pipeline.specs import KVStoreMode, KVStoreSpec, KVTierSpec, TierKind, TierScope
from sim.request import Request


@dataclass(slots=True)
class TierStats:
    """Per tier of one store, summed over the tier's copies."""

    pool: str
    tier: str
    kind: str
    capacity_bytes: float
    copies: int
    lookups: int = 0  # lookups that reached this tier
    hits: int = 0
    bytes_read: float = 0.0  # prefix KV fetched from this tier
    bytes_written: float = 0.0  # stores, promotions and demotions into this tier
    promotions_in: int = 0
    demotions_in: int = 0
    evictions: int = 0  # prefixes dropped from the hierarchy at this tier
    evicted_bytes: float = 0.0
    resident_bytes: float = 0.0  # held now (all copies)
    link: LinkStats | None = None


class _TierCopy:
    __slots__ = ("lru", "used", "link")

    def __init__(self, link: Link | None) -> None:
        self.lru: OrderedDict[int, float] = OrderedDict()
        self.used = 0.0
        self.link = link


class KVStore:
    def __init__(self, engine: Engine, spec: KVStoreSpec, num_replicas: int,
                 kv_bytes_per_token: float, rng: np.random.Generator, spans: list | None,
                 max_spans: int, devices_per_replica: int = 1) -> None:
        self.engine, self.spec = engine, spec
        self.kv_bytes_per_token = kv_bytes_per_token
        self.rng = rng
        self.fixed = spec.mode is KVStoreMode.FIXED
        self.tiers: list[KVTierSpec] = list(spec.tiers)
        self.stats: list[TierStats] = []
        self.copies: list[list[_TierCopy]] = []
        for tier in self.tiers:
            n = num_replicas if tier.scope is TierScope.REPLICA else 1
            bw = tier.bandwidth_bytes_per_s * (devices_per_replica if tier.per_device else 1)
            link_stats = LinkStats(name=f"{spec.pool}.{tier.name}", bandwidth_bytes_per_s=bw)
            copies = [_TierCopy(None if tier.kind is TierKind.HBM else Link(
                engine, f"{spec.pool}.{tier.name}" + (f"[{i}]" if n > 1 else ""),
                bw, tier.latency_s, link_stats, spans, max_spans))
                for i in range(n)]
            self.copies.append(copies)
            self.stats.append(TierStats(pool=spec.pool, tier=tier.name, kind=tier.kind.value,
                                        capacity_bytes=tier.capacity_bytes * n, copies=n,
                                        link=link_stats))
        self.counts = [0, 0]  # lookups, misses (shared with the collector)
        self.hit_rates = np.cumsum([t.hit_rate or 0.0 for t in self.tiers]) if self.fixed else None

    def _copy(self, tier: int, replica: int) -> _TierCopy:
        copies = self.copies[tier]
        return copies[replica] if len(copies) > 1 else copies[0]

    def holds(self, prefix_id: int, replica: int) -> int:
        """Fastest tier holding the prefix for ``replica`` (-1: nowhere). No side effects."""
        for t in range(len(self.tiers)):
            if prefix_id in self._copy(t, replica).lru:
                return t
        return -1

    # --- fetch ------------------------------------------------------------------------------
    def fetch(self, req: Request, replica: int, done: Callable[[Request], None]) -> None:
        """Look ``req``'s prefix up; call ``done(req)`` once its KV is on the device (or on a miss
        at once, with ``req.cached_tokens = 0`` so prefill recomputes it)."""
        self.counts[0] += 1
        if self.fixed:
            u = self.rng.random()
            tier = int(np.searchsorted(self.hit_rates, u, side="right"))
            tier = tier if tier < len(self.tiers) else -1
        else:
            tier = self.holds(req.prefix_id, replica)
        for t in range(len(self.tiers) if tier < 0 else tier + 1):
            self.stats[t].lookups += 1
        if tier < 0:
            self.counts[1] += 1
            req.cached_tokens = 0
            done(req)
            return
        stats = self.stats[tier]
        stats.hits += 1
        req.cached_tokens = req.prefix_tokens
        num_bytes = req.prefix_tokens * self.kv_bytes_per_token
        copy = self._copy(tier, replica)
        if not self.fixed:
            copy.lru.move_to_end(req.prefix_id)
        if self.tiers[tier].kind is TierKind.HBM:
            done(req)
            return
        stats.bytes_read += num_bytes
        copy.link.transfer(num_bytes, self._fetched, req, tier, replica, done)

    def _fetched(self, req: Request, tier: int, replica: int, done) -> None:
        if not self.fixed and tier > 0:
            self._insert(0, replica, req.prefix_id, req.prefix_tokens * self.kv_bytes_per_token,
                         promotion=True)
        done(req)

    # --- store ------------------------------------------------------------------------------
    def store(self, req: Request, replica: int) -> None:
        """The prefix was computed on ``replica``: keep its KV in the top tier."""
        if self.fixed:
            return
        self._insert(0, replica, req.prefix_id, req.prefix_tokens * self.kv_bytes_per_token)

    def _insert(self, tier: int, replica: int, prefix_id: int, num_bytes: float, *,
                promotion: bool = False, demotion: bool = False) -> None:
        spec, stats = self.tiers[tier], self.stats[tier]
        copy = self._copy(tier, replica)
        if prefix_id in copy.lru:
            copy.lru.move_to_end(prefix_id)
            return
        if num_bytes > spec.capacity_bytes:  # never fits here: try the next tier down
            if tier + 1 < len(self.tiers):
                self._insert(tier + 1, replica, prefix_id, num_bytes, demotion=demotion)
            else:
                stats.evictions += 1
                stats.evicted_bytes += num_bytes
            return
        copy.lru[prefix_id] = num_bytes
        copy.used += num_bytes
        stats.resident_bytes += num_bytes
        stats.bytes_written += num_bytes
        stats.promotions_in += promotion
        stats.demotions_in += demotion
        if copy.link is not None:  # writing into DRAM/SSD/... takes that tier's bandwidth
            copy.link.transfer(num_bytes, None)
        while copy.used > spec.capacity_bytes:
            victim, victim_bytes = copy.lru.popitem(last=False)
            copy.used -= victim_bytes
            stats.resident_bytes -= victim_bytes
            if tier + 1 < len(self.tiers):
                self._insert(tier + 1, replica, victim, victim_bytes, demotion=True)
            else:
                stats.evictions += 1
                stats.evicted_bytes += victim_bytes
