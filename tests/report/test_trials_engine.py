"""The trials table names the serving engine: the engine column and replay commands."""

from __future__ import annotations

from types import SimpleNamespace

from hermes_opt.report.trials import engine_label, replay_command

SPEC = SimpleNamespace(base=["model=qwen3_32b"])


def test_a_replay_names_the_engine_unless_the_study_chose_it():
    assert replay_command(SPEC, ["hardware=h200"], 0, "vllm") == \
        "hermes-sim model=qwen3_32b hardware=h200 engine=vllm seed=0"
    assert replay_command(SPEC, ["deployment.colocated.engine=sglang"], 0, "sglang") == \
        "hermes-sim model=qwen3_32b deployment.colocated.engine=sglang seed=0"
    assert replay_command(SimpleNamespace(base=["engine=trtllm"]), [], 3, "trtllm") == \
        "hermes-sim engine=trtllm seed=3"
    assert "engine=" not in replay_command(SPEC, [], 0, None)  # a custom evaluator's trial


def test_the_engine_label_is_per_pool_only_when_pools_differ():
    one = {"pools": [{"name": "llm", "engine": "vllm 0.11"}, {"name": "cpu"}]}
    assert engine_label(one) == "vllm 0.11"
    two = {"pools": [{"name": "prefill", "engine": "trtllm 1.0"},
                     {"name": "decode", "engine": "sglang 0.5"}]}
    assert engine_label(two) == "prefill trtllm 1.0 + decode sglang 0.5"
    assert engine_label(None) is None and engine_label({"pools": [{"name": "cpu"}]}) is None
