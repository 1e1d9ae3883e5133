"""``hermes-sim ... | head`` closes the pipe before the JSON is written: that is the reader's
choice, not an error (no BrokenPipeError traceback, exit 0)."""

from __future__ import annotations

import subprocess
import sys


def test_a_reader_that_stops_early_gets_no_traceback():
    script = ("import subprocess, sys\n"
              "cli = 'import sys; from hermes_opt.cli.sim_command import main; sys.argv[0] = \"hermes-sim\"; main()'\n"
              "p = subprocess.Popen([sys.executable, '-c', cli, 'workload.num_requests=20'],"
              " stdout=subprocess.PIPE, stderr=subprocess.PIPE)\n"
              "p.stdout.close()\n"  # the reader is gone before anything is written
              "err = p.stderr.read().decode()\n"
              "sys.exit(0 if p.wait() == 0 and 'Traceback' not in err else print(err) or 1)\n")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
