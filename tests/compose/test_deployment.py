"""The ``deployment`` section (hermes_opt/compose/deployment.py): the main model's pools derived
from a device budget, colocated or disaggregated, and one ConfigError per bad value."""

from __future__ import annotations

import subprocess
import sys

import pytest
from fakes import subprocess_env

from hermes_opt.compose.overrides import compose_overrides
from hermes_opt.compose.to_sim import sim_config
from sim import PoolRole, RouterPolicy, StageKind, simulate
from sim.errors import ConfigError

HERMES_SIM = [sys.executable, "-c", "from hermes_opt.cli.sim_command import main; main()"]
BASE = ["model=llama3_1_8b", "workload.num_requests=20"]
DISAGG = BASE + ["deployment.architecture=disaggregated"]


def pools_of(overrides):
    return {p.name: p for p in sim_config(compose_overrides(BASE + overrides)).pools}


def test_no_architecture_keeps_cluster_as_written():
    pools = pools_of(["hardware=h200", "cluster.num_replicas=3", "cluster.tp=2"])
    assert list(pools) == ["llm"]
    llm = pools["llm"]
    assert (llm.num_replicas, llm.tp, llm.hardware.name, llm.config_path) == (3, 2, "h200", "cluster")


def test_colocated_is_one_pool_of_total_over_tp_replicas_on_its_hardware():
    cfg = sim_config(compose_overrides(BASE + [
        "hardware=h100_sxm", "deployment.architecture=colocated", "deployment.total_devices=8",
        "deployment.colocated.tp=2", "deployment.colocated.hardware=h200",
        "deployment.colocated.scheduler.max_num_seqs=32"]))
    assert [p.name for p in cfg.pools] == ["llm"]
    llm = cfg.pools[0]
    assert (llm.role, llm.num_replicas, llm.tp, llm.hardware.name) == (PoolRole.COLOCATED, 4, 2, "h200")
    assert llm.config_path == "deployment.colocated" and llm.scheduler.max_num_seqs == 32
    assert [s.kind for s in cfg.workload.request_types[0].plan] == [StageKind.GENERATE]


def test_colocated_hardware_defaults_to_the_hardware_group():
    llm = pools_of(["hardware=a100_80g", "deployment.architecture=colocated",
                    "deployment.total_devices=4"])["llm"]
    assert (llm.hardware.name, llm.num_replicas, llm.tp) == ("a100_80g", 4, 1)


def test_disaggregated_splits_the_devices_with_hardware_and_scheduler_per_pool():
    cfg = sim_config(compose_overrides(DISAGG + [
        "scheduler.max_num_seqs=128", "cluster.weight_dtype=fp8",
        "deployment.total_devices=8", "deployment.prefill.devices=2",
        "deployment.prefill.hardware=h200", "deployment.decode.hardware=mi300x",
        "deployment.decode.tp=2", "deployment.prefill.scheduler.max_num_seqs=16",
        "deployment.decode.scheduler.max_batched_tokens=4096"]))
    prefill, decode = cfg.pools
    assert (prefill.name, prefill.role, prefill.num_replicas, prefill.tp, prefill.hardware.name) == \
        ("prefill", PoolRole.PREFILL, 2, 1, "h200")
    assert (decode.name, decode.role, decode.num_replicas, decode.tp, decode.hardware.name) == \
        ("decode", PoolRole.DECODE, 3, 2, "mi300x")
    assert prefill.num_devices + decode.num_devices == 8
    # per-pool scheduler overrides on top of the scheduler group; the rest inherited
    assert (prefill.scheduler.max_num_seqs, prefill.scheduler.max_batched_tokens) == (16, 8192)
    assert (decode.scheduler.max_num_seqs, decode.scheduler.max_batched_tokens) == (128, 4096)
    assert prefill.weight_dtype.value == decode.weight_dtype.value == "fp8"
    assert (prefill.config_path, decode.config_path) == ("deployment.prefill", "deployment.decode")
    # the default plan (generate on the first pool) is served as prefill + decode
    assert [(s.kind, s.pool) for s in cfg.workload.request_types[0].plan] == [
        (StageKind.PREFILL, "prefill"), (StageKind.DECODE, "decode")]


def test_a_derived_disaggregated_config_simulates():
    cfg = sim_config(compose_overrides(DISAGG + ["deployment.total_devices=2",
                                                 "deployment.prefill.devices=1"]))
    summary = simulate(cfg, seed=0).summary
    assert summary["requests_completed"] == 20
    assert set(summary["pools"]) == {"prefill", "decode"}
    assert summary["generated_tokens"]["prefill"] == 20  # one first token per request


@pytest.mark.parametrize("overrides, message", [
    (BASE + ["deployment.architecture=hybrid"], "deployment.architecture='hybrid': allowed: "),
    (BASE + ["deployment.architecture=colocated", "deployment.colocated.tp=3"],
     "deployment.colocated.tp=3: does not divide the pool's 8 devices"),
    (DISAGG + ["deployment.decode.tp=3"], "deployment.decode.tp=3: does not divide the pool's 4"),
    (DISAGG + ["deployment.prefill.devices=0"], "deployment.prefill.devices=0: must be a whole "
                                                "number in 1..7"),
    (DISAGG + ["deployment.prefill.devices=8"], "deployment.prefill.devices=8: must be a whole "
                                                "number in 1..7"),
    (DISAGG + ["deployment.prefill.devices=nan"], "deployment.prefill.devices=nan: must be a "
                                                  "whole number in 1..7"),
    (DISAGG + ["deployment.prefill.devices=2.5"], "deployment.prefill.devices=2.5: "),
    (DISAGG + ["deployment.total_devices=0"], "deployment.total_devices=0: must be a whole number"),
    (DISAGG + ["deployment.total_devices=1"], "deployment.total_devices=1: disaggregated needs at "
                                              "least 2"),
    (BASE + ["deployment.architecture=colocated", "deployment.total_devices=0"],
     "deployment.total_devices=0: "),
    (BASE + ["deployment.architecture=colocated", "deployment.colocated.hardware=h900"],
     "deployment.colocated.hardware='h900': unknown hardware; allowed: "),
    (DISAGG + ["deployment.decode.hardware=xeon_6980p"],
     "deployment.decode.hardware='xeon_6980p': a CPU cannot take the decode role"),
    (DISAGG + ["+deployment.prefill.scheduler.foo=1"],
     "deployment.prefill.scheduler.foo=1: unknown key; allowed: policy, max_num_seqs"),
    (DISAGG + ["deployment.decode.router=random"],
     "deployment.decode.router='random': allowed: round_robin, least_outstanding_tokens"),
])
def test_bad_deployment_values_are_one_config_error_naming_field_and_value(overrides, message):
    with pytest.raises(ConfigError) as err:
        sim_config(compose_overrides(overrides))
    assert str(err.value).startswith(message), str(err.value)


def test_the_cli_reports_a_bad_split_on_one_line_with_exit_2(tmp_path):
    proc = subprocess.run(HERMES_SIM + DISAGG + ["deployment.prefill.devices=0"], cwd=tmp_path,
                          capture_output=True, text=True, env=subprocess_env(), timeout=120)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert lines == ["hermes-sim: error: deployment.prefill.devices=0: must be a whole number in "
                     "1..7"]
    assert "Traceback" not in proc.stderr and proc.stdout == ""


def test_each_disaggregated_pool_takes_its_own_router_or_the_router_group():
    pools = pools_of(["deployment.architecture=disaggregated", "router=join_shortest_queue",
                      "deployment.prefill.router=least_outstanding_tokens"])
    assert pools["prefill"].router is RouterPolicy.LEAST_OUTSTANDING_TOKENS
    assert pools["decode"].router is RouterPolicy.JOIN_SHORTEST_QUEUE
