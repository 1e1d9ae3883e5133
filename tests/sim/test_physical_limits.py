"""Limits of physical sense on a workload, through the real hermes-sim: a rate that spreads the
run over years, a gamma cv that is a burst, a rate no fleet takes, a trace spanning 1e300 s. One
line naming the field, the value and what is allowed; exit 2."""

from __future__ import annotations

import subprocess
import sys

import pytest

from sim.workload.spec import MAX_CV, MAX_RATE_PER_S, MAX_SPAN_S, span_text

HERMES_SIM = [sys.executable, "-c", "from hermes_opt.cli.sim_command import main; main()"]


def test_the_limits_and_their_words():
    assert (MAX_SPAN_S, MAX_RATE_PER_S, MAX_CV) == (30 * 86_400.0, 1e6, 100.0)
    assert span_text(1e14) == "3.17e+06 years" and span_text(MAX_SPAN_S) == "30 days"
    assert span_text(40.0) == "40 s" and span_text(7_200.0) == "2 hours"


@pytest.mark.parametrize("args, line", [
    (["workload.arrival.rate_per_s=1e-12", "workload.num_requests=100"],
     "workload.arrival.rate_per_s=1e-12: the run would span 3.17e+06 years of arrivals; at most "
     "30 days"),
    (["workload.arrival.kind=gamma", "workload.arrival.cv=1e9"],
     "workload.arrival.cv=1000000000.0: must be <= 100"),
    (["workload.arrival.rate_per_s=1e9"],
     "workload.arrival.rate_per_s=1000000000.0: must be <= 1e+06 requests/s"),
])
def test_absurd_arrivals_are_one_line(tmp_path, args, line):
    proc = subprocess.run([*HERMES_SIM, *args], cwd=tmp_path, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    (only,) = proc.stderr.strip().splitlines()
    assert only.startswith(f"hermes-sim: error: {line}"), only


def test_a_trace_spanning_ages_is_one_line_and_its_replayed_rows_count(tmp_path):
    (tmp_path / "t.csv").write_text("arrival_s,prompt_tokens,output_tokens\n0,10,10\n1,10,10\n"
                                    "1e300,10,10\n")
    args = [*HERMES_SIM, "workload=trace", "workload.trace.path=t.csv"]
    proc = subprocess.run(args, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "would span 3.17e+292 years" in proc.stderr, proc.stderr
    # replaying only the first two rows spans 1 s: fine
    proc = subprocess.run([*args, "workload.num_requests=2"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
