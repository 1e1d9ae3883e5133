"""Mooncake ``hash_ids`` become shared prefixes the KV store sees: requests that share leading
blocks look the same prefix up and hit it; a trace whose requests share nothing makes no lookup
and no hit."""

from __future__ import annotations

import json

import numpy as np
import pytest

from hermes_opt import api
from hermes_opt.compose import traces
from sim.errors import ConfigError

BLOCK = 512


def test_a_request_looks_up_what_an_earlier_one_had_and_keeps_what_a_later_one_looks_up():
    hashes = [(1, 2, 3, 4), (1, 2, 3, 9), (1, 2, 8), (5, 6), (1, 2, 3, 4, 7)]
    prompts = np.array([2000, 1900, 1500, 1000, 2500])
    ids, tokens, kept, kept_tokens = traces.shared_prefixes(hashes, prompts)
    # looked up: the leading blocks an earlier request had (none for the first and for (5, 6))
    assert ids[0] == ids[3] == -1 and tokens == (0, 3 * BLOCK, 2 * BLOCK, 0, 4 * BLOCK)
    assert len({ids[1], ids[2], ids[4]}) == 3
    # kept: the deepest of its prefixes a later request looks up: (1,2,3,4) for the first
    # (request 4's lookup; capped at its prompt - 1), (1,2) for the second (request 2's)
    assert kept == (ids[4], ids[2], -1, -1, -1)
    assert kept_tokens == (2000 - 1, 2 * BLOCK, 0, 0, 0)


def test_turns_of_a_conversation_each_find_the_previous_turns_history():
    turns = [(0, 1), (0, 1, 2), (0, 1, 2, 3), (0, 1, 2, 3, 4)]
    ids, tokens, kept, _ = traces.shared_prefixes(turns, np.array([1100, 1600, 2100, 2600]))
    assert tokens == (0, 2 * BLOCK, 3 * BLOCK, 4 * BLOCK)
    assert kept[:3] == ids[1:]  # each turn keeps what the next one looks up


def mooncake(path, hash_ids, gap_ms=2000, prompt=2600, output=8):
    path.write_text("".join(json.dumps({"timestamp": i * gap_ms, "input_length": prompt,
                                        "output_length": output, "hash_ids": list(h)}) + "\n"
                            for i, h in enumerate(hash_ids)))
    return str(path)


def run(path):
    return api.simulate(["workload=trace_mooncake", f"workload.trace.path={path}",
                         "kv_tiers=hbm_dram", "model=llama3_1_8b", "hardware=h100_sxm"])


def test_requests_sharing_hash_ids_hit_the_cache(tmp_path):
    # 4 documents of 4 blocks each, read by 10 requests each (each with its own fifth block)
    hashes = [(100 * g, 100 * g + 1, 100 * g + 2, 100 * g + 3, 10_000 + i)
              for i in range(40) for g in [i % 4]]
    summary = run(mooncake(tmp_path / "shared.jsonl", hashes))
    kv = summary["kv_lookups"]["llm"]
    assert summary["requests_completed"] == 40
    # each document's first reader looks nothing up and keeps it; the 36 others hit it
    assert kv["lookups"] == 36 and kv["misses"] == 0
    assert kv["hit_tokens"] == kv["prefix_tokens"] == 36 * 4 * BLOCK
    traffic = summary["deployment"]["traffic"]
    assert traffic["shared_prefix"]["requests"] == 36 and traffic["format"] == "mooncake"


def test_a_trace_without_sharing_makes_no_hit(tmp_path):
    hashes = [tuple(range(10 * i, 10 * i + 5)) for i in range(40)]
    summary = run(mooncake(tmp_path / "unique.jsonl", hashes))
    kv = summary["kv_lookups"]["llm"]
    assert summary["requests_completed"] == 40
    assert kv["lookups"] == 0 and kv["hit_tokens"] == 0
    assert summary["deployment"]["traffic"]["shared_prefix"]["requests"] == 0


@pytest.mark.parametrize("override, match", [
    ("workload.trace.path=azure_format_sample.csv",
     "needs a trace with shared-prefix blocks"),
    ("workload.request_types.traced.prompt_tokens={kind: fixed, mean: 100}",
     "needs workload.request_types.traced.prompt_tokens.kind=trace"),
])
def test_pattern_trace_is_refused_where_rows_and_prefixes_would_not_match(override, match):
    with pytest.raises(ConfigError, match=r"workload.request_types.traced.prefix.pattern='trace': "
                                          + match):
        api.compose(["workload=trace_mooncake", "kv_tiers=hbm_dram", override])
