"""The spread of a trial's objectives and constrained metrics is in one order whatever Python's
string hashing (issue: trials.csv's std: columns followed the set order, so two identical runs
wrote different files)."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = """
from hermes_opt.study.objective import Constraint, Objective, score
s = {"cost_usd_per_hour": 1.0, "steady_state": {"goodput_output_tokens_per_s": 5.0},
     "ttft_ms": {"p99": 10.0}, "tpot_ms": {"p99": 2.0}, "e2e_ms": {"p50": 3.0}}
out = score([s, s], (Objective(metric="slo_tokens_per_usd"),),
            (Constraint(metric="ttft_ms.p99", op="<=", bound=1e3),
             Constraint(metric="tpot_ms.p99", op="<=", bound=50.0),
             Constraint(metric="e2e_ms.p50", op="<=", bound=9e3)))
print(",".join(out.spread))
"""


def test_the_spread_order_does_not_follow_string_hashing():
    orders = set()
    for seed in ("0", "1", "2", "3", "4", "5"):
        run = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                             env={"PYTHONHASHSEED": seed, "PATH": "/usr/bin:/bin"}, check=True)
        orders.add(run.stdout.strip())
    assert orders == {"e2e_ms.p50,slo_tokens_per_usd,tpot_ms.p99,ttft_ms.p99"}
