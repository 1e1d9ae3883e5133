"""Power-capped PCIe parts and 4-GPU boards in the catalog (issue 22): the sustained GEMM rate a
card of an SXM part's die reaches at its own TDP, and the board an MLPerf system of 4 GPUs runs on."""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from hermes_opt.compose import catalog
from hermes_opt.compose.values import hardware_spec
from sim.errors import ConfigError


def spec(name, **changes):
    node = OmegaConf.create(OmegaConf.to_container(catalog.entry("hardware", name)))
    for key, value in changes.items():
        node[key] = value
    return hardware_spec(node)


def test_pcie_hoppers_sustain_the_sxm_flops_per_watt_at_their_own_tdp():
    # H100 SXM: 989.4 TFLOPS at 700 W; NVL 835.5 at 400 W; PCIe 756.5 at 350 W
    assert spec("h100_nvl").sustained_compute_fraction == pytest.approx(
        (400 / 835.5) / (700 / 989.4))
    assert spec("h100_pcie").sustained_compute_fraction == pytest.approx(
        (350 / 756.5) / (700 / 989.4))
    # the H200 NVL datasheet already lists clocks its 600 W holds; SXM parts are their own reference
    assert spec("h200_nvl").sustained_compute_fraction == 1.0
    assert spec("h100_sxm").sustained_compute_fraction == 1.0


def test_an_explicit_fraction_wins_and_bad_values_name_the_field():
    assert spec("h100_nvl", sustained_compute_fraction=0.9).sustained_compute_fraction == 0.9
    with pytest.raises(ConfigError, match=r"hardware\[h100_nvl\].sustained_compute_fraction=1.5"):
        spec("h100_nvl", sustained_compute_fraction=1.5)
    with pytest.raises(ConfigError, match=r"power_reference='h999': unknown hardware; allowed: "):
        spec("h100_nvl", power_reference="h999")
    with pytest.raises(ConfigError, match="needs tdp_w on both entries"):
        spec("h100_nvl", power_reference="tpu_v6e")  # TPUs publish no TDP


def test_a_4_gpu_system_of_an_hgx_gpu_runs_on_the_4_gpu_board():
    assert catalog.board_of("h100_sxm", 4) == "h100_sxm_hgx4"
    assert catalog.board_of("h200", 4) == "h200_hgx4"
    # whole 8-GPU servers, one GPU, or several servers keep the NVSwitch board
    for gpus in (1, 8, 16, 32):
        assert catalog.board_of("h100_sxm", gpus) == "h100_sxm"
    assert catalog.board_of("mi300x", 4) == "mi300x"  # no 4-device board of it in the catalog
    board = spec("h100_sxm_hgx4")
    assert (board.scaleup_mesh_devices, board.scaleup_domain_devices) == (4, 4)
    assert board.group_bw_bytes_per_s(2) == pytest.approx(150e9)
