"""Device and model specifications: the physical facts the cost models read.

Specs are plain frozen records; catalogs (YAML in ``conf/``) are turned into them by
``hermes_opt.compose`` so this package never reads files.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from sim.errors import ConfigError, require, require_positive


class DeviceKind(enum.Enum):
    GPU = "gpu"
    ACCELERATOR = "accelerator"
    TPU = "tpu"
    CPU = "cpu"


class ModelKind(enum.Enum):
    DECODER = "decoder"
    EMBEDDING = "embedding"
    RERANKER = "reranker"


class DType(enum.Enum):
    BF16 = "bf16"
    FP8 = "fp8"

    @property
    def bytes_per_element(self) -> float:
        return 2.0 if self is DType.BF16 else 1.0


@dataclass(frozen=True, slots=True, kw_only=True)
class HardwareSpec:
    name: str
    kind: DeviceKind = DeviceKind.GPU
    memory_bytes: float
    mem_bw_bytes_per_s: float
    bf16_flops_per_s: float
    fp8_flops_per_s: float | None = None  # None: no FP8 units, fp8 runs at bf16 speed
    scaleup_bw_bytes_per_s: float  # per direction, device to device (NVLink, xGMI, ICI, PCIe)
    host_bw_bytes_per_s: float  # per direction, device to host (PCIe)
    num_cores: int | None = None  # CPUs only

    def __post_init__(self) -> None:
        prefix = f"hardware[{self.name}]"
        for field in ("memory_bytes", "mem_bw_bytes_per_s", "bf16_flops_per_s",
                      "scaleup_bw_bytes_per_s", "host_bw_bytes_per_s"):
            require_positive(f"{prefix}.{field}", getattr(self, field))
        if self.fp8_flops_per_s is not None:
            require_positive(f"{prefix}.fp8_flops_per_s", self.fp8_flops_per_s)

    def peak_flops_per_s(self, dtype: DType) -> float:
        if dtype is DType.FP8 and self.fp8_flops_per_s:
            return self.fp8_flops_per_s
        return self.bf16_flops_per_s


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelSpec:
    name: str
    kind: ModelKind = ModelKind.DECODER
    num_layers: int
    hidden_size: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    intermediate_size: int  # per expert for MoE
    vocab_size: int
    num_experts: int = 1
    experts_per_token: int = 1
    gated_mlp: bool = True
    tie_word_embeddings: bool = False
    max_context_tokens: int = 131072

    def __post_init__(self) -> None:
        prefix = f"model[{self.name}]"
        for field in ("num_layers", "hidden_size", "num_heads", "num_kv_heads", "head_dim",
                      "intermediate_size", "vocab_size", "num_experts", "experts_per_token",
                      "max_context_tokens"):
            value = getattr(self, field)
            require(isinstance(value, int) and value > 0, f"{prefix}.{field}", value,
                    "must be a positive integer")
        require(self.num_heads % self.num_kv_heads == 0, f"{prefix}.num_kv_heads",
                self.num_kv_heads, f"must divide num_heads={self.num_heads}")
        require(self.experts_per_token <= self.num_experts, f"{prefix}.experts_per_token",
                self.experts_per_token, f"must be <= num_experts={self.num_experts}")

    # --- parameter counts (elements) -------------------------------------------------
    @property
    def attn_params_per_layer(self) -> int:
        q = self.hidden_size * self.num_heads * self.head_dim
        kv = 2 * self.hidden_size * self.num_kv_heads * self.head_dim
        out = self.num_heads * self.head_dim * self.hidden_size
        return q + kv + out

    @property
    def expert_params(self) -> int:
        matrices = 3 if self.gated_mlp else 2
        return matrices * self.hidden_size * self.intermediate_size

    @property
    def mlp_params_per_layer(self) -> int:
        return self.num_experts * self.expert_params

    @property
    def active_mlp_params_per_layer(self) -> int:
        return self.experts_per_token * self.expert_params

    @property
    def embedding_params(self) -> int:
        tables = 1 if self.tie_word_embeddings or self.kind is not ModelKind.DECODER else 2
        return tables * self.vocab_size * self.hidden_size

    @property
    def num_params(self) -> int:
        return self.embedding_params + self.num_layers * (
            self.attn_params_per_layer + self.mlp_params_per_layer)

    def kv_bytes_per_token(self, kv_dtype: DType) -> float:
        """Bytes of K and V cache one token occupies across all layers (whole model, unsharded)."""
        if self.kind is not ModelKind.DECODER:
            return 0.0
        return 2.0 * self.num_layers * self.num_kv_heads * self.head_dim * kv_dtype.bytes_per_element

    def weight_bytes(self, weight_dtype: DType) -> float:
        return self.num_params * weight_dtype.bytes_per_element


def check_parallelism(model: ModelSpec, tp: int, pp: int) -> None:
    """TP must divide attention heads (KV heads are replicated when tp > num_kv_heads)."""
    require(isinstance(tp, int) and tp >= 1, "tp", tp, "must be an integer >= 1")
    require(isinstance(pp, int) and pp >= 1, "pp", pp, "must be an integer >= 1")
    if model.num_heads % tp != 0:
        raise ConfigError(f"tp={tp}: must divide {model.name}'s num_heads={model.num_heads} "
                          f"(allowed: {[d for d in range(1, model.num_heads + 1) if model.num_heads % d == 0 and d <= 64]})")
    if tp > model.num_kv_heads and tp % model.num_kv_heads != 0:
        raise ConfigError(f"tp={tp}: must be a multiple of {model.name}'s num_kv_heads="
                          f"{model.num_kv_heads} when larger than it")
    if model.num_layers % pp != 0:
        raise ConfigError(f"pp={pp}: must divide {model.name}'s num_layers={model.num_layers}")
