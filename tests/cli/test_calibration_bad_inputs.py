"""Bad input to `hermes-sim calibrate`, `hermes-sim validate` and the scheduler's block size, run
through the real CLI: exit status 2, one stderr line naming the field, no traceback, and nothing
written (no profile, no report)."""

from __future__ import annotations

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd
import pytest
from fakes import subprocess_env

from hermes_opt.compose import catalog

HERMES_SIM = [sys.executable, "-c", "from hermes_opt.cli.sim_command import main; main()"]
DATA = catalog.DATA_DIR
STEPS_HEADER = "model,tp,phase,batch_size,prompt_tokens,context_tokens,time_ms\n"
GOOD_STEPS = ("llama3_1_8b,1,prefill,1,512,0,20\n"
              "llama3_1_8b,1,decode,8,0,1024,10\n"
              "llama3_1_8b,1,decode,16,0,2048,12\n")


def _steps(bad_row: str) -> str:
    return STEPS_HEADER + GOOD_STEPS + bad_row  # the bad row is line 5 of the file


def _splitwise(tmp: Path, column: str, value: float) -> str:
    frame = pd.read_csv(DATA / "splitwise/perf_model.csv").head(40)
    frame.loc[6, column] = value  # line 8 of the file
    path = tmp / "perf_model.csv"
    frame.to_csv(path, index=False)
    return str(path)


def _serving(tmp: Path, value: float) -> str:
    frame = pd.read_csv(DATA / "reference/trtllm_measurements.csv").head(30)
    frame.loc[3, "value"] = value  # line 5 of the file
    path = tmp / "serving.csv"
    frame.to_csv(path, index=False)
    return str(path)


def _allreduce(tmp: Path, value: float) -> str:
    frame = pd.read_csv(DATA / "vidur/network__h100_dgx__all_reduce.csv").head(30)
    frame.loc[0, "time_stats.all_reduce.median"] = value  # line 2
    path = tmp / "network__h100_dgx__all_reduce.csv"
    frame.to_csv(path, index=False)
    return str(path)


# name -> (build argv in tmp, stderr prefix, needle); each run in its own directory
def _calibrate(data_flag: list[str], hardware: str = "h100_sxm") -> list[str]:
    return ["calibrate", "--name", "bad_input_probe", "--hardware", hardware, *data_flag,
            "--max-evals", "1", "--out", "profile.yaml"]


CASES = {
    "steps_negative": (lambda t: _calibrate(["--steps", _write(t, _steps("llama3_1_8b,1,decode,4,0,512,-5\n"))]),
                       "hermes-sim calibrate", "steps.csv:5: time_ms=-5.0: must be a finite number > 0"),
    "steps_zero": (lambda t: _calibrate(["--steps", _write(t, _steps("llama3_1_8b,1,decode,4,0,512,0\n"))]),
                   "hermes-sim calibrate", "steps.csv:5: time_ms=0.0: must be a finite number > 0"),
    "steps_inf": (lambda t: _calibrate(["--steps", _write(t, _steps("llama3_1_8b,1,decode,4,0,512,inf\n"))]),
                  "hermes-sim calibrate", "steps.csv:5: time_ms=inf: must be a finite number > 0"),
    "steps_nan": (lambda t: _calibrate(["--steps", _write(t, _steps("llama3_1_8b,1,decode,4,0,512,nan\n"))]),
                  "hermes-sim calibrate", "steps.csv:5: time_ms=nan: must be a finite number > 0"),
    "steps_tp": (lambda t: _calibrate(["--steps", _write(t, _steps("llama3_1_8b,-2,decode,4,0,512,9\n"))]),
                 "hermes-sim calibrate", "steps.csv:5: tp=-2.0: must be an integer >= 1"),
    "splitwise_negative": (lambda t: _calibrate(["--splitwise", _splitwise(t, "token_time", -5.0)], "a100_80g"),
                           "hermes-sim calibrate", "perf_model.csv:8: token_time=-5.0: must be a finite number > 0"),
    "splitwise_inf": (lambda t: _calibrate(["--splitwise", _splitwise(t, "prompt_time", float("inf"))], "a100_80g"),
                      "hermes-sim calibrate", "perf_model.csv:8: prompt_time=inf: must be a finite number > 0"),
    "serving_negative": (lambda t: _calibrate(["--serving", _serving(t, -5.0), "--serving-source", "v0.17"]),
                         "hermes-sim calibrate", "serving.csv:5: value=-5.0: must be a finite number > 0"),
    "allreduce_negative": (lambda t: _calibrate(["--vidur-compute",
                                                 str(DATA / "vidur/compute__h100__meta-llama__Llama-2-7b-hf__mlp.csv"),
                                                 "--vidur-network", _allreduce(t, -5.0)]),
                           "hermes-sim calibrate",
                           "all_reduce.csv:2: time_stats.all_reduce.median=-5.0: must be a finite number > 0"),
    "study_unknown_key": (lambda t: ["validate", "--fast", "--out", "report", "--study",
                                     _write(t, Path(catalog.STUDIES_DIR / "validation.yaml").read_text()
                                            + "vidur_strde: 3\n", "study.yaml")],
                          "hermes-sim validate",
                          "vidur_strde=3: unknown key; allowed: name, kind, description, shared_dir, out, "
                          "fast, targets"),
    "study_unknown_fast_key": (lambda t: ["validate", "--fast", "--out", "report", "--study", _write(
        t, "kind: validation\nfast: {vidur_strde: 3}\n", "study.yaml")], "hermes-sim validate",
        "fast.vidur_strde=3: unknown key; allowed: vidur_stride, serving_hardware"),
    "shared_dir_file": (lambda t: ["validate", "--fast", "--out", "report", "--shared-dir",
                                   _write(t, "x", "afile")],
                        "hermes-sim validate", "afile: not a directory"),
    "shared_dir_missing": (lambda t: ["validate", "--fast", "--out", "report", "--shared-dir", str(t / "sharde")],
                           "hermes-sim validate", "sharde: no such directory"),
    "shared_dir_wrong_folder": (lambda t: ["validate", "--fast", "--out", "report", "--shared-dir", _mkdir(t)],
                                "hermes-sim validate",
                                "other: has neither reference/ nor hw-traces/ (expected the shared data folder)"),
    # the report folder is checked before any work: it was a traceback after the whole run
    "validate_out_under_a_file": (lambda t: ["validate", "--fast", "--out",
                                             _write(t, "", "afile") + "/report"],
                                  "hermes-sim validate",
                                  "/afile/report': cannot create this folder ("),
    "block_size_huge": (lambda t: ["scheduler.block_size_tokens=100000000"], "hermes-sim",
                        "scheduler.block_size_tokens=100000000: must be an integer in 1..65536 (vLLM uses 16)"),
    "block_larger_than_kv": (lambda t: ["scheduler.gpu_memory_utilization=0.22",
                                        "scheduler.block_size_tokens=65536"], "hermes-sim",
                             "scheduler.block_size_tokens=65536: one KV block (8.59 GB per device) is larger "
                             "than the 0.60 GB of KV memory per device left after"),
}


def _write(tmp: Path, text: str, name: str = "steps.csv") -> str:
    path = tmp / name
    path.write_text(text)
    return str(path)


def _mkdir(tmp: Path) -> str:
    (tmp / "other" / "traces").mkdir(parents=True)
    return str(tmp / "other")


# Variants of the cases above, through the same entry points in-process (no interpreter start-up).
IN_PROCESS = ("steps_zero", "steps_inf", "steps_nan", "steps_tp", "splitwise_negative",
              "splitwise_inf", "serving_negative", "allreduce_negative", "study_unknown_fast_key",
              "shared_dir_missing", "shared_dir_wrong_folder")
SUBPROCESS = tuple(name for name in CASES if name not in IN_PROCESS)


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """Every case's subprocess, run concurrently (each is mostly interpreter start-up)."""
    def run(name):
        tmp = tmp_path_factory.mktemp(name)
        argv = CASES[name][0](tmp)
        proc = subprocess.run(HERMES_SIM + argv, cwd=tmp, capture_output=True, text=True,
                              env=subprocess_env(), timeout=120)
        return name, (proc, tmp)
    with ThreadPoolExecutor(max_workers=3) as pool:
        return dict(pool.map(run, SUBPROCESS))


@pytest.mark.parametrize("name", SUBPROCESS)
def test_bad_input_is_one_line_exit_2_and_writes_nothing(results, name):
    proc, tmp = results[name]
    _check(name, proc.returncode, proc.stderr, tmp)


@pytest.mark.parametrize("name", IN_PROCESS)
def test_more_bad_values_in_process(name, tmp_path, monkeypatch, capsys):
    from hermes_opt.cli.calibrate_command import calibrate_main
    from hermes_opt.cli.validate_command import validate_main
    monkeypatch.chdir(tmp_path)
    argv = CASES[name][0](tmp_path)
    entry = {"calibrate": calibrate_main, "validate": validate_main}[argv[0]]
    with pytest.raises(SystemExit) as exc:
        entry(argv[1:])
    _check(name, exc.value.code, capsys.readouterr().err, tmp_path)


def _check(name: str, code: object, stderr: str, tmp: Path) -> None:
    _, prog, needle = CASES[name]
    assert code == 2, (code, stderr[-2000:])
    assert "Traceback" not in stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith(f"{prog}: error: "), lines[0]
    assert needle in lines[0], lines[0]
    assert not (tmp / "profile.yaml").exists() and not (tmp / "report").exists()
    assert not (catalog.CONF_DIR / "calibration" / "bad_input_probe.yaml").exists()
