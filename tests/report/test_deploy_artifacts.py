"""The deployment artifacts next to a study report (hermes_opt/report/deploy): Kubernetes
manifests valid against the schema of the API version they name (kubernetes-validate, offline),
colocated and disaggregated, for each engine; the benchmark plan replays the simulated workload;
record.json is the simulated record; the folder is deterministic and linked from the report."""

from __future__ import annotations

import json

import kubernetes_validate
import pandas as pd
import pytest
from deploy_cases import DISAGG, SMALL, commands, manifest, words, write

from hermes_opt.cli import opt_command
from hermes_opt.compose.candidate import compose
from hermes_opt.report import study_report
from hermes_opt.report.deploy import flag_table, kube, writer
from hermes_opt.run import runner
from hermes_opt.study.definition import from_dict

MANIFEST_CASES = {
    "vllm": SMALL, "sglang": [*SMALL, "engine=sglang"],
    "trtllm": [*SMALL, "engine=trtllm", "scheduler=chunked"],
    "trtllm_0.17": [*SMALL, "engine=trtllm", "engine.version=0.17"],
    "vllm_rocm": ["model=llama3_1_8b", "hardware=mi300x", "cluster.num_replicas=2",
                  "workload.num_requests=50"],
    "vllm_disagg": DISAGG, "sglang_disagg": [*DISAGG, "engine=sglang"],
    "trtllm_disagg": [*DISAGG, "engine=trtllm"],
}


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    return {name: write(tmp_path_factory.mktemp(name), overrides)
            for name, overrides in MANIFEST_CASES.items()}


@pytest.mark.parametrize("case", MANIFEST_CASES)
def test_every_manifest_validates_against_its_kubernetes_schema(written, case):
    docs = manifest(written[case])
    assert {d["apiVersion"] for d in docs} <= {"apps/v1", "v1"}
    for doc in docs:  # strict: a misspelt or misplaced field is an error too
        assert kubernetes_validate.validate(doc, kube.KUBERNETES_VERSION, strict=True)
    header = (written[case] / "manifest.yaml").read_text().splitlines()[0]
    assert f"Kubernetes {kube.KUBERNETES_VERSION} manifest" in header


def test_the_validator_would_catch_a_wrong_field(written):
    doc = manifest(written["vllm"])[0]
    doc["spec"]["replicaz"] = 2
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(doc, kube.KUBERNETES_VERSION, strict=True)


def _deployments(docs):
    return {d["metadata"]["labels"]["app.kubernetes.io/component"]: d["spec"] for d in docs
            if d["kind"] == "Deployment"}


def test_manifests_name_each_engine_versions_image_and_devices(written):
    for case, engine, version, stack in (("vllm", "vllm", "0.11", "cuda"),
                                         ("sglang", "sglang", "0.5", "cuda"),
                                         ("trtllm", "trtllm", "1.0", "cuda"),
                                         ("trtllm_0.17", "trtllm", "0.17", "cuda"),
                                         ("vllm_rocm", "vllm", "0.11", "rocm")):
        spec = _deployments(manifest(written[case]))["llm"]
        container = spec["template"]["spec"]["containers"][0]
        assert container["image"] == flag_table.entry(engine, version)["images"][stack]
        assert container["resources"]["limits"] == {kube.GPU_RESOURCE[stack]: 1}
    assert _deployments(manifest(written["vllm_rocm"]))["llm"]["replicas"] == 2
    # the TensorRT-LLM options file is a ConfigMap the container reads
    docs = manifest(written["trtllm"])
    config = next(d for d in docs if d["kind"] == "ConfigMap")
    assert "enable_chunked_prefill: true" in config["data"]["options.yaml"]
    args = _deployments(docs)["llm"]["template"]["spec"]["containers"][0]["args"]
    assert args[args.index("--extra_llm_api_options") + 1] == "/etc/hermes/options.yaml"


def test_disaggregated_manifests_wire_roles_and_router(written):
    vllm = _deployments(manifest(written["vllm_disagg"]))
    assert set(vllm) == {"prefill", "decode"}  # vLLM 0.11: no router, said in the README
    for spec in vllm.values():
        container = spec["template"]["spec"]["containers"][0]
        assert "--kv-transfer-config" in container["args"]
        assert "VLLM_NIXL_SIDE_CHANNEL_HOST" in {e["name"] for e in container["env"]}
    sglang = _deployments(manifest(written["sglang_disagg"]))
    router = sglang["router"]["template"]["spec"]["containers"][0]
    assert router["command"] + router["args"][:2] == [
        "python3", "-m", "sglang_router.launch_router"]
    assert "http://hermes-deploy-test-1-prefill:30000" in router["args"]
    trt = manifest(written["trtllm_disagg"])
    assert _deployments(trt)["router"]["template"]["spec"]["containers"][0]["args"][:2] == [
        "disaggregated", "-c"]
    assert any("context_servers" in (d.get("data") or {}).get("disagg.yaml", "") for d in trt)


def test_a_stack_without_a_pinned_image_gets_no_manifest_and_says_why(tmp_path):
    folder = write(tmp_path, ["model=llama3_1_8b", "hardware=gaudi3",
                              "workload.num_requests=50"])
    assert (folder / "launch_llm.sh").exists() and not (folder / "manifest.yaml").exists()
    assert "no manifest: the flag table pins no vLLM 0.11 image for gaudi" in (
        folder / "README.md").read_text()


def test_record_is_the_simulated_deployment_workload_slo_and_prediction(written):
    record = json.loads((written["vllm"] / "record.json").read_text())
    assert set(record) >= {"deployment", "workload", "slo", "predicted", "hermes_sim_overrides"}
    assert record["deployment"] == json.loads(json.dumps(compose(SMALL).deployment))
    assert compose(record["hermes_sim_overrides"]).deployment["layout"] == \
        record["deployment"]["layout"]
    assert record["workload"]["arrival"]["kind"] == "poisson"
    assert record["workload"]["num_requests"] == 50
    assert record["slo"]["constraints"] == ["ttft_ms.p99 <= 500", "tpot_ms.p99 <= 40"]
    assert record["predicted"]["ttft_ms"]["p99"] == 120.0
    links = json.loads((written["vllm_disagg"] / "record.json").read_text())["links"]
    assert [link["name"] for link in links] == ["prefill->decode"]


def test_the_benchmark_replays_the_simulated_workload(written, tmp_path):
    record = json.loads((written["vllm"] / "record.json").read_text())
    (line,) = commands(written["vllm"] / "bench.sh")
    argv = words(line)
    rate = record["workload"]["arrival"]["rate_per_s"]
    assert float(argv[argv.index("--request-rate") + 1]) == pytest.approx(rate)
    assert argv[argv.index("--num-prompts") + 1] == "50"
    prompt = record["workload"]["request_types"][0]["prompt_tokens"]["mean"]
    assert argv[argv.index("--random-input-len") + 1] == str(round(prompt))
    assert argv[argv.index("--goodput") + 1].startswith("ttft:")
    gamma = write(tmp_path / "g", [*SMALL, "workload=bursty"])
    bursty = json.loads((gamma / "record.json").read_text())["workload"]["arrival"]
    argv = words(commands(gamma / "bench.sh")[0])
    assert float(argv[argv.index("--burstiness") + 1]) == pytest.approx(1 / bursty["cv"] ** 2,
                                                                         rel=1e-3)
    readme = (written["sglang"] / "README.md").read_text()
    assert "| ttft_ms.p99 | 120 | <= 500 | `p99_ttft_ms` |" in readme
    assert "| ttft_ms.p90 | 80 |  | not reported by this client |" in readme


def test_artifacts_are_deterministic(tmp_path):
    first = write(tmp_path / "a", DISAGG)
    second = write(tmp_path / "b", DISAGG)
    names = sorted(p.name for p in first.iterdir())
    assert names == sorted(p.name for p in second.iterdir())
    assert all((first / n).read_bytes() == (second / n).read_bytes() for n in names)


def test_nothing_to_deploy_writes_no_folder_and_removes_a_stale_one(tmp_path):
    spec = from_dict({"name": "empty", "base": SMALL, "space": {
        "cluster.num_replicas": {"type": "int", "low": 1, "high": 2}}})
    (tmp_path / "deploy" / "9").mkdir(parents=True)
    assert writer.write_all(pd.DataFrame(), spec, tmp_path) is None
    assert not (tmp_path / "deploy").exists()


def test_the_study_report_links_the_deploy_folder(tmp_path, capsys):
    spec = from_dict({"name": "linked", "base": ["model=llama3_1_8b", "workload.num_requests=30",
                                                 "workload.arrival.rate_per_s=4"],
                      "space": {"hardware": {"choices": ["h100_sxm", "h200"]}},
                      "constraints": ["ttft_ms.p99 <= 5000"], "n_trials": 2, "batch_size": 2,
                      "replicates": 1, "seed": 1, "n_jobs": 1,
                      "storage": f"sqlite:///{tmp_path / 'study.db'}",
                      "coverage": {"min_per_choice": 0}})
    study, _ = runner.run_study(spec, progress_stream=None)
    paths = study_report.write(study, spec, tmp_path / "report", spec.storage, writer.write_all)
    assert paths["deploy"] == tmp_path / "report" / "deploy" / "README.md"
    assert "[deploy/README.md](deploy/README.md)" in paths["md"].read_text()
    assert "<a href='deploy/README.md'>" in paths["html"].read_text()
    assert (tmp_path / "report" / "deploy" / "1" / "launch_llm.sh").exists()
    # hermes-opt report names the folder on its last line
    assert opt_command.report_cmd([spec.name, f"storage={spec.storage}",
                                   f"out={tmp_path / 'again'}"]) == 0
    assert f"deployment artifacts: {tmp_path / 'again' / 'deploy'}" in capsys.readouterr().err
    assert (tmp_path / "again" / "deploy" / "1" / "record.json").exists()


def test_a_stage_colocated_on_the_llm_is_said_to_share_its_gpus(tmp_path):
    folder = write(tmp_path, ["workload=hybrid_rag", "+cluster=hybrid_rag",
                              "workload.num_requests=40", "cluster.pools.embed.placement=colocated",
                              "cluster.pools.rerank.placement=gpu"])
    readme = (folder / "README.md").read_text()
    assert "pool embed (embed, on the llm pool's GPUs): not a serving engine" in readme
    assert "pool rerank (rerank, l40s): not a serving engine" in readme
