"""Vidur's profiled scenario run with hermes-sim (issue 13): simulated requests per wall-clock
second in-process and whole-process, and peak RSS, at 10k, 100k and 1M requests.

Scenario (Vidur's defaults): Llama-2-70B on A100-80G, TP2, one replica, Sarathi chunked prefill
with a 512-token chunk, batch cap 128, Poisson arrivals at 1 QPS, fixed 1,024 input and 256
output tokens, roofline cost model.

KV capacity: Vidur (like vLLM) gives the replica 3,328 blocks of 16 tokens. hermes-sim's catalog
states device memory in decimal GB (80e9 bytes for the A100-80G, which has 80 GiB) and keeps a
5% activation reserve, so with the defaults Llama-2-70B's 69 GB of weights per device do not
fit. The benchmark sets ``activation_reserve_fraction=0`` and
``gpu_memory_utilization=0.90455`` of the A100's 80 GiB (the catalog's ``memory_gib``; 0.97125 of
80e9 bytes before issue 22) gives exactly 3,328 blocks (see docs/performance.md).

    python benchmarks/bench_vidur_scenario.py [--sizes 10000 100000 1000000] [--repeat 3]
    python benchmarks/bench_vidur_scenario.py --startup [--repeat 3]

Each size runs in a subprocess of its own (``--one N``), so peak RSS is per size; the child
times ``simulate()`` (in-process, best of ``--repeat``) and the parent times the child's whole
process (interpreter start, imports, building the config, one run).

``--startup``: seconds from starting a ``hermes-sim`` process (its default run) to
its first simulated event (the child exits there), and to a study worker's module being
imported (``hermes_opt.run.worker``), and a bare interpreter's start; best of ``--repeat``, wall
and CPU (user + system), with Python's bytecode cache (``*_s``: how an installed package
starts) and in the environment as it is (``*_env_s``).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

BLOCKS_VIDUR = 3328
HERMES_SIM_ARGS: list[str] = []  # start-up: the default hermes-sim run
# the child: stop the process at the first event the engine would fire
FIRST_EVENT = """
import os, sys
import sim.engine
def _first_event(self, *args, **kwargs):
    os._exit(0 if self.pending else 3)
sim.engine.Engine.run = _first_event
sys.argv = ["hermes-sim"] + sys.argv[1:]
from hermes_opt.cli.sim_command import main
main()
"""


def startup(repeat: int) -> dict:
    """Best of ``repeat`` wall seconds (and CPU seconds) per child. Twice: with Python's bytecode
    cache, as an installed package starts (compiled once, in a private cache dir, so the tree is
    not written), and in the environment as it is (with PYTHONDONTWRITEBYTECODE=1, as on the
    benchmark machine, the project's modules are compiled from source at every start)."""
    def best(argv: list[str], env: dict) -> tuple[float, float]:
        walls, cpus = [], []
        for _ in range(repeat):
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            start = time.perf_counter()
            code = subprocess.run(argv, capture_output=True, text=True, env=env)
            walls.append(time.perf_counter() - start)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
            if code.returncode != 0:
                raise SystemExit(f"{argv[:3]}: exit {code.returncode}: {code.stderr[-2000:]}")
        return round(min(walls), 3), round(min(cpus), 3)

    children = {"hermes_sim_to_first_event": [sys.executable, "-c", FIRST_EVENT, *HERMES_SIM_ARGS],
                "worker_import": [sys.executable, "-c", "import hermes_opt.run.worker"],
                "python_bare": [sys.executable, "-c", "pass"]}
    row: dict = {"benchmark": "startup",
                 "env_writes_bytecode": "PYTHONDONTWRITEBYTECODE" not in os.environ}
    with tempfile.TemporaryDirectory(prefix="bench-pycache-") as cache:
        compiled = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        compiled["PYTHONPYCACHEPREFIX"] = cache
        for name, argv in children.items():
            subprocess.run(argv, capture_output=True, env=compiled)  # compile once
            row[f"{name}_s"], row[f"{name}_cpu_s"] = best(argv, compiled)
    for name, argv in children.items():
        row[f"{name}_env_s"], row[f"{name}_env_cpu_s"] = best(argv, dict(os.environ))
    return row


def vidur_config(num_requests: int):
    from hermes_opt.compose import catalog, to_sim
    from sim import (
        ArrivalKind,
        ArrivalSpec,
        BatchPolicy,
        LengthKind,
        LengthSpec,
        PoolSpec,
        RequestTypeSpec,
        SchedulerSpec,
        SimConfig,
        Stage,
        StageKind,
        WorkloadSpec,
    )
    sched = SchedulerSpec(policy=BatchPolicy.CHUNKED, chunk_size_tokens=512, max_num_seqs=128,
                          gpu_memory_utilization=0.90455, activation_reserve_fraction=0.0)
    pool = PoolSpec(name="llm", model=to_sim.model_spec(catalog.entry("model", "llama2_70b")),
                    hardware=to_sim.hardware_spec(catalog.entry("hardware", "a100_80g")),
                    num_replicas=1, tp=2, scheduler=sched)
    chat = RequestTypeSpec(
        name="chat", plan=(Stage(kind=StageKind.GENERATE, pool="llm"),),
        prompt_tokens=LengthSpec(kind=LengthKind.FIXED, mean=1024),
        output_tokens=LengthSpec(kind=LengthKind.FIXED, mean=256))
    return SimConfig(pools=(pool,), workload=WorkloadSpec(
        num_requests=num_requests, arrival=ArrivalSpec(kind=ArrivalKind.POISSON, rate_per_s=1.0),
        request_types=(chat,)))


def run_one(num_requests: int, repeat: int) -> dict:
    """In the child: build, time ``simulate`` ``repeat`` times, report peak RSS."""
    from sim import simulate
    from sim.scheduling.pool import LLMPool  # noqa: F401  (imported before timing)
    config = vidur_config(num_requests)
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        result = simulate(config, 0)
        times.append(time.perf_counter() - start)
    s = result.summary
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"requests": num_requests, "wall_s_best": round(min(times), 3),
            "wall_s_all": [round(t, 3) for t in times],
            "in_process_req_per_s": round(num_requests / min(times)),
            "peak_rss_mb": round(rss_mb, 1), "events": s["num_events"],
            "completed": s["requests_completed"], "preemptions": s["preemptions"],
            "ttft_p50_ms": round(s["ttft_ms"]["p50"], 2), "tpot_p50_ms": round(s["tpot_ms"]["p50"], 3),
            "utilization": round(s["pools"]["llm"]["utilization"], 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--repeat", type=int, default=3, help="in-process runs per size")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--startup", action="store_true", help="time start-up only")
    args = parser.parse_args()
    if args.startup:
        print(json.dumps(startup(args.repeat)))
        return
    if args.one:
        print(json.dumps(run_one(args.one, args.repeat)))
        return
    for n in args.sizes:
        whole = []
        for _ in range(args.repeat):  # whole process: one simulate() per child, best of repeat
            start = time.perf_counter()
            out = subprocess.run([sys.executable, __file__, "--one", str(n), "--repeat", "1"],
                                 check=True, capture_output=True, text=True).stdout
            whole.append(time.perf_counter() - start)
            row = json.loads(out)
        inproc = json.loads(subprocess.run(
            [sys.executable, __file__, "--one", str(n), "--repeat", str(args.repeat)],
            check=True, capture_output=True, text=True).stdout)
        inproc.update(benchmark="vidur_scenario", whole_process_s_best=round(min(whole), 3),
                      whole_process_req_per_s=round(n / min(whole)),
                      peak_rss_mb=row["peak_rss_mb"])
        print(json.dumps(inproc), flush=True)


if __name__ == "__main__":
    main()
