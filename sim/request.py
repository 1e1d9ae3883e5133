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


class RouteMode(enum.Enum):
    WEIGHTED = "weighted"  # the classifier's verdict: target i with probability weight_i
    LENGTH = "length"  # rule: prompt <= threshold_tokens -> targets[0], else targets[1]
    CASCADE = "cascade"  # try targets[0]; escalate a fraction to the next target, and so on


@dataclass(frozen=True, slots=True, kw_only=True)
class RouteTarget:
    """A model a ROUTE stage may send a request to, and the pool that hosts it."""

    model: str
    pool: str
    weight: float = 1.0  # weighted: share of traffic; cascade: escalation fraction from here on


@dataclass(frozen=True, slots=True, kw_only=True)
class Stage:
    """One step of a request's plan: which kind of work and which pool serves it."""

    kind: StageKind
    pool: str
    params: tuple[tuple[str, float], ...] = ()  # stage-specific knobs, e.g. (("top_k", 5),)
    targets: tuple[RouteTarget, ...] = ()  # ROUTE stages only
    mode: RouteMode = RouteMode.WEIGHTED  # ROUTE stages only

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
        # pipeline state every request has (stage timing, prefix KV, best-of-N)
        "stage_enqueue_s", "stage_start_s", "last_token_s", "visits", "pinned",
        "prefix_id", "prefix_tokens", "cached_tokens", "samples", "join_context",
        "store_id", "store_tokens",  # the prefix to keep once computed, when not prefix_id
        "preempted_token_s",  # time of the last token before a preemption (-1 = none pending)
        "served_pool",  # the pool a ServiceRouter chose for the LLM stage ("" = the stage's own)
    )
    rich = False  # RichRequest: reasoning / routing / RAG state as well

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
        self.stage_enqueue_s = arrival_s
        self.stage_start_s = -1.0
        self.last_token_s = -1.0
        self.preempted_token_s = -1.0
        self.visits: list | None = None  # (kind, pool, enqueue_s, start_s, end_s) per stage
        self.pinned = False  # the next LLM stage must use self.replica (KV fetched there)
        self.served_pool = ""
        self.prefix_id = -1
        self.prefix_tokens = 0
        # a trace row's longer prefix that later requests look up (-1: keep prefix_id's); a
        # request may then store a prefix after a hit, or without having looked one up
        self.store_id = -1
        self.store_tokens = 0
        self.cached_tokens = 0  # prompt tokens whose KV is present: no compute, only blocks
        self.samples = 1  # decode sequences sharing the prompt KV (best-of-N)
        self.join_context = 0  # context when the samples forked (shared blocks below it)

    @property
    def stage(self) -> Stage:
        return self.plan[self.stage_index]


class RichRequest(Request):
    """A request whose plan routes, retrieves documents, reasons or scores: the extra state those
    stages keep. Plain requests skip it, which keeps the single-stage path as fast as before."""

    __slots__ = ("rounds_left", "round_output", "total_output", "base_prompt", "routed_pool",
                 "route_level", "docs", "doc_tokens", "answer_tokens", "gen_prompt",
                 "round_first_s", "answer_token_s")
    rich = True

    def __init__(self, id: int, arrival_s: float, prompt_tokens: int, output_tokens: int,
                 plan: tuple[Stage, ...], type_name: str = "default") -> None:
        super().__init__(id, arrival_s, prompt_tokens, output_tokens, plan, type_name)
        self.rounds_left = 0
        self.round_output = 0
        self.total_output = 0
        self.base_prompt = prompt_tokens
        self.routed_pool = ""
        self.route_level = 0
        self.docs = 0  # documents retrieved (RAG), each doc_tokens long
        self.doc_tokens = 0
        self.answer_tokens = output_tokens  # reasoning: the answer after the thinking
        self.gen_prompt = prompt_tokens  # prompt when generation began (reasoning restores it)
        self.round_first_s = -1.0  # first token of the current generation round
        self.answer_token_s = -1.0  # first token of the answer, after any thinking


@dataclass(slots=True)
class RequestBatch:
    """Arrays describing the requests a workload will emit (arrival order)."""

    arrival_s: object  # np.ndarray[float]
    prompt_tokens: object  # np.ndarray[int]
    output_tokens: object  # np.ndarray[int]
    type_names: list[str] = field(default_factory=list)
