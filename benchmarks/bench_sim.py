"""Simulator speed: simulated requests per wall-clock second (issue 2: >= 20,000 on one core;
issue 13: >= 50,000 with the chunked policy).

Scenario: chat workload with ShareGPT-like lengths (log-normal, mean prompt 161 / output 338 tokens)
on 8 replicas of Llama-3.1-8B on H100 (roofline cost model), Poisson arrivals at 80% of the
deployment's saturation throughput (measured first with an all-at-once run, not timed).

    python benchmarks/bench_sim.py [--requests 100000] [--policy chunked] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json

from speed import time_at_load

from hermes_opt.compose import catalog, to_sim
from sim import (
    ArrivalSpec,
    BatchPolicy,
    CostModelSpec,
    LengthKind,
    LengthSpec,
    PoolSpec,
    RequestTypeSpec,
    SchedulerSpec,
    SimConfig,
    Stage,
    StageKind,
    WorkloadSpec,
)


def engine_cost(name: str | None) -> CostModelSpec:
    """The roofline terms an engine gives this pool (``--engine``: its efficiency-table entry, host
    costs and graph capture), so the engine model's speed cost is measured on the same workload
    and scheduler; None = the plain roofline."""
    if name is None:
        return CostModelSpec()
    from hermes_opt.compose import efficiency, engines
    engine = engines.resolve(catalog.entry("engine", name), catalog.entry("hardware", "h100_sxm"),
                             "bf16", "engine")
    return CostModelSpec(roofline=efficiency.roofline_params(
        {}, engine, efficiency.lookup(engine, "bf16")))


def chat_config(num_requests: int, arrival: ArrivalSpec, policy: BatchPolicy,
                engine: str | None = None) -> SimConfig:
    pool = PoolSpec(name="llm", model=to_sim.model_spec(catalog.entry("model", "llama3_1_8b")),
                    hardware=to_sim.hardware_spec(catalog.entry("hardware", "h100_sxm")),
                    num_replicas=8, scheduler=SchedulerSpec(policy=policy, chunk_size_tokens=2048),
                    cost_model=engine_cost(engine))
    chat = RequestTypeSpec(
        name="chat", plan=(Stage(kind=StageKind.GENERATE, pool="llm"),),
        prompt_tokens=LengthSpec(kind=LengthKind.LOGNORMAL, mean=161, std=200, min_tokens=4,
                                 max_tokens=4096),
        output_tokens=LengthSpec(kind=LengthKind.LOGNORMAL, mean=338, std=300, min_tokens=4,
                                 max_tokens=2048))
    return SimConfig(pools=(pool,), workload=WorkloadSpec(num_requests=num_requests, arrival=arrival,
                                                          request_types=(chat,)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--policy", default="chunked", choices=[p.value for p in BatchPolicy])
    parser.add_argument("--load", type=float, default=0.8, help="fraction of saturation throughput")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--engine", help="cost model from this engine (vllm, sglang, trtllm): "
                                         "efficiency table, host costs, graph capture")
    args = parser.parse_args()
    policy = BatchPolicy(args.policy)
    capacity, rate, times, result = time_at_load(
        lambda n, arrival: chat_config(n, arrival, policy, args.engine), args.requests, args.load,
        args.repeat)
    best = min(times)
    s = result.summary
    print(json.dumps({
        "benchmark": "sim_speed", "policy": policy.value, "engine": args.engine,
        "requests": args.requests,
        "capacity_requests_per_s": round(capacity, 2), "rate_per_s": round(rate, 2),
        "utilization": round(s["pools"]["llm"]["utilization"], 3),
        "wall_s_best": round(best, 3), "wall_s_all": [round(t, 3) for t in times],
        "simulated_requests_per_wall_s": round(args.requests / best),
        "events": s["num_events"], "ttft_p99_ms": round(s["ttft_ms"]["p99"], 1),
        "tpot_p50_ms": round(s["tpot_ms"]["p50"], 2), "preemptions": s["preemptions"],
    }))


if __name__ == "__main__":
    main()
