"""Which calibration profile applies to a pool when none was measured on exactly its setup.

Fallback order (``select_profile``; documented in docs/validation.md, "Which profile applies"):

1. **exact**: a profile measured on the pool's hardware, at its precision class, for its model
   family;
2. **same generation**: a profile (same precision class and family) measured on other hardware of
   the pool's hardware generation (``generation`` key of the hardware catalog entry), e.g. h200
   for gh200_96g (both hopper);
3. **adjacent generation**: one of a generation of the same vendor line at most ``max_distance``
   steps away in ``conf/tables/hardware_generations.yaml`` (nearest first; at equal distance the
   older generation first);
4. **none**: the uncalibrated roofline.

Ties within a step are broken by hardware catalog name, then profile name (both alphabetical), so
the choice never depends on file order. Hardware without a ``generation`` (or ``generation_of``
returning ``None``/"") only gets an exact match. A weight dtype maps to a precision class through
the table's ``precision_classes`` (weight-only int8/int4 -> bf16, nvfp4/mxfp4 -> fp8); a dtype
with no class gets the roofline.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import yaml

from hermes_opt.compose import catalog
from hermes_opt.compose.calibration_profile import Profile
from sim.errors import ConfigError

TABLE = catalog.CONF_DIR / "tables" / "hardware_generations.yaml"
# (pattern in a profile's `engine` text, engine name): first match wins
ENGINE_PATTERNS = ((r"vllm", "vllm"), (r"sglang", "sglang"), (r"tensorrt|trt-?llm", "trtllm"))


@dataclass(frozen=True, slots=True)
class Generations:
    lines: dict[str, tuple[str, ...]]  # vendor line -> generations, oldest first
    max_distance: int
    precision_classes: dict[str, str]  # weight dtype -> 'bf16' | 'fp8'
    source: str = str(TABLE)

    def position(self, generation: str, where: str) -> tuple[str, int]:
        for line, gens in self.lines.items():
            if generation in gens:
                return line, gens.index(generation)
        allowed = ", ".join(g for gens in self.lines.values() for g in gens)
        raise ConfigError(f"{where}={generation!r}: unknown hardware generation (not in "
                          f"{self.source}); allowed: {allowed}")


def parse_generations(data: object, source: str) -> Generations:
    """Check a generations table; every problem is one ConfigError naming the file and key."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: must be a mapping with keys lines, max_distance, precision_classes")
    unknown = sorted(set(data) - {"lines", "max_distance", "precision_classes"})
    if unknown:
        raise ConfigError(f"{source}: unknown key(s) {unknown}; allowed: lines, max_distance, "
                          "precision_classes")
    lines, seen = data.get("lines"), {}
    if not isinstance(lines, dict) or not lines:
        raise ConfigError(f"{source}: lines={lines!r}: must map a vendor line to a list of "
                          "generation names, oldest first")
    for line, gens in lines.items():
        if (not isinstance(gens, list) or not gens
                or not all(isinstance(g, str) and g for g in gens)):
            raise ConfigError(f"{source}: lines.{line}={gens!r}: must be a non-empty list of "
                              "generation names, oldest first")
        for g in gens:
            if g in seen:
                raise ConfigError(f"{source}: lines.{line}: generation {g!r} is already listed "
                                  f"under lines.{seen[g]}; each generation belongs to one line")
            seen[g] = line
    distance = data.get("max_distance", 1)
    if isinstance(distance, bool) or not isinstance(distance, int) or distance < 0:
        raise ConfigError(f"{source}: max_distance={distance!r}: must be a whole number >= 0")
    classes = data.get("precision_classes") or {}
    if not isinstance(classes, dict):
        raise ConfigError(f"{source}: precision_classes={classes!r}: must map a weight dtype to "
                          "bf16 or fp8")
    for dtype, cls in classes.items():
        if cls not in ("bf16", "fp8"):
            raise ConfigError(f"{source}: precision_classes.{dtype}={cls!r}: allowed: bf16, fp8")
    return Generations(lines={k: tuple(v) for k, v in lines.items()}, max_distance=distance,
                       precision_classes={str(k): str(v) for k, v in classes.items()}, source=source)


@cache
def load_generations(path: str = str(TABLE)) -> Generations:
    try:
        data = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as err:
        raise ConfigError(f"{path}: unreadable hardware generations table ({err})") from None
    return parse_generations(data, path)


def catalog_generation(hardware: str) -> str:
    """``generation`` of a hardware catalog entry ('' when it has none)."""
    value = catalog.entry("hardware", hardware).get("generation")
    return "" if value is None else str(value)


def precision_class(dtype: str, table: Generations) -> str | None:
    return dtype if dtype in ("bf16", "fp8") else table.precision_classes.get(dtype)


# Profiles fitted on one benchmark's rows (MLPerf: partly assumed dataset lengths) describe that
# benchmark best and general workloads worst: a general run takes them only when nothing else of
# the same rank matches; validation of that benchmark's rows asks for them (``prefer_source``).
BENCHMARK_SOURCES = ("MLPerf",)


def _benchmark_specific(p: Profile) -> bool:
    return p.validation_source.startswith(BENCHMARK_SOURCES)


def engine_of_text(text: str) -> str:
    """The engine a profile's free-text ``engine`` names ('' when none of ours)."""
    lowered = str(text).lower()
    for pattern, name in ENGINE_PATTERNS:
        if re.search(pattern, lowered):
            return name
    return ""


def select_profile(profiles: list[Profile], *, hardware: str, precision: str, family: str,
                   generation_of: Callable[[str], str | None] = catalog_generation,
                   table: Generations | None = None, prefer_source: str = "",
                   engine: str = "") -> tuple[Profile | None, str]:
    """(profile or None = uncalibrated roofline, a sentence saying which was chosen and why).
    ``prefer_source``: consider only profiles validated on that source when any matches.
    ``engine``: the pool's serving engine; profiles measured on it are tried first (a
    TensorRT-LLM profile of another Hopper GPU before an eager-engine profile of this one)."""
    if engine:
        same = [p for p in profiles if engine_of_text(p.engine) == engine]
        if same:
            chosen, why = select_profile(same, hardware=hardware, precision=precision,
                                         family=family, generation_of=generation_of, table=table,
                                         prefer_source=prefer_source)
            if chosen is not None:
                return chosen, f"{why} [same engine: {engine}]"
    table = table or load_generations()
    cls = precision_class(precision, table)
    want = f"{hardware}/{precision}/{family}"
    if cls is None:
        allowed = ", ".join(sorted({"bf16", "fp8", *table.precision_classes}))
        return None, (f"roofline (no profile for {want}: weight_dtype {precision!r} has no precision "
                      f"class in {table.source}; classes exist for {allowed})")
    note = "" if cls == precision else f"; weight_dtype {precision} uses precision class {cls}"
    usable = [p for p in profiles if p.precision == cls and p.model_family == family]
    if prefer_source:
        usable = [p for p in usable if p.validation_source.startswith(prefer_source)] or usable
    usable.sort(key=lambda p: (p.hardware, _benchmark_specific(p), p.name))
    exact = [p for p in usable if p.hardware == hardware]
    if exact:
        return exact[0], f"{exact[0].name} (exact: {hardware} {cls} {family}{note})"
    generation = generation_of(hardware) or ""
    if not generation:
        return None, (f"roofline (no profile for {want}; hardware {hardware} has no generation in "
                      "the catalog, so only an exact match applies)")
    line, pos = table.position(generation, f"hardware[{hardware}].generation")
    ranked = []
    for p in usable:
        other = generation_of(p.hardware) or ""
        if not other:
            continue
        other_line, other_pos = table.position(other, f"hardware[{p.hardware}].generation")
        distance = abs(other_pos - pos)
        if other_line == line and distance <= table.max_distance:
            ranked.append(((distance, _benchmark_specific(p), other_pos > pos, p.hardware, p.name),
                           p, other))
    if not ranked:
        return None, (f"roofline (no profile for {want}; nearest-generation search found none: "
                      f"no {cls} {family} profile on {generation} hardware or within "
                      f"{table.max_distance} generation(s) of it in line {line})")
    _, best, other = min(ranked, key=lambda r: r[0])
    if other == generation:
        why = f"{hardware} is {generation} like {best.hardware}"
    else:
        why = (f"{hardware} is {generation}, {best.hardware} is {other}, adjacent in the "
               f"{line} line")
    return best, f"{best.name} (nearest generation: {why}{note})"
