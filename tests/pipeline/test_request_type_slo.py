"""Per-request-type latency figures (summary ``request_types``) and per-type SLO overrides."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pipeline_builders as pb
import pytest

from sim import (
    BatchPolicy,
    ConfigError,
    RequestTypeSpec,
    SchedulerSpec,
    SimConfig,
    SLOSpec,
    WorkloadSpec,
    simulate,
)

STATS = ("mean", "p50", "p90", "p99")
GLOBAL_SLO = SLOSpec(ttft_ms=100.0, tpot_ms=30.0)


def two_types(*, chat_slo: SLOSpec | None = None, long_slo: SLOSpec | None = None,
              slo: SLOSpec = GLOBAL_SLO, n: int = 300, rate: float = 10.0,
              record: bool = False) -> SimConfig:
    """Short chat requests and long-prompt ones sharing one 8B replica near saturation, so both
    types queue and some of each miss the SLO; chat ends with a CPU post-processing stage (TPOT is
    measured to the last token, not to the end of the request)."""
    chat = RequestTypeSpec(name="chat", weight=0.7, slo=chat_slo,
                           plan=(pb.stage("generate", "llm"), pb.stage("postprocess", "cpu")),
                           prompt_tokens=pb.lognormal(200, 100),
                           output_tokens=pb.lognormal(60, 150, lo=1))
    long = RequestTypeSpec(name="long", weight=0.3, slo=long_slo, plan=(pb.stage("generate", "llm"),),
                           prompt_tokens=pb.lognormal(3000, 1000, lo=500, hi=8000),
                           output_tokens=pb.lognormal(300, 150))
    return SimConfig(pools=(pb.llm_pool(), pb.cpu_pool()), slo=slo, record_requests=record,
                     workload=WorkloadSpec(num_requests=n, arrival=pb.poisson(rate),
                                           request_types=(chat, long)))


def by_hand(rows: list[dict], slos: dict[str, SLOSpec]) -> dict[str, dict]:
    """The section recomputed from the per-request rows (milliseconds, NumPy percentiles)."""
    done = [r for r in rows if r["status"] == "completed"]
    span_s = max(r["finish_s"] for r in done) - min(r["arrival_s"] for r in done)
    out = {}
    for name, slo in slos.items():
        mine = [r for r in done if r["type"] == name]

        def meets(r, slo=slo):
            tpot = r["tpot_ms"] if r["tpot_ms"] is not None else 0.0
            return ((slo.ttft_ms is None or r["ttft_ms"] <= slo.ttft_ms)
                    and (slo.tpot_ms is None or tpot <= slo.tpot_ms)
                    and (slo.e2e_ms is None or r["e2e_ms"] <= slo.e2e_ms))
        good = [r for r in mine if meets(r)]
        entry = {"requests_completed": len(mine),
                 "requests_rejected": sum(r["type"] == name and r["status"] == "rejected"
                                          for r in rows),
                 "output_tokens_per_s": sum(r["output_tokens"] for r in mine) / span_s,
                 "goodput_output_tokens_per_s": sum(r["output_tokens"] for r in good) / span_s,
                 "slo_attainment": len(good) / len(mine)}
        for metric in ("ttft_ms", "tpot_ms", "e2e_ms"):
            values = np.array([r[metric] for r in mine if r[metric] is not None])
            entry[metric] = {"mean": values.mean(),
                             **{f"p{p}": np.percentile(values, p) for p in (50, 90, 99)}}
        out[name] = entry
    return out


def assert_close(got: dict, want: dict) -> None:
    for name, entry in want.items():
        for key, value in entry.items():
            if isinstance(value, dict):
                for stat in STATS:
                    assert got[name][key][stat] == pytest.approx(value[stat], rel=1e-9), (name, key, stat)
            else:
                assert got[name][key] == pytest.approx(value, rel=1e-12), (name, key)


def test_per_type_figures_equal_the_ones_computed_from_the_request_rows():
    result = simulate(two_types(record=True), seed=3)
    section = result.summary["request_types"]
    assert list(section) == ["chat", "long"]  # workload order
    # some chat answers are one token long (no TPOT): the per-type TPOT must skip exactly those
    assert any(r["type"] == "chat" and r["output_tokens"] == 1 and r["status"] == "completed"
               for r in result.requests)
    want = by_hand(result.requests, {"chat": GLOBAL_SLO, "long": GLOBAL_SLO})
    assert_close(section, want)
    # the scenario is informative: both types have requests on either side of the SLO
    assert 0 < section["chat"]["slo_attainment"] < 1 and 0 < section["long"]["slo_attainment"] < 1
    # and the types add up to the workload-wide figures
    s = result.summary
    assert sum(v["requests_completed"] for v in section.values()) == s["requests_completed"]
    assert sum(v["goodput_output_tokens_per_s"] for v in section.values()) == pytest.approx(
        s["goodput_output_tokens_per_s"], rel=1e-12)


def test_per_type_override_counts_each_request_against_its_own_types_slo():
    base = simulate(two_types(record=True), seed=3)
    looser = SLOSpec(ttft_ms=5000.0)  # long prompts may start later; tpot inherits 30 ms
    relaxed = simulate(two_types(long_slo=looser, record=True), seed=3)
    b, r = base.summary, relaxed.summary
    # the simulation itself is the same; only what counts as goodput changed
    assert r["ttft_ms"] == b["ttft_ms"] and r["request_types"]["long"]["ttft_ms"] == \
        b["request_types"]["long"]["ttft_ms"]
    assert r["request_types"]["chat"] == b["request_types"]["chat"]
    assert r["request_types"]["long"]["slo_attainment"] > b["request_types"]["long"]["slo_attainment"]
    assert r["goodput_output_tokens_per_s"] > b["goodput_output_tokens_per_s"]
    assert r["slo_attainment"] > b["slo_attainment"]
    want = by_hand(relaxed.requests, {"chat": GLOBAL_SLO,
                                      "long": SLOSpec(ttft_ms=5000.0, tpot_ms=30.0)})
    assert_close(r["request_types"], want)
    # a stricter chat target lowers chat's (and the workload's) goodput
    strict = simulate(two_types(chat_slo=SLOSpec(ttft_ms=20.0)), seed=3).summary
    assert strict["request_types"]["chat"]["slo_attainment"] < b["request_types"]["chat"]["slo_attainment"]
    assert strict["goodput_output_tokens_per_s"] < b["goodput_output_tokens_per_s"]
    assert strict["request_types"]["long"] == b["request_types"]["long"]


def test_infinite_override_removes_a_target_and_equal_override_changes_nothing():
    base = simulate(two_types(), seed=3).summary
    same = simulate(two_types(long_slo=SLOSpec(ttft_ms=100.0)), seed=3).summary
    assert same == base
    no_ttft = simulate(two_types(long_slo=SLOSpec(ttft_ms=math.inf)), seed=3).summary
    only_tpot = simulate(two_types(slo=SLOSpec(tpot_ms=30.0)), seed=3).summary
    assert no_ttft["request_types"]["long"]["slo_attainment"] == \
        only_tpot["request_types"]["long"]["slo_attainment"]
    assert no_ttft["request_types"]["chat"] == base["request_types"]["chat"]


def test_single_type_section_repeats_the_workload_figures():
    s = simulate(pb.config([pb.llm_pool()], [pb.stage("generate", "llm")], n=100,
                           slo=SLOSpec(ttft_ms=100.0), type_name="only"), seed=0).summary
    entry = s["request_types"]["only"]
    assert list(s["request_types"]) == ["only"]
    for key in ("requests_completed", "requests_rejected", "output_tokens_per_s",
                "goodput_output_tokens_per_s", "slo_attainment", "ttft_ms", "tpot_ms", "e2e_ms"):
        assert entry[key] == s[key], key


def test_type_that_completes_nothing_has_nan_latencies_and_counts_its_rejections():
    # continuous batching cannot admit a prompt above max_batched_tokens: every 'huge' is rejected
    sched = SchedulerSpec(policy=BatchPolicy.CONTINUOUS, max_batched_tokens=4096)
    small = RequestTypeSpec(name="small", plan=(pb.stage("generate", "llm"),),
                            prompt_tokens=pb.fixed(100), output_tokens=pb.fixed(20))
    huge = RequestTypeSpec(name="huge", weight=0.2, plan=(pb.stage("generate", "llm"),),
                           prompt_tokens=pb.fixed(6000), output_tokens=pb.fixed(20))
    cfg = SimConfig(pools=(pb.llm_pool(scheduler=sched),), slo=SLOSpec(ttft_ms=1000.0),
                    workload=WorkloadSpec(num_requests=100, arrival=pb.poisson(5.0),
                                          request_types=(small, huge)))
    s = simulate(cfg, seed=0).summary
    entry = s["request_types"]["huge"]
    assert entry["requests_completed"] == 0 and entry["requests_rejected"] == s["requests_rejected"] > 0
    assert all(math.isnan(entry[m][stat]) for m in ("ttft_ms", "tpot_ms", "e2e_ms") for stat in STATS)
    assert entry["slo_attainment"] == 0.0 and entry["output_tokens_per_s"] == 0.0
    assert s["request_types"]["small"]["requests_rejected"] == 0
    assert s["request_types"]["small"]["requests_completed"] == s["requests_completed"]


def test_override_helper_and_validation_name_the_field():
    merged = SLOSpec(ttft_ms=1000.0, tpot_ms=50.0).overridden(SLOSpec(ttft_ms=30000.0))
    assert merged == SLOSpec(ttft_ms=30000.0, tpot_ms=50.0, e2e_ms=None)
    for bad, fragment in ((SLOSpec(ttft_ms=-5.0), "workload.request_types.long.slo.ttft_ms=-5.0"),
                          (SLOSpec(e2e_ms=float("nan")), "workload.request_types.long.slo.e2e_ms=nan"),
                          ({"ttft_ms": 5.0}, "workload.request_types.long.slo=")):
        with pytest.raises(ConfigError) as info:
            two_types(long_slo=bad)
        assert fragment in str(info.value)


def run_sim(args, cwd):
    return subprocess.run([sys.executable, "-c", "from hermes_opt.cli.sim_command import main; main()",
                           *args], capture_output=True, text=True, cwd=cwd, timeout=120)


MIX = ["workload=pipeline_mix", "+cluster=mix_8gpu", "workload.num_requests=150"]


@pytest.mark.parametrize("override,fragment", [
    ("+workload.request_types.math_reasoning.slo.ttft=500",
     "workload.request_types.math_reasoning.slo.ttft=500: unknown key; allowed: ttft_ms, tpot_ms, e2e_ms"),
    ("+workload.request_types.math_reasoning.slo.tpot_ms=-1",
     "workload.request_types.math_reasoning.slo.tpot_ms=-1.0: must be > 0"),
    ("+workload.request_types.math_reasoning.slo=500",
     "workload.request_types.math_reasoning.slo=500: must be a mapping"),
    ("+workload.request_types.math_reasoning.slo.e2e_ms=soon",
     "workload.request_types.math_reasoning.slo.e2e_ms='soon': must be a number"),
])
def test_cli_bad_per_type_slo_is_one_line_exit_2(tmp_path, override, fragment):
    proc = run_sim([*MIX, override], tmp_path)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"hermes-sim: error: {fragment}"), proc.stderr


def test_cli_per_type_slo_from_the_command_line(tmp_path):
    # a per-type TPOT target below the type's p99 (~28 ms) makes some of its requests miss
    base = json.loads(run_sim([*MIX, "+workload.request_types.math_reasoning.slo.tpot_ms=20"],
                              tmp_path).stdout)
    loose = json.loads(run_sim([*MIX, "+workload.request_types.math_reasoning.slo.ttft_ms=600000",
                                "+workload.request_types.math_reasoning.slo.tpot_ms=1000"],
                               tmp_path).stdout)
    assert list(base["request_types"]) == ["chat_rag_kv", "code_kv", "math_reasoning", "qa_routed",
                                           "rag_news"]  # JSON keys are sorted by the CLI
    math_base, math_loose = (s["request_types"]["math_reasoning"] for s in (base, loose))
    assert math_loose["slo_attainment"] == 1.0 > math_base["slo_attainment"]
    assert loose["goodput_output_tokens_per_s"] > base["goodput_output_tokens_per_s"]
    for name in ("qa_routed", "rag_news", "code_kv", "chat_rag_kv"):
        assert loose["request_types"][name] == base["request_types"][name]
