"""The bad-input corpus of issue 27: every class of bad input, through the real entry points
(``hermes-sim``, ``hermes-sim calibrate``, ``hermes-sim validate``, traces via ``hermes-sim``,
``hermes-opt``): exit status 2, exactly one line on stderr, no traceback, and the line names the
field (and the file and row for tables). Each case runs in its own process, forked from one
that imported the commands once (tests/support/cli_corpus.py), so ~80 cases cost seconds."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from fakes import subprocess_env

from hermes_opt.compose import catalog

SUPPORT = Path(__file__).resolve().parent.parent / "support"
SIM = ["model=llama3_1_8b", "workload.num_requests=20"]
CHAT = "workload.request_types.chat"
TRACE_HEADER = "arrival_s,prompt_tokens,output_tokens\n"
STEPS = ("model,tp,phase,batch_size,prompt_tokens,context_tokens,time_ms\n"
         "llama3_1_8b,1,prefill,1,512,0,20\nllama3_1_8b,1,decode,8,0,1024,10\n"
         "llama3_1_8b,1,decode,16,0,2048,12\n")
STUDY = ("name: corpus\nbase: [workload.num_requests=50]\nspace:\n"
         "  hardware: {choices: [h100_sxm, a100_80g]}\n  cluster.num_replicas: {type: int, low: 1, high: 3}\n"
         "constraints: ['ttft_ms.p99 <= 1000']\nn_trials: 2\nbatch_size: 2\nn_jobs: 1\n")


def _bomb() -> str:
    lines = ["l0: &l0 [" + ", ".join(["lol"] * 9) + "]"]
    lines += [f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 9) + "]" for i in range(1, 9)]
    return "\n".join(lines) + "\nname: bomb\nspace:\n  cluster.tp: {choices: [1]}\n"


def _mlperf(**changes: str) -> str:
    frame = pd.read_csv(catalog.DATA_DIR / "reference" / "mlperf_v4.1_subset.csv")
    server = frame[frame.concurrency_or_qps_or_batch.str.startswith("Server")].head(1).copy()
    for column, value in changes.items():
        server[column] = value
    return server.to_csv(index=False)


def _calibrate(*data: str) -> list[str]:
    return ["calibrate", "--name", "corpus_probe", "--hardware", "h100_sxm", *data,
            "--max-evals", "1", "--out", "profile.yaml"]


def _validate(*args: str) -> list[str]:
    return ["validate", "--fast", "--shared-dir", "none", *args]


# id -> (class, prog, argv, {file name: text}, what the line must name)
CASES: dict[str, tuple[str, str, list[str], dict[str, str], str]] = {
    # absurd or non-finite numbers (limits in sim/workload/spec.py, sim/config.py)
    "rate_tiny": ("numbers", "hermes-sim", SIM + ["workload.arrival.rate_per_s=1e-12"], {},
                  "workload.arrival.rate_per_s=1e-12"),
    "rate_inf": ("numbers", "hermes-sim", SIM + ["workload.arrival.rate_per_s=inf"], {},
                 "workload.arrival.rate_per_s=inf"),
    "rate_huge": ("numbers", "hermes-sim", SIM + ["workload.arrival.rate_per_s=1e9"], {},
                  "workload.arrival.rate_per_s"),
    "cv_huge": ("numbers", "hermes-sim", SIM + ["workload.arrival.kind=gamma",
                                                "workload.arrival.cv=1e9"], {}, "workload.arrival.cv"),
    "prompt_mean_huge": ("numbers", "hermes-sim", SIM + [f"{CHAT}.prompt_tokens.mean=1e15"], {},
                         f"{CHAT}.prompt_tokens.mean"),
    "prompt_max_huge": ("numbers", "hermes-sim", SIM + [f"{CHAT}.prompt_tokens.max_tokens=100000000"],
                        {}, f"{CHAT}.prompt_tokens.max_tokens"),
    "prompt_mean_nan": ("numbers", "hermes-sim", SIM + [f"{CHAT}.prompt_tokens.mean=nan"], {},
                        f"{CHAT}.prompt_tokens.mean"),
    "num_requests_huge": ("numbers", "hermes-sim", ["workload.num_requests=1000000000"], {},
                          "workload.num_requests"),
    "replicas_huge": ("numbers", "hermes-sim", SIM + ["cluster.num_replicas=1000000"], {},
                      "cluster.num_replicas"),
    "seed_nan": ("numbers", "hermes-sim", SIM + ["seed=nan"], {}, "seed="),
    "gpu_util_nan": ("numbers", "hermes-sim", SIM + ["scheduler.gpu_memory_utilization=nan"], {},
                     "scheduler.gpu_memory_utilization"),
    "block_huge": ("numbers", "hermes-sim", SIM + ["scheduler.block_size_tokens=100000000"], {},
                   "scheduler.block_size_tokens"),
    "slo_nan": ("numbers", "hermes-sim", SIM + ["slo.tpot_ms=nan"], {}, "slo.tpot_ms"),
    "tp_inf": ("numbers", "hermes-sim", SIM + ["cluster.tp=inf"], {}, "cluster.tp"),
    # traces (hermes_opt/compose/traces.py)
    "trace_1e300": ("traces", "hermes-sim", SIM + ["workload=trace", "workload.trace.path=t.csv"],
                    {"t.csv": TRACE_HEADER + "0,100,10\n1e300,100,10\n"}, "workload.trace"),
    "trace_negative": ("traces", "hermes-sim", SIM + ["workload=trace", "workload.trace.path=t.csv"],
                       {"t.csv": TRACE_HEADER + "0,100,10\n-5,100,10\n"}, "t.csv:3: arrival_s="),
    "trace_header_only": ("traces", "hermes-sim", SIM + ["workload=trace",
                                                        "workload.trace.path=t.csv"],
                          {"t.csv": TRACE_HEADER}, "workload.trace.path"),
    "trace_missing": ("traces", "hermes-sim", SIM + ["workload=trace",
                                                    "workload.trace.path=nope.csv"], {},
                      "workload.trace.path"),
    "trace_text_tokens": ("traces", "hermes-sim", SIM + ["workload=trace",
                                                        "workload.trace.path=t.csv"],
                          {"t.csv": TRACE_HEADER + "0,many,10\n"}, "t.csv:2: prompt_tokens="),
    "trace_unknown_format": ("traces", "hermes-sim", SIM + ["workload=trace",
                                                           "workload.trace.path=t.csv"],
                             {"t.csv": "when,what\n1,2\n"}, "workload.trace.path"),
    "trace_time_scale_zero": ("traces", "hermes-sim", SIM + ["workload=trace",
                                                            "workload.trace.path=t.csv",
                                                            "workload.arrival.time_scale=0"],
                              {"t.csv": TRACE_HEADER + "0,100,10\n1,100,10\n"},
                              "workload.arrival.time_scale"),
    # catalog names and overrides
    "model_unknown": ("names", "hermes-sim", ["model=nosuch_model"], {}, "model='nosuch_model'"),
    "hardware_unknown": ("names", "hermes-sim", SIM + ["hardware=nosuch_gpu"], {}, "hardware="),
    "scheduler_unknown": ("names", "hermes-sim", SIM + ["scheduler=nosuch"], {}, "scheduler="),
    "sweep_all_unknown": ("sweeps", "hermes-sim", ["--multirun", "model=nope1,nope2"], {},
                          "model='nope1,nope2'"),
    "override_unknown_key": ("overrides", "hermes-sim", SIM + ["cluster.tpp=2"], {}, "cluster.tpp"),
    "override_no_value": ("overrides", "hermes-sim", SIM + ["cluster.tp"], {}, "cluster.tp"),
    # output paths
    "summary_under_a_file": ("outputs", "hermes-sim", SIM + ["output.summary_path=afile/s.json"],
                             {"afile": ""}, "output.summary_path"),
    "summary_bad_suffix": ("outputs", "hermes-sim", SIM + ["output.summary_path=s.txt"], {},
                           "output.summary_path"),
    "validate_out_under_a_file": ("outputs", "hermes-sim", _validate("--out", "afile/report"),
                                  {"afile": ""}, "--out"),
    "calibrate_out_under_a_file": ("outputs", "hermes-sim",
                                   _calibrate("--steps", "steps.csv")[:-1] + ["afile/p.yaml"],
                                   {"afile": "", "steps.csv": STEPS}, "--out"),
    # validate --measurements (compose/csv_input.py): a table that cannot be read is one line; a
    # row that cannot run (value 1e308, num_gpus 1e12, target_qps 1e-300) is counted with its
    # reason and the table goes on (issue 26; tests/validation/test_mlperf_rows.py)
    "measurements_header_only": ("measurements", "hermes-sim",
                                 _validate("--measurements", "m.csv", "--out", "r"),
                                 {"m.csv": _mlperf().splitlines()[0] + "\n"}, "measurements="),
    "measurements_missing": ("measurements", "hermes-sim",
                             _validate("--measurements", "nope.csv", "--out", "r"), {},
                             "nope.csv"),
    "measurements_unknown_column": ("measurements", "hermes-sim",
                                    _validate("--measurements", "m.csv", "--out", "r"),
                                    {"m.csv": _mlperf().replace("notes", "nots", 1)}, "nots"),
    "aliases_missing": ("measurements", "hermes-sim", _validate("--aliases", "nope.yaml", "--out", "r"),
                        {}, "nope.yaml"),
    "benchmarks_missing": ("measurements", "hermes-sim",
                           _validate("--mlperf-benchmarks", "nope.yaml", "--out", "r"), {},
                           "--mlperf-benchmarks"),
    # calibrate tables
    "steps_header_only": ("calibrate", "hermes-sim", _calibrate("--steps", "steps.csv"),
                          {"steps.csv": STEPS.splitlines()[0] + "\n"}, "steps="),
    "steps_1e308": ("calibrate", "hermes-sim", _calibrate("--steps", "steps.csv"),
                    {"steps.csv": STEPS + "llama3_1_8b,1,decode,4,0,512,1e308\n"},
                    "steps.csv:5: time_ms="),
    "steps_negative": ("calibrate", "hermes-sim", _calibrate("--steps", "steps.csv"),
                       {"steps.csv": STEPS + "llama3_1_8b,1,decode,4,0,512,-5\n"},
                       "steps.csv:5: time_ms="),
    "steps_tp_huge": ("calibrate", "hermes-sim", _calibrate("--steps", "steps.csv"),
                      {"steps.csv": STEPS + "llama3_1_8b,1e13,decode,4,0,512,9\n"},
                      "steps.csv:5: tp="),
    "calibrate_unknown_hardware": ("calibrate", "hermes-sim",
                                   ["calibrate", "--name", "x", "--hardware", "nosuch",
                                    "--steps", "steps.csv", "--out", "p.yaml"],
                                   {"steps.csv": STEPS}, "nosuch"),
    # hermes-opt study fields
    "name_dotdot": ("study names", "hermes-opt", ["name=.."], {}, "name='..'"),
    "name_null": ("study names", "hermes-opt", ["name=null"], {}, "name=None"),
    "name_slash": ("study names", "hermes-opt", ["name=a/b"], {}, "name='a/b'"),
    "n_trials_zero": ("study fields", "hermes-opt", ["n_trials=0"], {}, "n_trials=0"),
    "n_trials_huge": ("study fields", "hermes-opt", ["n_trials=10000000"], {}, "n_trials="),
    "replicates_huge": ("study fields", "hermes-opt", ["replicates=100000"], {}, "replicates="),
    "batch_size_zero": ("study fields", "hermes-opt", ["batch_size=0"], {}, "batch_size="),
    "study_seed_nan": ("study fields", "hermes-opt", ["seed=nan"], {}, "seed="),
    "sampler_unknown": ("study fields", "hermes-opt", ["sampler=bogus"], {}, "sampler="),
    "headroom_huge": ("study fields", "hermes-opt", ["headroom=100"], {}, "headroom="),
    "objective_unknown": ("study fields", "hermes-opt", ["objectives=[{metric: bananas}]"], {},
                          "objectives.metric='bananas'"),
    "base_key_unknown": ("study fields", "hermes-opt", ["cluster.tpp=2"], {}, "cluster.tpp"),
    "space_type_unknown": ("study fields", "hermes-opt", ["space.cluster.tp.type=integer"], {},
                           "space.cluster.tp.type='integer'"),
    "study_unknown": ("study fields", "hermes-opt", ["study=nope"], {}, "study="),
    "argument_not_kv": ("study fields", "hermes-opt", ["n_trials"], {}, "argument="),
    # study files (hermes_opt/study/study_file.py)
    "study_alias_bomb": ("study files", "hermes-opt", ["study=s.yaml"], {"s.yaml": _bomb()},
                         "study='s.yaml'"),
    "study_too_big": ("study files", "hermes-opt", ["study=s.yaml"],
                      {"s.yaml": "name: big\n# " + "x" * (1 << 20) + "\n"}, "study='s.yaml'"),
    "study_empty": ("study files", "hermes-opt", ["study=s.yaml"], {"s.yaml": ""}, "study="),
    "study_unknown_key": ("study files", "hermes-opt", ["study=s.yaml"],
                          {"s.yaml": STUDY + "n_trails: 3\n"}, "n_trails"),
    "study_evaluator_no_colon": ("study files", "hermes-opt", ["study=s.yaml"],
                                 {"s.yaml": STUDY + "evaluator: justamodule\n"}, "evaluator="),
    "study_choice_unparsable": ("study files", "hermes-opt", ["study=s.yaml"],
                                {"s.yaml": STUDY.replace("a100_80g", "'a<b'")},
                                "space.hardware.choices='a<b'"),
    "study_not_yaml": ("study files", "hermes-opt", ["study=s.yaml"],
                       {"s.yaml": "name: [unclosed\n"}, "study="),
    # storage (hermes_opt/study/storage.py)
    "storage_under_a_file": ("storage", "hermes-opt", ["storage=sqlite:///afile/x.db"],
                             {"afile": ""}, "storage="),
    "storage_scheme_unknown": ("storage", "hermes-opt", ["storage=nosuchdb://x"], {},
                               "storage='nosuchdb://x'"),
    "storage_is_a_folder": ("storage", "hermes-opt", ["storage=sqlite:///adir"], {"adir/k": ""},
                            "storage="),
    "report_missing_study": ("storage", "hermes-opt", ["report", "ghost"], {}, "ghost"),
    # executors (hermes_opt/study/execution.py)
    "executor_unknown": ("executors", "hermes-opt", ["executor=bogus"], {}, "executor"),
    "executor_address_not_url": ("executors", "hermes-opt",
                                 ["executor={kind: dask, address: nohost}"], {},
                                 "executor.address='nohost'"),
    "executor_address_for_loky": ("executors", "hermes-opt",
                                  ["executor={kind: loky, address: 'tcp://h:1'}"], {},
                                  "executor.address"),
}


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> dict[str, dict]:
    root = tmp_path_factory.mktemp("corpus")
    cases = []
    for case_id, (_, prog, argv, files, _) in CASES.items():
        where = root / case_id
        where.mkdir()
        for name, text in files.items():
            (where / name).parent.mkdir(parents=True, exist_ok=True)
            (where / name).write_text(text)
        cases.append({"id": case_id, "prog": prog, "argv": argv, "cwd": str(where)})
    (root / "cases.json").write_text(json.dumps(cases))
    subprocess.run([sys.executable, str(SUPPORT / "cli_corpus.py"), str(root / "cases.json"),
                    str(root / "results.json")], env=subprocess_env(), check=True, timeout=900)
    return json.loads((root / "results.json").read_text())


@pytest.mark.parametrize("case_id", list(CASES))
def test_bad_input_is_one_line_naming_the_field_exit_2(results, case_id):
    _, prog, _, _, needle = CASES[case_id]
    got = results[case_id]
    err = got["stderr"]
    assert "Traceback" not in err, err
    assert got["code"] == 2, (got["code"], err)
    lines = [line for line in err.splitlines() if line.strip()]
    prefix = prog if prog == "hermes-opt" else "hermes-sim"
    assert len(lines) == 1 and lines[0].startswith(prefix), err
    assert needle in lines[0], lines[0]


def test_the_corpus_covers_every_class_and_entry_point():
    classes = {c[0] for c in CASES.values()}
    assert classes >= {"numbers", "traces", "names", "sweeps", "overrides", "outputs",
                       "measurements", "calibrate", "study names", "study fields",
                       "study files", "storage", "executors"}
    argvs = [c[2] for c in CASES.values()]
    assert any(a[0] == "calibrate" for a in argvs) and any(a[0] == "validate" for a in argvs)
    assert len(CASES) >= 65
