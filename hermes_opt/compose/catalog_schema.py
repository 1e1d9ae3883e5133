"""The keys a hardware, model or pricing catalog entry may have, their types and ranges
(docs/CATALOG_SCHEMA.md), checked on every entry read, shipped or the user's. A wrong entry is
one ConfigError naming the file, the key and what is allowed, so a user's YAML fails before the
simulator turns a typo into a silent default."""

from __future__ import annotations

import math
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from sim.errors import ConfigError

# Kinds of value: "text", "number" (> 0), "number0" (>= 0), "int" (> 0), "int0" (>= 0), "bool",
# "texts" (a list of text), a tuple of allowed words, or a dict (a nested mapping's own schema).
# A trailing "?" on a key: optional; a "|null" kind: may be null.
HARDWARE: dict[str, Any] = {
    "name": "text", "display_name?": "text", "product_name?": "text", "vendor": "text",
    "kind": ("gpu", "accelerator", "tpu", "cpu"), "generation": "generation",
    "memory_gb": "number", "memory_gib?": "number", "mem_bw_gb_per_s": "number",
    "bf16_dense_tflops": "number", "fp8_dense_tflops?": "number|null",
    "fp4_dense_tflops?": "number|null", "scaleup_bw_gb_per_s": "number",
    "host_bw_gb_per_s": "number", "tdp_w?": "number|null", "num_cores?": "int|null",
    "scaleup_domain_devices?": "int", "scaleout_bw_gb_per_s?": "number",
    "scaleup_mesh_devices?": "int0", "power_reference?": "text",
    "sustained_compute_fraction?": "number",
    "node": {"devices": "int", "name?": "text", "source?": "text"},
    "source": "text", "source_date?": "text", "trust?": "text", "notes?": "text",
}
MODEL: dict[str, Any] = {
    "name": "text", "hf_id?": "text", "kind": ("decoder", "embedding", "reranker"),
    **{key: "int" for key in ("num_layers", "hidden_size", "num_heads", "num_kv_heads",
                              "head_dim", "intermediate_size", "vocab_size", "num_experts",
                              "experts_per_token", "max_context_tokens")},
    "gated_mlp?": "bool", "tie_word_embeddings?": "bool", "source": "text",
    "attention?": ("gqa", "mla"),
    **{f"{key}?": "int0" for key in ("q_lora_rank", "kv_lora_rank", "qk_nope_head_dim",
                                     "qk_rope_head_dim", "v_head_dim", "num_shared_experts",
                                     "moe_intermediate_size", "num_moe_layers")},
}
PRICE: dict[str, Any] = {
    "value": "number", "unit?": ("device", "instance"), "provider": "text",
    "kind": ("on_demand", "reserved", "spot", "capacity_block", "tco"), "product?": "text",
    "date_observed?": "text", "source": "text", "trust?": "text", "notes?": "text",
    "instance_vcpus?": "int", "instance_cores?": "int", "instance_memory_gib?": "number",
}
MEMORY_PRICE: dict[str, Any] = {
    "value": "number0", "provider?": "text", "date_observed?": "text", "source": "text",
    "trust?": "text", "notes?": "text",
}
MEMORY_TIERS = ("hbm", "dram", "cxl", "ssd", "remote")
PRICING: dict[str, Any] = {
    "name": "text", "provider": "text", "providers?": "texts", "description?": "text",
    "date": "text", "usd_per_hour": "prices", "memory_usd_per_gb_hour?": "memory_prices",
}
SCHEMAS = {"hardware": HARDWARE, "model": MODEL, "pricing": PRICING}


def check(group: str, file: Path, data: dict[str, Any]) -> None:
    """ConfigError ``<file>: <key>=<value>: <allowed>`` for the first thing wrong; groups
    without a schema here (engines, workloads, ...) are checked where they are used."""
    schema = SCHEMAS.get(group)
    if schema is None:
        return
    _mapping(data, schema, f"{file}: ", "")
    if data["name"] != file.stem:  # the name is how studies pick it and results report it
        raise ConfigError(f"{file}: name={data['name']!r}: must equal the file name "
                          f"({file.stem!r})")


def _mapping(data: Any, schema: dict[str, Any], where: str, prefix: str) -> None:
    if not isinstance(data, dict):
        raise ConfigError(f"{where}{prefix.rstrip('.') or 'entry'}: must be a mapping")
    keys = {k.rstrip("?"): k.endswith("?") for k in schema}
    for key in data:
        if key not in keys:
            raise ConfigError(f"{where}{prefix}{key}: unknown key; allowed: {', '.join(keys)}")
    for key, optional in keys.items():
        if key not in data:
            if not optional:
                raise ConfigError(f"{where}{prefix}{key}: missing; required: "
                                  f"{', '.join(k for k, o in keys.items() if not o)}")
            continue
        kind = schema[key + ("?" if optional else "")]
        _value(data[key], kind, where, f"{prefix}{key}")


def _value(value: Any, kind: Any, where: str, field: str) -> None:
    if isinstance(kind, dict):
        _mapping(value, kind, where, field + ".")
        return
    if isinstance(kind, str) and kind.endswith("|null"):
        if value is None:
            return
        kind = kind.removesuffix("|null")
    if kind == "prices":
        _entries(value, PRICE, where, field, names=None)
    elif kind == "memory_prices":
        _entries(value, MEMORY_PRICE, where, field, names=MEMORY_TIERS)
    elif kind == "generation":
        allowed = generations()
        if value not in allowed:
            raise ConfigError(f"{where}{field}={value!r}: allowed: {', '.join(allowed)}")
    elif isinstance(kind, tuple):
        if value not in kind:
            raise ConfigError(f"{where}{field}={value!r}: allowed: {', '.join(kind)}")
    else:
        problem = _problem(value, kind)
        if problem:
            raise ConfigError(f"{where}{field}={value!r}: {problem}")


def _problem(value: Any, kind: str) -> str | None:
    """What is wrong with a plain value of this kind; None when nothing is."""
    if kind == "text":
        return None if isinstance(value, str) else "must be text"
    if kind == "texts":
        ok = isinstance(value, list) and all(isinstance(v, str) for v in value)
        return None if ok else "must be a list of names"
    if kind == "bool":
        return None if isinstance(value, bool) else "must be true or false"
    integer = kind.startswith("int")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or \
            (integer and not isinstance(value, int)) or not math.isfinite(value):
        return "must be a whole number" if integer else "must be a finite number"
    positive = not kind.endswith("0")
    if value < 0 or (positive and value == 0):
        return "must be > 0" if positive else "must be >= 0"
    return None


def _entries(value: Any, schema: dict[str, Any], where: str, field: str,
             names: tuple[str, ...] | None) -> None:
    if not isinstance(value, dict):
        raise ConfigError(f"{where}{field}: must be a mapping of name -> entry")
    for name, item in value.items():
        if names is not None and name not in names:
            raise ConfigError(f"{where}{field}.{name}: unknown tier; allowed: {', '.join(names)}")
        _mapping(item, schema, where, f"{field}.{name}.")


# Read here rather than through profile_select, which reads the catalog (an import cycle).
GENERATIONS_TABLE = Path(__file__).resolve().parent.parent / "conf" / "tables" / \
    "hardware_generations.yaml"


@cache
def generations() -> list[str]:
    """Every hardware generation the fallback table knows (profile_select checks the table)."""
    lines = (yaml.safe_load(GENERATIONS_TABLE.read_text()) or {}).get("lines") or {}
    return [g for gens in lines.values() for g in gens]
