"""The deployment a serving benchmark ran on, composed as ``hermes-sim`` would, and the checks
that the benchmark really ran on it.

A deployment comes from one of:

* ``--deployment FILE``: a deployment artifact's ``record.json`` (``{"deployment": ..,
  "workload": .., "slo": .., "predicted": ..}``) or a plain ``hermes-sim`` JSON summary; both carry
  the ``deployment`` record (per pool: hardware, model, engine, parallelism, number formats,
  scheduler settings). A record of one colocated LLM pool is turned back into ``hermes-sim``
  overrides and composed; the composed record must equal the file's, field by field.
* ``--deployment-overrides "hardware=h200 model=llama3_3_70b engine=sglang cluster.tp=4"``: any
  deployment ``hermes-sim`` can express (disaggregated pools too).

The benchmark's own workload (rate or concurrency, request count, lengths) replaces the
deployment's when it is re-simulated: the benchmark says what was offered.
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from typing import Any

from hermes_opt.calibration.bench_formats import BenchmarkRun
from hermes_opt.compose import candidate as candidate_mod
from hermes_opt.compose.candidate import Candidate
from sim.config import LLM_ROLES, PoolSpec
from sim.errors import ConfigError

# record field -> hermes-sim override of the main pool (cluster.* / scheduler.*)
_CLUSTER = ("num_replicas", "tp", "pp", "ep", "attention_dp", "weight_dtype", "kv_dtype")
_SCHEDULER = ("max_num_seqs", "max_batched_tokens", "chunk_size_tokens", "gpu_memory_utilization")
# fields of a pool record that must survive the round trip record -> overrides -> record
COMPARED = ("role", "hardware", "model", "replicas", "tp", "pp", "ep", "attention_dp",
            "weight_dtype", "kv_dtype", "batching", "engine", "scheduler")


def record_from_file(path: str) -> dict[str, Any]:
    """The ``deployment`` record of a record.json or a hermes-sim summary."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise ConfigError(f"--deployment={path!r}: not a readable JSON file ({err})") from None
    record = data.get("deployment") if isinstance(data, dict) else None
    if not isinstance(record, dict) or not isinstance(record.get("pools"), list):
        raise ConfigError(f"--deployment={path!r}: deployment: missing (expected a deployment "
                          "artifact's record.json or a hermes-sim JSON summary, both of which "
                          "carry a `deployment` record with its `pools`)")
    return record


def overrides_from_record(record: dict[str, Any], where: str) -> list[str]:
    """``hermes-sim`` overrides that compose the recorded deployment (one colocated LLM pool)."""
    pools = record["pools"]
    llm = [p for p in pools if isinstance(p, dict) and p.get("role") in [r.value for r in LLM_ROLES]]
    if len(pools) != 1 or len(llm) != 1 or llm[0].get("role") != "colocated":
        roles = ", ".join(f"{p.get('name')}:{p.get('role')}" for p in pools if isinstance(p, dict))
        raise ConfigError(f"--deployment={where!r}: pools=[{roles}]: a record is re-composed for "
                          "one colocated LLM pool only; describe this deployment with "
                          "--deployment-overrides \"<the hermes-sim overrides it was run with>\"")
    pool = llm[0]
    missing = [k for k in ("hardware", "model", "engine", *_CLUSTER[1:]) if pool.get(k) is None]
    if pool.get("replicas") is None:
        missing.append("replicas")
    if missing:
        raise ConfigError(f"--deployment={where!r}: pools[0].{missing[0]}: missing from the record")
    engine = str(pool["engine"]).split()[0]
    out = [f"hardware={pool['hardware']}", f"model={pool['model']}", f"engine={engine}",
           f"cluster.num_replicas={pool['replicas']}"]
    out += [f"cluster.{k}={_value(pool[k])}" for k in _CLUSTER[1:]]
    scheduler = pool.get("scheduler") or {}
    out += [f"scheduler.{k}={_value(scheduler[k])}" for k in _SCHEDULER if scheduler.get(k) is not None]
    if pool.get("batching"):
        out.append(f"scheduler.policy={pool['batching']}")
    return out


def _value(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def compose(record: dict[str, Any] | None, overrides: list[str], where: str) -> Candidate:
    """The deployment as ``hermes-sim`` composes it; a record must round-trip exactly."""
    candidate = candidate_mod.compose(overrides)
    if record is not None:
        mine = [p for p in candidate.deployment["pools"] if p.get("role") == "colocated"]
        theirs = record["pools"][0]
        for key in COMPARED:
            ours = mine[0].get(key) if mine else None
            if key == "scheduler":
                ours = {k: v for k, v in (ours or {}).items() if k in (theirs.get(key) or {})}
            if theirs.get(key) is not None and ours != theirs.get(key):
                raise ConfigError(
                    f"--deployment={where!r}: pools[0].{key}={theirs.get(key)!r}: composing "
                    f"{' '.join(overrides)} gives {ours!r} (the record is from another version of "
                    "the catalog or engine data); give --deployment-overrides instead")
    return candidate


def split_overrides(text: str) -> list[str]:
    try:
        return shlex.split(text)
    except ValueError as err:
        raise ConfigError(f"--deployment-overrides={text!r}: {err}") from None


def llm_pools(candidate: Candidate, where: str) -> list[PoolSpec]:
    pools = [p for p in candidate.config.pools if p.role in LLM_ROLES]
    if not pools:
        raise ConfigError(f"{where}: the deployment has no LLM pool to calibrate")
    kinds = {(p.hardware.name, p.weight_dtype.value) for p in pools}
    if len(kinds) != 1:
        raise ConfigError(f"{where}: LLM pools on {sorted(kinds)}: a profile describes one "
                          "(hardware, precision); calibrate each from its own benchmark")
    return pools


# --- does the benchmark match the deployment? ------------------------------------------------
_SUFFIXES = ("instruct", "chat", "hf", "it", "base")


def _model_key(name: str) -> str:
    key = re.sub(r"[^a-z0-9]", "", name.rstrip("/").split("/")[-1].lower())
    changed = True
    while changed:
        changed = False
        for suffix in _SUFFIXES:
            if key.endswith(suffix) and len(key) > len(suffix):
                key, changed = key[: -len(suffix)], True
    return key


def check_run(run: BenchmarkRun, pools: list[PoolSpec], hf_id: str, served_name: str) -> None:
    """One line naming the benchmark, the field, its value and the deployment's, on a mismatch."""
    pool = pools[0]
    model = pool.model
    if run.model and model is not None:
        allowed = {_model_key(model.name), _model_key(hf_id)} - {""}
        if served_name:
            allowed.add(_model_key(served_name))
        if _model_key(run.model) not in allowed:
            raise ConfigError(
                f"--from-benchmark={run.where!r}: model={run.model!r}: the deployment serves "
                f"{model.name} ({hf_id or 'no hf_id'}); allowed: that model (any -Instruct/-Chat "
                "variant), or name the server's model with --served-model-name")
    engine = pool.engine.split()[0] if pool.engine else ""
    if run.engine and engine and run.engine != engine:
        raise ConfigError(f"--from-benchmark={run.where!r}: backend={run.engine!r}: the "
                          f"deployment's {pool.name} pool runs {pool.engine}; allowed: {engine}")
    if run.tp is not None and run.tp != pool.tp:
        raise ConfigError(f"--from-benchmark={run.where!r}: tp={run.tp}: the deployment's "
                          f"{pool.name} pool runs tp={pool.tp}; allowed: {pool.tp}")
    if model is not None:
        longest = run.input_tokens.high + run.output_tokens.high
        if longest > model.max_context_tokens:
            raise ConfigError(
                f"--from-benchmark={run.where!r}: input+output tokens={longest:.0f}: longer than "
                f"{model.name}'s context ({model.max_context_tokens}); allowed: <= "
                f"{model.max_context_tokens} (is this the model the benchmark ran?)")
