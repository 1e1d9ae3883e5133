"""``report/deploy/<rank>/`` for the recommended configuration (rank 1) and the other top-k
distinct ones, next to the study report:

* ``launch_<pool>.sh`` per LLM pool (``options_<pool>.yaml`` where the engine takes an options
  file; ``launch_router.sh`` for a disaggregated deployment whose engine has a router);
* ``manifest.yaml``: Kubernetes Deployments and Services (``kube``);
* ``bench.sh`` and ``README.md``: the benchmark plan and the settings not expressed;
* ``record.json``: the deployment record, workload, SLOs and predicted metrics that were
  simulated (what ``hermes-sim calibrate --from-benchmark --deployment`` reads).

Deterministic: the same study gives byte-identical files (no dates, sorted keys)."""

from __future__ import annotations

import json
import math
import shlex
import shutil
from pathlib import Path
from typing import Any

import pandas as pd

from hermes_opt.report.deploy import bench, facts, flag_table, kube
from hermes_opt.report.deploy.engine_args import Launch, launch
from hermes_opt.report.trials import OVERRIDES
from hermes_opt.report.vendors import RECORD
from hermes_opt.study.definition import StudySpec
from sim.errors import ConfigError

PREDICTED = ("ttft_ms", "tpot_ms", "itl_ms", "e2e_ms")
RATES = ("requests_per_s", "output_tokens_per_s", "goodput_requests_per_s",
         "goodput_output_tokens_per_s", "slo_attainment", "cost_usd_per_hour",
         "slo_tokens_per_usd")


def predicted(row: pd.Series) -> dict[str, Any]:
    """The trial's simulated metrics (means over its replicate seeds)."""
    def value(key: str) -> float | None:
        v = row.get(f"metric:{key}")
        return None if v is None or (isinstance(v, float) and math.isnan(v)) else float(v)
    out: dict[str, Any] = {m: {p: value(f"{m}.{p}") for p in ("mean", "p50", "p90", "p99")}
                           for m in PREDICTED}
    out |= {k: value(k) for k in RATES}
    return out


def record_json(spec: StudySpec, row: pd.Series, rank: int, found: facts.Facts) -> dict:
    overrides = [*spec.base, *row[OVERRIDES]]
    return {"study": spec.name, "rank": rank, "trial": int(row["trial"]),
            "hermes_sim_overrides": overrides, "seeds": list(spec.replicate_seeds),
            "deployment": row[RECORD], "workload": found.workload,
            "slo": {**found.slo, "constraints": [c.key for c in spec.constraints]},
            "links": found.links, "predicted": predicted(row)}


def _script(comments: list[str], variables: list[str], argv: list[str], head: int,
            host_port: bool = True) -> str:
    """A launch script: ``exec`` of ``argv`` (its first ``head`` words, the command, on the first
    line); words written ``"$VAR..."`` stay shell-expanded."""
    words = [w if w.startswith('"$') else shlex.quote(w) for w in argv]
    body = " \\\n  ".join(bench._wrap(words, head))
    tail = ' \\\n  --host "$HOST" --port "$PORT"' if host_port else ""
    return "\n".join(["#!/usr/bin/env bash", *comments, "set -euo pipefail",
                      'HOST="${HOST:-0.0.0.0}"', *variables, "", f"exec {body}{tail}", ""])


def _header(spec: StudySpec, rank: int, row: pd.Series, what: str) -> list[str]:
    return [f"hermes-opt deployment artifact: study {spec.name}, rank {rank} (trial "
            f"{int(row['trial'])}), {what}", "written by hermes-opt report (docs/deploy.md); "
            "flags from conf/tables/engine_flags.yaml, each with its source"]


def launch_script(spec: StudySpec, rank: int, row: pd.Series, pool: dict, run: Launch,
                  options_file: str | None) -> str:
    entry = flag_table.entry(run.engine, run.version) or {}
    devices = int(pool.get("tp") or 1) * int(pool.get("pp") or 1)
    head = _header(spec, rank, row, f"pool {pool['name']} ({pool.get('role')})")
    head += [f"{flag_table.display(run.engine)} {run.version} on {devices} x {pool['hardware']} "
             f"per replica; run one copy per replica ({pool.get('replicas')}), each on its own "
             f"{devices} device(s) (CUDA_VISIBLE_DEVICES / HIP_VISIBLE_DEVICES) and port",
             "simulated settings not expressed as simulated (not expressible, approximate, "
             "or carried by the checkpoint):" if run.notes else
             "every simulated setting is expressed below"]
    head += [f"  - {note}" for note in run.notes]
    argv = run.argv()
    if options_file:
        argv += [entry["options_flag"], f'"$DIR/{options_file}"']
    return _script([f"# {h}" for h in head], [f'PORT="${{PORT:-{entry.get("port", 8000)}}}"',
                                              'DIR="$(cd "$(dirname "$0")" && pwd)"'], argv,
                   len(run.command))


def _image(run: Launch, stack: str) -> str | None:
    entry = flag_table.entry(run.engine, run.version) or {}
    return (entry.get("images") or {}).get(stack)


def write_rank(out: Path, spec: StudySpec, row: pd.Series, rank: int) -> list[str]:
    """The artifacts of one configuration; returns the README's notes."""
    record = row[RECORD]
    found = facts.of_overrides([*spec.base, *row[OVERRIDES]])
    out.mkdir(parents=True)
    app = kube.k8s_name("hermes", spec.name, rank)
    objects: list[dict] = []
    notes: list[str] = []
    launches: dict[str, tuple[dict, Launch]] = {}
    for pool in record.get("pools", []):
        pool_facts = found.pools.get(pool["name"])
        run = launch(pool, pool_facts) if pool_facts is not None else None
        if run is None:
            where = (f"on the {pool['colocated_on']} pool's GPUs" if pool.get("colocated_on")
                     else pool["hardware"])  # a stage placed on an LLM pool shares its devices
            notes.append(f"pool {pool['name']} ({pool.get('role')}, {where}): not a "
                         f"serving engine; deploy it with its own software")
            continue
        if not run.known:
            notes += [f"pool {pool['name']}: {n}" for n in run.notes]
            continue
        launches[pool["name"]] = (pool, run)
        options = f"options_{pool['name']}.yaml" if run.options else None
        if options:
            (out / options).write_text(
                "# " + "\n# ".join(_header(spec, rank, row, f"pool {pool['name']}")) + "\n"
                + kube.yaml.safe_dump(run.options, sort_keys=True))
        path = out / f"launch_{pool['name']}.sh"
        path.write_text(launch_script(spec, rank, row, pool, run, options))
        path.chmod(0o755)
        notes += [f"pool {pool['name']}: {n}" for n in run.notes]
        # how the simulated formats really run on this hardware (weight-only fallbacks)
        notes += [f"pool {pool['name']}: precision: {n}"
                  for n in (pool.get("precision") or {}).get("notes") or ()]
        stack = (pool.get("efficiency") or {}).get("stack") or "cuda"
        image = _image(run, stack)
        if image is None:
            notes.append(f"pool {pool['name']}: no manifest: the flag table pins no "
                         f"{flag_table.display(run.engine)} {run.version} image for {stack} "
                         f"({pool['hardware']}); add images.{stack} to "
                         f"conf/tables/engine_flags.yaml")
            continue
        objects += kube.pool_objects(app, pool, run, image, stack)
    entry_url, more = _disaggregated(out, spec, rank, row, app, launches, objects)
    notes += more
    for link in found.links:  # what the KV connector's network must carry to match
        notes.append(f"KV hand-off {link['name']}: simulated at {link['bandwidth_gb_per_s']:g} "
                     f"GB/s, {link['latency_us']:g} us ("
                     + ("configured" if link["configured"] else "the simulator's default: one "
                        "400 Gb/s NIC per prefill device") + "); the connector's fabric "
                     "(RDMA for NIXL) must provide it")
    if objects:
        kinds = ", ".join(dict.fromkeys(f"{o['apiVersion']} {o['kind']}" for o in objects))
        (out / "manifest.yaml").write_text(kube.dump(objects, _header(
            spec, rank, row, f"Kubernetes {kube.KUBERNETES_VERSION} manifest ({kinds})")))
    notes += _bench(out, spec, rank, row, found, launches, entry_url)
    (out / "record.json").write_text(json.dumps(record_json(spec, row, rank, found),
                                                indent=1, sort_keys=True) + "\n")
    return notes


def _disaggregated(out: Path, spec: StudySpec, rank: int, row: pd.Series, app: str,
                   launches: dict[str, tuple[dict, Launch]],
                   objects: list[dict]) -> tuple[str | None, list[str]]:
    """The router of a prefill + decode deployment; (entry Service name, or None when no
    single Service takes the requests; notes)."""
    roles = {pool.get("role"): (pool, run) for pool, run in launches.values()}
    first = next(iter(launches.values()), None)
    if "prefill" not in roles or "decode" not in roles:
        return (kube.k8s_name(app, first[0]["name"]) if first else app), []
    (prefill, p_run), (decode, d_run) = roles["prefill"], roles["decode"]
    if (p_run.engine, p_run.version) != (d_run.engine, d_run.version):
        return None, [
            "router: not expressible: prefill and decode run different engines "
            f"({prefill.get('engine')}, {decode.get('engine')}); no router joins them"]
    entry = flag_table.entry(p_run.engine, p_run.version) or {}
    rule = flag_table.rule(entry, "disagg_router")
    if "emit" not in rule:
        return None, [f"router: not expressible: {rule.get('not_expressible')}"]
    stack = (prefill.get("efficiency") or {}).get("stack") or "cuda"
    image = _image(p_run, stack)
    if image is not None:
        objects += kube.router_objects(app, p_run.engine, p_run.version, image, prefill, decode)
    port = entry.get("port", 8000)
    argv = [*rule["command"], *rule["emit"]]
    trt = p_run.engine == "trtllm"
    if trt:  # the servers are named in a config file next to the script
        config = {"hostname": "0.0.0.0", "port": 8080,
                  "context_servers": {"num_instances": 1, "urls": [f"localhost:{port}"]},
                  "generation_servers": {"num_instances": 1, "urls": [f"localhost:{port + 1}"]}}
        (out / "router_disagg.yaml").write_text(kube.yaml.safe_dump(config, sort_keys=True))
        argv.append('"$DIR/router_disagg.yaml"')
    else:
        argv += ["--prefill", '"$PREFILL_URL"', "--decode", '"$DECODE_URL"']
    variables = ['PORT="${PORT:-8080}"', 'DIR="$(cd "$(dirname "$0")" && pwd)"',
                 f'PREFILL_URL="${{PREFILL_URL:-http://localhost:{port}}}"',
                 f'DECODE_URL="${{DECODE_URL:-http://localhost:{port + 1}}}"']
    text = _script([f"# {h}" for h in _header(spec, rank, row, "prefill/decode router")]
                   + ["# the prefill and decode pools' addresses: PREFILL_URL / DECODE_URL "
                      "(router_disagg.yaml for TensorRT-LLM)"], variables, argv,
                   len(rule["command"]), not trt)
    (out / "launch_router.sh").write_text(text)
    (out / "launch_router.sh").chmod(0o755)
    return kube.k8s_name(app, "router"), []


def _bench(out: Path, spec: StudySpec, rank: int, row: pd.Series, found: facts.Facts,
           launches: dict[str, tuple[dict, Launch]], entry_service: str | None) -> list[str]:
    first = next(iter(launches.values()), None)
    if first is None:
        return ["benchmark: no engine pool, no plan"]
    pool, run = first
    model = found.pools[pool["name"]].model_id
    entry = flag_table.entry(run.engine, run.version) or {}
    made = bench.plan(run.engine, found.workload, found.slo, model)
    head = _header(spec, rank, row, "benchmark plan (README.md in this folder)")
    head.append(f"in the cluster: BASE_URL=http://{entry_service}:{entry.get('port', 8000)}"
                if entry_service else "no single entry point: BASE_URL is the prefill/decode "
                "proxy you put in front of the two pools (README.md)")
    (out / "bench.sh").write_text(bench.script(made, head, int(entry.get("port", 8000))))
    (out / "bench.sh").chmod(0o755)
    (out / "README.md").write_text(readme(spec, rank, row, found, made,
                                          (out / "manifest.yaml").exists()))
    return [f"benchmark: {n}" for n in made.notes]


def readme(spec: StudySpec, rank: int, row: pd.Series, found: facts.Facts, made: bench.Plan,
           has_manifest: bool) -> str:
    """The rank's README: what was simulated, how to deploy and measure, what to compare."""
    record = row[RECORD]
    pred = predicted(row)
    lines = [f"# Rank {rank}: trial {int(row['trial'])} of study {spec.name}", "",
             f"Deployment: {record.get('layout')} ({record.get('vendor')}).", "",
             "## Deploy", "", "`launch_<pool>.sh` starts one replica of a pool on one host "
             "(`HOST`/`PORT` from the environment); " + (
                 f"`manifest.yaml` runs every replica on Kubernetes {kube.KUBERNETES_VERSION} "
                 "(`kubectl apply -f manifest.yaml`; the engine reads a Hugging Face token from "
                 "the optional Secret `hf-token`)." if has_manifest else
                 "no `manifest.yaml` (why: below)."), "",
             "## Benchmark", "", f"`BASE_URL=http://<entry>:<port> ./bench.sh` replays the "
             f"simulated workload with `{' '.join(made.commands[0][:3])}` "
             f"({bench.VLLM_BENCH_SOURCE if made.client == 'vllm' else bench.SGLANG_BENCH_SOURCE})"
             f" and writes {', '.join(made.result_files)}. Compare:", "",
             "| metric | predicted | SLO | read from the result |", "|---|---|---|---|"]
    limits = {c.metric: f"{c.op} {c.bound:g}" for c in spec.constraints}
    for metric in PREDICTED:
        for pct in ("p50", "p90", "p99"):
            key = f"{metric}.{pct}"
            value = pred[metric][pct]
            field = bench.result_key(key, made.client)
            if value is None:
                continue
            shown = f"`{field}`" if field else "not reported by this client"
            lines.append(f"| {key} | {value:.4g} | {limits.get(key, '')} | {shown} |")
    for key, field in (("requests_per_s", "request_throughput"),
                       ("output_tokens_per_s", "output_throughput")):
        if pred.get(key) is not None:
            lines.append(f"| {key} | {pred[key]:.4g} | {limits.get(key, '')} | `{field}` |")
    lines += ["", "## Not expressed as simulated, and approximations", ""]
    return "\n".join(lines) + "\n"


def write_all(top: pd.DataFrame, spec: StudySpec, out_dir: Path) -> Path | None:
    """Every rank's folder under ``out_dir/deploy`` (rewritten from scratch) and its index;
    None when there is nothing to deploy (no feasible trial, or a custom evaluator)."""
    deploy = out_dir / "deploy"
    if deploy.exists():
        shutil.rmtree(deploy)
    if top.empty or spec.evaluator is not None:
        return None
    deploy.mkdir(parents=True)
    index = ["# Deployment artifacts", "",
             "One folder per configuration: 1 is the recommendation, then the other top "
             "distinct configurations (docs/deploy.md).", ""]
    for rank, (_, row) in enumerate(top.iterrows(), start=1):
        if not isinstance(row.get(RECORD), dict):
            index.append(f"- {rank}: trial {int(row['trial'])}: no deployment record stored")
            continue
        try:
            notes = write_rank(deploy / str(rank), spec, row, rank)
        except ConfigError as err:
            index.append(f"- {rank}: trial {int(row['trial'])}: not written ({err})")
            continue
        readme_path = deploy / str(rank) / "README.md"
        if readme_path.exists():
            readme_path.write_text(readme_path.read_text()
                                   + "".join(f"- {n}\n" for n in notes or ["none"]))
        index.append(f"- [{rank}]({rank}/README.md): trial {int(row['trial'])}, "
                     f"{row[RECORD].get('layout')} on {row.get('engine')}")
    (deploy / "README.md").write_text("\n".join(index) + "\n")
    return deploy / "README.md"
