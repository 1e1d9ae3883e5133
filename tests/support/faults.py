"""Fault-test figures: a study after a fault against the same study run without one."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import optuna


def trials_of(study) -> dict[int, tuple]:
    return {t.number: (t.state.name, t.params, t.values, t.constraints)
            for t in study.get_trials(deepcopy=False)}


def fault_figures(straight, faulted, told: int | None = None) -> dict[str, int]:
    """Trials lost (in the clean run, missing or unfinished after the fault), duplicated (extra
    trials, or more tells than trials when ``told`` is given) and differing (same number, other
    state, parameters, values or constraints)."""
    clean, hit = trials_of(straight), trials_of(faulted)
    lost = sum(1 for n in clean if n not in hit or hit[n][0] != "COMPLETE")
    duplicated = max(0, len(hit) - len(clean)) + max(0, (told or len(hit)) - len(hit))
    differing = sum(1 for n in clean if n in hit and hit[n] != clean[n])
    return {"lost": lost, "duplicated": duplicated, "differing": differing}


CLEAN = {"lost": 0, "duplicated": 0, "differing": 0}


def fake_study(name: str, *, base_extra: str = "", n_trials: int, n_jobs: int,
               extra: str = "") -> str:
    """A study file on the fake evaluator (tests/support/fakes.py) for the real command's fault
    tests: a four-key space big enough that every batch differs, two replicates."""
    return f"""
name: {name}
base: [model=llama3_1_70b{base_extra}]
space:
  hardware: {{choices: [h100_sxm, a100_80g, l40s, h200]}}
  cluster.tp: {{choices: [1, 2, 4, 8]}}
  cluster.num_replicas: {{type: int, low: 1, high: 8}}
  scheduler.max_num_seqs: {{type: int, low: 16, high: 256, log: true}}
constraints: ["ttft_ms.p99 <= 1000", "tpot_ms.p99 <= 50"]
budget: {{max_devices: 32}}
evaluator: fakes:fake_evaluator
coverage: {{min_per_choice: 0}}
{extra}n_trials: {n_trials}
batch_size: 4
replicates: 2
n_jobs: {n_jobs}
"""


def stored_trials(db: Path, state: str | None = None) -> int:
    """Trials in a study's SQLite file (of ``state`` if given), read-only, so polling never
    races the driver creating the database; 0 before its schema exists."""
    if not db.exists():
        return 0
    query = "SELECT count(*) FROM trials" + (" WHERE state=?" if state else "")
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
            return conn.execute(query, (state,) if state else ()).fetchone()[0]
    except sqlite3.Error:  # schema not created yet
        return 0


def figures_against_straight(root: Path, name: str, resumed_db: Path) -> dict[str, int]:
    """``fault_figures`` of the study in ``resumed_db`` against the uninterrupted run of the
    same study under ``root/straight``."""
    straight = optuna.load_study(
        study_name=name, storage=f"sqlite:///{root / 'straight' / 'runs' / name / 'study.db'}")
    resumed = optuna.load_study(study_name=name, storage=f"sqlite:///{resumed_db}")
    return fault_figures(straight, resumed)
