"""Requests: an ordered plan of stages plus the runtime state the stages fill in."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class StageKind(enum.Enum):
    """Everything a request may pass through. Each kind is served by a pool of its role."""

    PREPROCESS = "preprocess"  # tokenization, guardrails on CPU hosts
    ROUTE = "route"  # model routing: rule or small classifier
    EMBED = "embed"  # RAG query embedding
    VECTOR_SEARCH = "vector_search"  # RAG retrieval
    RERANK = "rerank"  # RAG cross-encoder rerank
    KV_RETRIEVAL = "kv_retrieval"  # fetch prefix KV from memory tiers
    GENERATE = "generate"  # prefill + decode on one (colocated) LLM pool
    PREFILL = "prefill"  # disaggregated prefill
    DECODE = "decode"  # disaggregated decode
    REWARD = "reward"  # reward-model scoring
    POSTPROCESS = "postprocess"  # detokenization, output guardrails


@dataclass(frozen=True, slots=True, kw_only=True)
class Stage:
    """One step of a request's plan: which kind of work and which pool serves it."""

    kind: StageKind
    pool: str
    params: tuple[tuple[str, float], ...] = ()  # stage-specific knobs, e.g. (("top_k", 5),)

    def param(self, name: str, default: float) -> float:
        for key, value in self.params:
            if key == name:
                return value
        return default


class DropReason(enum.Enum):
    PROMPT_EXCEEDS_KV_CAPACITY = "prompt_exceeds_kv_capacity"
    PROMPT_EXCEEDS_BATCH_TOKENS = "prompt_exceeds_max_batched_tokens"
    CONTEXT_EXCEEDS_MODEL = "context_exceeds_model_max_context"


class Request:
    """Runtime state of one request. Plain slots class: millions are created per study."""

    __slots__ = (
        "id", "type_name", "arrival_s", "prompt_tokens", "output_tokens", "plan", "stage_index",
        # generation state (owned by the replica serving the GENERATE/PREFILL/DECODE stage)
        "replica", "prefill_target", "computed", "generated", "context", "gen_base", "step_base",
        "phase", "admit_seq", "preemptions",
        # timestamps (seconds); -1.0 = not yet
        "gen_enqueue_s", "gen_start_s", "first_token_s", "finish_s",
        "drop_reason",
    )

    def __init__(self, id: int, arrival_s: float, prompt_tokens: int, output_tokens: int,
                 plan: tuple[Stage, ...], type_name: str = "default") -> None:
        self.id = id
        self.type_name = type_name
        self.arrival_s = arrival_s
        self.prompt_tokens = prompt_tokens
        self.output_tokens = output_tokens
        self.plan = plan
        self.stage_index = 0
        self.replica = -1
        self.prefill_target = prompt_tokens
        self.computed = 0
        self.generated = 0
        self.context = 0
        self.gen_base = 0
        self.step_base = 0
        self.phase = 0
        self.admit_seq = 0
        self.preemptions = 0
        self.gen_enqueue_s = -1.0
        self.gen_start_s = -1.0
        self.first_token_s = -1.0
        self.finish_s = -1.0
        self.drop_reason: DropReason | None = None

    @property
    def stage(self) -> Stage:
        return self.plan[self.stage_index]


@dataclass(slots=True)
class RequestBatch:
    """Arrays describing the requests a workload will emit (arrival order)."""

    arrival_s: "object"  # np.ndarray[float]
    prompt_tokens: "object"  # np.ndarray[int]
    output_tokens: "object"  # np.ndarray[int]
    type_names: list[str] = field(default_factory=list)
