"""Kubernetes manifests for one deployment: per LLM pool an ``apps/v1`` Deployment (one pod per
replica, the engine container with the launch's flags) and a ``v1`` Service; an options file as a
``v1`` ConfigMap (TensorRT-LLM); for a disaggregated deployment the prefill/decode router of the
engine as one more Deployment and Service (SGLang's ``sglang_router``, ``trtllm-serve
disaggregated``), or a note where the engine has none (vLLM 0.11). Plain core APIs, so the
manifests validate against the Kubernetes schema of ``KUBERNETES_VERSION`` offline
(``kubernetes-validate`` in the tests) and need no operator; docs/deploy.md says why."""

from __future__ import annotations

import re
from typing import Any

import yaml

from hermes_opt.report.deploy import flag_table
from hermes_opt.report.deploy.engine_args import Launch

KUBERNETES_VERSION = "1.33"  # the schema the manifests are written and validated against
# the device plugins' extended resources, per software stack
GPU_RESOURCE = {"cuda": "nvidia.com/gpu", "rocm": "amd.com/gpu", "gaudi": "habana.ai/gaudi",
                "xla": "google.com/tpu"}
OPTIONS_DIR = "/etc/hermes"


def k8s_name(*parts: Any) -> str:
    """A DNS-1123 label from the parts ("hermes-default-1-llm")."""
    text = "-".join(str(p) for p in parts).lower()
    return re.sub(r"[^a-z0-9-]+", "-", text).strip("-")[:63].strip("-")


def _labels(app: str, pool: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": app, "app.kubernetes.io/component": k8s_name(pool),
            "app.kubernetes.io/managed-by": "hermes-opt"}


def _service(name: str, labels: dict[str, str], port: int) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "labels": labels},
            "spec": {"selector": labels, "ports": [{"name": "http", "port": port,
                                                     "targetPort": port}]}}


def _deployment(name: str, labels: dict[str, str], replicas: int,
                container: dict[str, Any], volumes: list[dict[str, Any]]) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "labels": labels},
            "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels},
                                  "spec": {"containers": [container], "volumes": volumes}}}}


def pool_objects(app: str, pool: dict[str, Any], launch: Launch, image: str,
                 stack: str) -> list[dict[str, Any]]:
    """Deployment + Service (+ ConfigMap of the options file) of one LLM pool."""
    entry = flag_table.entry(launch.engine, launch.version) or {}
    port = int(entry.get("port", 8000))
    name = k8s_name(app, pool["name"])
    labels = _labels(app, pool["name"])
    argv = launch.argv("0.0.0.0", port)
    objects: list[dict[str, Any]] = []
    mounts = [{"name": "shm", "mountPath": "/dev/shm"}]
    volumes: list[dict[str, Any]] = [{"name": "shm", "emptyDir": {"medium": "Memory"}}]
    if launch.options:
        argv += [entry["options_flag"], f"{OPTIONS_DIR}/options.yaml"]
        objects.append({"apiVersion": "v1", "kind": "ConfigMap",
                        "metadata": {"name": f"{name}-options", "labels": labels},
                        "data": {"options.yaml": yaml.safe_dump(launch.options, sort_keys=True)}})
        mounts.append({"name": "options", "mountPath": OPTIONS_DIR, "readOnly": True})
        volumes.append({"name": "options", "configMap": {"name": f"{name}-options"}})
    devices = int(pool.get("tp") or 1) * int(pool.get("pp") or 1)
    resource = GPU_RESOURCE.get(stack, "nvidia.com/gpu")
    env = [{"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {"name": "hf-token", "key": "token",
                                                               "optional": True}}}]
    if launch.engine == "vllm" and pool.get("role") in ("prefill", "decode"):
        # NIXL's side channel must advertise the pod's own address to the other role
        env.append({"name": "VLLM_NIXL_SIDE_CHANNEL_HOST",
                    "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}})
    container = {"name": "engine", "image": image, "command": argv[:1], "args": argv[1:],
                 "ports": [{"name": "http", "containerPort": port}], "env": env,
                 "resources": {"limits": {resource: devices}},
                 "readinessProbe": {"httpGet": {"path": entry.get("health_path", "/health"),
                                                "port": port},
                                    "periodSeconds": 10, "failureThreshold": 60},
                 "volumeMounts": mounts}
    objects.append(_deployment(name, labels, int(pool.get("replicas") or 1), container, volumes))
    objects.append(_service(name, labels, port))
    return objects


def router_objects(app: str, engine: str, version: str, image: str,
                   prefill: dict[str, Any], decode: dict[str, Any]) -> list[dict[str, Any]]:
    """The engine's prefill/decode router in front of the two pools' Services; [] when the
    flag table says the engine has none."""
    entry = flag_table.entry(engine, version) or {}
    found = flag_table.rule(entry, "disagg_router")
    if "emit" not in found:
        return []
    port = int(entry.get("port", 8000))
    urls = {role: f"http://{k8s_name(app, pool['name'])}:{port}"
            for role, pool in (("prefill", prefill), ("decode", decode))}
    name = k8s_name(app, "router")
    labels = _labels(app, "router")
    argv = [*found["command"], *found["emit"]]
    objects: list[dict[str, Any]] = []
    mounts: list[dict[str, Any]] = []
    volumes: list[dict[str, Any]] = []
    if engine == "trtllm":  # trtllm-serve disaggregated -c <file>: the servers in a config
        config = {"hostname": "0.0.0.0", "port": port,
                  "context_servers": {"num_instances": 1, "urls": [urls["prefill"][7:]]},
                  "generation_servers": {"num_instances": 1, "urls": [urls["decode"][7:]]}}
        objects.append({"apiVersion": "v1", "kind": "ConfigMap",
                        "metadata": {"name": f"{name}-config", "labels": labels},
                        "data": {"disagg.yaml": yaml.safe_dump(config, sort_keys=True)}})
        argv += [f"{OPTIONS_DIR}/disagg.yaml"]
        mounts.append({"name": "config", "mountPath": OPTIONS_DIR, "readOnly": True})
        volumes.append({"name": "config", "configMap": {"name": f"{name}-config"}})
    else:
        argv += ["--prefill", urls["prefill"], "--decode", urls["decode"],
                 "--host", "0.0.0.0", "--port", str(port)]
    container = {"name": "router", "image": image, "command": argv[:1], "args": argv[1:],
                 "ports": [{"name": "http", "containerPort": port}], "volumeMounts": mounts}
    objects.append(_deployment(name, labels, 1, container, volumes))
    objects.append(_service(name, labels, port))
    return objects


class _Plain(yaml.SafeDumper):
    """Writes a shared mapping (the labels) out each time instead of as a YAML alias."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def dump(objects: list[dict[str, Any]], header: list[str]) -> str:
    """A multi-document YAML file, the header as comments."""
    lines = [f"# {line}" if line else "#" for line in header]
    docs = [yaml.dump(o, Dumper=_Plain, sort_keys=False, default_flow_style=False, width=100)
            for o in objects]
    return "\n".join(lines) + "\n" + "---\n" + "---\n".join(docs)
