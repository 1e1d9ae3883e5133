"""YAML values -> typed simulator values: numbers, flags, enums, number formats, and the catalog's
hardware and model entries. Every bad value is one ConfigError naming its field."""

from __future__ import annotations

import dataclasses
import enum
import math
from typing import Any, TypeVar

from omegaconf import DictConfig

from hermes_opt.compose import catalog
from sim.errors import ConfigError
from sim.hardware.specs import AttentionKind, DeviceKind, DType, HardwareSpec, ModelKind, ModelSpec

E = TypeVar("E", bound=enum.Enum)
GB = 1e9


def enum_value(cls: type[E], value: Any, field: str) -> E:
    try:
        return cls(value)
    except ValueError:
        allowed = ", ".join(m.value for m in cls)
        raise ConfigError(f"{field}={value!r}: allowed: {allowed}") from None


def number(node: Any, key: str, field: str, *, integer: bool = False, default: Any = None,
           allow_inf: bool = False) -> Any:
    """A number from YAML: NaN is never one; infinity only where it means "no limit"
    (``allow_inf``, e.g. a per-type SLO of ``.inf``)."""
    value = node.get(key, default) if node is not None else default
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{field}.{key}={value!r}: must be a number")
    if math.isnan(value) or (math.isinf(value) and not (allow_inf and value > 0)):
        raise ConfigError(f"{field}.{key}={value!r}: must be a finite number"
                          + (" (or .inf: no target)" if allow_inf else ""))
    if integer:
        if float(value) != int(value):
            raise ConfigError(f"{field}.{key}={value!r}: must be a whole number")
        return int(value)
    return float(value)


def spec_default(spec: type, name: str) -> Any:
    """A simulator spec's own default for one of its fields, as YAML writes it (enums as their
    value). Defaults live once, in the spec: composition never repeats them, and the config
    groups either state the same value (so ``--help`` lists the key) or their own choice
    (tests/compose/test_defaults.py)."""
    value = spec.__dataclass_fields__[name].default
    if value is dataclasses.MISSING:
        raise KeyError(f"{spec.__name__}.{name} has no default")
    return getattr(value, "value", value)


def spec_number(spec: type, node: Any, key: str, field: str, *, integer: bool = False) -> Any:
    """``number`` with the spec's default for a key the YAML leaves out."""
    return number(node, key, field, integer=integer, default=spec_default(spec, key))


def flag(node: Any, key: str, field: str) -> bool:
    value = node.get(key, False) if node is not None else False
    if not isinstance(value, bool):
        raise ConfigError(f"{field}.{key}={value!r}: must be true or false")
    return value


# Names engines and checkpoints use for the weight-only formats.
DTYPE_ALIASES = {"w8a16": "int8", "w4a16": "int4", "fp16": "bf16", "fp8_e4m3": "fp8"}


def dtype_value(value: Any, field: str) -> DType:
    text = str(value).lower() if isinstance(value, str) else value
    return enum_value(DType, DTYPE_ALIASES.get(text, text), field)


# --- catalog entries ----------------------------------------------------------------------
def _memory_bytes(node: DictConfig, field: str) -> float:
    """Device memory as the engine sees it: the driver's total (``memory_gib``: HBM labels are
    binary, an "80 GB" H100 reports 79.6 GiB = 85.5e9 bytes) where the catalog knows it, else the
    vendor label in decimal GB."""
    gib = number(node, "memory_gib", field)
    return gib * 2**30 if gib else number(node, "memory_gb", field) * GB


def hardware_spec(node: DictConfig) -> HardwareSpec:
    field = f"hardware[{node.get('name')}]"
    fp8 = number(node, "fp8_dense_tflops", field)
    fp4 = number(node, "fp4_dense_tflops", field)
    cores = number(node, "num_cores", field, integer=True)
    return HardwareSpec(
        name=str(node.name), kind=enum_value(DeviceKind, node.kind, f"{field}.kind"),
        memory_bytes=_memory_bytes(node, field),
        mem_bw_bytes_per_s=number(node, "mem_bw_gb_per_s", field) * GB,
        bf16_flops_per_s=number(node, "bf16_dense_tflops", field) * 1e12,
        fp8_flops_per_s=fp8 * 1e12 if fp8 else None,
        fp4_flops_per_s=fp4 * 1e12 if fp4 else None,
        scaleup_bw_bytes_per_s=(number(node, "scaleup_bw_gb_per_s", field)
                                or number(node, "host_bw_gb_per_s", field)) * GB,
        host_bw_bytes_per_s=number(node, "host_bw_gb_per_s", field) * GB,
        num_cores=cores,
        scaleup_domain_devices=number(node, "scaleup_domain_devices", field, integer=True,
                                      default=0),
        scaleout_bw_bytes_per_s=number(node, "scaleout_bw_gb_per_s", field, default=0.0) * GB,
        scaleup_mesh_devices=number(node, "scaleup_mesh_devices", field, integer=True, default=0),
        sustained_compute_fraction=sustained_compute_fraction(node, field))


def sustained_compute_fraction(node: DictConfig, field: str) -> float:
    """Share of the datasheet tensor rate a power-capped part sustains.

    A PCIe card of a die that an SXM module also carries (H100 NVL at 400 W, H100 PCIe at 350 W,
    both GH100 like the 700 W H100 SXM) runs its GEMMs at the clock its power allows: the
    ``power_reference`` part's FLOPs per watt at the card's own TDP, capped at the card's
    datasheet peak: ``min(1, (tdp / peak) / (tdp_ref / peak_ref))``. The datasheet peak is a
    boost-clock figure these cards reach only in light, memory-bound steps; MLPerf v4.1 measures
    H100 NVL systems at 0.55-0.72x H100 SXM per GPU where datasheets give 0.84x the FLOPs and
    1.16x the bandwidth. An explicit ``sustained_compute_fraction`` (a user's own measurement)
    wins; neither key: 1."""
    explicit = number(node, "sustained_compute_fraction", field)
    if explicit is not None:
        return float(explicit)  # HardwareSpec checks the range, naming the field
    ref_name = node.get("power_reference")
    if ref_name is None:
        return 1.0
    ref = catalog.entry("hardware", str(ref_name), f"{field}.power_reference")
    tdp, ref_tdp = number(node, "tdp_w", field), number(ref, "tdp_w", f"{field}.power_reference")
    if not tdp or not ref_tdp:
        raise ConfigError(f"{field}.power_reference={ref_name!r}: needs tdp_w on both entries "
                          "(the fraction is the reference's FLOPs per watt at this part's TDP)")
    peak = number(node, "bf16_dense_tflops", field)
    ref_peak = number(ref, "bf16_dense_tflops", f"{field}.power_reference")
    return min(1.0, (tdp / peak) / (ref_tdp / ref_peak))


MODEL_OPTIONAL_INTS = ("q_lora_rank", "kv_lora_rank", "qk_nope_head_dim", "qk_rope_head_dim",
                       "v_head_dim", "num_shared_experts", "moe_intermediate_size", "num_moe_layers")


def model_spec(node: DictConfig) -> ModelSpec:
    field = f"model[{node.get('name')}]"
    ints = {key: number(node, key, field, integer=True) for key in (
        "num_layers", "hidden_size", "num_heads", "num_kv_heads", "head_dim", "intermediate_size",
        "vocab_size", "num_experts", "experts_per_token", "max_context_tokens")}
    ints.update({key: number(node, key, field, integer=True, default=0) for key in MODEL_OPTIONAL_INTS})
    return ModelSpec(name=str(node.name), kind=enum_value(ModelKind, node.kind, f"{field}.kind"),
                     attention=enum_value(AttentionKind, node.get("attention", "gqa"),
                                          f"{field}.attention"),
                     gated_mlp=bool(node.get("gated_mlp", True)),
                     tie_word_embeddings=bool(node.get("tie_word_embeddings", False)), **ints)
