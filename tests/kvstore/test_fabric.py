"""Fabric: max-min fair sharing of transfers that cross several resources (sim/kvstore/fabric.py)."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from sim.engine import PRIORITY_ARRIVAL, PRIORITY_SCHEDULE, Engine
from sim.kvstore.fabric import Fabric
from sim.network import Link, LinkStats

REL = 1e-9


def _stats(name: str, bw: float) -> LinkStats:
    return LinkStats(name=name, bandwidth_bytes_per_s=bw)


def _fabric(*bws: float, spans: list | None = None):
    engine = Engine()
    fabric = Fabric(engine, spans=spans)
    stats = [_stats(f"r{i}", bw) for i, bw in enumerate(bws)]
    ids = [fabric.add_resource(f"r{i}", bw, s) for i, (bw, s) in enumerate(zip(bws, stats))]
    return engine, fabric, ids, stats


def _issue(engine, done, fabric, path, latency_s, num_bytes, key, *, at_s=0.0):
    def go():
        fabric.transfer(path, latency_s, num_bytes, lambda: done.append((key, engine.now_s)))
    engine.schedule(at_s, go, priority=PRIORITY_ARRIVAL)


# --- one resource per path is exactly Link ---------------------------------------------------
def _script(seed: int, n: int = 80):
    rng = random.Random(seed)
    t, items = 0.0, []
    for _ in range(n):
        t += rng.expovariate(1.0) if rng.random() < 0.8 else 0.0  # some simultaneous arrivals
        size = rng.choice([0.0, rng.uniform(0.0, 20.0), rng.expovariate(1 / 5), 3.0])
        items.append((t, size, rng.random() < 0.15))  # last: a background write (no callback)
    return items


def _run_link(items, bw, latency_s):
    engine = Engine()
    link = Link(engine, "l", bw, latency_s, _stats("l", bw))
    done: list = []

    def finished(key, size):
        done.append((key, engine.now_s))
        if key % 5 == 0 and key < 10_000:  # a callback issuing a follow-up (re-entrant)
            link.transfer(size / 2, finished, key + 10_000, 0.0)
    for key, (t, size, background) in enumerate(items):
        cb = None if background else finished
        engine.schedule(t, lambda s=size, c=cb, k=key: link.transfer(s, c, k, s) if c else
                        link.transfer(s, None), priority=PRIORITY_ARRIVAL)
    engine.run()
    return done, link.stats


def _run_fabric(items, bw, latency_s):
    engine = Engine()
    fabric = Fabric(engine)
    stats = _stats("l", bw)
    r = fabric.add_resource("l", bw, stats)
    done: list = []

    def finished(key, size):
        done.append((key, engine.now_s))
        if key % 5 == 0 and key < 10_000:
            fabric.transfer((r,), latency_s, size / 2, finished, key + 10_000, 0.0)
    for key, (t, size, background) in enumerate(items):
        cb = None if background else finished
        engine.schedule(t, lambda s=size, c=cb, k=key: fabric.transfer((r,), latency_s, s, c, k, s)
                        if c else fabric.transfer((r,), latency_s, s, None),
                        priority=PRIORITY_ARRIVAL)
    engine.run()
    assert fabric.active() == 0
    return done, stats


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("latency_s", [0.0, 0.3])
def test_single_resource_equals_link(seed, latency_s):
    items = _script(seed)
    link_done, link_stats = _run_link(items, 3.0, latency_s)
    fab_done, fab_stats = _run_fabric(items, 3.0, latency_s)
    assert [k for k, _ in fab_done] == [k for k, _ in link_done]
    for (_, t_fab), (_, t_link) in zip(fab_done, link_done):
        assert t_fab == pytest.approx(t_link, rel=REL, abs=1e-12)
    assert fab_stats.transfers == link_stats.transfers
    assert fab_stats.bytes_moved == pytest.approx(link_stats.bytes_moved, rel=REL)
    assert fab_stats.busy_s == pytest.approx(link_stats.busy_s, rel=REL)
    assert fab_stats.transfer_s == pytest.approx(link_stats.transfer_s, rel=REL)
    assert fab_stats.max_concurrent == link_stats.max_concurrent


# --- analytic max-min cases -------------------------------------------------------------------
def test_shared_device_split_evenly():
    engine, fabric, (dev, a, b), stats = _fabric(10.0, 100.0, 100.0)
    done: list = []
    _issue(engine, done, fabric, (dev, a), 0.0, 10.0, "a")
    _issue(engine, done, fabric, (dev, b), 0.0, 20.0, "b")
    engine.run()
    # 5 B/s each until a is done at 2 s (10 B); then b alone at 10 B/s for its last 10 B
    assert done == [("a", pytest.approx(2.0)), ("b", pytest.approx(3.0))]
    assert stats[0].busy_s == pytest.approx(3.0) and stats[0].max_concurrent == 2
    assert stats[1].busy_s == pytest.approx(2.0) and stats[2].busy_s == pytest.approx(3.0)
    assert stats[0].transfer_s == pytest.approx(5.0) and stats[0].bytes_moved == 30.0


def test_slow_link_leaves_device_bandwidth_to_the_other():
    engine, fabric, (dev, slow, fast), stats = _fabric(10.0, 2.0, 100.0)
    done: list = []
    _issue(engine, done, fabric, (dev, slow), 0.0, 4.0, "slow")
    _issue(engine, done, fabric, (dev, fast), 0.0, 40.0, "fast")
    engine.run()
    # rates 2 and 8 (not 5 and 5): slow done at 2 s; fast has moved 16, its 24 left go at 10 B/s
    assert done == [("slow", pytest.approx(2.0)), ("fast", pytest.approx(4.4))]
    assert [s.busy_s for s in stats] == pytest.approx([4.4, 2.0, 4.4])


def test_parking_lot_three_resources():
    engine, fabric, (r0, r1), _ = _fabric(1.0, 2.0)
    done: list = []
    _issue(engine, done, fabric, (r0, r1), 0.0, 3.0, "f1")  # 0.5 (r0 bottleneck), then 1
    _issue(engine, done, fabric, (r0,), 0.0, 1.0, "f2")  # 0.5: done at 2
    _issue(engine, done, fabric, (r1,), 0.0, 6.0, "f3")  # 1.5, then 1, then 2 alone
    engine.run()
    assert done == [("f2", pytest.approx(2.0)), ("f1", pytest.approx(4.0)),
                    ("f3", pytest.approx(4.5))]


def test_equal_finishes_complete_in_one_event_in_join_order():
    engine, fabric, (dev, a, b), _ = _fabric(10.0, 100.0, 100.0)
    done: list = []
    events_before = []
    _issue(engine, done, fabric, (dev, b), 0.0, 20.0, "first")  # 10 B alone in [0, 1]
    _issue(engine, done, fabric, (dev, a), 1.0, 10.0, "second")  # joins at 1: both 5 B/s
    engine.schedule(2.5, lambda: events_before.append(engine.num_events), priority=PRIORITY_SCHEDULE)
    engine.run()
    assert done == [("first", pytest.approx(3.0)), ("second", pytest.approx(3.0))]
    assert done[0][1] == done[1][1]
    # after the probe at 2.5 exactly one event remains: the shared completion
    assert engine.num_events == events_before[0] + 1


def test_zero_bytes_complete_after_latency_and_spans():
    spans: list = []
    engine, fabric, (dev, link), stats = _fabric(10.0, 1.0, spans=spans)
    done: list = []
    engine.schedule(1.0, lambda: fabric.transfer((dev, link), 0.25, 0.0, done.append, "zero"))
    engine.schedule(1.0, lambda: fabric.transfer((dev, link), 0.0, 2.0, None, label="bg"))
    engine.run()
    assert done == ["zero"] and engine.now_s == pytest.approx(3.0)
    assert sorted(spans) == sorted([("link r1/transfers", "transfer", 1.0, 0.25, 1),
                                    ("link bg/transfers", "transfer", 1.0, pytest.approx(2.0), 1)])
    assert stats[1].transfers == 2 and stats[1].bytes_moved == 2.0


def test_shared_stats_are_summed():
    engine = Engine()
    fabric = Fabric(engine)
    tier = _stats("dram", 4.0)
    copies = [fabric.add_resource(f"dram{i}", 4.0, tier) for i in range(2)]
    for c in copies:
        fabric.transfer((c,), 0.0, 8.0, None)
    fabric.transfer((copies[0],), 0.0, 8.0, None)
    engine.run()
    # copy 0 carries two 8 B flows (4 s), copy 1 one (2 s)
    assert tier.transfers == 3 and tier.bytes_moved == 24.0
    assert tier.busy_s == pytest.approx(6.0) and tier.max_concurrent == 2
    assert tier.transfer_s == pytest.approx(4.0 + 4.0 + 2.0)
    assert fabric.solo_time_s((copies[0],), 0.5, 8.0) == 2.5


# --- random multi-resource scenarios ----------------------------------------------------------
BWS = (10.0, 25.0, 3.0, 7.0, 12.0, 40.0)  # two devices, four links
PATHS = ((0, 2), (0, 3), (0, 4), (1, 4), (1, 5), (0,), (5,), (0, 1, 3), (1, 2, 5))


def _random_run(seed: int, probe=None):
    rng = random.Random(seed)
    spans: list = []
    engine, fabric, ids, stats = _fabric(*BWS, spans=spans)
    issued, calls, completions = [], Counter(), []

    def finished(key):
        calls[key] += 1
        completions.append((key, engine.now_s))

    def issue(key, path, latency_s, num_bytes, background):
        issued.append((key, path, latency_s, num_bytes, engine.now_s, background))
        fabric.transfer(path, latency_s, num_bytes, None if background else finished, key)

    t = 0.0
    for key in range(150):
        t += rng.expovariate(3.0) if rng.random() < 0.9 else 0.0
        args = (key, rng.choice(PATHS), rng.choice([0.0, 0.0, 0.1, rng.uniform(0, 1)]),
                rng.choice([0.0, rng.uniform(0, 30), rng.expovariate(1 / 8)]), rng.random() < 0.2)
        engine.schedule(t, issue, *args, priority=PRIORITY_ARRIVAL)
        if probe is not None:
            engine.schedule(t + rng.uniform(0, 1), probe, fabric, priority=PRIORITY_SCHEDULE)
    engine.run()
    return engine, fabric, stats, spans, issued, calls, completions


@pytest.mark.parametrize("seed", range(6))
def test_conservation_capacity_and_callbacks(seed):
    engine, fabric, stats, spans, issued, calls, completions = _random_run(seed)
    assert fabric.active() == 0 and engine.pending == 0
    foreground = {key for key, *_, background in issued if not background}
    assert set(calls) == foreground and all(n == 1 for n in calls.values())
    assert len(spans) == len(issued)  # background writes complete too
    for r, bw in enumerate(BWS):
        on_r = [num_bytes for _, path, _, num_bytes, _, _ in issued if r in path]
        assert stats[r].transfers == len(on_r)
        assert stats[r].bytes_moved == pytest.approx(sum(on_r), rel=REL)
        assert stats[r].bytes_moved <= bw * stats[r].busy_s * (1 + 1e-9) + 1e-9
    assert sum(s.bytes_moved for s in stats) == pytest.approx(
        sum(b * len(p) for _, p, _, b, _, _ in issued), rel=REL)
    # nobody beats having the fabric to itself
    start = {key: (path, lat, b, t0) for key, path, lat, b, t0, _ in issued}
    for key, end_s in completions:
        path, lat, b, t0 = start[key]
        assert end_s - t0 >= fabric.solo_time_s(path, lat, b) * (1 - 1e-9) - 1e-12


def _check_max_min(fabric):
    flows = list(fabric._flows.values())
    for r, bw in enumerate(fabric._bw):
        assert sum(f.rate_bytes_per_s for f in flows if r in f.path) <= bw * (1 + 1e-9)
    for f in flows:  # every flow has a saturated bottleneck on which it is among the fastest
        assert any(
            sum(g.rate_bytes_per_s for g in flows if r in g.path) >= fabric._bw[r] * (1 - 1e-9)
            and f.rate_bytes_per_s >= max(g.rate_bytes_per_s for g in flows if r in g.path)
            * (1 - 1e-9)
            for r in f.path)


@pytest.mark.parametrize("seed", range(4))
def test_rates_are_max_min_fair(seed):
    probes = []
    _random_run(seed, probe=lambda fabric: (probes.append(fabric.active()), _check_max_min(fabric)))
    assert sum(probes) > 50  # the probes saw real contention


def test_deterministic():
    a = _random_run(11)
    b = _random_run(11)
    assert a[6] == b[6] and a[3] == b[3]
    assert [s.busy_s for s in a[2]] == [s.busy_s for s in b[2]]
