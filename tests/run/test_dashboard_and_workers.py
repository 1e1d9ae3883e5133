"""Two things around a running study: what optuna-dashboard reads of a told trial's feasibility,
and that the loky workers of a study driver exit within seconds when the driver is SIGKILLed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
import yaml
from fakes import subprocess_env

HERMES_OPT = [sys.executable, "-c", "from hermes_opt.cli.opt_command import main; main()"]
DEFAULT = Path(__file__).resolve().parents[2] / "hermes_opt" / "studies" / "default.yaml"


def tiny_study(tmp_path: Path, **changes) -> Path:
    raw = yaml.safe_load(DEFAULT.read_text())
    num_requests = changes.pop("num_requests", 50)
    raw["base"] = [b if not b.startswith("workload.num_requests=")
                   else f"workload.num_requests={num_requests}" for b in raw["base"]]
    raw.update({"name": "tiny", "n_trials": 4, "batch_size": 2, "replicates": 1,
                "coverage": {"min_per_choice": 0}, **changes})
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def test_every_told_trial_carries_the_dashboard_constraints_list(tmp_path):
    db = tmp_path / "s.db"
    proc = subprocess.run(HERMES_OPT + [f"study={tiny_study(tmp_path, n_jobs=1)}",
                                        f"storage=sqlite:///{db}"],
                          cwd=tmp_path, capture_output=True, text=True, env=subprocess_env(),
                          timeout=600)
    assert proc.returncode == 0, proc.stderr
    study = optuna.load_study(study_name="tiny", storage=f"sqlite:///{db}")
    complete = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    assert len(complete) == 4
    # the default study's: its SLOs, keeping up, then its headroom and redundancy checks
    keys = ["runnable", "ttft_ms.p99 <= 1000", "tpot_ms.p99 <= 50", "keeps_up",
            "headroom 1.25x", "redundancy n+1"]
    for t in complete:
        listed = t.system_attrs["constraints"]  # optuna.samplers._base._CONSTRAINTS_KEY
        assert isinstance(listed, list) and len(listed) == len(keys)
        assert all(isinstance(v, float) for v in listed)
        assert listed == [t.system_attrs[f"constraints:{k}"] for k in keys]  # constraint order
        feasible = "infeasible_reason" not in t.user_attrs and all(v <= 0 for v in listed[1:])
        assert (max(listed) <= 0) == feasible


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            found += [int(c) for c in task.read_text().split()]
        except OSError:
            pass
    return found


def _alive(pid: int) -> bool:
    """Running (a zombie waiting to be reaped by init does not count)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="needs Linux /proc")
def test_workers_exit_within_seconds_of_a_sigkilled_driver(tmp_path):
    study = tiny_study(tmp_path, n_trials=400, batch_size=4, n_jobs=2, num_requests=3000)
    with open(tmp_path / "out.txt", "w") as out:
        driver = subprocess.Popen(HERMES_OPT + [f"study={study}",
                                                f"storage=sqlite:///{tmp_path / 's.db'}"],
                                  cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT,
                                  env=subprocess_env())
    workers: list[int] = []
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and driver.poll() is None:
            workers = [c for c in _children(driver.pid) if "popen_loky_posix" in _cmdline(c)]
            if len(workers) >= 2:
                break
            time.sleep(0.2)
        assert len(workers) >= 2, (tmp_path / "out.txt").read_text()
        time.sleep(1.0)  # let them take jobs
        assert all(_alive(w) for w in workers)
        driver.send_signal(signal.SIGKILL)
        driver.wait(timeout=10)
        start = time.monotonic()
        while time.monotonic() - start < 10 and any(_alive(w) for w in workers):
            time.sleep(0.2)
        left = [w for w in workers if _alive(w)]
        assert not left, f"loky workers {left} outlived the driver by 10 s"
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.wait()
        for w in workers:  # do not leave them behind when the test fails
            if _alive(w) and "popen_loky_posix" in _cmdline(w):
                try:
                    os.kill(w, signal.SIGKILL)
                except ProcessLookupError:
                    pass
