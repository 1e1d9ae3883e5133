"""No NaN or Infinity in any JSON we print or write: null, with the reason under
``null_reasons`` (hermes_opt.compose.strict_json). Through the real command with a scenario
whose every request is rejected (prompts longer than the KV cache), read with a strict parser."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pytest
from fakes import subprocess_env

from hermes_opt.compose import strict_json

HERMES_SIM = [sys.executable, "-c", "from hermes_opt.cli.sim_command import main; main()"]
# 2M-token prompts fit no KV cache: every request is rejected, no latency can be measured
REJECT_ALL = ["workload=chat", "workload.num_requests=20",
              "workload.request_types.chat.prompt_tokens={kind: lognormal, mean: 2000000, std: 10, "
              "min_tokens: 1000000, max_tokens: 4000000}"]


def strict_loads(text: str):
    def refuse(constant: str):
        raise ValueError(f"not JSON: {constant}")
    return json.loads(text, parse_constant=refuse)


def test_every_request_rejected_prints_strict_json_with_reasons(tmp_path):
    proc = subprocess.run(HERMES_SIM + REJECT_ALL, cwd=tmp_path, capture_output=True, text=True,
                          env=subprocess_env(), timeout=180)
    assert proc.returncode == 0, proc.stderr
    summary = strict_loads(proc.stdout)
    assert summary["ttft_ms"]["p99"] is None
    reasons = summary[strict_json.NULL_REASONS]
    assert reasons["ttft_ms.p99"].startswith("NaN: undefined")
    assert "request_types.chat.e2e_ms.mean" in reasons


def test_multirun_lines_and_summary_files_are_strict_json(tmp_path):
    proc = subprocess.run(HERMES_SIM + ["--multirun", *REJECT_ALL, "workload.arrival.rate_per_s=1,2",
                                        f"hydra.sweep.dir={tmp_path / 'sweep'}"],
                          cwd=tmp_path, capture_output=True, text=True, env=subprocess_env(),
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    assert len(lines) == 2
    for line in lines:
        assert strict_loads(line)["tpot_ms"]["p50"] is None
    files = sorted((tmp_path / "sweep").rglob("summary.json"))
    assert len(files) == 2
    for file in files:
        assert strict_json.NULL_REASONS in strict_loads(file.read_text())


@pytest.mark.parametrize("value,why", [(math.nan, "NaN"), (math.inf, "Infinity"),
                                       (-math.inf, "-Infinity"), (np.float64("nan"), "NaN")])
def test_non_finite_values_become_null_with_their_path(value, why):
    text = strict_json.dumps({"a": {"b": [1.5, value]}, "n": np.int64(3)}, sort_keys=True)
    out = strict_loads(text)
    assert out["a"]["b"] == [1.5, None] and out["n"] == 3
    assert out[strict_json.NULL_REASONS]["a.b[1]"].startswith(why + ":")


def test_default_is_applied_before_cleaning():
    class Odd:
        pass
    text = strict_json.dumps({"x": Odd()}, default=lambda o: math.nan)
    assert strict_loads(text) == {"x": None, "null_reasons": {"x": strict_json.WHY["nan"]}}


def test_finite_documents_are_unchanged():
    doc = {"b": 1, "a": [0.1, "x", None, True], "c": {"d": 2.5e300}}
    assert strict_json.dumps(doc, sort_keys=True) == json.dumps(doc, sort_keys=True)
