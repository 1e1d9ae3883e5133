"""The deployment record carries where each pool's price comes from (provider, product, date,
kind, trust, set) and the engine settings of its LLM pools, as plain JSON; a price of an unknown
kind is one ConfigError line."""

from __future__ import annotations

import json

import pytest

from hermes_opt.compose.candidate import compose
from sim.errors import ConfigError

SMALL = ["workload.num_requests=20"]


def test_each_pool_records_its_price_provenance_from_the_set():
    record = compose([*SMALL, "hardware=b200", "cluster.num_replicas=2",
                      "pricing=ondemand_2026_11"]).deployment
    price = record["pools"][0]["price"]
    assert price == {"set": "ondemand_2026_11", "set_date": "2026-11-09", "usd_per_hour": 7.15,
                     "unit": "device", "provider": "Nebius",
                     "product": "HGX B200 on-demand, per GPU", "date_observed": "2026-09-25",
                     "kind": "on_demand", "trust": "B"}
    assert json.loads(json.dumps(record)) == record  # plain JSON, as stored with the trial


def test_another_set_gives_that_providers_price():
    price = compose([*SMALL, "hardware=h100_sxm", "pricing=aws_2026_11"]).deployment[
        "pools"][0]["price"]
    assert (price["set"], price["provider"], price["usd_per_hour"]) == ("aws_2026_11", "AWS", 6.88)


def test_llm_pools_record_their_engine_settings():
    pool = compose([*SMALL, "hardware=b200", "scheduler=continuous",
                    "scheduler.max_num_seqs=194"]).deployment["pools"][0]
    assert pool["scheduler"]["max_num_seqs"] == 194
    assert set(pool["scheduler"]) == {"max_num_seqs", "max_batched_tokens", "chunk_size_tokens",
                                      "gpu_memory_utilization"}


def test_a_price_of_unknown_kind_is_one_error_line():
    with pytest.raises(ConfigError) as err:
        compose([*SMALL, "hardware=b200", "pricing.usd_per_hour.b200.kind=lease"])
    assert str(err.value) == ("pricing='ondemand_2026_11': usd_per_hour.b200.kind='lease': "
                              "allowed: on_demand, reserved, spot, capacity_block, tco")
