"""A pool's serving-engine settings for the decision card: the engine's own flags where the
flag table (``conf/tables/engine_flags.yaml``, read through ``report.deploy.engine_args``) has a
flag for the simulated setting (vLLM ``--max-num-seqs 194``), and plain words otherwise
(TensorRT-LLM sets chunked prefill and the KV format in its options file, FP8 weights come from
the checkpoint). Read from the stored deployment record's per-pool ``engine``, ``tp``/``pp``,
number formats, ``batching`` and ``scheduler`` settings (``compose.candidate``); the deployment
artifacts (``report/deploy/``) add what the record does not hold (block size, prefix caching,
KV tiers, memory fraction).

The step token budget is the chunk size under chunked prefill and ``max_batched_tokens``
otherwise, as the simulator's policies use them (conf/engine/vllm.yaml: "chunk_size_tokens:
max_num_batched_tokens, the step's token budget")."""

from __future__ import annotations

from typing import Any

from hermes_opt.report.deploy import engine_args, flag_table


def engine_name(pool: dict[str, Any]) -> str | None:
    """"vLLM 0.11" from the record's "vllm 0.11"; None for a pool without an engine."""
    name, version = flag_table.split_engine(pool.get("engine"))
    if not name:
        return None
    return f"{flag_table.display(name)} {version}".strip()


def flags(pool: dict[str, Any]) -> tuple[list[str], list[str]]:
    """(engine flags, plain settings) of one LLM pool of a deployment record."""
    launch = engine_args.launch(pool)
    if launch is None:
        return [], []
    if not launch.known:
        return [], [note.split(": ", 1)[1] for note in launch.notes] + _drafting_words(pool)
    return engine_args.pairs(launch.flags), launch.plain + _drafting_words(pool)


def _drafting_words(pool: dict[str, Any]) -> list[str]:
    """Speculative decoding in plain words (each engine spells it in its own options: vLLM's
    --speculative-config, SGLang's --speculative-algorithm, TensorRT-LLM's options file)."""
    drafting = pool.get("spec_decoding")
    if not drafting:
        return []
    what = {"mtp": "MTP", "eagle": "EAGLE", "draft_model": f"draft model "
            f"{drafting.get('draft_model')}"}.get(drafting["method"], drafting["method"])
    return [f"{what} speculative decoding, {drafting['draft_tokens']} draft tokens "
            f"(acceptance length {drafting['acceptance_length']:g})"]


def describe(pool: dict[str, Any]) -> str | None:
    """"vLLM 0.11: `--tensor-parallel-size 1` `--max-num-seqs 194` ...; continuous batching, ..."."""
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
