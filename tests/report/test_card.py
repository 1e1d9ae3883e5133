"""The decision card (hermes_opt/report/card.py, products.py, engine_flags.py, card_inputs.py):
product names and servers from the catalog, cost per month = $/hour x 730, the price's
provenance from the stored record, engine flags, and the rows the post-study assessment fills
(or says are not measured)."""

from __future__ import annotations

import re

import pandas as pd
import pytest
from records import record_of, trial_row

from hermes_opt.report import card, engine_flags, products
from hermes_opt.report.trials import top_configurations
from hermes_opt.study.definition import from_dict
from sim.errors import ConfigError

QWEN = "hermes-sim model=qwen3_32b cluster.weight_dtype=fp8 workload.arrival.rate_per_s=8"
H200 = f"{QWEN} hardware=h200 cluster.num_replicas=2 scheduler=continuous scheduler.max_num_seqs=194"
B200 = f"{QWEN} hardware=b200 cluster.num_replicas=2"
ASSESSMENT = {
    "headroom": {"trial": 0, "capacity_rate_per_s": 14.6, "demand_rate_per_s": 8.0,
                 "ratio": 1.825},
    "robustness": {"p_best": 0.62, "verdict": "within the noise",
                   "alternative": "2 x NVIDIA B200 (trial 1)",
                   "break_even": ["the B200 price falls below $5.10/hour"]},
    "load_table": [{"multiple": 2.0, "deployment": "4 x NVIDIA H200 SXM", "usd_per_hour": 18.0,
                    "trial": None},
                   {"multiple": 1.0, "deployment": "2 x NVIDIA H200 SXM", "usd_per_hour": 9.0,
                    "trial": 0},
                   {"multiple": 8.0, "deployment": "", "usd_per_hour": None, "trial": None}],
}


def study(replicates=3):
    return from_dict({"name": "card", "base": ["model=qwen3_32b", "cluster.weight_dtype=fp8"],
                      "space": {"hardware": {"choices": ["h200", "b200"]},
                                "scheduler.max_num_seqs": {"type": "int", "low": 16,
                                                           "high": 256}},
                      "constraints": ["ttft_ms.p99 <= 250", "tpot_ms.p99 <= 40"],
                      "replicates": replicates})


def row(trial, replay, objective, cost, ttft=180.0, outcome="feasible"):
    out = {"trial": trial, "outcome": outcome, "reason": "", "replay": f"{replay} seed=0",
           "param:hardware": re.search(r"hardware=(\w+)", replay).group(1),
           "param:scheduler.max_num_seqs": 194, "objective:slo_tokens_per_usd": objective,
           "std:slo_tokens_per_usd": objective * 0.01, "metric:cost_usd_per_hour": cost,
           "metric:ttft_ms.p99": ttft, "metric:tpot_ms.p99": 20.0,
           "metric:steady_state.goodput_output_tokens_per_s": 1000.0}
    stored = trial_row(replay)
    return {**out, **stored, "_overrides": stored["_overrides"][2:]}


FRAME = pd.DataFrame([row(0, H200, 1000.0, 9.0), row(1, B200, 995.0, 14.3, ttft=120.0)])


def the_card(assessment=None, frame=FRAME):
    spec = study()
    return card.decision_card(spec, frame, top_configurations(frame, spec), assessment)


def rows(c):
    return dict(c.rows)


def test_cost_per_month_is_the_hourly_cost_times_730():
    c = the_card()
    assert card.monthly(9.0) == 9.0 * 730 == 6570
    assert rows(c)["Cost"] == ("$6,570 per month ($9.00 per hour x 730 hours) at the demand of "
                               "8 requests/s")
    assert "$6,570 per month at the demand of 8 requests/s" in c.headline


def test_the_headline_names_products_servers_and_engine():
    c = the_card()
    assert c.headline.startswith("Recommendation: 2 x NVIDIA H200 SXM in one HGX H200 8-GPU "
                                 "server (2 of its 8 GPUs) on vLLM 0.11: ")
    assert rows(c)["Hardware"] == ("2 x NVIDIA H200 SXM in one HGX H200 8-GPU server (2 of its 8 "
                                   "GPUs), 2 replicas of TP 1")
    usd_m = 9.0 / (1000.0 * 3600 / 1e6)
    assert c.headline.endswith(f", ${usd_m:.3g} per million SLO-meeting output tokens.")
    assert rows(c)["Per million tokens"] == (f"${usd_m:.3g} per million SLO-meeting output "
                                             f"tokens (steady state)")


def test_the_price_row_names_provider_product_date_kind_trust_and_set():
    price = rows(the_card())["Price"]
    assert price == ("NVIDIA H200 SXM: $4.50 per GPU-hour, Nebius: HGX H200 on-demand, per GPU; "
                     "observed 2026-09-25; on-demand; trust B. Price set ondemand_2026_11 "
                     "(2026-11-09); trust A-D as in the catalog, D = an estimate")


def test_the_engine_row_gives_the_flags_of_the_simulated_settings():
    engine = rows(the_card())["Engine"]
    assert engine.startswith("vLLM 0.11: `--tensor-parallel-size 1` `--max-num-seqs 194` "
                             "`--max-num-batched-tokens ")
    assert "`--quantization fp8`" in engine and "`--no-enable-chunked-prefill`" in engine
    assert "continuous batching, whole prompts (no chunked prefill)" in engine


def test_without_an_assessment_the_rows_say_what_is_not_measured_and_how_to_measure_it():
    r = rows(the_card())
    assert r["Headroom"].startswith("not measured (the study simulated the offered 8 requests/s "
                                    "only); measure it with `hermes-opt capacity study=card ")
    assert "hardware=h200" in r["Headroom"] and "scheduler.max_num_seqs=194" in r["Headroom"]
    assert r["Confidence"].startswith("not assessed (the study stores no robustness assessment); "
                                      "replicate spread ±1.0% over 3 workload seeds; the next "
                                      "alternative (trial 1: 2 x NVIDIA B200 (2 replicas of TP 1)"
                                      ", p99 TTFT 120 ms) is -0.5%, within it")
    apart = pd.DataFrame([row(0, H200, 1000.0, 9.0), row(1, B200, 900.0, 14.3)])
    assert "is -10.0%, outside it" in rows(the_card(frame=apart))["Confidence"]
    assert r["Cost at other loads"].startswith("not assessed")
    assert not re.search(r"\d", r["Cost at other loads"])  # no number it did not measure
    assert the_card().load_table is None


def test_an_assessment_fills_headroom_confidence_and_the_cost_at_other_loads():
    c = the_card(ASSESSMENT)
    r = rows(c)
    assert r["Headroom"] == ("sustains 14.6 requests/s within every SLO against the demand of 8 "
                             "requests/s (1.82x)")
    assert r["Confidence"].startswith("within the noise, best in 62% of resamples; cannot be "
                                      "told apart from 2 x NVIDIA B200 (trial 1); another choice "
                                      "wins if the B200 price falls below $5.10/hour. The "
                                      "simulator's measured error")
    robust = {"robustness": {"p_best": 0.97, "verdict": "robust", "alternative": None}}
    assert rows(the_card(robust))["Confidence"].startswith("robust, best in 97% of resamples. ")
    assert r["Cost at other loads"] == ("1x demand: $6,570/month, 2 x NVIDIA H200 SXM; 2x demand: "
                                        "$13,140/month, 4 x NVIDIA H200 SXM; 8x demand: no "
                                        "deployment meets the SLOs")
    assert [x["multiple"] for x in c.load_table] == [1.0, 2.0, 8.0]  # sorted by load


def test_headroom_measured_on_another_trial_says_which():
    other = {**ASSESSMENT, "headroom": {**ASSESSMENT["headroom"], "trial": 7}}
    assert rows(the_card(other))["Headroom"].endswith("(1.82x; measured on trial 7)")


@pytest.mark.parametrize("bad, message", [
    ({"headroom": {"capacity_rate_per_s": "fast", "demand_rate_per_s": 8, "ratio": 1}},
     "assessment.headroom.capacity_rate_per_s='fast': must be a number >= 0"),
    ({"robustness": {"p_best": 1.5, "verdict": "robust"}},
     "assessment.robustness.p_best=1.5: must be a number in [0, 1]"),
    ({"robustness": {"p_best": 0.9, "verdict": ""}},
     "assessment.robustness.verdict='': must be a non-empty string"),
    ({"load_table": [{"multiple": 1, "deployment": "x", "usd_per_hour": -3, "trial": None}]},
     "assessment.load_table[0].usd_per_hour=-3: must be a number > 0, or null when no deployment "
     "meets the SLOs"),
    ({"load_table": []}, "assessment.load_table=[]: must be a non-empty list"),
    ([1, 2], "assessment=[1, 2]: must be a mapping"),
])
def test_a_malformed_assessment_is_one_clear_error(bad, message):
    with pytest.raises(ConfigError) as err:
        the_card(bad)
    assert str(err.value) == message


def test_the_best_alternative_on_other_hardware():
    alt = rows(the_card())["Best on other hardware"]
    assert alt.startswith("2 x NVIDIA B200 in one HGX B200 8-GPU server (2 of its 8 GPUs) on "
                          "vLLM 0.11 (trial 1): $10,439 per month")
    assert alt.endswith("; -0.5% SLO-meeting tokens per $")


def test_no_feasible_trial_means_no_card():
    infeasible = pd.DataFrame([row(0, H200, 1.0, 9.0, outcome="violates SLO")])
    assert the_card(frame=infeasible) is None


@pytest.mark.parametrize("replicas, tp, per_server, servers", [
    (2, 1, 8, 1), (8, 1, 8, 1), (9, 1, 8, 2), (3, 4, 8, 2), (1, 16, 8, 2), (2, 16, 8, 4),
    (5, 1, 4, 2), (3, 3, 8, 2)])
def test_servers_hold_whole_replicas(replicas, tp, per_server, servers):
    assert products.servers_needed(replicas, tp, per_server) == servers


def test_server_phrases():
    pool = {"name": "llm", "hardware": "b200", "devices": 16, "replicas": 2, "tp": 8, "pp": 1,
            "accelerated_model": True}
    assert products.pool_hardware(pool).server_phrase() == "two HGX B200 8-GPU servers"
    wide = {**pool, "replicas": 1, "tp": 16}
    assert products.pool_hardware(wide).server_phrase() == (
        "two HGX B200 8-GPU servers; TP 16 spans 2 servers per replica")
    tray = {**pool, "hardware": "gb200", "devices": 6, "replicas": 6, "tp": 1}
    assert products.pool_hardware(tray).server_phrase() == (
        "two GB200 NVL72 compute trays (6 of their 8 GPUs)")
    inline = {**pool, "hardware": "my_custom_gpu"}  # not in the catalog: no guessed server count
    assert products.pool_hardware(inline).server_phrase() == ""
    assert products.pool_hardware(inline).count == "16 x my_custom_gpu"


def test_engine_flags_of_other_engines():
    pool = {"engine": "sglang 0.5", "tp": 2, "pp": 1, "batching": "chunked",
            "weight_dtype": "fp8", "kv_dtype": "fp8",
            "scheduler": {"max_num_seqs": 512, "max_batched_tokens": 8192,
                          "chunk_size_tokens": 4096}}
    # the flag table's rules (conf/tables/engine_flags.yaml): SGLang's mixed chunk puts the
    # prompt chunk into the decodes' step, as the chunked policy simulates
    assert engine_flags.flags(pool) == (
        ["--tp-size 2", "--max-running-requests 512", "--max-prefill-tokens 4096",
         "--chunked-prefill-size 4096", "--enable-mixed-chunk", "--quantization fp8",
         "--kv-cache-dtype fp8_e4m3"],
        ["continuous batching with chunked prefill"])
    trt = {**pool, "engine": "trtllm 1.0"}  # FP8 and chunking live in its options, not flags
    assert engine_flags.flags(trt) == (
        ["--backend pytorch", "--tp_size 2", "--max_batch_size 512", "--max_num_tokens 4096"],
        ["continuous batching with chunked prefill", "weights fp8 (quantized checkpoint)",
         "KV cache fp8"])
    # a version the table does not have: no flags, and the card says so
    assert engine_flags.flags({**pool, "engine": "vllm 0.9"}) == (
        [], ["the flag table has no vllm 0.9 (flags not written; add the version to "
             "conf/tables/engine_flags.yaml)"])
    assert engine_flags.describe({"name": "cpu"}) is None


def test_stages_colocated_on_the_llm_are_named_as_such_not_as_zero_devices():
    replay = ("hermes-sim workload=hybrid_rag +cluster=hybrid_rag cluster.num_replicas=3 "
              "cluster.pools.embed.placement=colocated cluster.pools.search.placement=colocated "
              "cluster.pools.rerank.placement=gpu cluster.pools.rerank.num_replicas=3")
    record = record_of(replay)
    text = card._hardware_row(study(), pd.Series({}), record)
    assert "the embed and search stages on the llm pool's GPUs" in text
    assert "rerank: 3 x NVIDIA L40S" in text and "0 x" not in text
    assert products.short_layout(record) == ("llm 3 x NVIDIA H100 SXM (3 replicas of TP 1) + "
                                             "rerank 3 x NVIDIA L40S (3 replicas of TP 1)")
