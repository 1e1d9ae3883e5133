"""A fast analytic stand-in for the simulator (same summary shape), for optimizer tests.

Throughput grows with replicas x tp x device speed and saturates at the offered load; latency
blows up as utilisation approaches 1; larger batches raise TPOT. A 70B-like model does not fit
one 'small' device. Replicate seeds add a little noise via the project's random streams.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from hermes_opt.run.worker import Infeasible
from sim.random_streams import stream

SPEED = {"h100_sxm": 1.0, "a100_80g": 0.55, "l40s": 0.35, "h200": 1.25}
PRICE = {"h100_sxm": 6.88, "a100_80g": 3.43, "l40s": 1.9, "h200": 4.5}
MEMORY_GB = {"h100_sxm": 80, "a100_80g": 80, "l40s": 48, "h200": 141}


def parse(overrides: list[str]) -> dict[str, str]:
    return dict(o.split("=", 1) for o in overrides)


def fake_evaluator(overrides: list[str], seed: int, budget) -> dict:
    o = parse(overrides)
    hw = o.get("hardware", "h100_sxm")
    replicas, tp = int(o.get("cluster.num_replicas", 1)), int(o.get("cluster.tp", 1))
    seqs = int(o.get("scheduler.max_num_seqs", 64))
    rate = float(o.get("workload.arrival.rate_per_s", 20.0))
    delay_s = float(o.get("fake.delay_s", 0.0))
    if 140 / tp > MEMORY_GB[hw] * 0.85:
        raise Infeasible(f"llm: model fake70b does not fit on {hw} with tp={tp}")
    devices = replicas * tp
    cost = PRICE[hw] * devices
    if budget is not None:
        reason = budget.violation(cost, devices)
        if reason:
            raise Infeasible(reason)
    if delay_s:
        time.sleep(delay_s)
    noise = 1 + 0.01 * float(stream(seed, "fake").standard_normal())
    capacity = 4.0 * replicas * tp ** 0.8 * SPEED[hw] * min(1.0, seqs / 64) ** 0.3
    util = min(rate / capacity, 0.999)
    served = min(rate, capacity)
    ttft = 60 / (1 - util) * noise / (SPEED[hw] * tp ** 0.5)
    tpot = (8 + 0.12 * seqs * util) / (SPEED[hw] * tp ** 0.6) * noise
    out_tps = served * 300
    ok = ttft <= 1000 and tpot <= 50
    good = out_tps if ok else out_tps * 0.2
    lat = lambda v: {"mean": v * 0.6, "p50": v * 0.5, "p90": v * 0.8, "p99": v}  # noqa: E731
    return {
        "requests_completed": 100, "requests_rejected": 0, "duration_s": 10.0,
        "requests_per_s": served, "output_tokens_per_s": out_tps,
        "goodput_output_tokens_per_s": good, "slo_attainment": 1.0 if ok else 0.2,
        "ttft_ms": lat(ttft), "tpot_ms": lat(tpot), "itl_ms": lat(tpot), "e2e_ms": lat(ttft + 300 * tpot),
        "cost_usd_per_hour": cost, "cost_breakdown_usd_per_hour": {"llm": cost},
        "output_tokens_per_usd": out_tps / (cost / 3600),
        "goodput_tokens_per_usd": good / (cost / 3600),
        "pools": {"llm": {"utilization": util, "replicas": replicas}},
        "price_set": "fake_prices", "price_date": "2026-01-01", "num_devices": devices,
        "seed": seed,
    }


def crashing_evaluator(overrides: list[str], seed: int, budget) -> dict:
    if parse(overrides).get("cluster.num_replicas") == "3":
        raise RuntimeError("simulated simulator bug")
    return fake_evaluator(overrides, seed, budget)


def logging_evaluator(overrides: list[str], seed: int, budget) -> dict:
    """fake_evaluator that appends one line per evaluation to the file named by fake.log, so
    tests can prove no trial was evaluated twice (O_APPEND writes of one short line are atomic)."""
    import os
    o = parse(overrides)
    path = o.get("fake.log")
    if path:
        line = " ".join(x for x in overrides if not x.startswith("fake.")) + f" seed={seed}\n"
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line.encode())
        finally:
            os.close(fd)
    return fake_evaluator(overrides, seed, budget)


def interrupting_evaluator(overrides: list[str], seed: int, budget) -> dict:
    """fake_evaluator that presses Ctrl-C once, on its fake.stop_after-th evaluation, counting in
    the file named by fake.log (for in-process runs, n_jobs=1: the signal reaches the driver)."""
    import os
    import signal
    o = parse(overrides)
    path, stop_after = o["fake.log"], int(o["fake.stop_after"])
    with open(path, "a") as log:
        log.write("x\n")
    with open(path) as log:
        count = sum(1 for _ in log)
    if count == stop_after:
        os.kill(os.getpid(), signal.SIGINT)
    return fake_evaluator(overrides, seed, budget)


def killing_evaluator(overrides: list[str], seed: int, budget) -> dict:
    """fake_evaluator whose worker process SIGKILLs itself, as ``kill -9`` or the OOM killer
    would: once, on the fake.kill_at-th evaluation (counted under a lock in the file fake.log),
    and on every evaluation of a candidate with cluster.num_replicas=fake.always_replicas."""
    import fcntl
    import os
    import signal
    o = parse(overrides)
    with open(o["fake.log"], "a+") as log:
        fcntl.flock(log, fcntl.LOCK_EX)
        log.seek(0)
        count = sum(1 for _ in log) + 1
        log.write("x\n")
    if count == int(o.get("fake.kill_at", 0)) or (
            o.get("cluster.num_replicas") == o.get("fake.always_replicas")):
        os.kill(os.getpid(), signal.SIGKILL)
    return fake_evaluator(overrides, seed, budget)


SUPPORT = Path(__file__).resolve().parent


def subprocess_env() -> dict[str, str]:
    """Environment for hermes-opt subprocesses that must import this module (and the repo)."""
    env = dict(os.environ)
    repo = SUPPORT.parent.parent
    env["PYTHONPATH"] = os.pathsep.join([str(SUPPORT), str(repo), env.get("PYTHONPATH", "")])
    return env
