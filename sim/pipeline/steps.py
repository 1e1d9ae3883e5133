"""Per request type, what each stage of its plan needs at run time, looked up once.

Moving a request from one stage to the next is the simulator's most frequent act after the event
loop itself (several times per request in a pipeline). ``plan_steps`` resolves per stage what
``sim.simulation`` would otherwise find again on every visit: the service pool serving it, the
documents a vector search appends or a rerank keeps (its knobs), and, once the first request has
visited it, the stage's visit code (the collector's small integer per (type, stage, pool)).
"""

from __future__ import annotations

from sim.pipeline import routing
from sim.pipeline.rag import rerank_keep, search_results
from sim.request import Stage, StageKind

# What finishing a service stage does to the request besides moving it on
EFFECT_NONE, EFFECT_SEARCH, EFFECT_RERANK, EFFECT_ROUTE = 0, 1, 2, 3
# Stages served by an LLM pool (replicas, KV store or hand-off), not by a ServicePool
LLM_KINDS = (StageKind.GENERATE, StageKind.PREFILL, StageKind.DECODE, StageKind.KV_RETRIEVAL)


class StageStep:
    """One stage of one request type's plan."""

    __slots__ = ("stage", "kind", "pool", "service", "effect", "docs", "doc_tokens", "keep",
                 "code")

    def __init__(self, stage: Stage, services: dict) -> None:
        self.stage, self.kind, self.pool = stage, stage.kind, stage.pool
        # the ServicePool taking the request (None: an LLM stage, handled by the simulation)
        self.service = None if stage.kind in LLM_KINDS else services.get(stage.pool)
        self.effect = {StageKind.VECTOR_SEARCH: EFFECT_SEARCH, StageKind.RERANK: EFFECT_RERANK,
                       StageKind.ROUTE: EFFECT_ROUTE}.get(stage.kind, EFFECT_NONE)
        self.docs = self.doc_tokens = self.keep = 0
        if self.effect == EFFECT_SEARCH:
            self.docs, self.doc_tokens = search_results(stage)
        elif self.effect == EFFECT_RERANK:
            self.keep = rerank_keep(stage)
        self.code = -1  # the visit code, set at the first visit (codes number in visit order)


def plan_steps(request_types, services: dict) -> dict[str, list[StageStep]]:
    """Request type name -> one ``StageStep`` per stage of its plan."""
    return {rt.name: [StageStep(stage, services) for stage in rt.plan] for rt in request_types}


def apply_effect(step: StageStep, req, route_rng: dict) -> None:
    """What a finished vector search (documents appended to the prompt), rerank (only the top
    ``keep`` stay) or route stage (the generation's pool) does to ``req``."""
    effect = step.effect
    if effect == EFFECT_SEARCH:
        req.docs = step.docs
        req.doc_tokens = step.doc_tokens
        req.prompt_tokens += req.docs * req.doc_tokens
    elif effect == EFFECT_RERANK:
        keep = min(req.docs, step.keep)
        req.prompt_tokens -= (req.docs - keep) * req.doc_tokens
        req.docs = keep
    elif effect == EFFECT_ROUTE:
        routing.decide(step.stage, req, route_rng[req.type_name])
