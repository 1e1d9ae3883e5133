"""One LLM pool's engine launch: the deployment record's settings (and, for the artifacts, the
facts the record does not hold) turned into the engine's command-line flags and options-file keys
by the rules of the flag table (``flag_table``). Every setting ends up in exactly one of: a flag,
an option, a checkpoint requirement, or a "not expressible" note with the reason; nothing is
dropped silently (docs/deploy.md)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hermes_opt.report.deploy import flag_table

# settings in the order they appear on the command line (the disaggregated role before the KV
# tiers: where both need one flag, the role keeps it)
ORDER = ("backend", "tp", "pp", "ep", "attention_dp", "max_num_seqs", "step_tokens", "batching",
         "memory_fraction", "weight_dtype", "kv_dtype", "block_size", "prefix_caching",
         "disagg_role", "kv_host_tier", "kv_disk_tier", "kv_eviction", "kv_admission", "router",
         "spec_decoding")
# flags without a value: emitting one twice is harmless (--enable-expert-parallel)
SWITCHES = ("--enable-expert-parallel",)
# settings of the engine itself, not simulated: expressed only where the table has a rule
ENGINE_ONLY = ("backend",)
PLAIN = {"chunked": "continuous batching with chunked prefill",
         "continuous": "continuous batching, whole prompts (no chunked prefill)",
         "mixed": "continuous batching, prefills and decodes in one step",
         "prefill_first": "continuous batching, chunked prefill-only batches before decodes",
         "static": "static batching"}


@dataclass(frozen=True, slots=True)
class Tier:
    """A KV tier beyond device memory, per replica (one copy of its sharing domain divided among
    the replicas that share it)."""

    kind: str  # dram | lpddr | cxl | ssd | rack | remote
    bytes_per_replica: float
    blocks_per_replica: int  # in the pool's KV blocks (vLLM's num_cpu_blocks)


@dataclass(frozen=True, slots=True)
class PoolFacts:
    """What the artifacts need beyond the deployment record, read from the composed config."""

    model_id: str  # the Hugging Face id the engine loads
    block_size_tokens: int
    static_fraction: float  # SGLang mem_fraction_static: memory share minus activation reserve
    prefix_caching: bool  # the pool has a prefix-KV store
    host_tier: Tier | None = None
    disk_tier: Tier | None = None
    eviction: str = "lru"
    admission: str = "always"
    router: str = "round_robin"


@dataclass
class Launch:
    """The engine, its command line (command, model, flags), options-file keys and the notes."""

    engine: str
    version: str
    command: list[str]
    flags: list[str] = field(default_factory=list)
    options: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # "setting: why", every unexpressed setting
    plain: list[str] = field(default_factory=list)  # settings in words (the card)
    known: bool = True  # the table has this engine version

    def argv(self, host: str | None = None, port: int | None = None) -> list[str]:
        tail = ([] if host is None else ["--host", host]) + \
            ([] if port is None else ["--port", str(port)])
        return [*self.command, *self.flags, *tail]


def _sub(text: Any, subs: dict[str, Any]) -> Any:
    if not isinstance(text, str):
        return text
    whole = text[1:-1] if text.startswith("{") and text.endswith("}") else None
    if whole in subs and not isinstance(subs[whole], str):
        return subs[whole]  # a number stays a number in an options file
    for key, value in subs.items():
        text = text.replace("{" + key + "}", str(value))
    return text


def _set_option(options: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, last = dotted.split(".")
    node = options
    for part in parents:
        node = node.setdefault(part, {})
    node[last] = value


def _step_budget(pool: dict[str, Any]) -> int | None:
    """The step's token budget as the simulator's policies use it: the chunk size under chunked
    prefill (``chunked``, ``prefill_first``), ``max_batched_tokens`` otherwise."""
    sched = pool.get("scheduler") or {}
    key = ("chunk_size_tokens" if pool.get("batching") in ("chunked", "prefill_first")
           else "max_batched_tokens")
    return sched.get(key)


def _settings(pool: dict[str, Any], facts: PoolFacts | None) -> list[tuple[str, Any]]:
    """(setting, value) pairs of one pool to express, in ORDER; neutral values left out."""
    sched = pool.get("scheduler") or {}
    budget = _step_budget(pool)
    values: dict[str, Any] = {
        "backend": "pytorch", "tp": pool.get("tp"),
        "pp": pool.get("pp") if (pool.get("pp") or 1) > 1 else None,
        "ep": pool.get("ep") if (pool.get("ep") or 1) > 1 else None,
        "attention_dp": True if pool.get("attention_dp") else None,
        "max_num_seqs": sched.get("max_num_seqs"), "step_tokens": budget,
        "batching": pool.get("batching"), "memory_fraction": sched.get("gpu_memory_utilization"),
        "weight_dtype": pool.get("weight_dtype"), "kv_dtype": pool.get("kv_dtype"),
        "disagg_role": pool.get("role") if pool.get("role") in ("prefill", "decode") else None,
        "spec_decoding": (pool.get("spec_decoding") or {}).get("method")}
    if facts is not None:
        values |= {"block_size": facts.block_size_tokens,
                   "prefix_caching": "on" if facts.prefix_caching else "off",
                   "kv_host_tier": facts.host_tier, "kv_disk_tier": facts.disk_tier,
                   "kv_eviction": facts.eviction if facts.prefix_caching else None,
                   "kv_admission": facts.admission if facts.prefix_caching else None,
                   "router": facts.router if (pool.get("replicas") or 1) > 1 else None}
    return [(name, values.get(name)) for name in ORDER if values.get(name) is not None]


def _subs(pool: dict[str, Any], facts: PoolFacts | None, value: Any) -> dict[str, Any]:
    subs: dict[str, Any] = {"tp": pool.get("tp"), "budget": _step_budget(pool)}
    drafting = pool.get("spec_decoding") or {}
    if drafting:  # the simulated chain of k drafts and the acceptance it assumed
        k = int(drafting.get("draft_tokens") or 0)
        per_position = drafting.get("acceptance_per_position") or []
        subs |= {"draft_tokens": k, "draft_tokens_plus_1": k + 1,
                 "acceptance": "/".join(f"{a:g}" for a in per_position) or "n/a"}
    if isinstance(value, Tier):
        gb = value.bytes_per_replica / 1e9
        subs |= {"kind": value.kind, "gb": f"{gb:.1f}", "gb_int": max(1, int(gb)),
                 "bytes": int(value.bytes_per_replica), "blocks": value.blocks_per_replica,
                 "value": value.kind}
    else:
        subs["value"] = value
    if facts is not None:
        subs["static_fraction"] = round(facts.static_fraction, 3)
    return subs


def launch(pool: dict[str, Any], facts: PoolFacts | None = None) -> Launch | None:
    """The launch of one LLM pool of a deployment record; None for a pool without an engine.
    Without ``facts`` (the decision card) only what the record holds is expressed."""
    engine, version = flag_table.split_engine(pool.get("engine"))
    if not engine:
        return None
    entry = flag_table.entry(engine, version)
    if entry is None:
        return Launch(engine, version, [], known=False,
                      notes=[f"engine: the flag table has no {engine} {version} (flags not "
                             f"written; add the version to conf/tables/engine_flags.yaml)"])
    command = list(entry.get("command") or [])
    if facts is not None:
        model_flag = entry.get("model", "positional")
        command += [facts.model_id] if model_flag == "positional" else [model_flag, facts.model_id]
    out = Launch(engine, version, command)
    covered: set[str] = set()
    for setting, value in _settings(pool, facts):
        if setting in covered or (setting in ENGINE_ONLY and setting not in entry["settings"]):
            continue
        if setting == "memory_fraction" and facts is None and "{static_fraction}" in str(
                flag_table.rule(entry, setting).get("emit")):
            continue  # the card cannot size SGLang's static fraction without the reserve
        found = flag_table.rule(entry, setting, value)
        subs = _subs(pool, facts, value)
        if setting == "ep" and found.get("spans") == "tp" and value != pool.get("tp"):
            found = {"not_expressible": f"{display_name(engine)}'s expert parallelism spans "
                                        f"every rank of the replica; the simulation used ep "
                                        f"{value} of tp {pool.get('tp')}"}
        _apply(out, setting, value, found, subs)
        covered |= set(found.get("covers") or ())
        if setting == "attention_dp" and found.get("tp_becomes") is not None:
            _retarget_tp(out, entry, found["tp_becomes"])
        if setting == "batching":
            out.plain.insert(0, PLAIN.get(str(value), f"{value} batching"))
    return out


def display_name(engine: str) -> str:
    return flag_table.display(engine)


def _apply(out: Launch, setting: str, value: Any, found: dict[str, Any],
           subs: dict[str, Any]) -> None:
    shown = value.kind if isinstance(value, Tier) else value
    tokens = [str(_sub(token, subs)) for token in found.get("emit") or ()]
    taken = [t for t in tokens if flag_table.FLAG.match(t) and t in out.flags
             and t not in SWITCHES]
    if taken:  # one flag cannot carry two settings (vLLM: NIXL and CPU offload connectors)
        found = {"not_expressible": f"{', '.join(taken)} already carries another setting of "
                                    f"this pool and takes one value"}
        tokens = []
    out.flags += tokens
    if "option" in found:
        for key, raw in found["option"].items():
            _set_option(out.options, key, _sub(raw, subs))
    if "checkpoint" in found:
        out.notes.append(f"{setting} {shown}: checkpoint: {_sub(found['checkpoint'], subs)}")
        out.plain.append(f"{'weights' if setting == 'weight_dtype' else setting} {shown} "
                         f"(quantized checkpoint)")
    if "not_expressible" in found:
        out.notes.append(f"{setting} {shown}: not expressible: "
                         f"{_sub(found['not_expressible'], subs)}")
        out.plain.append(f"{setting} {shown} (not expressible)")
    elif "note" in found:
        out.notes.append(f"{setting} {shown}: {_sub(found['note'], subs)}")
    if "option" in found and setting == "kv_dtype":
        out.plain.append(f"KV cache {shown}")


def _retarget_tp(out: Launch, entry: dict[str, Any], tp: int) -> None:
    """Data-parallel attention in vLLM: the replica's devices become DP ranks of TP ``tp``."""
    tp_flag = (flag_table.rule(entry, "tp").get("emit") or [None])[0]
    if tp_flag in out.flags:
        out.flags[out.flags.index(tp_flag) + 1] = str(tp)


def pairs(flags: list[str]) -> list[str]:
    """["--tp-size", "2", "--enable-mixed-chunk"] -> ["--tp-size 2", "--enable-mixed-chunk"]."""
    out: list[str] = []
    for token in flags:
        if out and not flag_table.FLAG.match(token) and flag_table.FLAG.match(
                out[-1].split(" ")[0]) and " " not in out[-1]:
            out[-1] += f" {token}"
        else:
            out.append(token)
    return out
