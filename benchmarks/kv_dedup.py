"""Prefix-KV hit rate with and without in-flight deduplication, on a hot-prefix workload.

8 hot prefixes (uniform popularity, 8k tokens each) shared by every request, on 2 Llama-3.1-8B
H100 replicas with an HBM prefix cache + host DRAM and prefix-affinity routing; a closed loop of
``concurrency`` users, so a burst of that many requests arrives at once and keeps arriving.
Without deduplication every request that looks a prefix up while its first computation (or its
promotion from DRAM) is still in flight misses and recomputes it; with it (the default,
``kv_tiers.dedup_inflight``) it waits for that copy. Prints, per concurrency: the hit rate, the
lookups that waited, p50/p99 TTFT and output tokens/s.

    python benchmarks/kv_dedup.py [--concurrency 8,32,64,128] [--requests 400]
"""

from __future__ import annotations

import argparse

from hermes_opt.compose.evaluate import simulate_config
from hermes_opt.compose.overrides import compose_overrides

BASE = ["model=llama3_1_8b", "hardware=h100_sxm", "cluster.num_replicas=2", "scheduler=chunked",
        "kv_tiers=hbm_dram", "router=prefix_affinity", "workload=kv_shared",
        "workload.request_types.ctx.prefix.num_prefixes=8",
        "workload.request_types.ctx.prefix.zipf_s=0",
        "workload.request_types.ctx.prefix.clients=0",
        "workload.request_types.ctx.prefix.prefix_tokens.mean=8192",
        "workload.arrival.kind=closed_loop"]


def run(dedup: bool, concurrency: int, requests: int) -> dict:
    cfg = compose_overrides(BASE + [f"kv_tiers.dedup_inflight={str(dedup).lower()}",
                                    f"workload.arrival.concurrency={concurrency}",
                                    f"workload.num_requests={requests}"])
    return simulate_config(cfg)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrency", default="8,32,64,128", help="closed-loop users, comma-separated")
    parser.add_argument("--requests", type=int, default=400)
    args = parser.parse_args()
    print(f"{'users':>5} {'dedup':>5} {'hit rate':>8} {'waited':>6} {'TTFT p50 ms':>11} "
          f"{'TTFT p99 ms':>11} {'out tok/s':>9}")
    for users in (int(c) for c in args.concurrency.split(",")):
        for dedup in (False, True):
            s = run(dedup, users, args.requests)
            k = s["kv_lookups"]["llm"]
            print(f"{users:>5} {'on' if dedup else 'off':>5} {k['hit_rate']:>8.3f} "
                  f"{k['inflight_waits']:>6} {s['ttft_ms']['p50']:>11.1f} {s['ttft_ms']['p99']:>11.1f}"
                  f" {s['output_tokens_per_s']:>9.0f}")


if __name__ == "__main__":
    main()
