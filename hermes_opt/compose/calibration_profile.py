"""Calibration profiles: YAML files in ``conf/calibration`` (Hydra group ``calibration``), read here
when a scenario is composed and written by ``hermes_opt.calibration``.

A profile names the (hardware, engine, precision) it was measured on, the model family it composes
with, the fitted ``RooflineParams`` and its provenance: which data, the split, when and how it was
fitted, fit error (rows it saw) and held-out error (rows it did not). It is merged into
``cost_model.calibration`` so ``hermes-sim calibration=<name>`` replaces the roofline's
efficiencies for pools on that hardware (see ``hermes_opt.compose.to_sim.cost_model_spec``).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import yaml

from hermes_opt.compose import catalog
from sim.cost.roofline import RooflineParams
from sim.errors import ConfigError
from sim.hardware.memory import MAX_KV_FACTOR

GROUP = "calibration"
SPECIAL = ("none", "auto", "engine")  # not profile files (auto: profile_select; engine: the efficiency table)


@dataclass(frozen=True, slots=True, kw_only=True)
class Holdout:
    models: tuple[str, ...] = ()
    tp: tuple[int, ...] = ()
    batch: tuple[int, ...] = ()
    prompt: tuple[int, ...] = ()
    decode_tokens: tuple[int, ...] = ()  # splitwise token_size (tokens generated while measuring)
    isl_osl: tuple[str, ...] = ()  # "128/2048"
    num_tokens: tuple[int, ...] = ()  # vidur operator rows
    every: int = 3  # used only when every list above is empty; 0 = fit on all rows

    def __post_init__(self) -> None:
        if self.every < 0:
            raise ConfigError(f"--holdout-every={self.every}: must be >= 0")
        for pair in self.isl_osl:
            parts = pair.split("/")
            if len(parts) != 2 or not all(p.isdigit() for p in parts):
                raise ConfigError(f"--holdout-isl-osl={pair!r}: write ISL/OSL pairs like 128/2048")

    @property
    def explicit(self) -> bool:
        return any((self.models, self.tp, self.batch, self.prompt, self.decode_tokens,
                    self.isl_osl, self.num_tokens))

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @staticmethod
    def from_dict(data: dict) -> Holdout:
        fields = {k: tuple(v) if isinstance(v, list) else v for k, v in dict(data).items()}
        return Holdout(**fields)

    def describe(self) -> str:
        if not self.explicit:
            return ("fit on all rows (no held-out rows)" if self.every == 0 else
                    f"1 in every {self.every} configurations (sorted by key) held out")
        parts = [f"{k}={','.join(map(str, v))}" for k, v in self.to_dict().items()
                 if isinstance(v, list) and v]
        return "held out: rows with " + " or ".join(parts)


HEADER = "# @package cost_model.calibration\n"
FAMILIES = ("dense", "moe")


@dataclass(frozen=True, slots=True, kw_only=True)
class Profile:
    name: str
    hardware: str  # catalog name
    engine: str
    precision: str  # 'bf16' | 'fp8' (weights and KV cache)
    model_family: str = "dense"
    validation_source: str = ""  # rows of this source/variant are what the profile is validated on
    params: RooflineParams = field(default_factory=RooflineParams)
    # Serving front end before the engine's scheduler (HTTP, tokenizer, Triton ensemble); fitted
    # from serving-level TTFT only (0 for step/operator data). Applied per call into the engine,
    # so TTFT and E2E include it and ITL does not (``CostModelSpec.frontend_latency_s``).
    frontend_latency_s: float = 0.0
    # Share of the engine's documented KV blocks the measured cluster has (fitted from serving
    # benchmarks under KV pressure, ``calibrate --from-benchmark``); applied to the scheduler of
    # every pool the profile applies to by name (not to ``auto``/``nearest`` picks: another
    # machine's memory says nothing about this one's). 1 = the engine's rule as documented.
    kv_capacity_factor: float = 1.0
    holdout: Holdout = field(default_factory=Holdout)
    provenance: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        value = self.frontend_latency_s
        if (isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value)
                or value < 0):
            raise ConfigError(f"calibration[{self.name}].frontend_latency_s={value!r}: must be a "
                              "finite number of seconds >= 0")
        kv = self.kv_capacity_factor
        if (isinstance(kv, bool) or not isinstance(kv, (int, float)) or not math.isfinite(kv)
                or not 0 < kv <= MAX_KV_FACTOR):
            raise ConfigError(f"calibration[{self.name}].kv_capacity_factor={kv!r}: must be a "
                              f"number in (0, {MAX_KV_FACTOR:g}]")
        if self.precision not in ("bf16", "fp8"):
            raise ConfigError(f"calibration[{self.name}].precision={self.precision!r}: allowed: bf16, fp8")
        if self.model_family not in FAMILIES:
            raise ConfigError(f"calibration[{self.name}].model_family={self.model_family!r}: "
                              f"allowed: {', '.join(FAMILIES)}")

    def to_yaml(self) -> str:
        body = {
            "name": self.name, "hardware": self.hardware, "engine": self.engine,
            "precision": self.precision, "model_family": self.model_family,
            "validation_source": self.validation_source,
            "on_mismatch": "error",
            "params": {k: _round(v) for k, v in dataclasses.asdict(self.params).items()},
            "frontend_latency_s": _round(self.frontend_latency_s),
            **({"kv_capacity_factor": _round(self.kv_capacity_factor)}
               if self.kv_capacity_factor != 1.0 else {}),
            "holdout": self.holdout.to_dict(),
            "provenance": self.provenance,
        }
        comment = (f"# Calibration profile {self.name}: {self.engine} on {self.hardware}, "
                   f"{self.precision}. Written by `hermes-sim calibrate`; see docs/validation.md.\n"
                   "# Select with `hermes-sim calibration=<name>`; composes with any dense decoder of the\n"
                   "# catalog on this hardware. on_mismatch: error | roofline | nearest (fall back, noted).\n")
        return HEADER + comment + yaml.safe_dump(_plain(body), sort_keys=False, width=100)


def _round(value: float) -> float:
    return float(f"{value:.6g}")


def _plain(obj: object) -> object:
    """YAML-safe copy (tuples -> lists, numpy scalars -> floats)."""
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if hasattr(obj, "item"):
        return obj.item()  # type: ignore[attr-defined]
    return obj


def params_from(node: dict, field_prefix: str) -> RooflineParams:
    known = RooflineParams.__dataclass_fields__
    unknown = sorted(set(node) - set(known))
    if unknown:
        raise ConfigError(f"{field_prefix}.params: unknown key(s) {unknown}; allowed: {sorted(known)}")
    values = {}
    for key, value in node.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{field_prefix}.params.{key}={value!r}: must be a number")
        # integer terms (cuda_graph_max_batch) stay whole numbers; a fraction is an error there
        whole = known[key].type in (int, "int") and float(value).is_integer()
        values[key] = int(value) if whole else float(value)
    try:
        return RooflineParams(**values)
    except ConfigError as err:
        raise ConfigError(f"{field_prefix}: {err}") from None


def from_mapping(data: dict, source: str) -> Profile:
    required = ("name", "hardware", "engine", "precision", "params")
    missing = [k for k in required if k not in data]
    if missing:
        raise ConfigError(f"calibration profile {source}: missing key(s) {missing}")
    return Profile(name=str(data["name"]), hardware=str(data["hardware"]), engine=str(data["engine"]),
                   precision=str(data["precision"]), model_family=str(data.get("model_family", "dense")),
                   validation_source=str(data.get("validation_source", "")),
                   params=params_from(dict(data["params"]), f"calibration[{data['name']}]"),
                   frontend_latency_s=data.get("frontend_latency_s", 0.0),
                   kv_capacity_factor=data.get("kv_capacity_factor", 1.0),
                   holdout=Holdout.from_dict(data.get("holdout") or {"every": 0}),
                   provenance=dict(data.get("provenance") or {}))


def kv_capacity_factor(node: object, applied: str) -> float:
    """The KV capacity factor of the profile in the ``cost_model.calibration`` node when that
    profile was applied to the pool by name (``applied`` is the pool's ``CostModelSpec.calibration``),
    else 1."""
    get = getattr(node, "get", None)
    if get is None or get("kv_capacity_factor") is None or str(get("name")) != applied:
        return 1.0
    return float(get("kv_capacity_factor"))


def load(name: str) -> Profile:
    allowed = profile_names()
    if name not in allowed:
        raise ConfigError(f"calibration={name!r}: unknown profile; allowed: none, auto, "
                          f"{', '.join(allowed)}")
    return load_path(catalog.path(GROUP, name))  # the user catalog's may shadow a shipped one


def load_path(path: Path) -> Profile:
    try:
        data = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as err:
        raise ConfigError(f"calibration profile {str(path)!r}: unreadable ({err})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"calibration profile {str(path)!r}: not a mapping")
    return from_mapping(data, str(path))


def profile_names() -> list[str]:
    return [n for n in catalog.options(GROUP) if n not in SPECIAL]


def all_profiles() -> list[Profile]:
    return [load(n) for n in profile_names()]
