"""Pinned outputs: the same seed gives byte-identical `hermes-sim` JSON and identical study trials.

A refactor must leave these files alone. An intended behaviour change rewrites them with
``python tests/golden/regenerate.py`` and says why in its commit.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from cases import SIM_CASES, STUDY_PATH, run_sim, run_study, sim_path  # noqa: E402


@pytest.mark.parametrize("name", sorted(SIM_CASES))
def test_hermes_sim_json_is_pinned(name):
    assert run_sim(SIM_CASES[name]) == sim_path(name).read_text().rstrip("\n")


def test_the_hermes_sim_command_prints_the_pinned_line(tmp_path):
    exe = shutil.which("hermes-sim")
    if exe is None:
        pytest.skip("hermes-sim is not installed in this environment")
    out = subprocess.run([exe, *SIM_CASES["chunked"]], capture_output=True, text=True,
                         cwd=tmp_path, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.rstrip("\n") == sim_path("chunked").read_text().rstrip("\n")


@pytest.mark.parametrize("n_jobs", [1, 2])
def test_study_trials_are_pinned(tmp_path, n_jobs):
    assert run_study(tmp_path, n_jobs=n_jobs) == STUDY_PATH.read_text().rstrip("\n")
