"""DEP8 against TP8 for DeepSeek-R1 on 8 x B200 (issue 26 must-show): sequences per GPU, output
throughput per GPU and TPOT, next to NVIDIA's published figures.

Published (NVIDIA TensorRT-LLM tech blog 3, "Optimizing DeepSeek R1 Throughput on NVIDIA
Blackwell GPUs", https://github.com/NVIDIA/TensorRT-LLM/blob/main/docs/source/blogs/tech_blog/blog3_Optimizing_DeepSeek_R1_Throughput_on_NVIDIA_Blackwell_GPUs.md):
DeepSeek-R1 FP4 checkpoint, FP8 KV cache, ISL/OSL 1K/2K, 8 x B200, attention DP8 + EP8 ("DEP8"):
~4600 output tokens/s per GPU at max throughput; ~80 GB of weights and activations and ~100 GB of
free KV cache per GPU, ~200 MB of KV per request, so ~500 sequences per GPU (4000 per node) under
attention DP and 500 per node (62.5 per GPU) under attention TP; attention DP "provides a
significant 400% speedup in the max throughput cases" (so TP8 ~ 4600 / 5 = 920 per GPU, derived).
The blog gives no TPOT; 500 sequences per GPU at 4600 tokens/s per GPU is ~109 ms by Little's law
(derived, ignoring prefill).

Simulated: the same model, formats, lengths and engine (trtllm), closed-loop clients at the
published concurrencies (4000 DEP8, 500 TP8) and at each layout's own KV limit.

    python benchmarks/dep_vs_tp.py [--waves 3]
"""

from __future__ import annotations

import argparse
import json

from hermes_opt.compose import candidate as candidate_mod
from hermes_opt.compose.evaluate import simulate_candidate
from hermes_opt.compose.overrides import compose_overrides

ISL, OSL, GPUS = 1024, 2048, 8
BASE = ["model=deepseek_r1", "hardware=b200", "engine=trtllm", "cluster.weight_dtype=nvfp4",
        "cluster.kv_dtype=fp8", "cluster.tp=8", "cluster.ep=8",
        # the whole attention-DP group is one replica here: let it batch every client
        "scheduler.max_num_seqs=16384", "scheduler.max_batched_tokens=32768",
        "workload=closed_loop",
        "workload.request_types.chat.prompt_tokens.kind=fixed",
        f"workload.request_types.chat.prompt_tokens.mean={ISL}",
        "workload.request_types.chat.prompt_tokens.std=0",
        "workload.request_types.chat.output_tokens.kind=fixed",
        f"workload.request_types.chat.output_tokens.mean={OSL}",
        "workload.request_types.chat.output_tokens.std=0"]
PUBLISHED = {"dep8": {"seqs_per_gpu": 500, "tokens_per_s_per_gpu": 4600, "tpot_ms": 109},
             "tp8": {"seqs_per_gpu": 62.5, "tokens_per_s_per_gpu": 920, "tpot_ms": None}}


def layout(attention_dp: bool) -> list[str]:
    return BASE + [f"cluster.attention_dp={str(attention_dp).lower()}"]


def seqs_per_gpu(overrides: list[str]) -> float:
    """Sequences of ISL + OSL tokens the KV cache holds, per GPU."""
    pool = candidate_mod.from_config(compose_overrides(overrides)).config.pools[0]
    return pool.kv_capacity_blocks() * pool.scheduler.block_size_tokens / (ISL + OSL) / GPUS


def run(overrides: list[str], clients: int, waves: int) -> dict:
    cfg = compose_overrides(overrides + [f"workload.arrival.concurrency={clients}",
                                         f"workload.num_requests={clients * waves}"])
    out = simulate_candidate(candidate_mod.from_config(cfg), 0)
    return {"clients": clients,
            "tokens_per_s_per_gpu": round(out["output_tokens_per_s"] / GPUS),
            "steady_tokens_per_s_per_gpu": round(out["steady_state"]["output_tokens_per_s"] / GPUS),
            "tpot_ms_mean": round(out["tpot_ms"]["mean"], 1),
            "ttft_ms_mean": round(out["ttft_ms"]["mean"]), "preemptions": out["preemptions"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--waves", type=int, default=3, help="requests = waves x clients")
    args = parser.parse_args()
    rows = {}
    for name, dp, published_clients in (("dep8", True, 4000), ("tp8", False, 500)):
        overrides = layout(dp)
        seqs = seqs_per_gpu(overrides)
        rows[name] = {"published": PUBLISHED[name], "seqs_per_gpu": round(seqs, 1),
                      "at_published_clients": run(overrides, published_clients, args.waves),
                      "at_kv_limit": run(overrides, int(seqs * GPUS), args.waves)}
    for at in ("at_published_clients", "at_kv_limit"):
        rows[f"dep8_over_tp8_{at}"] = round(rows["dep8"][at]["steady_tokens_per_s_per_gpu"]
                                            / rows["tp8"][at]["steady_tokens_per_s_per_gpu"], 2)
    print(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
