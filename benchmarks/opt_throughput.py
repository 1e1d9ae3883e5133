"""Optimizer throughput on this machine: trials per minute for the default study, and the
overhead per trial outside simulation.

Runs studies/default.yaml (real simulator) in a temporary directory with a fresh SQLite storage
and prints:
* trials/minute (wall clock, including worker start-up);
* evaluation time per trial: time inside the evaluator (compose + simulate + price) summed over
  the trial's replicates;
* driver time per trial: Optuna ask/suggest/tell and storage writes in the driver process;
* overhead per trial outside simulation: (wall x workers - total evaluation time) / trials, i.e.
  everything that is not simulating (driver work on the critical path, process start-up,
  workers idle at batch boundaries), as a share of the evaluation time per trial;
* the same in CPU time: CPU of the driver process (Optuna, storage, IPC) per trial as a share
  of the evaluation CPU per trial. Unlike wall-clock shares this does not grow when other
  programs share the cores.

    python benchmarks/opt_throughput.py [--jobs 2] [--trials 64] [--study default]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

from hermes_opt.run import runner
from hermes_opt.study import definition as study


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--trials", type=int, default=None, help="default: the study's n_trials")
    parser.add_argument("--study", default="default")
    args = parser.parse_args()
    overrides = [f"n_jobs={args.jobs}"] + ([f"n_trials={args.trials}"] if args.trials else [])
    with tempfile.TemporaryDirectory() as tmp:
        cwd = os.getcwd()
        os.chdir(tmp)
        try:
            spec = study.load(args.study, overrides)
            tic, began = time.perf_counter(), time.time()
            _, stats = runner.run_study(spec, progress_stream=None)
            wall_s = time.perf_counter() - tic
        finally:
            os.chdir(cwd)
    n = stats.trials_told
    simulated = stats.jobs / spec.replicates  # trials actually simulated (others were repeats)
    eval_per_trial = stats.sim_s / simulated
    overhead_per_trial = (wall_s * stats.workers - stats.sim_s) / simulated
    print(f"study {spec.name}: {n} trials x {spec.replicates} replicates on {stats.workers} "
          f"worker(s), {os.cpu_count()} cores; {stats.reused} trials repeated an earlier "
          f"configuration and reused its results")
    print(f"  wall time                      {wall_s:8.1f} s   ({n / wall_s * 60:.1f} trials/minute)")
    print(f"  evaluation time per trial      {eval_per_trial * 1e3:8.1f} ms  (compose + simulate + "
          f"price, summed over replicates)")
    print(f"  driver time per trial          {stats.driver_s / n * 1e3:8.1f} ms  "
          f"({stats.driver_s / stats.sim_s:.1%} of all evaluation time; ask/suggest/tell/storage, "
          f"tells overlap running simulations)")
    print(f"  overhead per trial (all)       {overhead_per_trial * 1e3:8.1f} ms  "
          f"({overhead_per_trial / eval_per_trial:.1%} of evaluation; worker-seconds not spent "
          f"evaluating: driver critical path, start-up, batch barriers)")
    startup_s = stats.first_job_at - began
    steady = (wall_s * stats.workers - stats.sim_s - startup_s * stats.workers) / simulated
    print(f"  start-up                       {startup_s:8.2f} s   (open storage, start workers, "
          f"first batch: {startup_s * stats.workers / simulated * 1e3:.1f} ms per trial)")
    print(f"  overhead per trial (steady)    {steady * 1e3:8.1f} ms  ({steady / eval_per_trial:.1%} "
          f"of evaluation; the above without the one-off start-up)")
    strict = (wall_s * stats.workers - stats.sim_cpu_s) / stats.sim_cpu_s
    print(f"  worker-seconds not simulating  {strict:8.1%}  of evaluation CPU (strictest view: also "
          f"counts the driver's CPU taken from the workers and OS time)")
    print(f"  parallel efficiency            {stats.sim_s / (wall_s * stats.workers):8.1%}")
    cpu_eval = stats.sim_cpu_s / simulated
    print(f"  CPU per trial: evaluation      {cpu_eval * 1e3:8.1f} ms;  driver process "
          f"{stats.driver_cpu_s / n * 1e3:.1f} ms per told trial = "
          f"{stats.driver_cpu_s / stats.sim_cpu_s:.1%} of all evaluation CPU "
          f"(unaffected by other load on the machine)")
    load = os.getloadavg()
    print(f"  machine load average           {load[0]:8.2f}  (wall-clock figures include time "
          f"lost to other processes when this exceeds the core count)")


if __name__ == "__main__":
    main()
