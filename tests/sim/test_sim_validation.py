"""Invalid inputs raise ConfigError — not any other exception — naming the field."""

from __future__ import annotations

import pytest

from sim import (
    ArrivalKind,
    ArrivalSpec,
    BatchPolicy,
    ConfigError,
    DType,
    LengthSpec,
    RequestTypeSpec,
    SimConfig,
    SLOSpec,
    Stage,
    StageKind,
    TraceRecords,
    WorkloadSpec,
    simulate,
)


def raises_config_error(build, *fragments):
    with pytest.raises(ConfigError) as info:
        build()
    assert type(info.value) is ConfigError
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, message
    return message


CASES = {
    "tp_not_dividing_heads": (
        lambda b: b.make_config(pool=b.make_pool(tp=3)),
        ("cluster.pools.llm.tp=3", "num_heads=32")),
    "tp_not_multiple_of_kv_heads": (
        lambda b: b.make_config(pool=b.make_pool(model=b.llama_8b(num_heads=48), tp=12)),
        ("cluster.pools.llm.tp=12", "num_kv_heads")),
    "pp_not_dividing_layers": (
        lambda b: b.make_config(pool=b.make_pool().__class__(
            name="llm", model=b.llama_8b(), hardware=b.h100(), pp=3)),
        ("cluster.pools.llm.pp=3",)),
    "zero_replicas": (
        lambda b: b.make_config(pool=b.make_pool(num_replicas=0)),
        ("cluster.pools.llm.num_replicas=0",)),
    "negative_rate": (
        lambda b: b.make_config(arrival=b.poisson(-2.0)),
        ("workload.arrival.rate_per_s=-2.0",)),
    "nan_rate": (
        lambda b: b.make_config(arrival=b.poisson(float("nan"))),
        ("workload.arrival.rate_per_s",)),
    "min_tokens_zero": (
        lambda b: b.make_config(prompt=LengthSpec(mean=10, min_tokens=0)),
        ("workload.request_types.chat.prompt_tokens.min_tokens=0",)),
    "max_below_min_tokens": (
        lambda b: b.make_config(output=LengthSpec(mean=10, min_tokens=5, max_tokens=4)),
        ("workload.request_types.chat.output_tokens.max_tokens=4",)),
    "zero_requests": (
        lambda b: b.make_config(num_requests=0),
        ("workload.num_requests=0",)),
    "closed_loop_zero_concurrency": (
        lambda b: b.make_config(arrival=ArrivalSpec(kind=ArrivalKind.CLOSED_LOOP, concurrency=0)),
        ("workload.arrival.concurrency=0",)),
    "trace_arrival_without_trace": (
        lambda b: b.make_config(arrival=ArrivalSpec(kind=ArrivalKind.TRACE)),
        ("workload.trace",)),
    "utilization_above_one": (
        lambda b: b.make_config(pool=b.make_pool(gpu_memory_utilization=1.2)),
        ("cluster.pools.llm.scheduler.gpu_memory_utilization=1.2",)),
    "chunk_budget_not_above_max_seqs": (
        lambda b: b.make_config(pool=b.make_pool(policy=BatchPolicy.CHUNKED, max_num_seqs=256,
                                                 chunk_size_tokens=256)),
        ("cluster.pools.llm.scheduler.chunk_size_tokens=256",)),
    "negative_slo": (
        lambda b: b.make_config(slo=SLOSpec(ttft_ms=-1.0)),
        ("slo.ttft_ms=-1.0",)),
    "plan_names_missing_pool": (
        lambda b: SimConfig(pools=(b.make_pool(),), workload=WorkloadSpec(request_types=(
            RequestTypeSpec(name="rag", plan=(Stage(kind=StageKind.GENERATE, pool="nope"),)),))),
        ("workload.request_types.rag.plan", "'nope'")),
    "duplicate_pool_names": (
        lambda b: SimConfig(pools=(b.make_pool(), b.make_pool()),
                            workload=b.make_config().workload),
        ("cluster.pools",)),
    "unsorted_trace": (
        lambda b: TraceRecords(arrival_s=(0.0, 2.0, 1.0), prompt_tokens=(5, 5, 5),
                               output_tokens=(5, 5, 5), source="azure.csv"),
        ("workload.trace", "sorted")),
    "trace_zero_tokens": (
        lambda b: TraceRecords(arrival_s=(0.0, 1.0), prompt_tokens=(5, 0), output_tokens=(5, 5)),
        ("workload.trace.prompt_tokens",)),
    "model_kv_heads_not_dividing_heads": (
        lambda b: b.llama_8b(num_kv_heads=5),
        ("model[llama3_1_8b].num_kv_heads=5",)),
    "hardware_negative_memory": (
        lambda b: b.h100().__class__(name="bad", memory_bytes=-1.0, mem_bw_bytes_per_s=1.0,
                                     bf16_flops_per_s=1.0, scaleup_bw_bytes_per_s=1.0,
                                     host_bw_bytes_per_s=1.0),
        ("hardware[bad].memory_bytes",)),
}


@pytest.mark.parametrize("case", list(CASES))
def test_invalid_config_raises_config_error_naming_the_field(sim_build, case):
    build, fragments = CASES[case]
    raises_config_error(lambda: build(sim_build), *fragments)


def test_model_that_does_not_fit_says_by_how_much(sim_build):
    cfg = sim_build.make_config(pool=sim_build.make_pool(model=sim_build.llama_70b()),
                                num_requests=5)
    message = raises_config_error(lambda: simulate(cfg), "cluster.pools.llm", "short by",
                                  "llama3_1_70b", "tp=1")
    assert "GB" in message


def test_model_fits_once_sharded(sim_build):
    """70.6 GB of bf16 weights per device at tp=2 is still too much; tp=4 fits."""
    two = sim_build.make_pool(model=sim_build.llama_70b(), tp=2)
    raises_config_error(lambda: simulate(sim_build.make_config(pool=two, num_requests=1)),
                        "tp=2", "short by")
    pool = sim_build.make_pool(model=sim_build.llama_70b(), tp=4)
    result = simulate(sim_build.make_config(pool=pool, num_requests=5), seed=0)
    assert result.summary["requests_completed"] == 5


def test_fp8_weights_halve_the_weight_footprint(sim_build):
    """70B in bf16 is short by more than fp8 weights are on one 80 GB device."""
    bf16 = raises_config_error(lambda: simulate(sim_build.make_config(
        pool=sim_build.make_pool(model=sim_build.llama_70b()), num_requests=1)), "short by")
    fp8 = raises_config_error(lambda: simulate(sim_build.make_config(
        pool=sim_build.make_pool(model=sim_build.llama_70b(), weight_dtype=DType.FP8),
        num_requests=1)), "short by")

    def short_gb(message):
        return float(message.split("short by ")[1].split(" GB")[0])

    assert short_gb(fp8) < short_gb(bf16) / 2


def test_nonpositive_constant_step_is_a_config_error(sim_build):
    cfg = sim_build.make_config(pool=sim_build.make_pool(cost=sim_build.constant_cost(0.0)))
    raises_config_error(lambda: simulate(cfg), "constant_step_s")
