"""Fit roofline efficiencies to NVIDIA AIConfigurator's measured kernel tables.

    python benchmarks/fit_kernel_tables.py --data .../aiconfigurator_core/systems/data \
        [--out FILE.yaml] [--systems h100_sxm b200_sxm]

Prints one line per (framework, system, dtype) and writes
``{framework: {our hardware name: {dtype: {...}}}}`` (see hermes_opt.calibration.kernel_tables).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import yaml

from hermes_opt.calibration.kernel_tables import fit_directory

HEADER = """\
# Roofline efficiencies fitted to NVIDIA AIConfigurator's measured kernel tables.
# Produced by: python benchmarks/fit_kernel_tables.py --data <aiconfigurator_core>/systems/data \\
#     --out hermes_opt/data/reference/aic_kernel_fit.yaml
# Data: aiconfigurator-core 0.12.0 (PyPI wheel, systems/data/*.parquet), Apache-2.0,
# (c) NVIDIA; only its measured tables were read, none of its code is used.
# Per entry: GEMM fit (compute_efficiency, compute_half_tokens, memory_efficiency, gemm_launch_s)
# with held-out error heldout_median_pct / heldout_p90_pct (1 in 3 N*K shapes held out);
# attention_efficiency (prefill, >= 1024 tokens), decode_attention_efficiency +
# attention_half_context_tokens (+ decode_attention_launch_s), moe_efficiency (constant over
# 16-512 tokens per expert, and by tokens per expert), NCCL all-reduce (newest NCCL; shared by
# frameworks). heldout_*_pct = [median, p90] absolute % error on held-out shapes.
# *_launch_s are fixed per-kernel times the simulator charges in layer_overhead_s.
"""


def summary_line(framework: str, hw: str, dtype: str, e: dict) -> str:
    def g(key, fmt="{:.2f}"):
        value = e.get(key)
        return "-" if value is None else fmt.format(value)
    return (f"{framework:7s} {hw:13s} {dtype:9s} gemm={g('compute_efficiency')} "
            f"half={g('compute_half_tokens', '{:.0f}')} mem={g('memory_efficiency')} "
            f"err={g('heldout_median_pct', '{:.0f}')}/{g('heldout_p90_pct', '{:.0f}')}% "
            f"attn={g('attention_efficiency')} dec={g('decode_attention_efficiency')}"
            f"@{g('attention_half_context_tokens', '{:.0f}')} moe={g('moe_efficiency')} "
            f"comm={g('comm_efficiency')} ar={g('allreduce_latency_s', '{:.1e}')}"
            f"+{g('allreduce_latency_per_peer_s', '{:.1e}')}/peer")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, type=Path, help="AIC systems/data directory")
    parser.add_argument("--out", type=Path, help="YAML file to write")
    parser.add_argument("--systems", nargs="*", help="AIC system names (default: all known)")
    args = parser.parse_args(argv)
    result = fit_directory(args.data, systems=args.systems)
    for framework, by_hw in result.items():
        for hw, by_dtype in by_hw.items():
            for dtype, entry in by_dtype.items():
                print(summary_line(framework, hw, dtype, entry))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(HEADER + yaml.safe_dump(result, sort_keys=False, width=100))
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
