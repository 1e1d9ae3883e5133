"""Pipeline simulator speed: simulated requests per wall-clock second for a multi-stage mix
(issue 3: >= 10,000 on one core; issue 13: >= 30,000).

Scenario (8 x H100 running Llama-3.1-8B, chunked prefill, prefix-affinity routing, an
HBM/DRAM/SSD prefix-KV store; CPU pools for pre/post-processing, embedding and IVF-PQ search;
a cross-encoder rerank pool and an 8B reward-model pool):
  rag 40%:       preprocess -> embed -> vector_search (top 10) -> rerank (top 3) -> generate -> postprocess
  code_kv 40%:   preprocess -> kv_retrieval (Zipf prefixes ~2k tokens) -> generate -> postprocess
  reasoning 20%: preprocess -> generate (bimodal thinking, best-of-2) -> reward -> postprocess
Poisson arrivals at 80% of the mix's saturation throughput (measured first, not timed).

    python benchmarks/bench_pipeline.py [--requests 100000] [--load 0.8] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json

from speed import time_at_load

from hermes_opt.compose import catalog, to_sim
from sim import (
    ArrivalSpec,
    BatchPolicy,
    LengthKind,
    LengthSpec,
    PoolRole,
    PoolSpec,
    RequestTypeSpec,
    RouterPolicy,
    SchedulerSpec,
    SimConfig,
    Stage,
    StageKind,
    WorkloadSpec,
)
from sim.kvstore.specs import KVLinkSpec, KVStoreSpec, KVTierSpec, TierKind
from sim.pipeline.specs import IndexKind, IndexSpec, PrefixSpec, ReasoningSpec


def _hw(name):
    return to_sim.hardware_spec(catalog.entry("hardware", name))


def _model(name):
    return to_sim.model_spec(catalog.entry("model", name))


def _ln(mean, std, lo=4, hi=4096):
    return LengthSpec(kind=LengthKind.LOGNORMAL, mean=mean, std=std, min_tokens=lo, max_tokens=hi)


def _stage(kind, pool, **params):
    return Stage(kind=StageKind(kind), pool=pool,
                 params=tuple(sorted((k, float(v)) for k, v in params.items())))


def mix_config(num_requests: int, arrival: ArrivalSpec) -> SimConfig:
    sched = SchedulerSpec(policy=BatchPolicy.CHUNKED, chunk_size_tokens=2048)
    xeon = _hw("xeon_6980p")
    pools = (
        PoolSpec(name="llm", model=_model("llama3_1_8b"), hardware=_hw("h100_sxm"), num_replicas=8,
                 scheduler=sched, router=RouterPolicy.PREFIX_AFFINITY),
        PoolSpec(name="cpu", model=None, hardware=xeon, role=PoolRole.CPU),
        PoolSpec(name="embed", model=_model("bge_large_en"), hardware=xeon, role=PoolRole.EMBED,
                 scheduler=SchedulerSpec(max_num_seqs=64, max_batched_tokens=16384)),
        PoolSpec(name="search", model=None, hardware=xeon, num_replicas=2, role=PoolRole.RETRIEVAL,
                 workers_per_node=4, scheduler=SchedulerSpec(max_num_seqs=32),
                 index=IndexSpec(kind=IndexKind.IVF_PQ, num_vectors=100_000_000, dim=1024,
                                 nlist=65536, nprobe=64, pq_bytes=64)),
        PoolSpec(name="rerank", model=_model("bge_reranker_large"), hardware=_hw("h100_sxm"),
                 role=PoolRole.RERANK, scheduler=SchedulerSpec(max_num_seqs=32,
                                                               max_batched_tokens=32768)),
        PoolSpec(name="reward", model=_model("reward_8b"), hardware=_hw("h100_sxm"),
                 role=PoolRole.REWARD, scheduler=SchedulerSpec(max_num_seqs=32,
                                                               max_batched_tokens=32768)),
    )
    store = KVStoreSpec(pool="llm", tiers=(
        KVTierSpec(name="hbm", kind=TierKind.HBM, capacity_bytes=10e9, bandwidth_bytes_per_s=3.35e12),
        KVTierSpec(name="dram", kind=TierKind.DRAM, capacity_bytes=256e9,
                   bandwidth_bytes_per_s=300e9, latency_s=1e-7,
                   link=KVLinkSpec(bandwidth_bytes_per_s=41.7e9, latency_s=5e-6)),
        KVTierSpec(name="ssd", kind=TierKind.SSD, capacity_bytes=3840e9, bandwidth_bytes_per_s=12e9,
                   latency_s=100e-6, link=KVLinkSpec(bandwidth_bytes_per_s=16e9))))
    pre, post = _stage("preprocess", "cpu"), _stage("postprocess", "cpu")
    types = (
        RequestTypeSpec(name="rag", weight=0.4, plan=(
            pre, _stage("embed", "embed"), _stage("vector_search", "search", top_k=10, doc_tokens=256),
            _stage("rerank", "rerank", top_n=3), _stage("generate", "llm"), post),
            prompt_tokens=_ln(120, 60), output_tokens=_ln(250, 150, hi=1024)),
        RequestTypeSpec(name="code_kv", weight=0.4, plan=(
            pre, _stage("kv_retrieval", "llm"), _stage("generate", "llm"), post),
            prefix=PrefixSpec(num_prefixes=500, zipf_s=1.1, prefix_tokens=_ln(2000, 1000, 256, 8000)),
            prompt_tokens=_ln(200, 150), output_tokens=_ln(300, 200, hi=2048)),
        RequestTypeSpec(name="reasoning", weight=0.2, plan=(
            pre, _stage("generate", "llm"), _stage("reward", "reward"), post),
            reasoning=ReasoningSpec(think_short=_ln(300, 150), think_long=_ln(2000, 800, 256, 6000),
                                    long_fraction=0.3, num_samples=2),
            prompt_tokens=_ln(150, 60), output_tokens=_ln(80, 40)),
    )
    return SimConfig(pools=pools, kv_stores=(store,), workload=WorkloadSpec(
        num_requests=num_requests, arrival=arrival, request_types=types))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--load", type=float, default=0.8, help="fraction of saturation throughput")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    capacity, rate, times, result = time_at_load(mix_config, args.requests, args.load, args.repeat)
    best = min(times)
    s = result.summary
    visits = sum(v["visits"] for v in s["stages"].values())
    print(json.dumps({
        "benchmark": "pipeline_speed", "requests": args.requests,
        "capacity_requests_per_s": round(capacity, 2), "rate_per_s": round(rate, 2),
        "llm_utilization": round(s["pools"]["llm"]["utilization"], 3),
        "wall_s_best": round(best, 3), "wall_s_all": [round(t, 3) for t in times],
        "simulated_requests_per_wall_s": round(args.requests / best),
        "stage_visits": visits, "events": s["num_events"],
        "completed": s["requests_completed"], "rejected": s["requests_rejected"],
        "kv_hit_rate_hbm": round(s["kv_tiers"]["llm/hbm"]["hit_rate"], 3),
        "ttft_p99_ms": round(s["ttft_ms"]["p99"], 1), "e2e_p50_ms": round(s["e2e_ms"]["p50"], 1),
    }))


if __name__ == "__main__":
    main()
