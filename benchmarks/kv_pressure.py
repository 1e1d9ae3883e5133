"""KV-cache pressure: do the batching policies thrash (preempt, recompute, re-admit) when the paged
KV cache cannot hold every sequence the sequence budget allows?

Scenario (KV-starved on purpose): Llama-3.1-70B on one H100 x TP4 replica with
``gpu_memory_utilization`` lowered so only ~``--kv-gb`` GB per replica holds KV (the rest of the
device memory is left unused), ``max_num_seqs`` 256, long prompts (log-normal mean 3000 tokens)
and medium outputs (mean 600): at 256 sequences the batch would need ~4x the KV cache. Requests
arrive all at once (``max_load``) or as Poisson at ``--rate``. Roofline cost model; chunked uses
2048-token chunks, continuous/mixed an 8192-token step budget. Each policy prints throughput,
preemptions per request and TTFT/TPOT p99, one JSON line per policy and arrival.

    python benchmarks/kv_pressure.py [--requests 2000] [--kv-gb 30] [--rate 1.0]
                                     [--watermark 0.01]
"""

from __future__ import annotations

import argparse
import json
import time

from hermes_opt.compose import catalog, to_sim
from sim import (
    ArrivalKind,
    ArrivalSpec,
    BatchPolicy,
    DType,
    LengthKind,
    LengthSpec,
    PoolSpec,
    RequestTypeSpec,
    SchedulerSpec,
    SimConfig,
    Stage,
    StageKind,
    WorkloadSpec,
    simulate,
)
from sim.hardware.memory import weight_bytes_per_device

POLICIES = (BatchPolicy.CONTINUOUS, BatchPolicy.MIXED, BatchPolicy.CHUNKED)


def kv_starved_config(policy: BatchPolicy, num_requests: int, arrival: ArrivalSpec, *,
                      kv_gb: float, watermark: float | None) -> SimConfig:
    model = to_sim.model_spec(catalog.entry("model", "llama3_1_70b"))
    hardware = to_sim.hardware_spec(catalog.entry("hardware", "h100_sxm"))
    tp, reserve = 4, 0.05
    weights = weight_bytes_per_device(model, tp, 1, DType.BF16)  # PoolSpec's default dtype
    utilization = reserve + (weights + kv_gb * 1e9 / tp) / hardware.memory_bytes
    sched = dict(policy=policy, max_num_seqs=256, max_batched_tokens=8192,
                 chunk_size_tokens=2048, gpu_memory_utilization=utilization,
                 activation_reserve_fraction=reserve)
    if watermark is not None:
        sched["kv_watermark_fraction"] = watermark
    pool = PoolSpec(name="llm", model=model, hardware=hardware, num_replicas=1, tp=tp,
                    scheduler=SchedulerSpec(**sched))
    rt = RequestTypeSpec(
        name="long", plan=(Stage(kind=StageKind.GENERATE, pool="llm"),),
        prompt_tokens=LengthSpec(kind=LengthKind.LOGNORMAL, mean=3000, std=1500, min_tokens=64,
                                 max_tokens=8000),
        output_tokens=LengthSpec(kind=LengthKind.LOGNORMAL, mean=600, std=400, min_tokens=8,
                                 max_tokens=2000))
    return SimConfig(pools=(pool,), workload=WorkloadSpec(num_requests=num_requests,
                                                          arrival=arrival, request_types=(rt,)),
                     record_requests=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--kv-gb", type=float, default=30.0, help="KV cache per replica, GB")
    parser.add_argument("--rate", type=float, default=1.0, help="Poisson arrivals per second")
    parser.add_argument("--watermark", type=float, default=None,
                        help="scheduler.kv_watermark_fraction (default: the SchedulerSpec default)")
    args = parser.parse_args()
    arrivals = {"max_load": ArrivalSpec(kind=ArrivalKind.MAX_LOAD),
                f"poisson_{args.rate:g}": ArrivalSpec(kind=ArrivalKind.POISSON,
                                                      rate_per_s=args.rate)}
    for arrival_name, arrival in arrivals.items():
        for policy in POLICIES:
            config = kv_starved_config(policy, args.requests, arrival, kv_gb=args.kv_gb,
                                       watermark=args.watermark)
            start = time.perf_counter()
            s = simulate(config, 0).summary
            wall = time.perf_counter() - start
            done = s["requests_completed"]
            print(json.dumps({
                "benchmark": "kv_pressure", "arrival": arrival_name, "policy": policy.value,
                "requests_completed": done,
                "output_tokens_per_s": round(s["output_tokens_per_s"], 1),
                "requests_per_s": round(s["requests_per_s"], 3),
                "preemptions": s["preemptions"],
                "preemptions_per_request": round(s["preemptions"] / max(done, 1), 3),
                "ttft_p99_ms": round(s["ttft_ms"]["p99"], 1),
                "tpot_p99_ms": round(s["tpot_ms"]["p99"], 2),
                "wall_s": round(wall, 2),
            }))


if __name__ == "__main__":
    main()
