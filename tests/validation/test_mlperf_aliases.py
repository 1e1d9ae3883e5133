"""Alias table (conf/tables/aliases.yaml): every spelling seen in MLPerf / measurement tables."""

from __future__ import annotations

import pytest

from hermes_opt.compose import aliases
from sim.errors import ConfigError

HARDWARE = {
    "NVIDIA H100-SXM-80GB": "h100_sxm", "NVIDIA H100-SXM5-80GB": "h100_sxm", "H100-SXM-80GB": "h100_sxm",
    "NVIDIA H100-NVL-94GB": "h100_nvl", "NVIDIA H100-PCIe-80GB": "h100_pcie",
    "NVIDIA H200-SXM-141GB": "h200", "NVIDIA H200-SXM-141GB-CTS": "h200",
    "NVIDIA GH200-Grace-Hopper-Superchip-144GB": "gh200_144g",
    "NVIDIA GH200 Grace Hopper Superchip 144GB": "gh200_144g",
    "NVIDIA GH200 Grace Hopper Superchip 96GB": "gh200_96g", "GH200-480GB(96GB HBM3)": "gh200_96g",
    "NVIDIA B200-SXM-180GB": "b200", "AMD Instinct MI300X-NPS1-SPX-192GB-750W": "mi300x",
    "AMD MI300X-NPS1-SPX-192GB-750W": "mi300x", "NVIDIA L40S": "l40s", "A100-SXM4-80GB": "a100_80g",
    # reference/measurements.csv and hw-traces spellings
    "A100": "a100_80g", "A100-80GB": "a100_80g", "A100-80GB (DGX-A100)": "a100_80g", "a100_dgx": "a100_80g",
    "H100": "h100_sxm", "H100-80GB": "h100_sxm", "H100-80GB (DGX-H100)": "h100_sxm",
    "H100-80GB power-capped (DGX-H100)": "h100_sxm", "h100-80gb-pcap": "h100_sxm", "h100_dgx": "h100_sxm",
    'H200 (listed as "131GB HBM3" in source)': "h200", "B200": "b200", "L40S": "l40s",
    "NVIDIA GB200": "gb200", "NVIDIA B300-SXM-288GB": "b300", "AMD Instinct MI325X": "mi325x",
    "AMD Instinct MI355X": "mi355x", "NVIDIA RTX PRO 6000 Blackwell Server Edition": "rtx_pro_6000",
}
MODELS = {
    "llama2-70b-99": "llama2_70b", "llama2-70b-99.9": "llama2_70b", "llama2-70b-interactive-99": "llama2_70b",
    "mixtral-8x7b": "mixtral_8x7b", "LLaMA v3.1 8B": "llama3_1_8b", "llama3.1-405b": "llama3_1_405b",
    "llama3.1-8b": "llama3_1_8b", "deepseek-r1": "deepseek_r1", "Llama-3.3-70B": "llama3_3_70b",
    "Llama-3.3-70B-Instruct": "llama3_3_70b", "gpt-oss-120b": "gpt_oss_120b", "gpt-oss-20b": "gpt_oss_20b",
    "meta-llama/Llama-2-70b-hf": "llama2_70b", "Llama-2-70b-hf": "llama2_70b", "llama-2-7b-hf": "llama2_7b",
    "Meta-Llama-3-8B": "llama3_1_8b", "meta-llama-3-70b": "llama3_1_70b", "Mistral 7B": "mistral_7b",
    "Llama-3.1-8B-Instruct": "llama3_1_8b", "LLaMA 3.1 8B": "llama3_1_8b", "Qwen3-235B-A22B": "qwen3_235b_a22b",
    "Qwen3-8B": "qwen3_8b", "DeepSeek-R1-671B": "deepseek_r1", "Mixtral-8x22B": "mixtral_8x22b",
    "Llama-4-Scout-17B-16E": "llama4_scout",
}
NOT_MAPPED = {"hardware": ["CPU 1 thread", "4x K40", "RDMA KV transfer (measured)"],
              "model": ["DeepSeek-R1-Distill-Qwen-32B", "Llama-3.2-3B-Instruct", "bloomz-7b1"]}  # bloom-176b: catalog


@pytest.fixture(autouse=True)
def shipped_table_only():
    aliases.use_tables([])
    yield
    aliases.use_tables([])


@pytest.mark.parametrize("raw,name", HARDWARE.items())
def test_hardware_spellings(raw, name):
    assert aliases.alias("hardware", raw) == name


@pytest.mark.parametrize("raw,name", MODELS.items())
def test_model_spellings(raw, name):
    assert aliases.alias("model", raw) == name


def test_unknown_spellings_are_empty_with_a_reason():
    for kind, spellings in NOT_MAPPED.items():
        for raw in spellings:
            assert aliases.alias(kind, raw) == ""
            name, reason = aliases.resolve(kind, raw)
            assert name == "" and "unknown" in reason and raw in reason


def test_normalization():
    assert aliases.normalize("hardware", "NVIDIA  H100 SXM5 (80GB)") == "h100-sxm5-80gb"
    assert aliases.normalize("hardware", "AMD Instinct MI300X") == "mi300x"
    assert aliases.normalize("model", "meta-llama/Llama-3.1-8B") == "llama-3-1-8b"
    assert aliases.resolve("hardware", "h100_sxm") == ("h100_sxm", "")  # catalog names pass


def test_user_table_is_tried_first(tmp_path):
    user = tmp_path / "mine.yaml"
    user.write_text("hardware:\n  - {pattern: 'h100-sxm-80gb', name: h200}\n"
                    "  - {pattern: 'h800(-.*)?', name: h100_sxm}\n")
    aliases.use_tables([str(user)])
    assert aliases.alias("hardware", "NVIDIA H100-SXM-80GB") == "h200"
    assert aliases.alias("hardware", "H800") == "h100_sxm"
    assert aliases.alias("hardware", "NVIDIA L40S") == "l40s"  # shipped entries still apply


@pytest.mark.parametrize("text,needle", [
    ("hardware:\n  - {pattern: '(', name: h100_sxm}\n", "hardware[0].pattern"),
    ("hardware:\n  - {pattern: 'x', name: H100}\n", "hardware[0].name"),
    ("hardware:\n  - {pattern: 'x', nam: h100_sxm}\n", "hardware[0].nam"),
    ("gpus: []\n", "gpus: unknown key"),
    ("hardware: {a: b}\n", "hardware: must be a list"),
    ("hardware: [\n", "not a readable YAML file"),
])
def test_malformed_table_is_one_error_naming_file_and_key(tmp_path, text, needle):
    bad = tmp_path / "bad.yaml"
    bad.write_text(text)
    with pytest.raises(ConfigError) as err:
        aliases.use_tables([str(bad)])
    message = str(err.value)
    assert str(bad) in message and needle in message and "\n" not in message
