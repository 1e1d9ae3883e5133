"""hermes-opt end to end (subprocesses, real simulator): bad input, kill -9 and Ctrl-C resume,
report files."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from fakes import subprocess_env
from faults import stored_trials
from optuna.trial import TrialState

HERMES_OPT = [sys.executable, "-c", "from hermes_opt.cli.opt_command import main; main()"]

TINY_STUDY = """
name: tiny
base: [workload.num_requests=1200, workload.arrival.rate_per_s=12, slo=interactive]
space:
  hardware: {choices: [h100_sxm, a100_80g, l40s]}
  cluster.num_replicas: {type: int, low: 1, high: 3}
  scheduler: {choices: [continuous, chunked]}
  scheduler.max_num_seqs: {type: int, low: 16, high: 256, log: true}
constraints: ["ttft_ms.p99 <= 1000", "tpot_ms.p99 <= 50"]
n_trials: 24
batch_size: 4
replicates: 1
n_jobs: 2
"""


def run(args, cwd, **kwargs):
    return subprocess.run(HERMES_OPT + args, cwd=cwd, capture_output=True, text=True,
                          env=subprocess_env(), timeout=300, **kwargs)


def one_line_error(proc, needle):
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("hermes-opt: error: "), proc.stderr
    assert needle in lines[0], lines[0]


@pytest.mark.parametrize("args, needle", [
    (["study=nope"], "unknown study; available: "),
    (["objectives=[{metric: bananas}]"], "objectives.metric='bananas'"),
    (["storage=postgresql://nobody:secret@127.0.0.1:9/none"], "cannot open"),
    (["storage=nosuchdb://x"], "cannot open"),
    (["cluster.tpp=2"], "base"),
    (["space.cluster.tp.type=integer"], "space.cluster.tp.type='integer'"),
    (["n_trials"], "expected key=value"),
])
def test_bad_input_is_one_line_exit_2(tmp_path, args, needle):
    proc = run(args, tmp_path)
    one_line_error(proc, needle)
    assert "secret" not in proc.stderr


def test_report_of_missing_study_is_one_line(tmp_path):
    one_line_error(run(["report", "ghost"], tmp_path), "no such study database")


def complete_count(db: Path) -> int:
    return stored_trials(db, "COMPLETE")


def start_and_stop(tmp_path, sig, at_least):
    study_file = tmp_path / "tiny.yaml"
    proc = subprocess.Popen(HERMES_OPT + [f"study={study_file}"], cwd=tmp_path,
                            env=subprocess_env(), stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    db = tmp_path / "runs" / "tiny" / "study.db"
    deadline = time.time() + 120
    while complete_count(db) < at_least:
        assert proc.poll() is None, proc.stderr.read()
        assert time.time() < deadline
        time.sleep(0.05)
    os.killpg(proc.pid, sig)  # the whole group, like a terminal's Ctrl-C or a lost machine
    _, err = proc.communicate(timeout=60)
    return proc.returncode, err, db


def snapshot(db):
    study = optuna.load_study(study_name="tiny", storage=f"sqlite:///{db}")
    return {t.number: (t.params, t.values) for t in study.get_trials()
            if t.state is TrialState.COMPLETE}


# SIGKILL of the real driver is opt-in (12 s): by default it is covered in process by
# tests/run/test_driver_kill.py (a driver killed mid-batch) and test_worker_loss.py; the
# real-command kills at three moments run with -m slow there too
@pytest.mark.parametrize("sig", [pytest.param(signal.SIGKILL, marks=pytest.mark.slow),
                                 signal.SIGINT])
def test_stopped_study_resumes_with_every_trial_kept_once(tmp_path, sig):
    (tmp_path / "tiny.yaml").write_text(TINY_STUDY)
    code, err, db = start_and_stop(tmp_path, sig, at_least=6)
    if sig == signal.SIGINT:
        assert code == 130 and "stopping after saving completed trials" in err
        assert "Traceback" not in err, err  # also none from the process pool's threads
        assert (tmp_path / "runs" / "tiny" / "report" / "report.html").exists()
    else:
        assert code == -signal.SIGKILL
    before = snapshot(db)
    assert 6 <= len(before) < 24
    proc = run([f"study={tmp_path / 'tiny.yaml'}"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    study = optuna.load_study(study_name="tiny", storage=f"sqlite:///{db}")
    trials = study.get_trials()
    assert [t.number for t in trials] == list(range(24))  # none lost, none duplicated
    assert all(t.state is TrialState.COMPLETE for t in trials)
    after = snapshot(db)
    assert {n: after[n] for n in before} == before  # every earlier trial kept as it was


def test_report_files_are_complete_and_offline(tmp_path):
    (tmp_path / "tiny.yaml").write_text(TINY_STUDY.replace("n_trials: 24", "n_trials: 8"))
    proc = run([f"study={tmp_path / 'tiny.yaml'}", "coverage.min_per_choice=0"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "8/8 trials" in proc.stderr and "ETA" in proc.stderr
    report_dir = tmp_path / "runs" / "tiny" / "report"
    for name in ("report.html", "summary.md", "trials.csv", "pareto.png", "history.png"):
        (report_dir / name).unlink()
    proc = run(["report", "tiny"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    html = (report_dir / "report.html").read_text()
    assert "<script src" not in html and "Plotly.newPlot" in html and len(html) > 3_000_000
    summary = (report_dir / "summary.md").read_text()
    assert "hermes-sim workload.num_requests=1200" in summary and "Provenance" in summary
    assert "ondemand_2026_11 (2026-11-09)" in summary
    import pandas as pd
    frame = pd.read_csv(report_dir / "trials.csv")
    assert len(frame) == 8
    assert {"param:hardware", "objective:slo_tokens_per_usd", "constraint:ttft_ms.p99 <= 1000",
            "metric:ttft_ms.p99", "replay"} <= set(frame.columns)
    for name in ("pareto.png", "history.png"):
        assert (report_dir / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow  # 15 s of the default suite (2 cores, loaded): a study, then a hermes-sim run
def test_replay_command_reproduces_the_trial(tmp_path):
    (tmp_path / "tiny.yaml").write_text(TINY_STUDY.replace("n_trials: 24", "n_trials: 4"))
    assert run([f"study={tmp_path / 'tiny.yaml'}", "n_jobs=1"], tmp_path).returncode == 0
    import json
    import shlex

    import pandas as pd
    frame = pd.read_csv(tmp_path / "runs" / "tiny" / "report" / "trials.csv")
    row = frame[frame.outcome.isin(["feasible", "violates SLO"])].iloc[0]
    argv = shlex.split(row.replay)[1:]
    proc = subprocess.run([sys.executable, "-c", "from hermes_opt.cli.sim_command import main; main()",
                           *argv], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary["ttft_ms"]["p99"] == pytest.approx(row["metric:ttft_ms.p99"], rel=1e-12)
    assert summary["slo_tokens_per_usd"] == pytest.approx(row["objective:slo_tokens_per_usd"],
                                                              rel=1e-12)
