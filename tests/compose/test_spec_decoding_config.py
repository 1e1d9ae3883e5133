"""The ``spec_decoding`` section: public acceptance defaults, user rates, and one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from fakes import subprocess_env

from hermes_opt.compose.overrides import compose_overrides
from hermes_opt.compose.speculative import rates_from_lengths, table
from hermes_opt.compose.to_sim import sim_config
from sim.errors import ConfigError
from sim.hardware.speculative import SpecDecodeSpec, SpecMethod

HERMES_SIM = [sys.executable, "-c", "from hermes_opt.cli.sim_command import main; main()"]
R1 = ["model=deepseek_r1", "hardware=b200", "cluster.tp=8", "cluster.weight_dtype=fp8",
      "cluster.kv_dtype=fp8", "workload.num_requests=20"]


def main_pool(overrides):
    return sim_config(compose_overrides(overrides)).pools[0]


def test_off_by_default():
    assert not main_pool(R1).spec_decoding.enabled


def test_published_acceptance_lengths_come_back_from_the_derived_rates():
    for entry in table():
        lengths = entry["acceptance_length"]
        rates = rates_from_lengths(lengths)
        for k, length in enumerate(lengths, start=1):
            spec = SpecDecodeSpec(method=SpecMethod(entry["method"]), draft_tokens=k,
                                  acceptance_per_position=rates)
            assert spec.acceptance_length == pytest.approx(length), (entry["dataset"], k)


def test_mtp_on_deepseek_r1_takes_the_tensorrt_llm_default():
    spec = main_pool(R1 + ["spec_decoding.method=mtp", "spec_decoding.draft_tokens=3"]).spec_decoding
    assert spec.method is SpecMethod.MTP and spec.draft_tokens == 3
    assert spec.acceptance_length == pytest.approx(2.82)
    assert spec.source.startswith("trtllm_r1_1k2k: NVIDIA TensorRT-LLM tech blog 1")


def test_a_dataset_or_a_rate_chooses_the_acceptance():
    spec = main_pool(R1 + ["spec_decoding.method=mtp", "spec_decoding.draft_tokens=1",
                           "spec_decoding.dataset=deepseek_v3_report"]).spec_decoding
    assert spec.acceptance_length == pytest.approx(1.875)
    spec = main_pool(R1 + ["spec_decoding.method=mtp", "spec_decoding.draft_tokens=2",
                           "spec_decoding.acceptance_rate=0.5"]).spec_decoding
    assert spec.acceptance_per_position == (0.5, 0.5) and spec.acceptance_length == 1.75
    spec = main_pool(R1 + ["spec_decoding.method=mtp", "spec_decoding.draft_tokens=2",
                           "spec_decoding.acceptance_per_position=[0.9,0.4]"]).spec_decoding
    assert spec.acceptance_length == pytest.approx(1 + 0.9 + 0.36)


def test_a_draft_model_is_a_catalog_model():
    pool = main_pool(["model=llama3_1_70b", "hardware=h200", "cluster.tp=4",
                      "workload.num_requests=20", "spec_decoding.method=draft_model",
                      "spec_decoding.draft_model=llama3_1_8b", "spec_decoding.draft_tokens=4",
                      "spec_decoding.acceptance_rate=0.7"])
    assert pool.spec_decoding.draft_model.name == "llama3_1_8b"
    plain = main_pool(["model=llama3_1_70b", "hardware=h200", "cluster.tp=4",
                       "workload.num_requests=20"])
    assert pool.kv_capacity_blocks() < plain.kv_capacity_blocks()


@pytest.mark.parametrize("overrides, message", [
    (["spec_decoding.method=medusa"], "spec_decoding.method='medusa': "),
    (["spec_decoding.method=mtp", "spec_decoding.draft_tokens=6"],
     "spec_decoding.draft_tokens=6: the public default 'trtllm_r1_1k2k' covers draft_tokens 1..5"),
    (["spec_decoding.method=eagle"],
     "spec_decoding.dataset=None: no public acceptance for method=eagle on model deepseek_r1"),
    (["spec_decoding.method=mtp", "spec_decoding.acceptance_rate=0.5",
      "spec_decoding.acceptance_per_position=[0.5]"],
     "spec_decoding.acceptance_rate=0.5: give it or acceptance_per_position, not both"),
    (["spec_decoding.method=mtp", "spec_decoding.acceptance_rate=2"],
     "spec_decoding.acceptance_per_position[0]=2.0: must be a probability in [0, 1]"),
    (["spec_decoding.method=mtp", "spec_decoding.draft_model=llama3_1_8b"],
     "spec_decoding.draft_model='llama3_1_8b': only for method=draft_model, not mtp"),
])
def test_bad_values_are_one_config_error(overrides, message):
    with pytest.raises(ConfigError) as err:
        sim_config(compose_overrides(R1 + overrides))
    assert str(err.value).startswith(message), str(err.value)


def test_the_cli_reports_a_bad_draft_length_on_one_line_with_exit_2(tmp_path):
    proc = subprocess.run(HERMES_SIM + R1 + ["spec_decoding.method=mtp",
                                             "spec_decoding.draft_tokens=0"],
                          cwd=tmp_path, capture_output=True, text=True, env=subprocess_env(),
                          timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines() == [
        "hermes-sim: error: spec_decoding.draft_tokens=0: must be an integer >= 1"]


def test_the_record_says_how_the_pool_drafts(tmp_path):
    proc = subprocess.run(HERMES_SIM + R1 + ["spec_decoding.method=mtp",
                                             "spec_decoding.draft_tokens=2"],
                          cwd=tmp_path, capture_output=True, text=True, env=subprocess_env(),
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    record = json.loads(proc.stdout)["deployment"]["pools"][0]["spec_decoding"]
    assert record["method"] == "mtp" and record["draft_tokens"] == 2
    assert record["acceptance_length"] == pytest.approx(2.58)


def test_the_report_names_the_drafting_in_plain_words():
    from hermes_opt.report.engine_flags import describe
    pool = {"name": "llm", "engine": "trtllm 1.0", "tp": 8, "pp": 1, "ep": 8, "attention_dp": True,
            "batching": "mixed", "weight_dtype": "nvfp4", "kv_dtype": "fp8",
            "scheduler": {"max_num_seqs": 2048, "max_batched_tokens": 8192},
            "spec_decoding": {"method": "mtp", "draft_tokens": 3, "acceptance_length": 2.82,
                              "draft_model": None}}
    text = describe(pool)
    assert text.endswith("MTP speculative decoding, 3 draft tokens (acceptance length 2.82)"), text
    assert "speculative" not in describe({**pool, "spec_decoding": None})
