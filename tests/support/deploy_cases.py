"""Deployment artifacts (hermes_opt/report/deploy) written for one real, composed configuration,
and readers of what was written: the launch scripts' command lines as a shell splits them, the
options files and the manifests' documents. Shared by tests/report/test_deploy_*.py."""

from __future__ import annotations

import shlex
from pathlib import Path

import pandas as pd
import yaml

from hermes_opt.compose.candidate import compose
from hermes_opt.report.deploy import writer
from hermes_opt.report.trials import OVERRIDES, engine_label
from hermes_opt.report.vendors import RECORD
from hermes_opt.study.definition import from_dict

SMALL = ["model=llama3_1_8b", "hardware=h100_sxm", "workload.num_requests=50"]
DISAGG = ["model=llama3_1_8b", "deployment.total_devices=4",
          "deployment.architecture=disaggregated", "deployment.prefill.hardware=h100_sxm",
          "deployment.decode.hardware=h100_sxm", "deployment.prefill.devices=2",
          "workload.num_requests=50"]
METRICS = {"metric:ttft_ms.p50": 40.0, "metric:ttft_ms.p90": 80.0, "metric:ttft_ms.p99": 120.0,
           "metric:tpot_ms.p50": 9.0, "metric:tpot_ms.p90": 11.0, "metric:tpot_ms.p99": 14.0,
           "metric:e2e_ms.p99": 3000.0, "metric:requests_per_s": 9.5,
           "metric:output_tokens_per_s": 1200.0}


def spec(base: list[str]):
    return from_dict({"name": "deploy_test", "base": base,
                      "space": {"scheduler.max_num_seqs": {"type": "int", "low": 16,
                                                           "high": 256}},
                      "constraints": ["ttft_ms.p99 <= 500", "tpot_ms.p99 <= 40"]})


def write(out: Path, overrides: list[str], trial: int = 7) -> Path:
    """The study report's deploy/ folder for one configuration (its base: ``overrides``)."""
    record = compose(overrides).deployment
    row = {"trial": trial, RECORD: record, OVERRIDES: [], "engine": engine_label(record),
           **METRICS}
    index = writer.write_all(pd.DataFrame([row]), spec(overrides), out)
    assert index is not None
    return index.parent / "1"


def commands(script: Path) -> list[str]:
    """The command lines a script runs (``exec ...`` or a bench client), continuations joined."""
    text = script.read_text().replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines()]
    return [line.removeprefix("exec ").rstrip(" &") for line in lines
            if line and not line.startswith("#") and "=" not in line.split(" ")[0]
            and line.split(" ")[0] not in ("set", "wait")]


def words(line: str) -> list[str]:
    return shlex.split(line)


def manifest(folder: Path) -> list[dict]:
    return [doc for doc in yaml.safe_load_all((folder / "manifest.yaml").read_text()) if doc]


def engine_of(folder: Path, pool: str) -> tuple[str, str]:
    import json
    record = json.loads((folder / "record.json").read_text())["deployment"]
    label = next(p["engine"] for p in record["pools"] if p["name"] == pool)
    name, _, version = label.partition(" ")
    return name, version
