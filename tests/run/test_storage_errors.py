"""The study's storage failing mid-run (disk full, read-only, locked): one line naming the
storage and the cause (``hermes-opt`` exits 2), no traceback; once the cause is gone the same
command resumes and the study equals an uninterrupted one: no trial lost, duplicated or
different."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
from fakes import subprocess_env
from faults import CLEAN, fake_study, fault_figures, figures_against_straight
from optuna.storages._rdb.storage import RDBStorage

from hermes_opt.run import runner
from sim.errors import ConfigError

OFF = {"min_per_choice": 0}


def commit_fails(message: str, at: int):
    """``RDBStorage.set_trial_state_values`` (each tell's commit) failing on call ``at`` the way
    SQLite fails: sqlite3 error, wrapped by SQLAlchemy, wrapped by Optuna."""
    real = RDBStorage.set_trial_state_values
    calls = {"n": 0}

    def failing(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == at:
            try:
                raise sqlite3.OperationalError(message)
            except sqlite3.OperationalError as err:
                raise optuna.exceptions.StorageInternalError(
                    "An exception is raised during the commit.") from err
        return real(self, *args, **kwargs)
    return failing


@pytest.mark.parametrize("message,said", [
    ("database or disk is full", "the disk is full"),
    # ~5 s each on a quiet machine: opt-in
    pytest.param("attempt to write a readonly database", "read-only", marks=pytest.mark.slow),
    pytest.param("database is locked", "another process holds a lock on the database",
                 marks=pytest.mark.slow)])
def test_storage_failure_mid_run_is_one_line_and_the_study_resumes(fake_spec, tmp_path,
                                                                   monkeypatch, message, said):
    straight, _ = runner.run_study(fake_spec(n_trials=16, name="straight", coverage=OFF),
                                   progress_stream=None)
    spec = fake_spec(n_trials=16, coverage=OFF, storage=f"sqlite:///{tmp_path / 'full.db'}")
    with monkeypatch.context() as patch:
        patch.setattr(RDBStorage, "set_trial_state_values", commit_fails(message, at=7))
        with pytest.raises(ConfigError) as err:
            runner.run_study(spec, progress_stream=None)
    text = str(err.value)
    assert "\n" not in text and text.startswith(f"storage={spec.storage!r}: cannot write")
    assert said in text and "run the same command again to resume" in text
    left = optuna.load_study(study_name=spec.name, storage=spec.storage).get_trials()
    assert any(t.state.name == "RUNNING" for t in left)  # what the resume must finish
    resumed, _ = runner.run_study(spec, progress_stream=None)
    assert fault_figures(straight, resumed) == CLEAN


def test_a_bug_that_is_not_a_storage_failure_keeps_its_traceback(fake_spec, monkeypatch):
    def broken(self, *args, **kwargs):
        raise ZeroDivisionError("a bug")
    monkeypatch.setattr(RDBStorage, "set_trial_state_values", broken)
    with pytest.raises(ZeroDivisionError):
        runner.run_study(fake_spec(n_trials=4, coverage=OFF), progress_stream=None)


STUDY = fake_study("full", n_trials=60, n_jobs=1)
HERMES_OPT = [sys.executable, "-c", "from hermes_opt.cli.opt_command import main; main()"]


def hermes_opt(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(HERMES_OPT + ["study=s.yaml", *args], cwd=cwd, env=subprocess_env(),
                          capture_output=True, text=True, timeout=300)


@pytest.fixture
def small_tmpfs(tmp_path):
    """A 320 KiB tmpfs (root only: skipped elsewhere; the injected failures above run
    everywhere)."""
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=320k", "tmpfs",
                                            str(mnt)], capture_output=True).returncode != 0:
        pytest.skip("mounting a small tmpfs needs root")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


@pytest.mark.slow  # three hermes-opt runs of 60 trials: ~40 s on a quiet machine
def test_full_disk_under_the_real_command_then_resume(tmp_path, small_tmpfs):
    """hermes-opt with its SQLite storage on a 320 KiB tmpfs: the disk fills mid-study; one line,
    exit 2; the tmpfs is grown (space freed) and the same command finishes the study, equal to
    one run on a roomy disk."""
    for name in ("straight", "full"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "s.yaml").write_text(STUDY)
    clean = hermes_opt(tmp_path / "straight")
    assert clean.returncode == 0, clean.stderr
    url = f"storage=sqlite:///{small_tmpfs / 'study.db'}"
    full = hermes_opt(tmp_path / "full", url)
    assert full.returncode == 2, full.stderr
    assert "Traceback" not in full.stderr, full.stderr
    errors = [line for line in full.stderr.splitlines() if "error" in line]
    assert len(errors) == 1 and errors[0].startswith("hermes-opt: error: storage="), full.stderr
    assert "the disk is full" in errors[0]
    subprocess.run(["mount", "-o", "remount,size=16m", str(small_tmpfs)], check=True)
    again = hermes_opt(tmp_path / "full", url)
    assert again.returncode == 0, again.stderr
    assert figures_against_straight(tmp_path, "full", small_tmpfs / "study.db") == CLEAN


def test_a_report_that_cannot_be_written_is_one_line(tmp_path, monkeypatch, capsys):
    """The study ran and is stored; its report hits a full disk: one line, exit 2, saying how to
    write the report later (not 'please report this bug')."""
    import errno

    from hermes_opt.cli import opt_command
    from hermes_opt.report import study_report

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")
    (tmp_path / "s.yaml").write_text(STUDY.replace("n_trials: 60", "n_trials: 4"))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(study_report, "write", full)
    with pytest.raises(SystemExit) as exit_:
        opt_command.main(["study=s.yaml"])
    assert exit_.value.code == 2
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert line.startswith("hermes-opt: error: report: cannot write runs/full/report: no space "
                           "left on the device; the study is saved in sqlite:///runs/full/"), line
    assert line.endswith("run `hermes-opt report full`")
