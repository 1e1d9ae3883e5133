"""``hermes-sim --multirun``: a sweep point that cannot run is recorded as infeasible (its own
summary.json and one stderr line) and the sweep goes on (hermes_opt/cli/sim_command.py)."""

from __future__ import annotations

import json
import subprocess
import sys

from fakes import subprocess_env

HERMES_SIM = [sys.executable, "-c", "from hermes_opt.cli.sim_command import main; main()"]


def test_an_infeasible_sweep_point_is_recorded_and_the_sweep_goes_on(tmp_path):
    sweep = tmp_path / "sweep"
    proc = subprocess.run(HERMES_SIM + ["--multirun", "model=llama3_1_70b", "cluster.tp=1,4",
                                        "workload.num_requests=50", f"hydra.sweep.dir={sweep}"],
                          cwd=tmp_path, capture_output=True, text=True, env=subprocess_env(),
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    infeasible = [line for line in proc.stderr.splitlines() if "infeasible" in line]
    assert len(infeasible) == 1, proc.stderr
    assert infeasible[0].startswith("hermes-sim: infeasible: model=llama3_1_70b cluster.tp=1 ")
    assert "does not fit" in infeasible[0]

    files = sorted(sweep.rglob("summary.json"))
    assert len(files) == 2, files
    summaries = [json.loads(f.read_text()) for f in files]
    by_tp = {next(o for o in s["overrides"] if o.startswith("cluster.tp=")): s for s in summaries}
    assert set(by_tp) == {"cluster.tp=1", "cluster.tp=4"}

    bad, good = by_tp["cluster.tp=1"], by_tp["cluster.tp=4"]
    assert bad["status"] == "infeasible"
    assert "does not fit" in bad["reason"] and "llama3_1_70b" in bad["reason"]
    assert bad["overrides"] == ["model=llama3_1_70b", "cluster.tp=1", "workload.num_requests=50"]
    assert set(bad) == {"status", "reason", "overrides"}

    assert "status" not in good
    assert good["requests_completed"] + good["requests_rejected"] == 50
    assert good["requests_completed"] > 0 and good["cost_usd_per_hour"] > 0
    assert good["pools"]["llm"]["replicas"] == 1 and good["num_devices"] == 4
    # the feasible point still prints its JSON line; the infeasible one prints none
    printed = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert len(printed) == 1 and printed[0]["requests_completed"] == good["requests_completed"]


def test_an_unknown_name_in_a_sweep_list_skips_its_point_and_exits_2(tmp_path):
    """One unknown model among several: one line names it, the other points run and print
    their lines, and the exit status (2) says a point was skipped."""
    sweep = tmp_path / "sweep"
    proc = subprocess.run(HERMES_SIM + ["--multirun", "model=llama3_1_8b,nosuch_model,qwen3_8b",
                                        "workload.num_requests=20", f"hydra.sweep.dir={sweep}"],
                          cwd=tmp_path, capture_output=True, text=True, env=subprocess_env(),
                          timeout=300)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    skipped = [line for line in proc.stderr.splitlines() if "skipped" in line]
    assert len(skipped) == 1 and skipped[0].startswith(
        "hermes-sim: skipped: model='nosuch_model': unknown model; allowed: "), proc.stderr
    printed = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert sorted(p["overrides"][0] for p in printed) == ["model=llama3_1_8b", "model=qwen3_8b"]
    assert len(list(sweep.rglob("summary.json"))) == 2


def test_a_sweep_list_of_only_unknown_names_is_one_line(tmp_path):
    proc = subprocess.run(HERMES_SIM + ["--multirun", "model=nope1,nope2"], cwd=tmp_path,
                          capture_output=True, text=True, env=subprocess_env(), timeout=120)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert lines[-1].startswith("hermes-sim: error: model='nope1,nope2': no known model")
    assert "Traceback" not in proc.stderr and not (tmp_path / "multirun").exists()
