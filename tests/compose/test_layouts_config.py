"""Layouts from the catalog: DEP on DeepSeek-R1, wide EP across HGX boards or inside an NVL72
rack, and the layout line of the deployment record."""

from __future__ import annotations

import pytest

from hermes_opt.compose.candidate import layout_line
from hermes_opt.compose.overrides import compose_overrides
from hermes_opt.compose.to_sim import sim_config
from sim.cost.factory import build_cost_model
from sim.errors import ConfigError

R1 = ["model=deepseek_r1", "cluster.weight_dtype=fp8", "cluster.kv_dtype=fp8",
      "workload.num_requests=20"]


def main_pool(overrides):
    return sim_config(compose_overrides(R1 + overrides)).pools[0]


def test_dep8_holds_several_times_the_sequences_of_tp8_on_b200():
    tp8 = main_pool(["hardware=b200", "cluster.tp=8", "cluster.ep=8"])
    dep8 = main_pool(["hardware=b200", "cluster.tp=8", "cluster.ep=8", "cluster.attention_dp=true"])
    # TP keeps the whole MLA latent on every rank; DEP keeps each rank's own sequences
    assert dep8.kv_capacity_blocks() > 4 * tp8.kv_capacity_blocks()


def test_the_catalog_gives_hgx_boards_8_nvlink_devices_and_nvl72_racks_72():
    h100 = main_pool(["hardware=h100_sxm", "cluster.tp=16", "cluster.ep=16",
                      "cluster.attention_dp=true"]).hardware
    gb200 = main_pool(["hardware=gb200", "cluster.tp=16", "cluster.ep=16",
                       "cluster.attention_dp=true"]).hardware
    assert (h100.scaleup_domain_devices, h100.scaleout_bw_bytes_per_s) == (8, 50e9)
    assert (gb200.scaleup_domain_devices, gb200.scaleout_bw_bytes_per_s) == (72, 50e9)


def test_wide_ep_over_two_h100_boards_steps_slower_than_inside_one_nvlink_domain():
    dep16 = ["cluster.tp=16", "cluster.ep=16", "cluster.attention_dp=true"]
    two_boards = build_cost_model(main_pool(["hardware=h100_sxm", *dep16]))
    # the same 16 ranks priced as one NVLink domain (the pre-issue-26 pricing)
    one_domain = build_cost_model(main_pool(["hardware=h100_sxm", *dep16,
                                             "hardware.scaleup_domain_devices=0"]))
    # bandwidth-bound: 8 of 15 peers behind a 50 GB/s NIC instead of 450 GB/s NVLink -> ~4.8x
    assert two_boards._comm_s(65536) > 4 * one_domain._comm_s(65536)
    assert two_boards.step_time(0, 0.0, 0, 0, 512, 512 * 2000) > \
        1.05 * one_domain.step_time(0, 0.0, 0, 0, 512, 512 * 2000)


def test_a_gb200_rack_runs_attention_dp_over_sizes_128_heads_do_not_divide():
    pool = main_pool(["hardware=gb200", "cluster.tp=24", "cluster.ep=8",
                      "cluster.attention_dp=true"])
    assert pool.tp == 24 and pool.kv_capacity_blocks() > 0


def test_the_layout_line_names_attention_dp():
    dep = {"name": "llm", "devices": 8, "hardware": "b200", "replicas": 1, "tp": 8, "ep": 8,
           "attention_dp": True, "accelerated_model": True}
    assert layout_line([dep]) == "llm 8 x b200 (1 replica of attention-DP 8, ep 8)"
    assert layout_line([{**dep, "attention_dp": False}]) == "llm 8 x b200 (1 replica of tp 8)"


def test_a_wide_replica_on_an_entry_without_nics_is_one_line_naming_the_pool():
    with pytest.raises(ConfigError) as err:
        main_pool(["hardware=h100_sxm", "cluster.tp=16", "cluster.ep=16",
                   "cluster.attention_dp=true", "hardware.scaleout_bw_gb_per_s=0"])
    assert str(err.value).startswith("cluster.tp=16: tp x pp = 16 devices span more than "
                                     "h100_sxm's scale-up domain of 8 devices")
