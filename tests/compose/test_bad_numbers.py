"""Non-finite numbers, absurd counts and bad seeds: one ConfigError naming the field and value
(``hermes-sim`` prints it on one line and exits 2), never a traceback or a huge allocation."""

from __future__ import annotations

import subprocess
import sys

import pytest
from fakes import subprocess_env

from hermes_opt.compose.overrides import compose_overrides
from hermes_opt.compose.to_sim import seed_value, sim_config
from sim.errors import ConfigError

HERMES_SIM = [sys.executable, "-c", "from hermes_opt.cli.sim_command import main; main()"]
BASE = ["model=llama3_1_8b", "workload.num_requests=20"]


@pytest.mark.parametrize("override, message", [
    ("workload.arrival.rate_per_s=inf", "workload.arrival.rate_per_s=inf: must be a finite number"),
    ("workload.arrival.rate_per_s=-inf", "workload.arrival.rate_per_s=-inf: must be a finite"),
    ("scheduler.gpu_memory_utilization=nan", "scheduler.gpu_memory_utilization=nan: must be a finite"),
    ("cluster.tp=inf", "cluster.tp=inf: must be a finite number"),
    ("slo.ttft_ms=-inf", "slo.ttft_ms=-inf: must be a finite number (or .inf: no target)"),
    ("slo.tpot_ms=nan", "slo.tpot_ms=nan: must be a finite number"),
    ("workload.num_requests=1000000000", "workload.num_requests=1000000000: must be an integer in "
                                          "1..10,000,000"),
    ("cluster.num_replicas=1000000", "cluster.num_replicas=1000000: must be an integer in 1..10,000"),
])
def test_bad_numbers_are_one_config_error(override, message):
    with pytest.raises(ConfigError) as err:
        sim_config(compose_overrides(BASE + [override]))
    assert message in str(err.value)


def test_an_infinite_slo_means_no_target():
    cfg = sim_config(compose_overrides(BASE + ["slo.ttft_ms=inf"]))
    assert cfg.slo.ttft_ms == float("inf")


@pytest.mark.parametrize("seed", ["nan", "-1", "1.5", "inf", "9223372036854775808"])
def test_bad_seeds_are_one_config_error(seed):
    with pytest.raises(ConfigError, match=r"seed=.*: must be a whole number in 0\.\.2\*\*63-1"):
        seed_value(compose_overrides(BASE + [f"seed={seed}"]))


def test_good_seeds_pass_through():
    assert seed_value(compose_overrides(BASE + ["seed=7"])) == 7
    assert seed_value(compose_overrides(BASE + ["seed=3.0"])) == 3


@pytest.mark.parametrize("override", ["seed=nan", "workload.arrival.rate_per_s=inf"])
def test_the_cli_prints_one_line_and_exits_2(tmp_path, override):
    proc = subprocess.run(HERMES_SIM + BASE + [override], cwd=tmp_path, capture_output=True,
                          text=True, env=subprocess_env(), timeout=120)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("hermes-sim: error: ") and "Traceback" not in proc.stderr
    assert override.split("=")[0] in lines[0]
