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
    """Number formats of weights and KV cache.

    INT8 and INT4 are weight-only formats (W8A16, W4A16): weights are stored small and expanded to
    bf16 before the GEMM, on every device. NVFP4 and MXFP4 run on FP4 tensor cores where the
    hardware has them; elsewhere they run weight-only too (see ``sim.hardware.precision``)."""

    BF16 = "bf16"
    FP8 = "fp8"
    NVFP4 = "nvfp4"
    MXFP4 = "mxfp4"
    INT8 = "int8"
    INT4 = "int4"

    @property
    def bytes_per_element(self) -> float:
        return _BYTES_PER_ELEMENT[self]


# Storage per element including block scales: NVFP4 = 4-bit values + one FP8 scale per 16 values;
# MXFP4 = 4-bit values + one 8-bit (E8M0) scale per 32 (OCP MX spec); INT4 = GPTQ/AWQ-style
# group-128 bf16 scales; FP8/INT8 per-channel or per-tensor scales are negligible.
_BYTES_PER_ELEMENT = {DType.BF16: 2.0, DType.FP8: 1.0, DType.NVFP4: 0.5 + 1 / 16,
                      DType.MXFP4: 0.5 + 1 / 32, DType.INT8: 1.0, DType.INT4: 0.5 + 2 / 128}


class AttentionKind(enum.Enum):
    GQA = "gqa"  # multi-head / grouped-query / multi-query attention: K and V per KV head
    MLA = "mla"  # multi-head latent attention (DeepSeek-V2/V3): one compressed latent per token


@dataclass(frozen=True, slots=True, kw_only=True)
class HardwareSpec:
    name: str
    kind: DeviceKind = DeviceKind.GPU
    memory_bytes: float
    mem_bw_bytes_per_s: float
    bf16_flops_per_s: float
    fp8_flops_per_s: float | None = None  # None: no FP8 tensor cores (fp8 runs weight-only)
    fp4_flops_per_s: float | None = None  # None: no FP4 tensor cores (nvfp4/mxfp4 run weight-only)
    scaleup_bw_bytes_per_s: float  # per direction, device to device (NVLink, xGMI, ICI, PCIe)
    host_bw_bytes_per_s: float  # per direction, device to host (PCIe)
    num_cores: int | None = None  # CPUs only
    # Devices the scale-up link joins (an HGX board's 8, a GB200 NVL72 rack's 72); 0 = not
    # bounded (every device of a replica shares the scale-up link, as before the field existed).
    scaleup_domain_devices: int = 0
    # Per direction, device to a device in another scale-up domain (its NIC share; 0 = not given)
    scaleout_bw_bytes_per_s: float = 0.0
    # Devices joined point to point, each device's scale-up links split evenly among the others
    # (HGX H100 4-GPU: 18 NVLinks, 6 to each of 3 peers; no NVSwitch); 0 = switched, so any
    # group of devices gets the full per-device bandwidth (NVSwitch, ICI, a bridge pair).
    scaleup_mesh_devices: int = 0
    # Share of the datasheet tensor rate the part sustains under its power limit (a 350-400 W
    # PCIe card of the die a 700 W SXM module runs at the same clocks); 1 = the datasheet's.
    sustained_compute_fraction: float = 1.0

    def __post_init__(self) -> None:
        prefix = f"hardware[{self.name}]"
        for field in ("memory_bytes", "mem_bw_bytes_per_s", "bf16_flops_per_s",
                      "scaleup_bw_bytes_per_s", "host_bw_bytes_per_s"):
            require_positive(f"{prefix}.{field}", getattr(self, field))
        for field in ("fp8_flops_per_s", "fp4_flops_per_s"):
            if getattr(self, field) is not None:
                require_positive(f"{prefix}.{field}", getattr(self, field))
        domain = self.scaleup_domain_devices
        require(isinstance(domain, int) and not isinstance(domain, bool) and domain >= 0,
                f"{prefix}.scaleup_domain_devices", domain, "must be an integer >= 0 (0 = unbounded)")
        mesh = self.scaleup_mesh_devices
        require(isinstance(mesh, int) and not isinstance(mesh, bool) and (mesh == 0 or mesh >= 2),
                f"{prefix}.scaleup_mesh_devices", mesh, "must be 0 (switched) or an integer >= 2")
        fraction = self.sustained_compute_fraction
        require(isinstance(fraction, (int, float)) and 0 < fraction <= 1,
                f"{prefix}.sustained_compute_fraction", fraction, "must be in (0, 1]")
        require(isinstance(self.scaleout_bw_bytes_per_s, (int, float))
                and self.scaleout_bw_bytes_per_s >= 0, f"{prefix}.scaleout_bw_bytes_per_s",
                self.scaleout_bw_bytes_per_s, "must be >= 0 (0 = not given)")

    def group_bw_bytes_per_s(self, devices: int) -> float:
        """Per-device scale-up bandwidth when ``devices`` of one domain talk among themselves: on a
        point-to-point mesh a device reaches only the links to its group's other members."""
        mesh = self.scaleup_mesh_devices
        if mesh and 1 < devices < mesh:
            return self.scaleup_bw_bytes_per_s * (devices - 1) / (mesh - 1)
        return self.scaleup_bw_bytes_per_s

    def spans_domains(self, devices: int) -> bool:
        """Whether ``devices`` working together reach beyond one scale-up domain."""
        return bool(self.scaleup_domain_devices) and devices > self.scaleup_domain_devices

    def check_span(self, tp: int, pp: int) -> None:
        """A replica wider than the scale-up domain talks over the scale-out network, whose
        bandwidth the hardware entry must then give."""
        if self.spans_domains(tp * pp) and not self.scaleout_bw_bytes_per_s:
            raise ConfigError(
                f"tp={tp}: tp x pp = {tp * pp} devices span more than {self.name}'s scale-up "
                f"domain of {self.scaleup_domain_devices} devices, and its hardware entry gives no "
                f"scaleout_bw_gb_per_s; allowed: tp x pp <= {self.scaleup_domain_devices}, or add "
                "the scale-out (NIC) bandwidth per device to the entry")

    def native_flops_per_s(self, dtype: DType) -> float | None:
        """Tensor-core rate for GEMMs in ``dtype``; None if the device cannot compute in it."""
        if dtype is DType.BF16:
            return self.bf16_flops_per_s
        if dtype is DType.FP8:
            return self.fp8_flops_per_s
        if dtype in (DType.NVFP4, DType.MXFP4):
            return self.fp4_flops_per_s
        return None  # INT8/INT4 are weight-only formats

    def peak_flops_per_s(self, dtype: DType) -> float:
        """GEMM rate for ``dtype``: its tensor cores, else bf16 (weight-only execution)."""
        return self.native_flops_per_s(dtype) or self.bf16_flops_per_s

    def sustained_flops_per_s(self, dtype: DType) -> float:
        """``peak_flops_per_s`` under the part's power limit (``sustained_compute_fraction``)."""
        return self.peak_flops_per_s(dtype) * self.sustained_compute_fraction


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelSpec:
    """A transformer's shapes (as in its Hugging Face config.json).

    Dense GQA models need only the first block of fields. MLA models (DeepSeek-V3/R1) add the
    latent ranks; MoE models add experts. Layers are either dense (an MLP of
    ``intermediate_size``) or MoE (``num_experts`` routed experts of ``moe_intermediate_size``, of
    which each token uses ``experts_per_token``, plus ``num_shared_experts`` every token uses)."""

    name: str
    kind: ModelKind = ModelKind.DECODER
    num_layers: int
    hidden_size: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    intermediate_size: int  # dense layers' MLP; also each expert's when moe_intermediate_size=0
    vocab_size: int
    num_experts: int = 1
    experts_per_token: int = 1
    gated_mlp: bool = True
    tie_word_embeddings: bool = False
    max_context_tokens: int = 131072
    attention: AttentionKind = AttentionKind.GQA
    q_lora_rank: int = 0  # MLA: query compression rank (0 = queries are not compressed)
    kv_lora_rank: int = 0  # MLA: the latent a token's K and V are compressed to
    qk_nope_head_dim: int = 0  # MLA: per-head query/key dims without rotary embedding
    qk_rope_head_dim: int = 0  # MLA: per-head rotary dims (their key part is shared by all heads)
    v_head_dim: int = 0  # MLA: per-head value dims
    num_shared_experts: int = 0  # MoE: experts every token runs besides its routed ones
    moe_intermediate_size: int = 0  # MoE: each expert's MLP width (0 = intermediate_size)
    num_moe_layers: int = 0  # MoE: layers that are MoE (0 = all); the others are dense

    def __post_init__(self) -> None:
        prefix = f"model[{self.name}]"
        for field in ("num_layers", "hidden_size", "num_heads", "num_kv_heads", "head_dim",
                      "intermediate_size", "vocab_size", "num_experts", "experts_per_token",
                      "max_context_tokens"):
            value = getattr(self, field)
            require(isinstance(value, int) and value > 0, f"{prefix}.{field}", value,
                    "must be a positive integer")
        for field in ("q_lora_rank", "kv_lora_rank", "qk_nope_head_dim", "qk_rope_head_dim",
                      "v_head_dim", "num_shared_experts", "moe_intermediate_size", "num_moe_layers"):
            value = getattr(self, field)
            require(isinstance(value, int) and value >= 0, f"{prefix}.{field}", value,
                    "must be an integer >= 0")
        require(self.num_heads % self.num_kv_heads == 0, f"{prefix}.num_kv_heads",
                self.num_kv_heads, f"must divide num_heads={self.num_heads}")
        require(self.experts_per_token <= self.num_experts, f"{prefix}.experts_per_token",
                self.experts_per_token, f"must be <= num_experts={self.num_experts}")
        require(self.num_moe_layers <= self.num_layers, f"{prefix}.num_moe_layers",
                self.num_moe_layers, f"must be <= num_layers={self.num_layers}")
        if self.num_experts == 1:
            for field in ("num_shared_experts", "num_moe_layers"):
                require(getattr(self, field) == 0, f"{prefix}.{field}", getattr(self, field),
                        "must be 0 for a dense model (num_experts=1)")
        if self.attention is AttentionKind.MLA:
            for field in ("kv_lora_rank", "qk_nope_head_dim", "qk_rope_head_dim", "v_head_dim"):
                require(getattr(self, field) > 0, f"{prefix}.{field}", getattr(self, field),
                        "must be a positive integer for attention=mla")

    # --- layer mix ---------------------------------------------------------------------
    @property
    def is_moe(self) -> bool:
        return self.num_experts > 1

    @property
    def moe_layers(self) -> int:
        return (self.num_moe_layers or self.num_layers) if self.is_moe else 0

    @property
    def dense_layers(self) -> int:
        return self.num_layers - self.moe_layers

    # --- parameter counts (elements) -------------------------------------------------
    @property
    def kv_up_params_per_layer(self) -> int:
        """MLA: the latent -> per-head K (no-rope part) and V up-projection (``kv_b_proj``)."""
        if self.attention is not AttentionKind.MLA:
            return 0
        return self.kv_lora_rank * self.num_heads * (self.qk_nope_head_dim + self.v_head_dim)

    @property
    def attn_params_per_layer(self) -> int:
        if self.attention is AttentionKind.MLA:
            qk_head = self.qk_nope_head_dim + self.qk_rope_head_dim
            q = (self.hidden_size * self.q_lora_rank + self.q_lora_rank * self.num_heads * qk_head
                 if self.q_lora_rank else self.hidden_size * self.num_heads * qk_head)
            kv_down = self.hidden_size * (self.kv_lora_rank + self.qk_rope_head_dim)
            out = self.num_heads * self.v_head_dim * self.hidden_size
            return q + kv_down + self.kv_up_params_per_layer + out
        q = self.hidden_size * self.num_heads * self.head_dim
        kv = 2 * self.hidden_size * self.num_kv_heads * self.head_dim
        out = self.num_heads * self.head_dim * self.hidden_size
        return q + kv + out

    @property
    def _mlp_matrices(self) -> int:
        return 3 if self.gated_mlp else 2

    @property
    def expert_params(self) -> int:
        """One routed (or shared) expert's MLP."""
        return self._mlp_matrices * self.hidden_size * (self.moe_intermediate_size
                                                        or self.intermediate_size)

    @property
    def dense_mlp_params(self) -> int:
        return self._mlp_matrices * self.hidden_size * self.intermediate_size

    @property
    def router_params(self) -> int:
        """An MoE layer's gate: hidden -> one logit per routed expert."""
        return self.hidden_size * self.num_experts if self.is_moe else 0

    @property
    def mlp_params_total(self) -> int:
        """Every layer's MLP: dense MLPs, routed and shared experts, routers."""
        per_moe = (self.num_experts + self.num_shared_experts) * self.expert_params + self.router_params
        return self.dense_layers * self.dense_mlp_params + self.moe_layers * per_moe

    @property
    def embedding_params(self) -> int:
        tables = 1 if self.tie_word_embeddings or self.kind is not ModelKind.DECODER else 2
        return tables * self.vocab_size * self.hidden_size

    @property
    def num_params(self) -> int:
        return self.embedding_params + self.num_layers * self.attn_params_per_layer + self.mlp_params_total

    @property
    def active_params(self) -> int:
        """Parameters one token uses (MoE: its routed experts and the shared ones)."""
        if not self.is_moe:
            return self.num_params
        per_moe = ((self.experts_per_token + self.num_shared_experts) * self.expert_params
                   + self.router_params)
        return (self.embedding_params + self.num_layers * self.attn_params_per_layer
                + self.dense_layers * self.dense_mlp_params + self.moe_layers * per_moe)

    def kv_bytes_per_layer_per_token(self, kv_dtype: DType) -> float:
        """One layer's cache for one token (unsharded): K and V per KV head, or MLA's latent."""
        if self.kind is not ModelKind.DECODER:
            return 0.0
        if self.attention is AttentionKind.MLA:
            return (self.kv_lora_rank + self.qk_rope_head_dim) * kv_dtype.bytes_per_element
        return 2.0 * self.num_kv_heads * self.head_dim * kv_dtype.bytes_per_element

    def kv_bytes_per_token(self, kv_dtype: DType) -> float:
        """Bytes of K and V cache one token occupies across all layers (whole model, unsharded)."""
        return self.num_layers * self.kv_bytes_per_layer_per_token(kv_dtype)

    def weight_bytes(self, weight_dtype: DType) -> float:
        return self.num_params * weight_dtype.bytes_per_element


def _divisors(n: int, limit: int = 64) -> list[int]:
    return [d for d in range(1, min(n, limit) + 1) if n % d == 0]


def check_parallelism(model: ModelSpec, tp: int, pp: int, ep: int = 1,
                      attention_dp: bool = False, hardware: HardwareSpec | None = None) -> None:
    """A replica is ``pp`` stages of ``tp`` devices. Attention is split over the ``tp`` devices by
    heads (tensor parallel) or, with ``attention_dp``, by sequences (data parallel: "DEP" with
    ``ep = tp``); MoE experts are split over ``ep`` groups of ``tp / ep`` devices each
    (TensorRT-LLM's tp/ep/attention-DP, moe_tp = tp / ep). With ``hardware``, a replica wider
    than its scale-up domain needs the scale-out bandwidth (``HardwareSpec.check_span``)."""
    require(isinstance(tp, int) and tp >= 1, "tp", tp, "must be an integer >= 1")
    require(isinstance(pp, int) and pp >= 1, "pp", pp, "must be an integer >= 1")
    require(isinstance(ep, int) and ep >= 1, "ep", ep, "must be an integer >= 1")
    if ep > 1 and not model.is_moe:
        raise ConfigError(f"ep={ep}: {model.name} is a dense model (no experts); use ep=1")
    if tp % ep != 0:
        raise ConfigError(f"ep={ep}: must divide tp={tp} (experts are split over ep groups of "
                          f"tp/ep devices); allowed: {_divisors(tp)}")
    # Wide EP under attention-DP (EP72 for 256 experts) rounds each group up to whole expert
    # slots; the spare slots hold redundant copies of hot experts, as EPLB places them.
    if model.num_experts % ep != 0 and not (attention_dp and ep <= model.num_experts):
        raise ConfigError(f"ep={ep}: must divide {model.name}'s num_experts={model.num_experts} "
                          f"(allowed: {[d for d in _divisors(model.num_experts) if tp % d == 0]}; "
                          "with attention_dp, any ep up to num_experts)")
    if attention_dp:
        # heads need not divide tp: each rank attends its own sequences with all heads
        if not model.is_moe:
            raise ConfigError(f"attention_dp=true: {model.name} is a dense model; data-parallel "
                              "attention pairs with expert parallelism (use more tp=1 replicas)")
        if tp < 2:
            raise ConfigError(f"attention_dp=true: needs tp >= 2 attention-DP ranks (experts split "
                              f"over them in ep groups); got tp={tp}")
    elif model.num_heads % tp != 0:
        raise ConfigError(f"tp={tp}: must divide {model.name}'s num_heads={model.num_heads} "
                          f"(allowed: {_divisors(model.num_heads)})")
    elif (model.attention is AttentionKind.GQA and tp > model.num_kv_heads
          and tp % model.num_kv_heads != 0):
        raise ConfigError(f"tp={tp}: must be a multiple of {model.name}'s num_kv_heads="
                          f"{model.num_kv_heads} when larger than it")
    if model.num_layers % pp != 0:
        raise ConfigError(f"pp={pp}: must divide {model.name}'s num_layers={model.num_layers}")
    if hardware is not None:
        hardware.check_span(tp, pp)
