"""``workload=trace`` replays the shipped sample trace out of the box: its relative path is found
in the package's data folder (it was looked up in compose/data/traces, which does not exist, so
the shipped preset failed with "no such file" from any directory)."""

from __future__ import annotations

import json
import subprocess
import sys

from hermes_opt.compose.traces import TRACES_DIR, resolve

HERMES_SIM = [sys.executable, "-c", "from hermes_opt.cli.sim_command import main; main()"]


def test_the_shipped_sample_resolves_to_the_package_data_folder():
    found = resolve("azure_format_sample.csv")
    assert found == TRACES_DIR / "azure_format_sample.csv" and found.is_file()
    assert TRACES_DIR.parent.name == "data" and TRACES_DIR.parent.parent.name == "hermes_opt"


def test_workload_trace_runs_from_any_directory(tmp_path):
    proc = subprocess.run([*HERMES_SIM, "workload=trace", "workload.num_requests=50"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary["requests_completed"] == 50
