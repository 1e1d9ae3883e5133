"""Report speed: wall time and peak memory of ``hermes-opt report`` on a stored study of N trials.

A cheap study (written by this script: Llama-3.1-70B chat, 10 requests per trial, random sampler
over device kind of two vendors, TP, replicas, arrival rate and memory utilisation, the last two
floats so candidates never repeat; one replicate; maximise slo_tokens_per_usd under
p99 TTFT <= 50 ms and a $/hour budget, so the report has feasible, SLO-violating and
not-simulated trials) is run once per N with ``hermes-opt study=<yaml> n_trials=N storage=...``
into ``<cache>/report_<N>_<hash>.db`` (hash of the study text) and reused when it already holds N
finished trials, so the study is paid once. Then ``hermes-opt report bench_report storage=...
out=<tmp>`` is timed as a whole process ``--repeat`` times (interpreter start, imports, loading
the study, every output file). Per N one line: trials, wall seconds (min / median), CPU seconds
of the process (user + system, median: less sensitive than wall to other load on the machine)
and its peak RSS (``os.wait4`` rusage of that child alone, like ``/usr/bin/time -v``), next to
the targets (600 trials <= 6 s, 2,000 trials <= 20 s, <= 300 MB peak RSS). Exit status 0 unless
a command fails; the targets are printed, not enforced.

Only the CLI is used, so it measures whichever tree ``hermes-opt`` imports: choose it with
``PYTHONPATH`` (the tree's ``hermes_opt`` is printed first). Relative paths are resolved
against the working directory (the cache defaults to ./runs/bench_cache).

    PYTHONPATH=<tree> python benchmarks/bench_report.py [--trials 600 2000] [--repeat 3]
        [--jobs 2] [--cache runs/bench_cache] [--hermes-opt "<command>"]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shlex
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

STUDY_NAME = "bench_report"
STUDY_YAML = f"""\
# Written by benchmarks/bench_report.py: a cheap study whose only purpose is to be reported on.
name: {STUDY_NAME}
description: >-
  Benchmark study for hermes-opt report: Llama-3.1-70B chat, 10 requests per trial, random
  search over device kind (NVIDIA, AMD), TP, replicas, arrival rate and memory utilisation.
base:
  - model=llama3_1_70b
  - workload=chat
  - workload.num_requests=10
  - slo=interactive
  - pricing=ondemand_2026_11
space:
  hardware: {{type: categorical, choices: [h100_sxm, h200, mi300x, l40s]}}
  cluster.tp: {{type: categorical, choices: [1, 2, 4, 8]}}
  cluster.num_replicas: {{type: int, low: 1, high: 4}}
  workload.arrival.rate_per_s: {{type: float, low: 1.0, high: 40.0}}
  scheduler.gpu_memory_utilization: {{type: float, low: 0.8, high: 0.95}}
objectives:
  - {{metric: slo_tokens_per_usd, direction: maximize}}
constraints:
  - ttft_ms.p99 <= 50
budget: {{max_usd_per_hour: 150}}
n_trials: 600
batch_size: 8
seed: 0
replicates: 1
sampler: random
report: {{top_k: 5}}
"""
TARGET_WALL_S = {600: 6.0, 2000: 20.0}
TARGET_RSS_MB = 300.0


def hermes_opt_command(given: str | None) -> list[str]:
    """The ``hermes-opt`` of this interpreter's environment (it imports whatever PYTHONPATH
    selects), else the one on PATH, else the same entry point through ``python -c``."""
    if given:
        return shlex.split(given)
    beside = Path(sys.executable).parent / "hermes-opt"
    if beside.is_file():
        return [str(beside)]
    found = shutil.which("hermes-opt")
    if found:
        return [found]
    return [sys.executable, "-c", "from hermes_opt.cli.opt_command import main; main()"]


def finished_trials(db: Path) -> dict[str, int]:
    """Trials of the benchmark study in ``db`` by state (empty when there is no such study)."""
    if not db.is_file():
        return {}
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        try:
            rows = conn.execute("SELECT t.state, count(*) FROM trials t JOIN studies s "
                                "ON t.study_id = s.study_id WHERE s.study_name = ? "
                                "GROUP BY t.state", (STUDY_NAME,)).fetchall()
        except sqlite3.OperationalError:  # no optuna tables yet
            return {}
    return {str(state): count for state, count in rows}


def outcomes(db: Path) -> str:
    """Feasible / SLO-violating / infeasible counts from Optuna's stored constraints."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        rows = conn.execute(
            "SELECT a.value_json FROM trial_system_attributes a JOIN trials t "
            "ON a.trial_id = t.trial_id JOIN studies s ON t.study_id = s.study_id "
            "WHERE s.study_name = ? AND a.key = 'constraints'", (STUDY_NAME,)).fetchall()
    feasible = violating = infeasible = 0
    for (value,) in rows:
        values = json.loads(value)
        if all(v <= 0 for v in values):
            feasible += 1
        elif max(values) >= 1e6:  # not simulated (does not fit, over budget): every bound at 1e6
            infeasible += 1
        else:
            violating += 1
    return f"{feasible} feasible, {violating} violate the SLO, {infeasible} not simulated"


def run_child(cmd: list[str], cwd: Path, quiet: bool = True) -> tuple[int, float, float, float]:
    """Run ``cmd``; (exit status, wall s, CPU s, peak RSS MB) of that process alone."""
    out = subprocess.DEVNULL if quiet else None
    tic = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=out, stderr=subprocess.PIPE if quiet else None)
    stderr = b""
    if quiet:  # drain stderr while waiting so a chatty child never blocks on a full pipe
        stderr = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - tic
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0 and quiet:
        sys.stderr.write(stderr.decode(errors="replace"))
    # Linux reports ru_maxrss in KiB (macOS in bytes)
    rss_mb = usage.ru_maxrss * (1 if sys.platform == "darwin" else 1024) / 1e6
    return proc.returncode, wall, usage.ru_utime + usage.ru_stime, rss_mb


def ensure_study(cmd: list[str], yaml_path: Path, db: Path, n: int, jobs: int) -> None:
    done = finished_trials(db)
    complete = sum(c for s, c in done.items() if s in ("COMPLETE", "FAIL", "PRUNED"))
    if complete >= n:
        print(f"  N={n}: reusing {db} ({complete} finished trials)", flush=True)
        return
    print(f"  N={n}: running the study into {db} ({complete} finished trials stored; "
          f"{jobs} worker(s))...", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench_report_run_") as tmp:
        code, wall, cpu, _ = run_child(cmd + [f"study={yaml_path}", f"n_trials={n}",
                                                f"storage=sqlite:///{db}", f"n_jobs={jobs}"],
                                         Path(tmp), quiet=False)
    if code != 0:
        sys.exit(f"bench_report: the study run for N={n} failed with exit status {code}")
    print(f"  N={n}: study run took {wall:.0f} s wall, {cpu:.0f} s CPU (driver and the workers "
          f"it reaped; its own report included)", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, nargs="+", default=[600, 2000])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=2, help="workers of the (one-off) study run")
    parser.add_argument("--cache", default="runs/bench_cache")
    parser.add_argument("--hermes-opt", dest="hermes_opt", default=None,
                        help="command to run (default: hermes-opt beside this python)")
    args = parser.parse_args()
    cmd = hermes_opt_command(args.hermes_opt)
    cache = Path(args.cache).resolve()
    cache.mkdir(parents=True, exist_ok=True)
    tag = hashlib.sha256(STUDY_YAML.encode()).hexdigest()[:8]
    yaml_path = cache / f"report_study_{tag}.yaml"
    yaml_path.write_text(STUDY_YAML)
    package = subprocess.run([sys.executable, "-c", "import hermes_opt; print(hermes_opt.__file__)"],
                             capture_output=True, text=True, check=False).stdout.strip()
    print(f"hermes-opt: {' '.join(cmd)}; hermes_opt from {package or '?'}; "
          f"PYTHONPATH={os.environ.get('PYTHONPATH', '')!r}", flush=True)
    dbs = {}
    for n in args.trials:
        dbs[n] = cache / f"report_{n}_{tag}.db"
        ensure_study(cmd, yaml_path, dbs[n], n, args.jobs)
    results = []
    for n in args.trials:
        walls, cpus, rsss = [], [], []
        for _ in range(args.repeat):
            with tempfile.TemporaryDirectory(prefix="bench_report_out_") as tmp:
                code, wall, cpu, rss = run_child(
                    cmd + ["report", STUDY_NAME, f"storage=sqlite:///{dbs[n]}", f"out={tmp}/report"],
                    Path(tmp))
                if code != 0 or not (Path(tmp) / "report" / "summary.md").is_file():
                    sys.exit(f"bench_report: hermes-opt report failed for N={n} (exit {code})")
            walls.append(wall)
            cpus.append(cpu)
            rsss.append(rss)
        results.append((n, walls, cpus, rsss))
    load = os.getloadavg()
    print(f"hermes-opt report, {args.repeat} run(s) each, {os.cpu_count()} cores, "
          f"load average {load[0]:.2f} {load[1]:.2f}:")
    for n, walls, cpus, rsss in results:
        target = TARGET_WALL_S.get(n)
        wall_t = f"target <= {target:g} s" if target else "no wall target for this N"
        peak = max(rsss)
        print(f"  trials {n:>6,}  wall s min {min(walls):6.2f} / median {statistics.median(walls):6.2f}"
              f"  ({wall_t})  CPU s median {statistics.median(cpus):6.2f}"
              f"  peak RSS {peak:6.0f} MB (target <= {TARGET_RSS_MB:g} MB)"
              f"  [{outcomes(dbs[n])}]")


if __name__ == "__main__":
    main()
