"""Every preset request type on the same 8 x H100 budget, with per-stage breakdowns (issue 3).

Composes ``workload=<preset> +cluster=<layout>`` exactly as ``hermes-sim`` does, simulates, and
prints two markdown tables: headline figures per preset, then mean queueing / service time per
stage and pool (per request type for the mix). Costs use the default price set.

    python benchmarks/pipeline_presets.py [--requests 2000] [--seed 0]
"""

from __future__ import annotations

import argparse

from hydra import compose, initialize_config_module

from hermes_opt.compose import pricing
from hermes_opt.compose import to_sim as hc
from sim import simulate

PRESETS = [("qa", "qa_8gpu"), ("qa_disagg", "qa_disagg_8gpu"), ("rag_news", "rag_8gpu"),
           ("code_kv", "code_8gpu"), ("chat_rag_kv", "chat_rag_8gpu"),
           ("math_reasoning", "math_8gpu"), ("pipeline_mix", "mix_8gpu")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    headline, stages = [], []
    with initialize_config_module(config_module="hermes_opt.conf", version_base="1.3"):
        for workload, cluster in PRESETS:
            cfg = compose(config_name="sim", overrides=[
                f"workload={workload}", f"+cluster={cluster}",
                f"workload.num_requests={args.requests}"])
            config = hc.sim_config(cfg)
            s = simulate(config, args.seed).summary
            cost = pricing.deployment_cost(config, cfg.pricing).usd_per_hour
            gpus = sum(p.num_accelerators for p in config.pools)
            layout = ", ".join(f"{p.name}: {p.num_replicas}x{p.model.name if p.model else p.role.value}"
                               f"{'@tp' + str(p.tp) if p.tp > 1 else ''} ({p.hardware.name})"
                               for p in config.pools)
            hit = ", ".join(f"{k.split('/')[1]} {v['hit_rate']:.2f}"
                            for k, v in s["kv_tiers"].items()) or "-"
            headline.append(
                f"| {workload} | {gpus} | {s['requests_completed']}/{s['requests_rejected']} | "
                f"{s['requests_per_s']:.2f} | {s['output_tokens_per_s']:.0f} | "
                f"{s['ttft_ms']['p50']:.0f} / {s['ttft_ms']['p99']:.0f} | "
                f"{s['tpot_ms']['p50']:.1f} | {s['e2e_ms']['p50']:.0f} / {s['e2e_ms']['p99']:.0f} | "
                f"{cost:.2f} | {hit} |"
                f" {layout} |")
            for type_name, per_stage in s["stages_by_type"].items():
                for key, v in per_stage.items():
                    kind, pool = key.split("@")
                    util = (s["pools"].get(pool, {}).get("utilization")
                            if kind not in ("kv_retrieval", "kv_transfer") else None)
                    stages.append(f"| {workload} | {type_name} | {kind} | {pool} | {v['visits']} | "
                                  f"{v['queue_ms']:.2f} | {v['service_ms']:.2f} | "
                                  f"{'-' if util is None else f'{util:.2f}'} |")
            print(f"done {workload}", flush=True)
    print("\n| preset | GPUs | completed/rejected | req/s | out tok/s | TTFT p50/p99 ms | TPOT p50 ms "
          "| E2E p50/p99 ms | $/h | KV hit rate by tier | pools |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    print("\n".join(headline))
    print("\n| preset | request type | stage | pool | visits | queue ms (mean) | service ms (mean) "
          "| pool utilization |")
    print("|---|---|---|---|---|---|---|---|")
    print("\n".join(stages))


if __name__ == "__main__":
    main()
