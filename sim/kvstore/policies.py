"""The interfaces of the prefix-KV store's eviction and admission policies, and their factories.

The store owns capacity; a policy only orders resident entries. The store calls
``insert(key, num_bytes)`` then ``while policy.used_bytes > capacity_bytes: policy.evict()``, and
``touch(key)`` on every hit. ``used_bytes`` is always the sum of the resident entries' bytes. An
entry larger than the capacity is never inserted (the store checks that).

  lru.py        LRUPolicy     least recently used (baseline, no scan resistance)
  lfu.py        LFUPolicy     least frequently used, ties least recently used
  s3fifo.py     S3FIFOPolicy  S3-FIFO (Yang et al., "FIFO queues are all you need for cache
                              eviction", SOSP 2023): scan resistant, quick demotion of one-hit keys
  admission.py  AlwaysAdmit, SecondAccessAdmit
"""

from __future__ import annotations

import enum
from typing import Protocol

from sim.errors import require, require_non_negative
from sim.kvstore.admission import AlwaysAdmit, SecondAccessAdmit
from sim.kvstore.lfu import LFUPolicy
from sim.kvstore.lru import LRUPolicy
from sim.kvstore.s3fifo import S3FIFOPolicy


class Eviction(enum.Enum):
    LRU = "lru"        # least recently used
    LFU = "lfu"        # least frequently used; ties: least recently used
    S3FIFO = "s3fifo"  # S3-FIFO (Yang et al., SOSP'23): small FIFO + main FIFO + ghost FIFO


class Admission(enum.Enum):
    ALWAYS = "always"                # every computed prefix is stored
    SECOND_ACCESS = "second_access"  # stored only once it has been looked up before


class EvictionPolicy(Protocol):
    used_bytes: float  # sum of the resident entries' bytes

    def __contains__(self, key: int) -> bool: ...
    def __len__(self) -> int: ...
    def size_of(self, key: int) -> float: ...
    def touch(self, key: int) -> None: ...  # a hit on a resident key
    def insert(self, key: int, num_bytes: float) -> None: ...  # key not resident; no eviction
    def evict(self) -> tuple[int, float]: ...  # remove one victim (key, bytes); len(self) > 0
    def keys(self) -> list[int]: ...  # resident keys, any order


class AdmissionRule(Protocol):
    def record(self, key: int) -> None: ...  # called on every lookup of ``key``
    def admit(self, key: int) -> bool: ...  # called when a computed prefix could be stored


def make_eviction(kind: Eviction, capacity_bytes: float) -> EvictionPolicy:
    """A fresh, empty ``kind`` policy for a store of ``capacity_bytes`` (only S3-FIFO uses it)."""
    require(isinstance(kind, Eviction), "eviction", kind, f"one of {[e.value for e in Eviction]}")
    require_non_negative("capacity_bytes", capacity_bytes)
    if kind is Eviction.LRU:
        return LRUPolicy()
    if kind is Eviction.LFU:
        return LFUPolicy()
    return S3FIFOPolicy(capacity_bytes)


def make_admission(kind: Admission) -> AdmissionRule:
    """A fresh admission rule of ``kind``."""
    allowed = f"one of {[a.value for a in Admission]}"
    require(isinstance(kind, Admission), "admission", kind, allowed)
    return AlwaysAdmit() if kind is Admission.ALWAYS else SecondAccessAdmit()
