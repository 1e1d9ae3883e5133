"""Old vs new tokens-per-dollar objective on two P:D splits, for a short burst and a steady run.

Qwen3-32B FP8 chat (workload dse_chat, 48 req/s) on 8 x H200, disaggregated, with the P:D split
at 4:4 and 6:2 (``--splits``). For each split and each workload length it prints the whole-run score
(`goodput_tokens_per_usd`: SLO-meeting tokens / (last completion - first arrival), the old
objective) and the steady-state score (`slo_tokens_per_usd`, docs/opt.md "Objectives"), with
p99 TTFT/TPOT and the steady window's SLO attainment.

    python benchmarks/steady_objective.py [--rate 48] [--burst 400] [--steady 6000]
"""

from __future__ import annotations

import argparse

from hermes_opt.compose.evaluate import simulate_config
from hermes_opt.compose.overrides import compose_overrides

BASE = ["model=qwen3_32b", "cluster.weight_dtype=fp8", "cluster.kv_dtype=fp8", "workload=dse_chat",
        "scheduler=chunked", "slo=interactive", "slo.ttft_ms=250", "slo.tpot_ms=40",
        "pricing=mixed_2026_11", "deployment.architecture=disaggregated",
        "deployment.total_devices=8", "deployment.prefill.hardware=h200",
        "deployment.decode.hardware=h200"]


def run(prefill_devices: int, rate: float, num_requests: int) -> dict:
    cfg = compose_overrides(BASE + [f"deployment.prefill.devices={prefill_devices}",
                                    f"workload.arrival.rate_per_s={rate}",
                                    f"workload.num_requests={num_requests}"])
    return simulate_config(cfg)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=48.0)
    parser.add_argument("--burst", type=int, default=400)
    parser.add_argument("--steady", type=int, default=6000)
    parser.add_argument("--splits", default="4,6", help="prefill devices of the 8, comma-separated")
    args = parser.parse_args()
    print(f"{'workload':>16} {'P:D':>4} {'old tok/$':>11} {'new tok/$':>11} {'TTFT p99':>9} "
          f"{'TPOT p99':>9} {'attain':>7} {'span s':>7} {'window s':>8}")
    for label, n in (("burst", args.burst), ("steady", args.steady)):
        for prefill in (int(p) for p in args.splits.split(",")):
            s = run(prefill, args.rate, n)
            st = s["steady_state"]
            print(f"{label + ' ' + str(n):>16} {prefill}:{8 - prefill:<2} "
                  f"{s['goodput_tokens_per_usd']:>11,.0f} {s['slo_tokens_per_usd']:>11,.0f} "
                  f"{s['ttft_ms']['p99']:>9.1f} {s['tpot_ms']['p99']:>9.1f} "
                  f"{st['slo_attainment']:>7.3f} {s['duration_s']:>7.1f} {st['window_s']:>8.1f}")


if __name__ == "__main__":
    main()
