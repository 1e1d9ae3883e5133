"""Eviction and admission policies of the prefix-KV store: conservation properties over random
operation sequences (every policy) and behaviour that tells the policies apart."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.errors import ConfigError
from sim.kvstore.admission import AlwaysAdmit, SecondAccessAdmit
from sim.kvstore.lfu import LFUPolicy
from sim.kvstore.lru import LRUPolicy
from sim.kvstore.policies import Admission, Eviction, make_admission, make_eviction
from sim.kvstore.s3fifo import S3FIFOPolicy

# (name, factory(capacity_bytes)); S3-FIFO also with unusual small-queue fractions
POLICIES = [
    ("lru", lambda cap: make_eviction(Eviction.LRU, cap)),
    ("lfu", lambda cap: make_eviction(Eviction.LFU, cap)),
    ("s3fifo", lambda cap: make_eviction(Eviction.S3FIFO, cap)),
    ("s3fifo_small_0.01", lambda cap: S3FIFOPolicy(cap, small_fraction=0.01)),
    ("s3fifo_small_0.5", lambda cap: S3FIFOPolicy(cap, small_fraction=0.5)),
    ("s3fifo_small_1", lambda cap: S3FIFOPolicy(cap, small_fraction=1.0)),
]
FACTORIES = [f for _, f in POLICIES]
IDS = [n for n, _ in POLICIES]


def check_consistent(policy, resident: dict[int, float]) -> None:
    keys = policy.keys()
    assert len(keys) == len(set(keys)) == len(policy)
    assert set(keys) == set(resident)
    assert all(k in policy for k in keys)
    assert all(policy.size_of(k) == resident[k] for k in keys)
    assert math.isclose(policy.used_bytes, sum(policy.size_of(k) for k in keys), abs_tol=1e-6)


def drive(policy, capacity_bytes: float, ops) -> None:
    """Play ``ops`` the way the store does, checking conservation after every operation.

    ops: ("insert", bytes) a new key; ("touch", i) a resident key; ("reinsert", i, bytes) a key
    evicted earlier (exercises S3-FIFO's ghost)."""
    resident: dict[int, float] = {}  # the model: key -> bytes
    evicted: set[int] = set()  # evicted since their last insert, not resident now
    inserted_bytes = evicted_bytes = 0.0
    next_key = 0
    for op in ops:
        if op[0] == "touch":
            if resident:
                policy.touch(sorted(resident)[op[1] % len(resident)])
        else:
            if op[0] == "insert":
                key, num_bytes = next_key, op[1]
                next_key += 1
            elif evicted:
                key, num_bytes = sorted(evicted)[op[1] % len(evicted)], op[2]
            else:
                continue
            if num_bytes > capacity_bytes:  # the store never inserts what cannot fit
                continue
            policy.insert(key, num_bytes)
            evicted.discard(key)
            resident[key] = num_bytes
            inserted_bytes += num_bytes
            while policy.used_bytes > capacity_bytes:
                victim, victim_bytes = policy.evict()
                # a victim is resident, so never returned twice since its last insert
                assert victim in resident, f"victim {victim} not resident"
                assert victim_bytes == resident.pop(victim)
                evicted.add(victim)
                evicted_bytes += victim_bytes
            assert policy.used_bytes <= capacity_bytes
        check_consistent(policy, resident)
        assert math.isclose(inserted_bytes, policy.used_bytes + evicted_bytes,
                            rel_tol=1e-9, abs_tol=1e-6)


sizes = st.one_of(st.just(0.0), st.floats(1e-9, 120.0), st.sampled_from([1.0, 16.0, 64.0]))
capacities = st.one_of(st.floats(1e-9, 1e-6), st.floats(1.0, 400.0))
ops_strategy = st.lists(st.one_of(
    st.tuples(st.just("insert"), sizes),
    st.tuples(st.just("touch"), st.integers(0, 10**6)),
    st.tuples(st.just("reinsert"), st.integers(0, 10**6), sizes),
), max_size=200)


@pytest.mark.parametrize("factory", FACTORIES, ids=IDS)
@settings(max_examples=150, deadline=None)
@given(capacity=capacities, ops=ops_strategy)
def test_conservation_random_ops(factory, capacity, ops):
    drive(factory(capacity), capacity, ops)


@pytest.mark.parametrize("factory", FACTORIES, ids=IDS)
@pytest.mark.parametrize("seed", range(12))
def test_conservation_long_seeded_runs(factory, seed):
    # long runs reach LFU's heap rebuild and S3-FIFO's ghost trimming, which short ones may not
    rng = np.random.default_rng(seed)
    capacity = float(rng.choice([5.0, 64.0, 500.0]))
    ops = []
    for kind in rng.choice(3, size=2000, p=[0.4, 0.45, 0.15]):
        size = float(rng.choice([1.0, 2.0, 8.0])) if seed % 2 else float(rng.uniform(0, 30))
        ops.append(("insert", size) if kind == 0 else ("touch", int(rng.integers(1 << 30)))
                   if kind == 1 else ("reinsert", int(rng.integers(1 << 30)), size))
    drive(factory(capacity), capacity, ops)


@pytest.mark.parametrize("factory", FACTORIES, ids=IDS)
def test_evict_drains_every_key_once_even_with_tiny_capacity(factory):
    policy = factory(1e-12)
    for key in range(6):
        policy.insert(key, 0.0 if key % 2 else 1e-13)
        for _ in range(key):
            policy.touch(key)
    victims = [policy.evict()[0] for _ in range(6)]
    assert sorted(victims) == list(range(6))
    assert len(policy) == 0 and policy.used_bytes == 0.0 and policy.keys() == []


@pytest.mark.parametrize("factory", FACTORIES, ids=IDS)
def test_insert_of_a_resident_key_is_refused(factory):
    policy = factory(10.0)
    policy.insert(1, 1.0)
    with pytest.raises(ValueError):
        policy.insert(1, 1.0)


def access(policy, capacity_bytes: float, key: int, num_bytes: float = 1.0) -> None:
    """One lookup as the store does it: a hit touches, a miss stores and evicts until it fits."""
    if key in policy:
        policy.touch(key)
        return
    policy.insert(key, num_bytes)
    while policy.used_bytes > capacity_bytes:
        policy.evict()


def test_lru_evicts_least_recently_touched():
    policy = LRUPolicy()
    for key in (1, 2, 3):
        policy.insert(key, 1.0)
    policy.touch(1)
    policy.touch(2)
    assert [policy.evict()[0] for _ in range(3)] == [3, 1, 2]


def test_lfu_keeps_frequent_key_over_recent_one():
    policy = LFUPolicy()
    policy.insert(1, 1.0)
    for _ in range(3):
        policy.touch(1)
    policy.insert(2, 1.0)  # most recent, but seen once
    assert policy.evict() == (2, 1.0)
    assert policy.keys() == [1]


def test_lfu_breaks_ties_by_recency():
    policy = LFUPolicy()
    for key in (1, 2, 3):
        policy.insert(key, 1.0)
    for key in (3, 1, 2):  # all at count 2; last accesses in order 3, 1, 2
        policy.touch(key)
    assert [policy.evict()[0] for _ in range(3)] == [3, 1, 2]


def test_lfu_heap_rebuild_keeps_order():
    policy = LFUPolicy()
    for key in range(4):
        policy.insert(key, 1.0)
    for i in range(1000):  # far past the rebuild threshold: key 1 touched 334 times, 2 and 3 333
        policy.touch(i % 3 + 1)
    policy.touch(0)
    assert len(policy._by_count) <= 2 * len(policy) + 64 + 1
    # 0 has count 2; 2 and 3 tie at 334 and 2 was touched last before 3; 1 has 335
    assert [policy.evict()[0] for _ in range(4)] == [0, 2, 3, 1]


def scan_after_hot_set(policy, capacity_bytes: float) -> None:
    hot = range(1000, 1020)
    for _ in range(3):  # each hot key looked up three times
        for key in hot:
            access(policy, capacity_bytes, key)
    for key in range(1000):  # a scan of one-hit wonders, five times the capacity
        access(policy, capacity_bytes, key)


def test_s3fifo_one_hit_scan_does_not_flush_hot_keys_but_lru_does():
    s3, lru = S3FIFOPolicy(100.0), LRUPolicy()
    scan_after_hot_set(s3, 100.0)
    scan_after_hot_set(lru, 100.0)
    hot = range(1000, 1020)
    assert all(key in s3 and s3.in_main(key) for key in hot)
    assert not any(key in lru for key in hot)


def test_s3fifo_ghost_hit_goes_to_main_and_survives_a_scan():
    capacity = 10.0
    policy = S3FIFOPolicy(capacity)  # small target 1 byte
    for key in range(11):
        access(policy, capacity, key)
    assert 0 not in policy  # evicted from S, untouched: remembered in the ghost
    access(policy, capacity, 0)
    assert policy.in_main(0)
    access(policy, capacity, 500)  # a fresh key goes to S
    assert 500 in policy and not policy.in_main(500)
    for key in range(100, 150):
        access(policy, capacity, key)
    assert 0 in policy


def test_s3fifo_ghost_forgets_old_keys():
    capacity = 10.0
    policy = S3FIFOPolicy(capacity)
    for key in range(100):
        access(policy, capacity, key)
    # the ghost keeps about as many keys as are resident (11 at eviction time): 79..89
    access(policy, capacity, 89)
    assert policy.in_main(89)
    access(policy, capacity, 0)
    assert 0 in policy and not policy.in_main(0)


def test_s3fifo_main_second_chance_terminates_and_spends_hits():
    policy = S3FIFOPolicy(4.0)
    for key in range(4):
        policy.insert(key, 1.0)
        policy.touch(key)
    # all four move S -> M (not evictions), then the oldest in M is the victim
    assert policy.evict() == (0, 1.0)
    assert all(policy.in_main(k) for k in (1, 2, 3))
    for key, hits in ((1, 3), (2, 1), (3, 2)):
        for _ in range(hits):
            policy.touch(key)
    # passes over M spend one hit per key: 2 is the first found with none left
    assert policy.evict()[0] == 2
    assert policy.keys() == [3, 1]


def test_s3fifo_frequency_is_capped_at_three():
    policy = S3FIFOPolicy(3.0)
    for key in range(3):
        policy.insert(key, 1.0)
        policy.touch(key)
    assert policy.evict()[0] == 0  # 1 and 2 promoted to M
    policy.insert(9, 1.0)
    for _ in range(10):  # uncapped, 1 would outlast 2
        policy.touch(1)
    for _ in range(3):
        policy.touch(2)
    assert policy.evict()[0] == 9  # S over its target: its untouched head goes first
    assert policy.evict()[0] == 1  # both at the cap of 3: plain FIFO order


def test_second_access_admits_only_from_second_recorded_lookup():
    rule = make_admission(Admission.SECOND_ACCESS)
    assert isinstance(rule, SecondAccessAdmit)
    assert not rule.admit(7)
    rule.record(7)
    assert not rule.admit(7)
    rule.record(7)
    assert rule.admit(7)
    rule.record(7)
    assert rule.admit(7)
    assert not rule.admit(8)
    rule.record(8)
    assert not rule.admit(8)


def test_always_admits_everything():
    rule = make_admission(Admission.ALWAYS)
    assert isinstance(rule, AlwaysAdmit)
    assert rule.admit(1)
    rule.record(1)
    assert rule.admit(1)


def test_factories_build_the_right_policies_and_reject_bad_input():
    assert isinstance(make_eviction(Eviction.LRU, 1.0), LRUPolicy)
    assert isinstance(make_eviction(Eviction.LFU, 1.0), LFUPolicy)
    s3 = make_eviction(Eviction.S3FIFO, 200.0)
    assert isinstance(s3, S3FIFOPolicy) and s3.small_target_bytes == pytest.approx(20.0)
    with pytest.raises(ConfigError):
        make_eviction("lru", 1.0)
    with pytest.raises(ConfigError):
        make_eviction(Eviction.LRU, -1.0)
    with pytest.raises(ConfigError):
        make_admission("always")
    with pytest.raises(ConfigError):
        S3FIFOPolicy(10.0, small_fraction=0.0)
