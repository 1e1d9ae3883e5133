"""Constraints on per-request-type metrics (``request_types.<type>.<metric>.<stat>``): told to
Optuna like the workload-wide ones, an unknown type is one line, the report shows each type."""

from __future__ import annotations

import math
import subprocess
import sys

import pandas as pd
import pytest
from fakes import subprocess_env

from hermes_opt.report import render, study_report
from hermes_opt.report.trials import trial_rows
from hermes_opt.run import runner
from hermes_opt.study.definition import from_dict
from hermes_opt.study.objective import metric_or_fail
from sim.errors import ConfigError

QA, MATH = "request_types.qa_routed.ttft_ms.p99", "request_types.math_reasoning.tpot_ms.p99"


def mix_study(tmp_path, **changes) -> dict:
    raw = {"name": "mix_types",
           "base": ["workload=pipeline_mix", "+cluster=mix_8gpu", "workload.num_requests=150",
                    "slo=interactive", "+workload.request_types.math_reasoning.slo.ttft_ms=30000"],
           "space": {"cluster.pools.small.num_replicas": {"type": "int", "low": 1, "high": 3},
                     "cluster.tp": {"choices": [4, 8]}},
           "constraints": [f"{QA} <= 6000", f"{MATH} <= 22"],
           "n_trials": 4, "batch_size": 2, "replicates": 1, "seed": 1, "n_jobs": 1,
           "storage": f"sqlite:///{tmp_path / 'mix.db'}"}
    raw.update(changes)
    return raw


def test_per_type_constraints_are_told_to_optuna_and_reported(tmp_path):
    spec = from_dict(mix_study(tmp_path))
    study, _ = runner.run_study(spec, progress_stream=None)
    trials = study.get_trials()
    assert len(trials) == 4
    seen = []
    for t in trials:
        metrics = t.user_attrs["result"]["metrics"]
        qa, math_tpot = metrics[QA], metrics[MATH]
        # Optuna holds (value - bound) / bound for each per-type constraint
        assert t.constraints[f"{QA} <= 6000"] == pytest.approx((qa - 6000) / 6000, rel=1e-12)
        assert t.constraints[f"{MATH} <= 22"] == pytest.approx((math_tpot - 22) / 22, rel=1e-12)
        # and they are the type's own figures, not the workload-wide ones
        assert qa != metrics["ttft_ms.p99"] and math_tpot != metrics["tpot_ms.p99"]
        seen.append(math_tpot <= 22)
    # the reasoning type's TPOT bound splits the candidates (TP8 meets it, TP4 does not)
    assert any(seen) and not all(seen)
    frame = trial_rows(study, spec)
    assert set(frame.outcome) <= {"feasible", "violates SLO"}
    assert (frame.outcome == "feasible").tolist() == [
        all(v <= 0 for v in t.constraints.values()) for t in trials]
    paths = study_report.write(study, spec, tmp_path / "report", spec.storage)
    text = paths["md"].read_text()
    assert "Per request type" in text and "| math_reasoning |" in text and "| qa_routed |" in text


def detail_row(types: dict[str, float]) -> pd.Series:
    row = {"trial": 0, "replay": "hermes-sim", "metric:ttft_ms.p99": 99.0}
    for name, ttft in types.items():
        row.update({f"metric:request_types.{name}.ttft_ms.p99": ttft,
                    f"metric:request_types.{name}.tpot_ms.p99": 12.5,
                    f"metric:request_types.{name}.requests_completed": 40.0,
                    f"metric:request_types.{name}.slo_attainment": 0.75})
    return pd.Series(row)


def test_report_detail_lists_types_only_when_there_are_several(tmp_path):
    spec = from_dict(mix_study(tmp_path))
    two = render._detail(spec, 1, detail_row({"chat": 321.0, "rag": math.nan}))
    tables = [b for b in two if b[0] == "table" and b[1][0] == "request type"]
    assert len(tables) == 1
    assert tables[0][2] == [["chat", "40", "321", "12.5", "0.75"], ["rag", "40", "–", "12.5", "0.75"]]
    one = render._detail(spec, 1, detail_row({"chat": 321.0}))
    assert not [b for b in one if b[0] == "table" and b[1][0] == "request type"]


def test_unknown_type_or_stat_names_what_the_section_has():
    summary = {"ttft_ms": {"p99": 1.0},
               "request_types": {"chat": {"ttft_ms": {"mean": 1.0, "p50": 1.0, "p90": 1.0,
                                                      "p99": 2.0}},
                                 "rag": {"ttft_ms": {"p99": 3.0}}}}
    assert metric_or_fail(summary, "request_types.rag.ttft_ms.p99", "constraints") == 3.0
    with pytest.raises(ConfigError, match=r"^constraints='request_types\.chta\.ttft_ms\.p99': "
                                          r"this scenario's workload has no request type 'chta'; "
                                          r"its types: chat, rag$"):
        metric_or_fail(summary, "request_types.chta.ttft_ms.p99", "constraints")
    with pytest.raises(ConfigError, match=r"no 'p999' under 'request_types\.chat\.ttft_ms'; "
                                          r"it has: mean, p50, p90, p99$"):
        metric_or_fail(summary, "request_types.chat.ttft_ms.p999", "constraints")
    with pytest.raises(ConfigError, match=r"names a section of the summary, not a number; under "
                                          r"it: request_types\.rag\.ttft_ms\.p99$"):
        metric_or_fail(summary, "request_types.rag", "constraints")


def test_cli_unknown_type_in_a_constraint_is_one_line_exit_2(tmp_path):
    study_file = tmp_path / "typo.yaml"
    import yaml
    raw = mix_study(tmp_path, n_trials=2, constraints=["request_types.qa_routd.ttft_ms.p99 <= 500"])
    study_file.write_text(yaml.safe_dump(raw))
    proc = subprocess.run([sys.executable, "-c", "from hermes_opt.cli.opt_command import main; main()",
                           f"study={study_file}"], cwd=tmp_path, capture_output=True, text=True,
                          env=subprocess_env(), timeout=300)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert lines[-1] == ("hermes-opt: error: constraints='request_types.qa_routd.ttft_ms.p99': this "
                         "scenario's workload has no request type 'qa_routd'; its types: qa_routed, "
                         "rag_news, code_kv, chat_rag_kv, math_reasoning"), proc.stderr
    assert "Traceback" not in proc.stderr
