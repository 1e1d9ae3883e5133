"""A pool's serving-engine settings as the engine's own command-line flags, where the mapping is
one flag for one simulated setting (vLLM ``--max-num-seqs 194``), and as plain words otherwise
(TensorRT-LLM sets chunked prefill and FP8 in its options file or checkpoint, not on the command
line). Read from the stored deployment record's per-pool ``engine``, ``tp``/``pp``, number
formats, ``batching`` and ``scheduler`` settings (``compose.candidate``).

The step token budget is the chunk size under chunked prefill and ``max_batched_tokens``
otherwise, as the simulator's policies use them (conf/engine/vllm.yaml: "chunk_size_tokens:
max_num_batched_tokens, the step's token budget")."""

from __future__ import annotations

from typing import Any

NAMES = {"vllm": "vLLM", "sglang": "SGLang", "trtllm": "TensorRT-LLM"}
# engine -> simulated setting -> flag (vllm serve / python -m sglang.launch_server / trtllm-serve)
FLAGS: dict[str, dict[str, str]] = {
    "vllm": {"tp": "--tensor-parallel-size", "pp": "--pipeline-parallel-size",
             "max_num_seqs": "--max-num-seqs", "budget_chunked": "--max-num-batched-tokens",
             "budget_whole": "--max-num-batched-tokens",
             "fp8_weights": "--quantization fp8", "fp8_kv": "--kv-cache-dtype fp8",
             "no_chunking": "--no-enable-chunked-prefill"},
    "sglang": {"tp": "--tp-size", "pp": "--pp-size", "max_num_seqs": "--max-running-requests",
               "budget_chunked": "--chunked-prefill-size", "budget_whole": "--max-prefill-tokens",
               "fp8_weights": "--quantization fp8",
               "fp8_kv": "--kv-cache-dtype fp8_e4m3", "no_chunking": "--chunked-prefill-size -1"},
    "trtllm": {"tp": "--tp_size", "pp": "--pp_size", "max_num_seqs": "--max_batch_size",
               "budget_chunked": "--max_num_tokens", "budget_whole": "--max_num_tokens"},
}
PLAIN = {"tp": "TP", "max_num_seqs": "max sequences", "budget_chunked": "chunk size (tokens)",
         "budget_whole": "step token budget"}
BATCHING = {"continuous": "continuous batching, whole prompts (no chunked prefill)",
            "chunked": "continuous batching with chunked prefill",
            "mixed": "continuous batching, prefills and decodes in one step",
            "static": "static batching"}


def engine_name(pool: dict[str, Any]) -> str | None:
    """"vLLM 0.11" from the record's "vllm 0.11"; None for a pool without an engine."""
    engine = pool.get("engine")
    if not engine:
        return None
    name, _, version = str(engine).partition(" ")
    return f"{NAMES.get(name, name)} {version}".strip()


def _budget(pool: dict[str, Any]) -> tuple[str, int | None]:
    """(flag key, value) of the step's token budget."""
    sched = pool.get("scheduler") or {}
    if pool.get("batching") == "chunked":
        return "budget_chunked", sched.get("chunk_size_tokens")
    return "budget_whole", sched.get("max_batched_tokens")


def flags(pool: dict[str, Any]) -> tuple[list[str], list[str]]:
    """(engine flags, plain settings) of one LLM pool of a deployment record."""
    kind = str(pool.get("engine") or "").split(" ")[0]
    table = FLAGS.get(kind, {})
    sched = pool.get("scheduler") or {}
    budget_key, budget = _budget(pool)
    values = {"tp": pool.get("tp"), "pp": pool.get("pp") if (pool.get("pp") or 1) > 1 else None,
              "max_num_seqs": sched.get("max_num_seqs"), budget_key: budget}
    out, plain = [], []
    for key, value in values.items():
        if value is None:
            continue
        if key in table:
            out.append(f"{table[key]} {value}")
        elif key != "pp":
            plain.append(f"{PLAIN.get(key, key)} {value}")
    batching = str(pool.get("batching") or "")
    if batching == "continuous" and "no_chunking" in table:
        out.append(table["no_chunking"])
    weights, kv = str(pool.get("weight_dtype") or ""), str(pool.get("kv_dtype") or "")
    for dtype, key, what in ((weights, "fp8_weights", "weights"), (kv, "fp8_kv", "KV cache")):
        if dtype == "fp8" and key in table:
            out.append(table[key])
        elif dtype and dtype not in ("bf16", "fp16"):
            plain.append(f"{what} {dtype}" + (" (quantized checkpoint)" if what == "weights"
                                              else ""))
    if batching:
        plain.insert(0, BATCHING.get(batching, f"{batching} batching"))
    return out, plain + _layout_words(pool)


def _layout_words(pool: dict[str, Any]) -> list[str]:
    """Expert parallelism, attention-DP and speculative decoding in plain words (each engine
    spells them in its own options: vLLM's --speculative-config, TensorRT-LLM's options file)."""
    words = []
    if pool.get("attention_dp"):
        words.append(f"attention data-parallel over {pool.get('tp')} ranks")
    if (pool.get("ep") or 1) > 1:
        words.append(f"expert parallel {pool.get('ep')}")
    drafting = pool.get("spec_decoding")
    if drafting:
        what = {"mtp": "MTP", "eagle": "EAGLE", "draft_model": f"draft model "
                f"{drafting.get('draft_model')}"}.get(drafting["method"], drafting["method"])
        words.append(f"{what} speculative decoding, {drafting['draft_tokens']} draft tokens "
                     f"(acceptance length {drafting['acceptance_length']:g})")
    return words


def describe(pool: dict[str, Any]) -> str | None:
    """"vLLM 0.11: `--tensor-parallel-size 1 --max-num-seqs 194 ...`; continuous batching, ..."."""
    name = engine_name(pool)
    if name is None:
        return None
    command, plain = flags(pool)
    text = name
    if command:  # one code span per flag: a page wraps between flags, not inside one
        text += ": " + " ".join(f"`{flag}`" for flag in command)
    if plain:
        text += ("; " if command else ": ") + ", ".join(plain)
    return text
