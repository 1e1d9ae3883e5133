"""Which number formats a replica really computes in, and what it says about it.

A weight format runs natively where the device has tensor cores for it (FP8 on Hopper, Ada,
Blackwell, CDNA3+; FP4 on Blackwell and CDNA4). Elsewhere the engine keeps the weights small in
memory and expands them to bf16 inside the GEMM kernel (vLLM's Marlin kernels do exactly this for
FP8 and FP4 on Ampere/Hopper): memory is saved, compute runs at bf16 speed. INT8/INT4 are
weight-only formats everywhere. ``fallback='error'`` rejects a format the device cannot compute
natively instead. The plan's ``notes`` go into every result JSON, so no fallback is silent.
"""

from __future__ import annotations

from dataclasses import dataclass

from sim.errors import ConfigError
from sim.hardware.specs import DType, HardwareSpec

KV_DTYPES = (DType.BF16, DType.FP8)
FALLBACKS = ("weight_only", "error")
_WEIGHT_ONLY = {DType.INT8: "W8A16", DType.INT4: "W4A16", DType.FP8: "W8A16",
                DType.NVFP4: "W4A16", DType.MXFP4: "W4A16"}


@dataclass(frozen=True, slots=True)
class PrecisionPlan:
    weight_dtype: DType  # how weights are stored (bytes per parameter)
    gemm_dtype: DType  # the tensor-core format weight GEMMs run at
    kv_dtype: DType  # how the KV cache is stored
    attention_dtype: DType  # the format attention's matmuls run at
    notes: tuple[str, ...] = ()

    @property
    def weight_only(self) -> bool:
        return self.gemm_dtype is not self.weight_dtype

    def summary(self) -> dict:
        return {"weights": self.weight_dtype.value, "gemm_compute": self.gemm_dtype.value,
                "kv_cache": self.kv_dtype.value, "attention_compute": self.attention_dtype.value,
                "weight_only": self.weight_only, "notes": list(self.notes)}


def plan_precision(hardware: HardwareSpec, weight_dtype: DType, kv_dtype: DType, *,
                   fallback: str = "weight_only", field: str = "cluster") -> PrecisionPlan:
    if fallback not in FALLBACKS:
        raise ConfigError(f"{field}.precision_fallback={fallback!r}: allowed: {', '.join(FALLBACKS)}")
    if kv_dtype not in KV_DTYPES:
        raise ConfigError(f"{field}.kv_dtype={kv_dtype.value!r}: allowed: "
                          f"{', '.join(d.value for d in KV_DTYPES)} (the KV cache is stored in bf16 or fp8)")
    notes = []
    gemm = weight_dtype
    if hardware.native_flops_per_s(weight_dtype) is None:
        scheme = _WEIGHT_ONLY[weight_dtype]
        native = weight_dtype not in (DType.INT8, DType.INT4)
        if native and fallback == "error":
            raise ConfigError(
                f"{field}.weight_dtype={weight_dtype.value!r}: {hardware.name} has no "
                f"{'FP8' if weight_dtype is DType.FP8 else 'FP4'} tensor cores; use bf16, int8/int4 "
                f"(weight-only), or {field}.precision_fallback=weight_only to run it as {scheme}")
        gemm = DType.BF16
        why = (f"{hardware.name} has no {'FP8' if weight_dtype is DType.FP8 else 'FP4'} tensor cores"
               if native else "a weight-only format")
        notes.append(f"weight_dtype={weight_dtype.value} runs weight-only ({scheme}: {why}): weights "
                     f"take {weight_dtype.bytes_per_element:g} bytes per parameter, GEMMs run at bf16 speed")
    attention = kv_dtype
    if hardware.native_flops_per_s(kv_dtype) is None:
        attention = DType.BF16
        notes.append(f"kv_dtype={kv_dtype.value}: the cache is stored in {kv_dtype.value} (half the "
                     f"bytes of bf16); {hardware.name} has no FP8 tensor cores, attention computes in bf16")
    return PrecisionPlan(weight_dtype=weight_dtype, gemm_dtype=gemm, kv_dtype=kv_dtype,
                         attention_dtype=attention, notes=tuple(notes))
