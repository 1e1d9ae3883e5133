"""Run many command lines of the real entry points (``hermes-sim``, its ``calibrate`` and
``validate`` subcommands, ``hermes-opt``) cheaply: this process imports the commands once, then
runs each case in a fork of itself (its own process, working directory, stdout and stderr, and
exit status), two at a time. An uncaught exception is printed as the interpreter would and exits
with status 1; a case still running after its timeout is killed and reported as a hang.

    python cli_corpus.py cases.json results.json

cases.json: [{"id", "prog": "hermes-sim"|"hermes-opt", "argv": [...], "cwd"}];
results.json: {id: {"code": int|"timeout", "stdout", "stderr"}}.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import tempfile
import time
import traceback

TIMEOUT_S = 90.0
PARALLEL = 2


def _child(case: dict, out: int, err: int) -> None:
    code = 0
    try:
        os.chdir(case["cwd"])
        os.dup2(out, 1)
        os.dup2(err, 2)
        sys.stdout = open(1, "w", closefd=False)  # the process ends with this case
        sys.stderr = open(2, "w", closefd=False)
        sys.argv = [case["prog"], *case["argv"]]
        if case["prog"] == "hermes-sim":
            from hermes_opt.cli.sim_command import main
            main()
        else:
            from hermes_opt.cli.opt_command import main as opt_main
            opt_main(list(case["argv"]))
    except SystemExit as exc:
        if isinstance(exc.code, str):
            print(exc.code, file=sys.stderr)
            code = 1
        else:
            code = int(exc.code or 0)
    except BaseException:  # what the interpreter would print
        traceback.print_exc()
        code = 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _start(case: dict) -> tuple[int, object, object, float]:
    out, err = tempfile.TemporaryFile(), tempfile.TemporaryFile()
    pid = os.fork()
    if pid == 0:
        _child(case, out.fileno(), err.fileno())
    return pid, out, err, time.monotonic()


def _read(handle) -> str:
    handle.seek(0)
    return handle.read().decode(errors="replace")


def main(cases_path: str, results_path: str) -> None:
    # the commands and what they import, once, before any fork
    import hermes_opt.cli.calibrate_command  # noqa: F401
    import hermes_opt.cli.opt_command  # noqa: F401
    import hermes_opt.cli.sim_command  # noqa: F401
    import hermes_opt.cli.validate_command  # noqa: F401
    import hermes_opt.compose.evaluate  # noqa: F401
    cases = json.loads(open(cases_path).read())
    results: dict[str, dict] = {}
    todo, running = list(cases), {}
    while todo or running:
        while todo and len(running) < PARALLEL:
            case = todo.pop(0)
            running[case["id"]] = _start(case)
        time.sleep(0.02)
        for case_id, (pid, out, err, started) in list(running.items()):
            done, status = os.waitpid(pid, os.WNOHANG)
            if not done and time.monotonic() - started < TIMEOUT_S:
                continue
            if not done:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                code: int | str = "timeout"
            else:
                code = os.waitstatus_to_exitcode(status)
            results[case_id] = {"code": code, "stdout": _read(out), "stderr": _read(err)}
            del running[case_id]
    with open(results_path, "w") as handle:
        json.dump(results, handle)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
