"""How much of a Mooncake trace's block-level prefix reuse the simulator's whole-prefix mapping
keeps (``hermes_opt.compose.traces.shared_prefixes``), with an unbounded cache.

    python benchmarks/trace_prefix_capture.py [TRACE.jsonl ...]   # default: the shipped sample

Block level (what a per-block cache such as vLLM's or Mooncake's sees): a request reuses its
longest leading run of blocks that an earlier request also had. Mapped: a request reuses the
prefix it looks up when an earlier request kept that prefix (the ids the store sees). Both are
in prompt tokens (blocks x 512, at most the prompt minus one), as a share of all prompt tokens.
"""

from __future__ import annotations

import sys

from hermes_opt.compose import trace_formats, traces
from hermes_opt.compose.trace_formats import MOONCAKE_BLOCK_TOKENS


def capture(path: str) -> tuple[int, float, float]:
    raw = trace_formats.read(traces.resolve(path), "mooncake")
    prompts = raw.prompt_tokens.tolist()
    seen: set[tuple[int, ...]] = set()
    ideal = 0
    for blocks, prompt in zip(raw.hash_ids, prompts, strict=True):
        depth = 0
        while depth < len(blocks) and blocks[:depth + 1] in seen:
            depth += 1
        ideal += min(depth * MOONCAKE_BLOCK_TOKENS, prompt - 1)
        seen.update(blocks[:k] for k in range(1, len(blocks) + 1))
    ids, tokens, kept, _ = traces.shared_prefixes(raw.hash_ids, raw.prompt_tokens)
    stored: set[int] = set()
    mapped = 0
    for prefix, length, keep in zip(ids, tokens, kept, strict=True):
        if prefix >= 0 and prefix in stored:
            mapped += length
        stored.add(keep if keep >= 0 else prefix)  # what the store keeps once it is computed
    total = sum(prompts)
    return len(prompts), ideal / total, mapped / total


def main(paths: list[str]) -> None:
    print("| trace | requests | block-level reuse | mapped reuse | kept |")
    print("|---|---|---|---|---|")
    for path in paths or ["mooncake_conversation_sample.jsonl"]:
        n, ideal, mapped = capture(path)
        print(f"| {path.rsplit('/', 1)[-1]} | {n:,} | {ideal:.1%} | {mapped:.1%} | "
              f"{mapped / ideal:.0%} |")


if __name__ == "__main__":
    main(sys.argv[1:])
