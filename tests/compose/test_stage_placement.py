"""Stage placement keys (``cluster.pools.<name>.placement``, ``batch_timeout_ms``) through compose
and the real ``hermes-sim``: each placement builds the pool it names and prices it; bad values are
one line naming the field, exit 2."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from fakes import subprocess_env

from hermes_opt.compose.overrides import compose_overrides
from hermes_opt.compose.to_sim import sim_config
from sim.errors import ConfigError

HERMES_SIM = [sys.executable, "-c", "from hermes_opt.cli.sim_command import main; main()"]
BASE = ["workload=hybrid_rag", "+cluster=hybrid_rag", "workload.num_requests=60"]


def _pools(*overrides: str) -> dict:
    return {p.name: p for p in sim_config(compose_overrides([*BASE, *overrides])).pools}


def test_each_placement_builds_the_pool_it_names():
    cpu = _pools()["rerank"]
    assert (cpu.hardware.name, cpu.colocate_with, cpu.num_devices) == ("xeon_6980p", "", 2)
    gpu = _pools("cluster.pools.rerank.placement=gpu", "cluster.pools.rerank.num_replicas=3")
    assert (gpu["rerank"].hardware.name, gpu["rerank"].num_devices) == ("l40s", 3)
    assert gpu["llm"].reserved_bytes_per_device == 0.0
    shared = _pools("cluster.pools.rerank.placement=colocated", "cluster.num_replicas=3")
    guest, host = shared["rerank"], shared["llm"]
    assert (guest.hardware.name, guest.num_replicas, guest.num_devices) == ("h100_sxm", 3, 0)
    assert guest.colocate_with == "llm"
    # bge-reranker-large's ~0.56B bf16 weights on each H100 of the LLM pool
    assert 1.0e9 < host.reserved_bytes_per_device < 1.2e9
    assert host.kv_capacity_blocks() < gpu["llm"].kv_capacity_blocks()


def test_batch_timeout_is_read_in_milliseconds():
    assert _pools("cluster.pools.rerank.batch_timeout_ms=25")["rerank"].batch_timeout_s == 0.025


@pytest.mark.parametrize("overrides, message", [
    (["cluster.pools.rerank.placement=tpu"],
     "cluster.pools.rerank.placement='tpu': allowed: cpu, gpu, colocated"),
    (["+cluster.pools.cpu.placement=gpu"],
     "cluster.pools.cpu.placement=gpu: only pools of role embed, rerank, reward, classifier, "
     "retrieval are placed (this one is cpu)"),
    (["cluster.pools.rerank.placement=gpu", "cluster.pools.rerank.gpu_hardware=null"],
     "cluster.pools.rerank.gpu_hardware=None: placement=gpu needs the hardware"),
    (["cluster.pools.rerank.placement=colocated", "+cluster.pools.rerank.colocate_with=cpu"],
     "cluster.pools.rerank.colocate_with='cpu': must name a colocated LLM pool (pools: llm)"),
    (["cluster.pools.rerank.batch_timeout_ms=-1"],
     "cluster.pools.rerank.batch_timeout_ms=-1.0: must be in 0..60000"),
    (["cluster.pools.rerank.batch_timeout_ms=soon"],
     "cluster.pools.rerank.batch_timeout_ms='soon': must be a number"),
])
def test_bad_placement_input_is_one_error_naming_the_field(overrides, message):
    with pytest.raises(ConfigError) as err:
        sim_config(compose_overrides([*BASE, *overrides]))
    assert str(err.value).startswith(message)


@pytest.fixture(scope="module")
def cli(tmp_path_factory):
    cases = {"bad": [*BASE, "cluster.pools.embed.placement=fpga"],
             "colocated": [*BASE, "cluster.pools.embed.placement=colocated",
                           "cluster.pools.search.placement=colocated",
                           "cluster.pools.rerank.placement=colocated"]}
    procs = {name: subprocess.Popen(HERMES_SIM + args, cwd=tmp_path_factory.mktemp(name),
                                    env=subprocess_env(), text=True, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE) for name, args in cases.items()}
    return {name: (p.wait(timeout=300), p.stdout.read(), p.stderr.read())
            for name, p in procs.items()}


def test_bad_placement_through_hermes_sim_is_one_line_exit_2(cli):
    code, out, err = cli["bad"]
    assert code == 2 and out == ""
    assert err.strip().splitlines() == [
        "hermes-sim: error: cluster.pools.embed.placement='fpga': allowed: cpu, gpu, colocated"]


def test_colocated_stages_cost_nothing_of_their_own(cli):
    code, out, _ = cli["colocated"]
    assert code == 0
    summary = json.loads(out)
    parts = summary["cost_breakdown_usd_per_hour"]
    assert parts["embed"] == parts["search"] == parts["rerank"] == 0.0
    # 2 H100s for the LLM (and its guests) + 1 Xeon socket for tokenization
    assert summary["cost_usd_per_hour"] == pytest.approx(parts["llm"] + parts["cpu"])
    records = {p["name"]: p for p in summary["deployment"]["pools"]}
    assert records["rerank"]["colocated_on"] == "llm" and records["rerank"]["devices"] == 0
