"""The shipped kv_mooncake study: every value of its space composes on its base, and the base
(with the engines the space chooses) replays the Mooncake sample with reuse from hash_ids."""

from __future__ import annotations

import pytest

from hermes_opt import api
from hermes_opt.study import definition


@pytest.fixture(scope="module")
def spec():
    return definition.load("kv_mooncake")


def test_every_value_of_the_space_composes(spec):
    def text(value):
        return str(value).lower() if isinstance(value, bool) else str(value)
    composed = 0
    for param in spec.space.parameters:
        parents = [f"{name}={text(values[0])}" for name, values in param.when]
        for value in param.choices:
            api.compose([*spec.base, "cluster.num_replicas=4", *parents,
                         f"{param.name}={text(value)}"])
            composed += 1
    assert composed == 21  # 3 + 2 + 2 + 2 + 4 + 2 + 2 + 2 + 2 values


def test_its_base_replays_the_trace_with_reuse_from_hash_ids(spec):
    summary = api.simulate([*spec.base, "cluster.num_replicas=6"])
    kv = summary["kv_lookups"]["llm"]
    assert summary["requests_completed"] == 400
    assert kv["lookups"] == 399 and 0 < kv["hit_tokens"] < kv["prefix_tokens"]  # not the first
    assert summary["deployment"]["traffic"]["rate_per_s"] == pytest.approx(399 / 141, rel=1e-5)
