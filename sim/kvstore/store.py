"""The tiered prefix-KV store of one LLM pool.

Dynamic mode (``lru``; the eviction policy is a knob): a lookup searches the copies the replica
can reach, fastest tier first. A hit in HBM costs nothing (the blocks are on the device); a hit
in a lower tier reads the prefix's KV over that copy's device *and* the replica's link to it
(``sim.kvstore.fabric``: both shared), then *promotes* it into the top tier. A miss recomputes
the prefix in prefill; when that prefill ends the KV is *stored* in the top tier (every tier with
``write_through``), if the admission rule lets it in. A full copy evicts by its policy; victims
are *demoted* into the next tier (a background write), the last tier's victims are dropped.
Lower tiers keep their copy after a promotion (inclusive, as LMCache does).

In-flight deduplication: a lookup of a prefix that is being fetched into, or computed on, a copy
the replica shares waits for that copy instead of missing (vLLM's prefix cache and LMCache
lookups both see in-flight blocks), then hits it.

Fixed mode: a lookup hits tier ``i`` with probability ``hit_rate_i`` and the transfer is timed the
same way; nothing is stored (so a tier there is capacity that is paid for but never filled).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from sim.engine import Engine
from sim.kvstore.affinity import choose_replica
from sim.kvstore.fabric import Fabric
from sim.kvstore.policies import make_admission, make_eviction
from sim.kvstore.specs import KVStoreMode, KVStoreSpec, TierKind
from sim.network import LinkStats
from sim.request import Request


@dataclass(slots=True)
class TierStats:
    """Per tier of one store, summed over the tier's copies."""

    pool: str
    tier: str
    kind: str
    domain: str
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
    victim_bytes: float = 0.0  # bytes that left this tier (demoted down or dropped)
    resident_bytes: float = 0.0  # held now (all copies)
    link: LinkStats | None = None
    device: LinkStats | None = None


class _Copy:
    __slots__ = ("policy", "device", "links")

    def __init__(self, policy, device: int, links: dict[int, int]) -> None:
        self.policy, self.device, self.links = policy, device, links


class KVStore:
    def __init__(self, engine: Engine, spec: KVStoreSpec, num_replicas: int,
                 kv_bytes_per_token: float, rng: np.random.Generator, spans: list | None,
                 max_spans: int, devices_per_replica: int = 1,
                 clients: np.ndarray | None = None) -> None:
        self.engine, self.spec = engine, spec
        self.kv_bytes_per_token = kv_bytes_per_token
        self.rng = rng
        self.fixed = spec.mode is KVStoreMode.FIXED
        self.tiers = list(spec.tiers)
        self.num_replicas = num_replicas
        self.clients = clients  # request index -> client (its home replica modulo the pool)
        self.fabric = Fabric(engine, spans, max_spans)
        self.domain = [spec.domain_replicas(t, num_replicas) for t in self.tiers]
        self.stats: list[TierStats] = []
        self.copies: list[list[_Copy]] = []
        for t, tier in enumerate(self.tiers):
            n = spec.copies(tier, num_replicas)
            label = f"{spec.pool}.{tier.name}"
            link_stats = device_stats = None
            if tier.kind is not TierKind.HBM:
                device_bw = tier.bandwidth_bytes_per_s * (
                    devices_per_replica * self.domain[t] if tier.per_device else 1)
                device_stats = LinkStats(name=f"{label}.device", bandwidth_bytes_per_s=device_bw)
                link = tier.link
                link_bw = link.bandwidth_bytes_per_s * (devices_per_replica if link.per_device else 1)
                link_stats = LinkStats(name=f"{label}.link", bandwidth_bytes_per_s=link_bw)
            copies = []
            for c in range(n):
                suffix = f"[{c}]" if n > 1 else ""
                if tier.kind is TierKind.HBM:
                    copies.append(_Copy(make_eviction(spec.eviction, tier.capacity_bytes), -1, {}))
                    continue
                device = self.fabric.add_resource(f"{label}{suffix}.device", device_bw, device_stats)
                members = range(c * self.domain[t], min(num_replicas, (c + 1) * self.domain[t]))
                if tier.link.shared:
                    shared = self.fabric.add_resource(f"{label}{suffix}.link", link_bw, link_stats)
                    links = {r: shared for r in members}
                else:
                    links = {r: self.fabric.add_resource(f"{label}.link[r{r}]", link_bw, link_stats)
                             for r in members}
                copies.append(_Copy(make_eviction(spec.eviction, tier.capacity_bytes), device,
                                    links))
            self.copies.append(copies)
            self.stats.append(TierStats(pool=spec.pool, tier=tier.name, kind=tier.kind.value,
                                        domain=tier.domain.value,
                                        capacity_bytes=tier.capacity_bytes * n, copies=n,
                                        link=link_stats, device=device_stats))
        # lookups, misses, lookups that waited for an in-flight copy, prefix tokens looked up,
        # prefix tokens served from a tier (the token-level reuse: hits weighted by length)
        self.counts = [0, 0, 0, 0, 0]
        self.hit_rates = np.cumsum([t.hit_rate or 0.0 for t in self.tiers]) if self.fixed else None
        self.admission = make_admission(spec.admission)
        # in flight: (tier, copy, prefix) -> waiters [(req, replica, done)] for a promotion;
        # prefix -> [(replica, request id, waiters)] for a recompute
        self.fetching: dict[tuple[int, int, int], list] = {}
        self.computing: dict[int, list[tuple[int, list]]] = {}
        self.holds = self._holds_function()

    def _copy_index(self, tier: int, replica: int) -> int:
        return replica // self.domain[tier]

    def _copy(self, tier: int, replica: int) -> _Copy:
        return self.copies[tier][replica // self.domain[tier]]

    def holds(self, prefix_id: int, replica: int) -> int:
        """Fastest tier holding the prefix for ``replica`` (-1: nowhere). No side effects.
        (Replaced per store by ``_holds_function``'s faster equivalent.)"""
        for t in range(len(self.tiers)):
            if prefix_id in self.copies[t][replica // self.domain[t]].policy:
                return t
        return -1

    def _holds_function(self) -> Callable[[int, int], int]:
        """``holds`` over each replica's reachable copies, fastest tier first, as the policies'
        key containers (``resident``: the same membership as ``key in policy``, without a Python
        call). The pool's router asks it once per replica for every request with a prefix."""
        reach = [tuple(getattr(copies[r // self.domain[t]].policy, "resident",
                               copies[r // self.domain[t]].policy)
                       for t, copies in enumerate(self.copies))
                 for r in range(self.num_replicas)]
        if len(self.tiers) == 3:  # the common hierarchy (HBM, DRAM, SSD), unrolled
            def holds(prefix_id: int, replica: int) -> int:
                first, second, third = reach[replica]
                if prefix_id in first:
                    return 0
                if prefix_id in second:
                    return 1
                return 2 if prefix_id in third else -1
            return holds

        def holds(prefix_id: int, replica: int) -> int:
            t = 0
            for resident in reach[replica]:
                if prefix_id in resident:
                    return t
                t += 1
            return -1
        return holds

    def choose(self, req: Request, router, replicas) -> int:
        """The replica that serves ``req``'s retrieval and generation (cache-aware routing)."""
        client = int(self.clients[req.id]) if self.clients is not None else -1
        return choose_replica(self, req, client, router, replicas)

    # --- fetch ------------------------------------------------------------------------------
    def fetch(self, req: Request, replica: int, done: Callable[[Request], None]) -> None:
        """Look ``req``'s prefix up; call ``done(req)`` once its KV is on the device (or on a miss
        at once, with ``req.cached_tokens = 0`` so prefill recomputes it)."""
        self.counts[0] += 1
        self.counts[3] += req.prefix_tokens
        if self.fixed:
            u = self.rng.random()
            tier = int(np.searchsorted(self.hit_rates, u, side="right"))
            self._resolve(req, replica, done, tier if tier < len(self.tiers) else -1)
            return
        self.admission.record(req.prefix_id)
        tier = self.holds(req.prefix_id, replica)
        if self.spec.dedup_inflight and self.tiers and self._wait_inflight(req, replica, done, tier):
            self.counts[2] += 1
            return
        self._resolve(req, replica, done, tier)

    def _wait_inflight(self, req: Request, replica: int, done, tier: int) -> bool:
        """Join an in-flight promotion into, or computation for, a copy this replica shares."""
        prefix = req.prefix_id
        if tier > 0 or tier < 0:
            key = (0, self._copy_index(0, replica), prefix)
            waiters = self.fetching.get(key)
            if waiters is not None:
                waiters.append((req, replica, done))
                return True
        if tier < 0:
            for computing_on, _, waiters in self.computing.get(prefix, ()):
                if self._shares_store_target(computing_on, replica):
                    waiters.append((req, replica, done))
                    return True
        return False

    def _shares_store_target(self, a: int, b: int) -> bool:
        """Does a prefix stored by replica ``a`` land in a copy that replica ``b`` reads?"""
        tiers = range(len(self.tiers)) if self.spec.write_through else range(1)
        return any(a // self.domain[t] == b // self.domain[t] for t in tiers)

    def _resolve(self, req: Request, replica: int, done, tier: int) -> None:
        if tier > 0 and self.spec.dedup_inflight and not self.fixed:
            waiters = self.fetching.get((0, self._copy_index(0, replica), req.prefix_id))
            if waiters is not None:  # a woken waiter found the same promotion under way
                waiters.append((req, replica, done))
                return
        for t in range(len(self.tiers) if tier < 0 else tier + 1):
            self.stats[t].lookups += 1
        if tier < 0:
            self.counts[1] += 1
            req.cached_tokens = 0
            if not self.fixed and self.spec.dedup_inflight and self.tiers \
                    and self.admission.admit(req.prefix_id):
                self.computing.setdefault(req.prefix_id, []).append((replica, req.id, []))
            done(req)
            return
        stats = self.stats[tier]
        stats.hits += 1
        self.counts[4] += req.prefix_tokens
        req.cached_tokens = req.prefix_tokens
        num_bytes = req.prefix_tokens * self.kv_bytes_per_token
        copy = self._copy(tier, replica)
        if not self.fixed:
            copy.policy.touch(req.prefix_id)
        if self.tiers[tier].kind is TierKind.HBM:
            done(req)
            return
        stats.bytes_read += num_bytes
        waiters = None
        if not self.fixed and tier > 0 and self.spec.dedup_inflight:
            waiters = self.fetching[(0, self._copy_index(0, replica), req.prefix_id)] = []
        self._move(tier, replica, copy, num_bytes, self._fetched, req, tier, replica, done, waiters)

    def _move(self, tier: int, replica: int, copy: _Copy, num_bytes: float, callback, *args) -> None:
        spec = self.tiers[tier]
        self.fabric.transfer((copy.device, copy.links[replica]), spec.latency_s + spec.link.latency_s,
                             num_bytes, callback, *args, label=f"{self.spec.pool}.{spec.name}")

    def _fetched(self, req: Request, tier: int, replica: int, done, waiters) -> None:
        if not self.fixed and tier > 0:
            self._insert(0, replica, req.prefix_id, req.prefix_tokens * self.kv_bytes_per_token,
                         promotion=True)
        if waiters is not None:
            self.fetching.pop((0, self._copy_index(0, replica), req.prefix_id), None)
        done(req)
        for waiter, at, then in waiters or ():
            self._resolve(waiter, at, then, self.holds(waiter.prefix_id, at))

    # --- store ------------------------------------------------------------------------------
    def store(self, req: Request, replica: int) -> None:
        """The prefix was computed on ``replica``: keep its KV (if admitted), wake its waiters.
        The prefix kept is ``req.store_id`` when set (a trace row's longer prefix that later
        requests look up), else the one looked up."""
        if self.fixed:
            return
        kept, tokens = ((req.store_id, req.store_tokens) if req.store_id >= 0
                        else (req.prefix_id, req.prefix_tokens))
        num_bytes = tokens * self.kv_bytes_per_token
        waiters = self._finish_computing(req)
        if self.tiers and self.admission.admit(kept):
            self._insert(0, replica, kept, num_bytes)
            if self.spec.write_through:
                for t in range(1, len(self.tiers)):
                    self._insert(t, replica, kept, num_bytes)
        for waiter, at, then in waiters:
            self._resolve(waiter, at, then, self.holds(waiter.prefix_id, at))

    def abandon(self, req: Request) -> None:
        """``req`` will not compute its prefix (rejected): its waiters miss and compute."""
        for waiter, at, then in self._finish_computing(req):
            self._resolve(waiter, at, then, self.holds(waiter.prefix_id, at))

    def _finish_computing(self, req: Request) -> list:
        entries = self.computing.get(req.prefix_id)
        if not entries:
            return []
        for i, (_, computing_req, waiters) in enumerate(entries):
            if computing_req == req.id:
                del entries[i]
                if not entries:
                    del self.computing[req.prefix_id]
                return waiters
        return []

    def _insert(self, tier: int, replica: int, prefix_id: int, num_bytes: float, *,
                promotion: bool = False, demotion: bool = False) -> None:
        spec, stats = self.tiers[tier], self.stats[tier]
        copy = self._copy(tier, replica)
        policy = copy.policy
        if prefix_id in policy:
            policy.touch(prefix_id)
            return
        if num_bytes > spec.capacity_bytes:  # never fits here: try the next tier down
            if tier + 1 < len(self.tiers):
                self._insert(tier + 1, replica, prefix_id, num_bytes, demotion=demotion)
            else:
                stats.evictions += 1
                stats.evicted_bytes += num_bytes
            return
        # make room first, then insert: evicting after the insert would let a policy pick the
        # entry just inserted (LFU's count of 1, S3-FIFO's newest small-queue entry)
        while policy.used_bytes + num_bytes > spec.capacity_bytes and len(policy):
            victim, victim_bytes = policy.evict()
            stats.resident_bytes -= victim_bytes
            stats.victim_bytes += victim_bytes
            if tier + 1 < len(self.tiers):
                self._insert(tier + 1, replica, victim, victim_bytes, demotion=True)
            else:
                stats.evictions += 1
                stats.evicted_bytes += victim_bytes
        policy.insert(prefix_id, num_bytes)
        stats.resident_bytes += num_bytes
        stats.bytes_written += num_bytes
        stats.promotions_in += promotion
        stats.demotions_in += demotion
        if spec.kind is not TierKind.HBM:  # writing into DRAM/SSD/... takes device + link time
            self._move(tier, replica, copy, num_bytes, None)
