"""How close each engine's kernels get to the roofline: ``conf/tables/engine_efficiency.yaml``.

The roofline (``sim.cost.roofline``) stays the physics; this table says, per (engine, software
stack, hardware generation, precision class), which share of peak FLOP/s and HBM bandwidth each
operator class reaches (GEMM, prefill and decode attention, MoE grouped GEMMs, all-reduce), fitted
on public measurements, with the error measured on data the entry was not fitted on.

Fallback order (docs/engines.md), first match wins; every JSON records which step was taken:

1. ``exact``: the pool's engine, stack, generation and precision class;
2. ``nearest generation``: same engine and stack, an adjacent generation of the same line;
3. ``same stack``: another engine's entry on the same stack, generation and precision class;
4. ``same stack, nearest generation``: another engine, adjacent generation;
5. ``other precision``: the pool's engine, stack and generation at another precision class;
6. ``nearest generation, other precision``: the pool's engine and stack, adjacent generation;
7. ``same stack, other precision``: any engine of the stack within one generation;
8. else the uncalibrated roofline (the ``cost_model`` group's values) with the table's
   ``no_data`` band. (A stack's own data, even a generation or a precision away, says more about
   its kernels than the generic roofline: MI355X's FP4 takes the MI300X FP8 entry, not the
   datasheet.)

Within one step the entry validated on more rows wins, then the table's order: never the
alphabet. Data never crosses stacks: CUDA kernels say nothing about ROCm's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from typing import Any

from omegaconf import OmegaConf

from hermes_opt.compose.catalog import CONF_DIR
from hermes_opt.compose.engines import Engine
from hermes_opt.compose.values import number
from sim.config import CostModelSpec
from sim.cost.roofline import RooflineParams
from sim.errors import ConfigError

TABLE_PATH = CONF_DIR / "tables" / "engine_efficiency.yaml"
GENERATIONS_PATH = CONF_DIR / "tables" / "hardware_generations.yaml"
ENTRY_KEYS = ("engine", "stack", "generation", "precision", "params", "band", "source",
              "fitted_on")
PARAM_KEYS = ("compute_efficiency", "compute_half_tokens", "memory_efficiency",
              "attention_efficiency", "decode_attention_efficiency",
              "attention_half_context_tokens", "moe_efficiency", "comm_efficiency",
              "allreduce_latency_s", "allreduce_latency_per_peer_s", "layer_overhead_s")
BAND_KEYS = ("median_pct", "p90_pct", "n", "validated_on")


@dataclass(frozen=True, slots=True)
class Efficiency:
    """The entry a pool uses, why, and its measured error band."""

    params: dict[str, float]
    match: str  # which fallback step, in words
    key: str  # engine/stack/generation/precision of the entry used ('' = none)
    band: dict[str, Any] = field(default_factory=dict)
    source: str = ""

    def record(self) -> dict[str, Any]:
        return {"entry": self.key or None, "match": self.match, "error_band": dict(self.band),
                "source": self.source}


@cache
def _table(path: str = str(TABLE_PATH)) -> tuple[tuple[dict, ...], dict]:
    try:
        data = OmegaConf.to_container(OmegaConf.load(path), resolve=True)
    except Exception as err:  # noqa: BLE001 - any YAML problem is one line
        raise ConfigError(f"engine efficiency table {path}: {err}") from None
    entries = tuple(data.get("entries") or ())
    for i, entry in enumerate(entries):
        _check_entry(entry, f"{path}: entries[{i}]")
    return entries, dict(data.get("no_data") or {})


def _check_entry(entry: dict, where: str) -> None:
    unknown = sorted(set(entry) - set(ENTRY_KEYS))
    if unknown:
        raise ConfigError(f"{where}.{unknown[0]}: unknown key; allowed: {', '.join(ENTRY_KEYS)}")
    bad = sorted(set(entry.get("params") or {}) - set(PARAM_KEYS))
    if bad:
        raise ConfigError(f"{where}.params.{bad[0]}: unknown; allowed: {', '.join(PARAM_KEYS)}")
    try:
        RooflineParams(**(entry.get("params") or {}))
    except ConfigError as err:
        raise ConfigError(f"{where}.params: {err}") from None


@cache
def _generation_index() -> dict[str, tuple[str, int]]:
    lines = OmegaConf.to_container(OmegaConf.load(GENERATIONS_PATH), resolve=True)["lines"]
    return {gen: (line, i) for line, gens in lines.items() for i, gen in enumerate(gens)}


def _distance(a: str, b: str) -> int | None:
    index = _generation_index()
    if a == b:
        return 0
    if a in index and b in index and index[a][0] == index[b][0]:
        return abs(index[a][1] - index[b][1])
    return None


# Weight formats -> the precision class an entry is measured at (int8/int4 are weight-only: their
# GEMMs dequantize and run on the bf16 path; NVFP4/MXFP4 run block-scaled FP4 tensor cores).
PRECISION_CLASSES = {"bf16": "bf16", "fp16": "bf16", "int8": "bf16", "int4": "bf16",
                     "fp8": "fp8", "nvfp4": "fp4", "mxfp4": "fp4"}


def precision_class(weight_dtype: str) -> str:
    return PRECISION_CLASSES.get(str(weight_dtype).lower(), str(weight_dtype).lower())


STEPS = ("exact", "nearest generation", "same stack", "same stack, nearest generation",
         "other precision", "nearest generation, other precision", "same stack, other precision")


@dataclass(frozen=True, slots=True)
class _Key:
    """The parts of an engine the table is keyed by."""

    name: str
    stack: str
    generation: str


def _step(entry: dict, engine: _Key, precision: str) -> int | None:
    """The fallback step at which ``entry`` serves this pool, or None."""
    if entry["stack"] != engine.stack:
        return None
    distance = _distance(engine.generation, entry["generation"])
    if distance is None or distance > 1:
        return None
    same_engine, same_precision = entry["engine"] == engine.name, entry["precision"] == precision
    if same_precision:
        return (0 if distance == 0 else 1) if same_engine else (2 if distance == 0 else 3)
    if same_engine:
        return 4 if distance == 0 else 5
    return 6


def lookup(engine: Engine, precision: str, entries: tuple[dict, ...] | None = None) -> Efficiency:
    """The efficiencies for a pool running ``engine`` at weight precision class ``precision``
    (from the shipped table, or from ``entries`` when a fit tries candidate values)."""
    if entries is None:  # every candidate of a study asks again: answer from a cache
        return _shipped(engine.name, engine.stack, engine.generation, precision)
    return _lookup(engine.name, engine.stack, engine.generation, precision, entries)


@cache
def _shipped(name: str, stack: str, generation: str, precision: str) -> Efficiency:
    return _lookup(name, stack, generation, precision, _table()[0])


def _lookup(name: str, stack: str, generation: str, precision: str,
            entries: tuple[dict, ...]) -> Efficiency:
    _, no_data = _table()
    engine = _Key(name, stack, generation)
    ranked = []
    for order, entry in enumerate(entries):
        step = _step(entry, engine, precision)
        if step is not None:
            rows = int((entry.get("band") or {}).get("n") or 0)
            ranked.append((step, -rows, order, entry))
    if not ranked:
        return Efficiency(params={}, key="", band=dict(no_data.get("band") or {}),
                          match=f"none: no data for {engine.name} on {engine.stack} "
                                f"{engine.generation} {precision}; uncalibrated roofline",
                          source=str(no_data.get("source", "")))
    step, _, _, entry = min(ranked, key=lambda r: r[:3])
    key = "/".join(str(entry[k]) for k in ("engine", "stack", "generation", "precision"))
    return Efficiency(params=dict(entry.get("params") or {}), key=key, match=STEPS[step],
                      band=dict(entry.get("band") or {}), source=str(entry.get("source", "")))


def roofline_params(base: dict[str, float], engine: Engine, efficiency: Efficiency) -> RooflineParams:
    """The cost model's terms: the ``cost_model`` group's values, the table entry's kernel
    efficiencies over them, and the engine's host costs and graph capture on top."""
    values = {**base, **efficiency.params, **engine.host,
              "cuda_graph_max_batch": engine.cuda_graph_max_batch}
    return RooflineParams(**values)


def cost_spec(node: Any, engine: Engine, weight_dtype: str) -> CostModelSpec:
    """Roofline terms of a pool from its engine: the table's entry for (engine, stack, generation,
    precision class) over the ``cost_model`` group's values, plus the engine's host costs and
    graph capture. ``CostModelSpec.calibration`` says which entry and why; ``provenance`` carries
    the entry, the fallback step and the error band into the deployment record."""
    base = {k: number(node, k, "cost_model", integer=k == "cuda_graph_max_batch")
            for k in RooflineParams.__dataclass_fields__ if node.get(k) is not None}
    found = lookup(engine, precision_class(weight_dtype))
    record = {"engine": engine.name, "version": engine.version, "stack": engine.stack,
              "generation": engine.generation, **found.record()}
    if engine.note:
        record["fallback"] = engine.note
    return CostModelSpec(roofline=roofline_params(base, engine, found),
                         calibration=f"engine {engine.label}: {found.key or 'roofline'} "
                                     f"({found.match})",
                         provenance=tuple(sorted(record.items())))
