"""The engine flag table (conf/tables/engine_flags.yaml) and the launch scripts written from it
(hermes_opt/report/deploy): every flag a written script passes is one the table lists, with a
source, for that engine version (the scripts are parsed as a shell splits them); every
options-file key likewise; a simulated setting an engine cannot express is written into the
artifact, not dropped."""

from __future__ import annotations

import pytest
import yaml
from deploy_cases import DISAGG, SMALL, commands, engine_of, words, write

from hermes_opt.report import engine_flags
from hermes_opt.report.deploy import flag_table

CASES = {
    "vllm": [*SMALL, "cluster.weight_dtype=fp8", "cluster.kv_dtype=fp8"],
    "sglang": [*SMALL, "engine=sglang", "cluster.weight_dtype=fp8", "cluster.kv_dtype=fp8"],
    "trtllm": [*SMALL, "engine=trtllm", "scheduler=chunked", "cluster.kv_dtype=fp8"],
    "trtllm_0.17": [*SMALL, "engine=trtllm", "engine.version=0.17", "scheduler=chunked"],
    "vllm_disagg": DISAGG,
    "sglang_disagg": [*DISAGG, "engine=sglang"],
    "trtllm_disagg": [*DISAGG, "engine=trtllm"],
    "vllm_moe_dp": ["model=qwen3_30b_a3b", "hardware=h100_sxm", "cluster.tp=2", "cluster.ep=2",
                    "cluster.attention_dp=true", "workload.num_requests=50"],
    "sglang_moe_dp": ["model=qwen3_30b_a3b", "hardware=h100_sxm", "cluster.tp=2",
                      "cluster.ep=2", "cluster.attention_dp=true", "engine=sglang",
                      "workload.num_requests=50"],
    "vllm_kv_tiers": [*SMALL, "kv_tiers=hbm_dram", "workload=kv_shared",
                      "workload.num_requests=50"],
    "sglang_kv_tiers": [*SMALL, "engine=sglang", "kv_tiers=hbm_dram_ssd", "workload=kv_shared",
                        "workload.num_requests=50"],
    "trtllm_kv_tiers": [*SMALL, "engine=trtllm", "kv_tiers=hbm_dram", "workload=kv_shared",
                        "workload.num_requests=50"],
    **{f"{engine}_eagle": [*SMALL, f"engine={engine}", "spec_decoding.method=eagle",
                           "spec_decoding.draft_tokens=4", "spec_decoding.dataset=mt_bench"]
       for engine in ("vllm", "sglang", "trtllm")},
    **{f"{engine}_mtp": ["model=deepseek_r1", "hardware=b200", "cluster.tp=8",
                         "cluster.weight_dtype=fp8", f"engine={engine}",
                         "spec_decoding.method=mtp", "spec_decoding.draft_tokens=2",
                         "workload.num_requests=50"] for engine in ("vllm", "sglang", "trtllm")},
    "vllm_draft_model": ["model=llama3_1_70b", "hardware=h200", "cluster.tp=4",
                         "spec_decoding.method=draft_model", "spec_decoding.draft_model=llama3_1_8b",
                         "spec_decoding.draft_tokens=4", "spec_decoding.acceptance_rate=0.7",
                         "workload.num_requests=50"],
}


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    return {name: write(tmp_path_factory.mktemp(name), overrides)
            for name, overrides in CASES.items()}


def test_every_flag_and_option_of_the_table_has_a_source():
    data = flag_table.table()
    entries = [(e, v, entry) for e, body in data.items() if e != "clients"
               for v, entry in body["versions"].items()]
    entries += [("clients", name, entry) for name, entry in data["clients"].items()]
    assert len(entries) == 6
    for engine, version, entry in entries:
        assert entry["flags"]
        for kind in ("flags", "options"):
            for name, item in (entry.get(kind) or {}).items():
                assert str((item or {}).get("source", "")).startswith("https://"), \
                    f"{engine} {version} {kind} {name}: no source URL"


def _rules(entry: dict):
    for setting, found in (entry.get("settings") or {}).items():
        if any(k in found for k in flag_table.RULE_KINDS):
            yield setting, found
        else:
            yield from ((f"{setting}={v}", r) for v, r in found.items())


@pytest.mark.parametrize("engine, version", [(e, v) for e, body in flag_table.table().items()
                                             if e != "clients" for v in body["versions"]])
def test_every_rule_emits_only_listed_flags_and_options(engine, version):
    entry = flag_table.entry(engine, version)
    for setting, found in _rules(entry):
        kinds = [k for k in flag_table.RULE_KINDS if k in found]
        assert len(kinds) == 1, f"{setting}: one of {flag_table.RULE_KINDS}, got {kinds}"
        flags = [t for t in found.get("emit") or [] if flag_table.FLAG.match(str(t))]
        assert set(flags) <= flag_table.known_flags(engine, version), setting
        assert set(found.get("option") or {}) <= flag_table.known_options(engine, version)


def test_the_check_names_flags_the_table_lacks():
    line = "vllm serve m --tensor-parallel-size 2 --chunked-prefill-size -1 --max-num-seqs=8 -x"
    assert flag_table.check_command(line, "vllm", "0.11") == ["--chunked-prefill-size", "-x"]
    assert flag_table.check_command(line, "sglang", "0.5") == [
        "not a sglang 0.5 command: " + line[:60]]
    sglang = line.replace("vllm serve m", "python3 -m sglang.launch_server --model-path m")
    assert flag_table.check_command(sglang, "sglang", "0.5") == [
        "--tensor-parallel-size", "--max-num-seqs", "-x"]
    assert flag_table.check_options({"kv_cache_config": {"dtype": "fp8", "bogus": 1}},
                                    "trtllm", "1.0") == ["kv_cache_config.bogus"]


@pytest.mark.parametrize("case", CASES)
def test_every_emitted_flag_is_in_the_table_for_its_engine_version(written, case):
    folder = written[case]
    scripts = sorted(folder.glob("launch_*.sh"))
    assert scripts
    for script in scripts:
        pool = script.stem.removeprefix("launch_")
        engine, version = engine_of(folder, "prefill" if pool == "router" else pool)
        (line,) = commands(script)
        assert flag_table.check_command(line, engine, version) == [], script.name
        argv = words(line)
        if pool != "router":  # parsing found the command line, not an empty one
            tp_flag = flag_table.rule(flag_table.entry(engine, version), "tp")["emit"][0]
            assert tp_flag in argv, script.name
    for options in folder.glob("options_*.yaml"):
        engine, version = engine_of(folder, options.stem.removeprefix("options_"))
        assert flag_table.check_options(yaml.safe_load(options.read_text()), engine,
                                        version) == []
    client = "sglang_bench" if case.startswith("sglang") else "vllm_bench"
    for line in commands(folder / "bench.sh"):
        assert flag_table.check_command(line, client, "") == []


def test_a_flag_not_in_the_table_fails_the_check(written, tmp_path):
    script = written["vllm"] / "launch_llm.sh"
    broken = tmp_path / "launch_llm.sh"
    broken.write_text(script.read_text().replace("--block-size", "--kv-block-size"))
    (line,) = commands(broken)
    assert flag_table.check_command(line, "vllm", "0.11") == ["--kv-block-size"]


def test_settings_an_engine_cannot_express_are_written_into_the_artifact(tmp_path):
    static = write(tmp_path / "static", [*SMALL, "scheduler=static"])
    text = (static / "launch_llm.sh").read_text()
    assert "batching static: not expressible: vLLM batches at iteration level" in text
    assert "batching static: not expressible" in (static / "README.md").read_text()
    # TensorRT-LLM cannot run prefill-only steps while decodes wait
    cont = write(tmp_path / "cont", [*SMALL, "engine=trtllm", "scheduler=continuous"])
    assert "batching continuous: not expressible: in-flight batching" in (
        cont / "launch_llm.sh").read_text()


def test_each_engine_expresses_the_simulated_settings(written):
    def argv(case, pool="llm"):
        return words(commands(written[case] / f"launch_{pool}.sh")[0])
    vllm = argv("vllm")
    assert vllm[:3] == ["vllm", "serve", "meta-llama/Llama-3.1-8B"]
    assert {"--quantization", "fp8", "--kv-cache-dtype", "--enable-chunked-prefill",
            "--no-enable-prefix-caching"} <= set(vllm)
    sglang = argv("sglang")
    assert sglang[:4] == ["python3", "-m", "sglang.launch_server", "--model-path"]
    # SGLang's default schedule (prefill_first): chunked prefill batches apart from the decodes
    assert {"--chunked-prefill-size", "--disable-radix-cache", "fp8_e4m3"} <= set(sglang)
    assert "--enable-mixed-chunk" not in sglang
    static = sglang[sglang.index("--mem-fraction-static") + 1]
    assert 0.5 < float(static) < 1.0  # the engine's share minus the activation reserve
    options = yaml.safe_load((written["trtllm"] / "options_llm.yaml").read_text())
    assert options["enable_chunked_prefill"] is True
    assert options["kv_cache_config"] == {"dtype": "fp8", "enable_block_reuse": False}
    old = (written["trtllm_0.17"] / "launch_llm.sh").read_text()
    assert "batching chunked: not expressible" in old and "options" not in old.split("exec")[1]
    moe = argv("vllm_moe_dp")  # DP attention: DP ranks of TP 1, experts over all of them
    assert moe[moe.index("--tensor-parallel-size") + 1] == "1"
    assert moe[moe.index("--data-parallel-size") + 1] == "2" and "--enable-expert-parallel" in moe
    assert {"--enable-dp-attention", "--ep-size"} <= set(argv("sglang_moe_dp"))


def test_kv_tiers_and_disaggregated_roles(written):
    vllm = (written["vllm_kv_tiers"] / "launch_llm.sh").read_text()
    assert "OffloadingConnector" in vllm and "num_cpu_blocks" in vllm
    sglang = (written["sglang_kv_tiers"] / "launch_llm.sh").read_text()
    assert "--enable-hierarchical-cache" in sglang and "--hicache-storage-backend file" in sglang
    trt = yaml.safe_load((written["trtllm_kv_tiers"] / "options_llm.yaml").read_text())
    assert trt["kv_cache_config"]["host_cache_size"] > 0
    for role in ("prefill", "decode"):
        line = commands(written["sglang_disagg"] / f"launch_{role}.sh")[0]
        assert f"--disaggregation-mode {role}" in line
        assert "NixlConnector" in commands(written["vllm_disagg"] / f"launch_{role}.sh")[0]
    assert "no production prefill/decode router" in (
        written["vllm_disagg"] / "README.md").read_text()
    router = words(commands(written["sglang_disagg"] / "launch_router.sh")[0])
    assert router[:4] == ["python3", "-m", "sglang_router.launch_router", "--pd-disaggregation"]


def test_the_card_reads_the_same_table():
    pool = {"engine": "sglang 0.5", "tp": 2, "pp": 1, "batching": "chunked",
            "weight_dtype": "fp8", "kv_dtype": "fp8",
            "scheduler": {"max_num_seqs": 512, "max_batched_tokens": 8192,
                          "chunk_size_tokens": 4096, "gpu_memory_utilization": 0.9}}
    command, _ = engine_flags.flags(pool)
    known = flag_table.known_flags("sglang", "0.5")
    assert all(flag.split(" ")[0] in known for flag in command)
    assert "--chunked-prefill-size 4096" in command


def test_one_flag_never_carries_two_settings():
    """vLLM takes one --kv-transfer-config: a disaggregated pool with a CPU KV tier gets the
    NIXL connector and a note for the tier, not a second value that would replace the first."""
    from hermes_opt.report.deploy.engine_args import PoolFacts, Tier, launch
    pool = {"name": "prefill", "role": "prefill", "engine": "vllm 0.11", "tp": 1, "pp": 1,
            "replicas": 1, "batching": "chunked", "weight_dtype": "bf16", "kv_dtype": "bf16",
            "scheduler": {"max_num_seqs": 64, "max_batched_tokens": 8192,
                          "chunk_size_tokens": 2048, "gpu_memory_utilization": 0.9}}
    facts = PoolFacts(model_id="m", block_size_tokens=16, static_fraction=0.85,
                      prefix_caching=True, host_tier=Tier("dram", 64e9, 1000))
    run = launch(pool, facts)
    assert run.flags.count("--kv-transfer-config") == 1
    assert "NixlConnector" in run.flags[run.flags.index("--kv-transfer-config") + 1]
    assert any(n.startswith("kv_host_tier dram: not expressible: --kv-transfer-config already "
                            "carries another setting") for n in run.notes)


def test_speculative_decoding_is_written_as_simulated(written):
    """The simulated chain of k drafts reaches each engine's launch: k steps (k + 1 tokens
    verified per step in SGLang), the method, and what the user must add (the EAGLE head)."""
    def argv(case):
        return words(commands(written[case] / "launch_llm.sh")[0])
    vllm = argv("vllm_mtp")
    assert '"num_speculative_tokens":2' in vllm[vllm.index("--speculative-config") + 1]
    assert '"method":"deepseek_mtp"' in vllm[vllm.index("--speculative-config") + 1]
    sglang = argv("sglang_eagle")
    assert sglang[sglang.index("--speculative-algorithm") + 1] == "EAGLE3"
    assert sglang[sglang.index("--speculative-num-steps") + 1] == "4"
    assert sglang[sglang.index("--speculative-num-draft-tokens") + 1] == "5"
    assert "--speculative-draft-model-path" in (written["sglang_eagle"] / "launch_llm.sh").read_text()
    options = yaml.safe_load((written["trtllm_mtp"] / "options_llm.yaml").read_text())
    assert options["speculative_config"] == {"decoding_type": "MTP",
                                             "num_nextn_predict_layers": 2}
    text = (written["vllm_draft_model"] / "launch_llm.sh").read_text()
    assert "spec_decoding draft_model: not expressible: vLLM 0.11's V1 engine" in text
    assert "--speculative-config" not in text.split("exec")[1]
