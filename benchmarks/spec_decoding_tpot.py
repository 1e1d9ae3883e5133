"""Speculative decoding TPOT against a published MTP result (issue 26 must-show).

Published (NVIDIA TensorRT-LLM tech blog 1, "Pushing Latency Boundaries: Optimizing DeepSeek-R1
Performance on NVIDIA B200 GPUs", table "Autoregressive MTP Layers",
https://github.com/NVIDIA/TensorRT-LLM/blob/main/docs/source/blogs/tech_blog/blog1_Pushing_Latency_Boundaries_Optimizing_DeepSeek-R1_Performance_on_NVIDIA_B200_GPUs.md):
DeepSeek-R1 (NVFP4 MoE weights) on 8 x B200, attention TP8 with experts TP4 x EP2 ("TP8EP2"),
batch 1, ISL 1k / OSL 2k: TPS/user 111 without MTP, and with 1..5 MTP draft tokens 198, 250, 253,
245, 239 at acceptance lengths 1.92, 2.58, 2.82, 2.99, 3.01. TPOT = 1000 / TPS/user.

Simulated: the same layout (cluster.tp=8 cluster.ep=2), formats and lengths, one closed-loop
client, engine trtllm; the acceptance is the table default derived from the same blog
(conf/tables/spec_acceptance.yaml), so this checks the cost of drafting and verifying, not the
acceptance. Then a sweep of one acceptance rate for every position at 3 draft tokens.

    python benchmarks/spec_decoding_tpot.py
"""

from __future__ import annotations

import json

from hermes_opt.compose import candidate as candidate_mod
from hermes_opt.compose.evaluate import simulate_candidate
from hermes_opt.compose.overrides import compose_overrides

BASE = ["model=deepseek_r1", "hardware=b200", "engine=trtllm", "cluster.weight_dtype=nvfp4",
        "cluster.tp=8", "cluster.ep=2", "workload=closed_loop", "workload.arrival.concurrency=1",
        "workload.num_requests=10",
        "workload.request_types.chat.prompt_tokens.kind=fixed",
        "workload.request_types.chat.prompt_tokens.mean=1024",
        "workload.request_types.chat.prompt_tokens.std=0",
        "workload.request_types.chat.output_tokens.kind=fixed",
        "workload.request_types.chat.output_tokens.mean=2048",
        "workload.request_types.chat.output_tokens.std=0"]
PUBLISHED_TPS_PER_USER = {0: 111, 1: 198, 2: 250, 3: 253, 4: 245, 5: 239}


def tpot_ms(extra: list[str]) -> float:
    cfg = compose_overrides(BASE + extra)
    return simulate_candidate(candidate_mod.from_config(cfg), 0)["tpot_ms"]["mean"]


def main() -> None:
    rows = []
    for k, tps in PUBLISHED_TPS_PER_USER.items():
        extra = ([] if k == 0 else ["spec_decoding.method=mtp", f"spec_decoding.draft_tokens={k}"])
        predicted = tpot_ms(extra)
        published = 1000.0 / tps
        rows.append({"mtp_draft_tokens": k, "published_tpot_ms": round(published, 2),
                     "predicted_tpot_ms": round(predicted, 2),
                     "error_pct": round(100 * (predicted - published) / published, 1)})
    plain = rows[0]["predicted_tpot_ms"]
    for row in rows:
        row["predicted_speedup"] = round(plain / row["predicted_tpot_ms"], 2)
        row["published_speedup"] = round(rows[0]["published_tpot_ms"] / row["published_tpot_ms"], 2)
    sweep = [{"acceptance_rate": rate, "predicted_tpot_ms": round(tpot_ms([
        "spec_decoding.method=mtp", "spec_decoding.draft_tokens=3",
        f"spec_decoding.acceptance_rate={rate}"]), 2)} for rate in (0.0, 0.25, 0.5, 0.75, 0.9, 1.0)]
    print(json.dumps({"mtp_vs_published": rows, "no_mtp_tpot_ms": plain,
                      "acceptance_sweep_k3": sweep}, indent=1))


if __name__ == "__main__":
    main()
