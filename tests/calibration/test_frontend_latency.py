"""Serving front-end latency: a per-call delay before the engine's scheduler that TTFT and E2E
include and ITL does not; fitted by serving calibration, carried by the profile, zero by default."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from hydra import compose as hydra_compose
from hydra import initialize_config_module
from hydra.core.global_hydra import GlobalHydra

from hermes_opt.calibration import serving
from hermes_opt.calibration.observations import ServingObservation
from hermes_opt.calibration.predict import hardware_spec, model_spec
from hermes_opt.calibration.recipes import recipe_argv
from hermes_opt.cli import calibrate_command as cli
from hermes_opt.compose import calibration_profile as profile
from hermes_opt.compose import to_sim
from sim import (
    ArrivalKind,
    ArrivalSpec,
    CostModelSpec,
    LengthKind,
    LengthSpec,
    PoolSpec,
    RequestTypeSpec,
    SimConfig,
    Stage,
    StageKind,
    WorkloadSpec,
    simulate,
)
from sim.errors import ConfigError


def config(frontend_s: float, arrival: ArrivalSpec, *, record: bool = False) -> SimConfig:
    pool = PoolSpec(name="llm", model=model_spec("llama3_1_8b"), hardware=hardware_spec("h100_sxm"),
                    cost_model=CostModelSpec(frontend_latency_s=frontend_s))
    rt = RequestTypeSpec(plan=(Stage(kind=StageKind.GENERATE, pool="llm"),),
                         prompt_tokens=LengthSpec(kind=LengthKind.FIXED, mean=300),
                         output_tokens=LengthSpec(kind=LengthKind.FIXED, mean=40))
    return SimConfig(pools=(pool,), record_requests=record,
                     workload=WorkloadSpec(num_requests=60, arrival=arrival, request_types=(rt,)))


def sim_config(*overrides: str) -> SimConfig:
    GlobalHydra.instance().clear()
    with initialize_config_module(config_module="hermes_opt.conf", version_base="1.3"):
        cfg = hydra_compose(config_name="sim", overrides=["workload.num_requests=40", *overrides])
    GlobalHydra.instance().clear()
    return to_sim.sim_config(cfg)


POISSON = ArrivalSpec(kind=ArrivalKind.POISSON, rate_per_s=20.0)


def test_ttft_and_e2e_include_it_itl_does_not():
    base = simulate(config(0.0, POISSON), 3).summary
    late = simulate(config(0.012, POISSON), 3).summary
    for figure in ("mean", "p50", "p99"):
        assert late["ttft_ms"][figure] == pytest.approx(base["ttft_ms"][figure] + 12.0, abs=1e-6)
        assert late["e2e_ms"][figure] == pytest.approx(base["e2e_ms"][figure] + 12.0, abs=1e-6)
    assert late["itl_ms"] == pytest.approx(base["itl_ms"], rel=1e-9)
    assert late["tpot_ms"] == pytest.approx(base["tpot_ms"], rel=1e-9)
    # the GPU does the same work: only the run is later
    assert late["pools"]["llm"]["busy_s"] == pytest.approx(base["pools"]["llm"]["busy_s"], rel=1e-9)


def test_it_is_a_visit_of_its_own_and_leaves_the_queue_alone():
    result = simulate(config(0.005, POISSON, record=True), 1)
    stages = result.summary["stages"]
    assert stages["frontend@llm"]["service_ms"]["mean"] == pytest.approx(5.0, abs=1e-9)
    assert stages["frontend@llm"]["visits"] == 60
    for row in result.requests:
        assert row["stages"].startswith("frontend@llm:0.000/5.000;generate@llm:")
        assert row["gen_start_s"] >= row["arrival_s"] + 0.005 - 1e-12


def test_default_is_zero_and_changes_nothing():
    assert CostModelSpec().frontend_latency_s == 0.0
    closed = ArrivalSpec(kind=ArrivalKind.CLOSED_LOOP, concurrency=4)
    result = simulate(config(0.0, closed, record=True), 2)
    assert "frontend@llm" not in result.summary["stages"]
    assert all("frontend" not in row["stages"] for row in result.requests)


def test_closed_loop_clients_wait_for_it_too():
    closed = ArrivalSpec(kind=ArrivalKind.CLOSED_LOOP, concurrency=1)
    base = simulate(config(0.0, closed), 0).summary
    late = simulate(config(0.02, closed), 0).summary
    assert late["ttft_ms"]["mean"] == pytest.approx(base["ttft_ms"]["mean"] + 20.0, abs=1e-6)
    assert late["duration_s"] == pytest.approx(base["duration_s"] + 60 * 0.02, rel=1e-9)


@pytest.mark.parametrize("value", [-0.001, math.inf, math.nan, True])
def test_invalid_latency_is_one_clear_error(value):
    with pytest.raises(ConfigError, match="cost_model.frontend_latency_s=.*finite number of seconds >= 0"):
        CostModelSpec(frontend_latency_s=value)


@pytest.mark.parametrize("value", [-1, "10ms", None, float("inf")])
def test_profile_rejects_a_bad_latency(value):
    data = dict(name="p", hardware="h100_sxm", engine="e", precision="bf16", params={},
                frontend_latency_s=value)
    with pytest.raises(ConfigError, match=r"calibration\[p\].frontend_latency_s="):
        profile.from_mapping(data, "test")


def test_profile_round_trips_and_the_selected_profile_applies_it(tmp_path):
    p = profile.Profile(name="x", hardware="h100_sxm", engine="e", precision="bf16",
                        frontend_latency_s=0.0075)
    path = tmp_path / "x.yaml"
    path.write_text(p.to_yaml())
    assert profile.load_path(path).frontend_latency_s == 0.0075
    shipped = profile.load("trtllm014_bf16_h100")
    assert 0 < shipped.frontend_latency_s < serving.FRONTEND_MAX_S
    assert "frontend_latency_s" in shipped.provenance["fitted_params"]
    cal = sim_config("model=llama3_1_8b", "hardware=h100_sxm", "calibration=trtllm014_bf16_h100")
    assert cal.pools[0].cost_model.frontend_latency_s == shipped.frontend_latency_s
    assert sim_config("model=llama3_1_8b", "hardware=h100_sxm").pools[0].cost_model.frontend_latency_s == 0
    # step-level profiles have no front end to fit
    assert profile.load("splitwise_h100_fp16").frontend_latency_s == 0.0


def rows(metrics: list[str], measured: list[float]) -> list[ServingObservation]:
    return [ServingObservation(source="s", model="llama3_1_8b", hardware="h100_sxm", precision="bf16",
                               tp=1, isl=100, osl=10, arrival="poisson", rate_per_s=1.0, concurrency=1,
                               num_requests=10, metric=m, measured=v, row=i)
            for i, (m, v) in enumerate(zip(metrics, measured))]


def soft_l1(r: np.ndarray) -> np.ndarray:
    return np.sqrt(1.0 + (r / 0.1) ** 2) - 1.0


def test_fit_recovers_a_known_latency_and_ignores_other_metrics():
    obs = rows(["ttft_ms.mean", "ttft_ms.mean", "e2e_ms.p50", "itl_ms.mean", "output_tokens_per_s"],
               [19.0, 30.0, 211.0, 7.0, 1000.0])
    predicted = np.asarray([10.0, 21.0, 202.0, 50.0, 1.0])  # latency rows all 9 ms short
    assert serving.best_frontend_latency_s(obs, predicted, soft_l1) == pytest.approx(0.009, abs=1e-9)
    # no TTFT/E2E rows: not identifiable, 0
    only = rows(["itl_ms.mean", "output_tokens_per_s"], [7.0, 1000.0])
    assert serving.best_frontend_latency_s(only, np.asarray([5.0, 900.0]), soft_l1) == 0.0
    # predictions already too slow: never negative
    assert serving.best_frontend_latency_s(obs[:1], np.asarray([25.0]), soft_l1) == 0.0


def test_cli_can_keep_it_at_zero():
    argv = recipe_argv("trtllm014_bf16_h100")
    assert cli.request_from(cli.parser().parse_args(argv), argv).fit_frontend_latency
    argv = [*argv, "--no-frontend-latency"]
    req = cli.request_from(cli.parser().parse_args(argv), argv)
    assert not req.fit_frontend_latency
    assert dataclasses.replace(req, max_evals=1).fit_frontend_latency is False
