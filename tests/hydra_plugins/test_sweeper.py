"""hydra/sweeper=hermes_optuna through a real `hermes-sim --multirun` (joblib launcher)."""

from __future__ import annotations

import subprocess
import sys

import pytest
from omegaconf import OmegaConf

HERMES_SIM = [sys.executable, "-c", "from hermes_opt.cli.sim_command import main; main()"]
ARGS = ["--multirun", "hydra/sweeper=hermes_optuna", "hydra.sweeper.n_trials=8",
        "hydra.sweeper.batch_size=4", "hydra.sweeper.seed=1",
        'hydra.sweeper.constraints=["ttft_ms.p99 <= 1000","tpot_ms.p99 <= 50"]',
        "model=llama3_1_70b", "workload.num_requests=300", "workload.arrival.rate_per_s=3",
        "hardware=choice(h100_sxm,h200,l40s)", "cluster.tp=choice(1,2,4)",
        "cluster.num_replicas=range(1,3)", "scheduler.max_num_seqs=tag(log,int,interval(16,256))"]


def sweep(tmp_path, name, extra):
    proc = subprocess.run(HERMES_SIM + ARGS + extra + [f"hydra.sweep.dir={tmp_path / name}"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    results = OmegaConf.to_container(OmegaConf.load(tmp_path / name / "optimization_results.yaml"))
    launched = sorted(p.name for p in (tmp_path / name).iterdir() if p.is_dir())
    return results, launched


@pytest.mark.slow  # 17 s of the default suite (2 cores, loaded); the sweeper also runs in
# tests/cli/test_study_bad_inputs.py::test_sweeper_budget_from_the_command_line_is_applied
def test_sweeper_with_joblib_launcher_honours_constraints_and_skips_infeasible(tmp_path):
    joblib, launched = sweep(tmp_path, "joblib", ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"])
    assert joblib["n_trials"] == 8
    assert joblib["constraints"] == ["ttft_ms.p99 <= 1000", "tpot_ms.p99 <= 50"]
    # infeasible candidates (70B does not fit one H100/L40S) are told, never launched
    assert len(launched) == 8 - joblib["n_infeasible_not_launched"]
    assert joblib["n_infeasible_not_launched"] >= 1
    if joblib["best_params"] is not None:
        assert joblib["n_feasible"] >= 1 and joblib["best_value"] > 0
    # same seed, in-process basic launcher: the same search (worker count does not matter)
    basic, _ = sweep(tmp_path, "basic", [])
    assert basic == joblib


def test_unsupported_sweep_is_reported(tmp_path):
    proc = subprocess.run(HERMES_SIM + ["--multirun", "hydra/sweeper=hermes_optuna",
                                        "cluster.tp=glob(*)", f"hydra.sweep.dir={tmp_path}/x"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
