"""Crossover prefix length: when does fetching a prefix's KV from a tier beat recomputing it?

Llama-3.1-70B on one H100 x TP4 replica (roofline cost model, chunked prefill, 2048-token chunks).
A request's prompt is a shared prefix of L tokens plus a 128-token suffix; we measure TTFT with the
simulator for (a) recompute: no KV store, the whole prompt is prefilled, and (b) fetch: a
fixed-hit-rate store whose only tier always hits, so the prefix KV (L x 320 KiB) is read over the
tier's bandwidth and only the suffix is prefilled. The crossover is the smallest L where (b) < (a),
found by bisection on integer L. Tiers (values as in conf/kv_tiers, sources in docs/pipelines.md):
DRAM 41.7 GB/s per GPU (x4) 5 us, CXL 24 GB/s per GPU (x4) 2 us, local SSD 12 GB/s per GPU (x4)
100 us, remote store 87 GB/s shared 500 us (``--extra-latency-us`` adds a per-fetch software
overhead, e.g. connector bookkeeping, to every tier). ``solo``: one request alone; ``burst``: 16 requests with
16 distinct prefixes arriving together (they share the tier's bandwidth and the prefill compute).

    python benchmarks/kv_crossover.py [--burst 16]
"""

from __future__ import annotations

import argparse
import json

from hermes_opt.compose import catalog, to_sim
from sim import (
    ArrivalKind,
    ArrivalSpec,
    BatchPolicy,
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
from sim.kvstore.specs import Domain, KVLinkSpec, KVStoreMode, KVStoreSpec, KVTierSpec, TierKind
from sim.pipeline.specs import PrefixSpec

SUFFIX = 128
TIERS = {  # kind, GB/s, per_device, latency_us, scope
    "dram": (TierKind.DRAM, 41.7, True, 5, Domain.REPLICA),
    "cxl": (TierKind.CXL, 24.0, True, 2, Domain.REPLICA),
    "ssd": (TierKind.SSD, 12.0, True, 100, Domain.REPLICA),
    "remote": (TierKind.REMOTE, 87.0, False, 500, Domain.CLUSTER),
}


def _fixed(n):
    return LengthSpec(kind=LengthKind.FIXED, mean=n, max_tokens=1_000_000)


EXTRA_LATENCY_S = 0.0  # --extra-latency-us: per-fetch software overhead added to every tier


def _config(prefix_tokens: int, tier: str | None, burst: int) -> SimConfig:
    pool = PoolSpec(name="llm", model=to_sim.model_spec(catalog.entry("model", "llama3_1_70b")),
                    hardware=to_sim.hardware_spec(catalog.entry("hardware", "h100_sxm")), tp=4,
                    scheduler=SchedulerSpec(policy=BatchPolicy.CHUNKED, chunk_size_tokens=2048))
    plan = (Stage(kind=StageKind.GENERATE, pool="llm"),)
    stores = ()
    if tier is not None:
        kind, gbps, per_device, latency_us, scope = TIERS[tier]
        stores = (KVStoreSpec(pool="llm", mode=KVStoreMode.FIXED, tiers=(KVTierSpec(
            name=tier, kind=kind, capacity_bytes=1e13, bandwidth_bytes_per_s=gbps * 1e9,
            latency_s=latency_us * 1e-6 + EXTRA_LATENCY_S, domain=scope, per_device=per_device, hit_rate=1.0,
            link=KVLinkSpec(bandwidth_bytes_per_s=gbps * 1e9, per_device=per_device,
                            shared=scope is Domain.CLUSTER)),)),)
        plan = (Stage(kind=StageKind.KV_RETRIEVAL, pool="llm"),) + plan
    rt = RequestTypeSpec(name="p", plan=plan, prompt_tokens=_fixed(SUFFIX), output_tokens=_fixed(2),
                         prefix=PrefixSpec(num_prefixes=burst, zipf_s=0.0,
                                           prefix_tokens=_fixed(prefix_tokens)))
    return SimConfig(pools=(pool,), kv_stores=stores, workload=WorkloadSpec(
        num_requests=burst, arrival=ArrivalSpec(kind=ArrivalKind.MAX_LOAD), request_types=(rt,)))


def ttft_ms(prefix_tokens: int, tier: str | None, burst: int) -> float:
    return simulate(_config(prefix_tokens, tier, burst), 0).summary["ttft_ms"]["mean"]


def crossover(tier: str, burst: int, lo: int = 1, hi: int = 65536) -> int | None:
    """Smallest prefix length where fetching beats recomputing (None: never up to ``hi``)."""
    def wins(length):
        return ttft_ms(length, tier, burst) < ttft_ms(length, None, burst)
    if not wins(hi):
        return None
    if wins(lo):
        return lo
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if wins(mid) else (mid, hi)
    return hi


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--burst", type=int, default=16)
    parser.add_argument("--extra-latency-us", type=float, default=0.0,
                        help="per-fetch software overhead added to every tier's latency")
    args = parser.parse_args()
    global EXTRA_LATENCY_S
    EXTRA_LATENCY_S = args.extra_latency_us * 1e-6
    rows = []
    for tier in TIERS:
        for mode, burst in (("solo", 1), ("burst", args.burst)):
            length = crossover(tier, burst)
            row = {"tier": tier, "mode": mode, "crossover_prefix_tokens": length}
            if length is not None:
                for probe in (1024, 8192, 32768):
                    row[f"ttft_ms_recompute@{probe}"] = round(ttft_ms(probe, None, burst), 1)
                    row[f"ttft_ms_fetch@{probe}"] = round(ttft_ms(probe, tier, burst), 1)
            rows.append(row)
            print(json.dumps(row), flush=True)
    print("\n| tier | mode | crossover prefix (tokens) | TTFT recompute / fetch @1k | @8k | @32k |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        cells = [f"{r.get(f'ttft_ms_recompute@{p}', '-')} / {r.get(f'ttft_ms_fetch@{p}', '-')} ms"
                 for p in (1024, 8192, 32768)]
        print(f"| {r['tier']} | {r['mode']} | {r['crossover_prefix_tokens']} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
