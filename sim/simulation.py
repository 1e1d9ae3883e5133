"""``simulate(config, seed) -> SimResult``: the one entry point of the library.

``_Run`` wires the workload to the pools and moves each request along its plan: LLM stages go to
``LLMPool`` replicas, KV retrieval to the pool's tiered store, disaggregated hand-offs over a
link, every other stage to a ``ServicePool`` (CPU cores, encoders, vector search). Each finished
stage is recorded as a visit (enqueue, start, end) for the per-stage breakdown.
"""

from __future__ import annotations

from functools import partial

from sim.config import PoolSpec, SimConfig
from sim.engine import PRIORITY_ARRIVAL, Engine
from sim.kvstore.specs import TierKind
from sim.kvstore.store import KVStore
from sim.metrics.collector import Collector
from sim.metrics.summary import summarize
from sim.pipeline import colocation, reasoning, routing
from sim.pipeline.deployment import service_groups
from sim.pipeline.flow import StageFlow
from sim.pipeline.pools import handoff_links, service_pool
from sim.pipeline.service import ServicePool
from sim.pipeline.steps import plan_steps
from sim.pipeline.workload import draw_pipeline
from sim.random_streams import stream
from sim.request import Request, RichRequest, StageKind
from sim.results import SimResult, request_row, request_rows
from sim.roles import LLM_ROLES, ROUTED_POOL
from sim.scheduling.pool import LLMPool
from sim.scheduling.service_router import ServiceRouter
from sim.workload.generator import DrawnChunks, WorkloadStream
from sim.workload.spec import ArrivalKind

GENERATE, PREFILL, DECODE = StageKind.GENERATE, StageKind.PREFILL, StageKind.DECODE
KV_RETRIEVAL = StageKind.KV_RETRIEVAL
ARRIVAL_CHUNK = 4096  # requests whose draws are turned into lists at a time


class _Run(StageFlow):
    """Wires workload, pools and collector together for one simulation."""

    def __init__(self, config: SimConfig, seed: int, *, keep_requests: bool = True) -> None:
        self.config, self.types = config, config.workload.request_types
        self.engine = Engine()
        self.collector = Collector(record_trace=config.record_trace,
                                   max_spans=config.max_trace_spans, keep_requests=keep_requests,
                                   type_index={rt.name: i for i, rt in enumerate(self.types)},
                                   slos=[config.slo.overridden(rt.slo) for rt in self.types])
        self.record_visits = config.record_requests
        self.visit_keys = self.collector.visit_keys  # code -> (type, kind value, pool)
        self.visit_index: dict[tuple, int] = {}  # (type, stage index or pseudo kind, pool) -> code
        self.visit_codes = self.collector.visit_codes
        self.visit_times = self.collector.visit_times
        store_specs = {s.pool: s for s in config.kv_stores}
        self.pools: dict[str, LLMPool] = {}  # LLM pools (replicas with paged KV)
        self.services: dict[str, ServicePool] = {}  # every other pool
        self.stores: dict[str, KVStore] = {}
        # plain workloads are drawn a chunk at a time (WorkloadStream); pipeline extras whole
        draws = (draw_pipeline(config.workload, seed) if any(v is not None for rt in self.types
                 for v in (rt.arrival, rt.prefix, rt.reasoning)) else None)
        self.clients = draws.client if draws else None
        for spec in config.pools:
            if spec.role in LLM_ROLES:
                self._llm_pool(spec, store_specs.get(spec.name), seed)
            else:
                self.services[spec.name] = self._service_pool(spec)
        self._join_services()
        for guest, host in colocation.check(config.pools).items():  # stages on the LLM's GPUs
            self.services[guest].share = self.pools[host].replicas
        self.source = DrawnChunks(draws.drawn) if draws else WorkloadStream(config.workload, seed)
        self.prefix_id, self.prefix_tokens, self.thinking, self.store_id, self.store_tokens = (
            (draws.prefix_id, draws.prefix_tokens, draws.thinking, draws.store_id,
             draws.store_tokens) if draws else (None,) * 5)
        self.steps = plan_steps(config.workload.request_types, self.services)
        self.route_rng = {rt.name: stream(seed, f"route.{rt.name}") for rt in self.types}
        self.route_stage = {rt.name: next((s for s in rt.plan if s.kind is StageKind.ROUTE), None)
                            for rt in self.types}
        self.type_by_name = {rt.name: rt for rt in self.types}
        # generation needs no store bookkeeping, rounds or cascade for these types
        self.plain_generate = {rt.name: rt.reasoning is None and self.route_stage[rt.name] is None
                               and not any(s.kind is KV_RETRIEVAL for s in rt.plan)
                               for rt in self.types}
        self.closed_loop = config.workload.arrival.kind is ArrivalKind.CLOSED_LOOP
        # plain types need no RichRequest state: only tokenize / generate / hand-off stages
        simple = {StageKind.PREPROCESS, StageKind.POSTPROCESS, GENERATE, PREFILL, DECODE}
        self.plain = {rt.name: rt.reasoning is None and all(
            s.kind in simple and s.pool != ROUTED_POOL for s in rt.plan) for rt in self.types}
        self.handoffs = handoff_links(self.engine, config, self.collector)
        # Serving front-end latency per LLM pool (only pools that have one; default none).
        self.frontend_s = {s.name: s.cost_model.frontend_latency_s for s in config.pools
                           if s.role in LLM_ROLES and s.cost_model.frontend_latency_s > 0}
        self.next_index = 0
        self.num_requests = self.source.num_requests
        self.arrival = config.workload.arrival

    @property
    def drawn(self):  # the whole workload's draws, for tests and tools (a run reads source)
        return self.source.whole()

    # --- construction -------------------------------------------------------------------
    def _llm_pool(self, spec: PoolSpec, store_spec, seed: int) -> None:
        store = None
        hbm = 0.0
        if store_spec is not None:
            store = KVStore(self.engine, store_spec, spec.num_replicas,
                            spec.model.kv_bytes_per_token(spec.kv_dtype),
                            stream(seed, f"kv_store.{spec.name}"), self.collector.spans,
                            self.config.max_trace_spans, devices_per_replica=spec.tp * spec.pp,
                            clients=self.clients)
            self.stores[spec.name] = store
            self.collector.kv_tiers.extend(store.stats)
            self.collector.kv_lookups[spec.name] = store.counts
            if store_spec.tiers and store_spec.tiers[0].kind is TierKind.HBM:
                hbm = store_spec.tiers[0].capacity_bytes
        self.collector.generated_tokens[spec.name] = 0
        self.pools[spec.name] = LLMPool(
            self.engine, spec, self.collector, self._llm_done, self._rejected,
            rng=stream(seed, f"router.{spec.name}"), hbm_cache_bytes=hbm,
            holds=store.holds if store is not None else None)
        if store is not None:
            for replica in self.pools[spec.name].replicas:
                replica.on_prefilled = partial(self._prefilled, store)

    def _prefilled(self, store: KVStore, req: Request) -> None:
        """A miss has just recomputed its prefix on ``req.replica``: keep the KV (and wake the
        lookups waiting for it) as soon as it exists, not when the request finishes."""
        if req.plan[req.stage_index - 1].kind is not KV_RETRIEVAL:
            return
        if req.cached_tokens == 0 or (req.store_id >= 0 and req.store_id != req.prefix_id):
            store.store(req, req.replica)

    def _join_services(self) -> None:
        """Colocated pools of one model share a speed- and load-aware ServiceRouter."""
        groups = service_groups({s.name: s for s in self.config.pools})
        made: dict[tuple[str, ...], ServiceRouter] = {}
        for name, members in groups.items():
            if members not in made:
                made[members] = ServiceRouter([self.pools[m] for m in members])
            self.pools[name].service = made[members]

    def _service_pool(self, spec: PoolSpec) -> ServicePool:
        return service_pool(self.engine, spec, self.collector, self._service_done)

    # --- arrivals ------------------------------------------------------------------------
    def start(self) -> None:
        # per type: (type, request class, pool taking a fresh request directly, or None)
        self._type_info = [(rt, Request if self.plain[rt.name] else RichRequest,
                            self._direct_pool(rt)) for rt in self.types]
        self._refill(0)
        if self.closed_loop:  # closed loop: fill every slot at t = 0
            for _ in range(min(self.arrival.concurrency, self.num_requests)):
                self._issue(0.0)
        else:
            self._schedule_arrival()

    def _direct_pool(self, rt):
        first = rt.plan[0]
        if first.kind is GENERATE and first.pool != ROUTED_POOL and first.pool not in self.frontend_s:
            return self.pools[first.pool]  # a fresh request is already set up for it
        return None

    def _refill(self, start: int) -> None:
        """The draws of requests [start, start + ARRIVAL_CHUNK) as Python lists (cheap to index;
        a slice at a time so the lists stay small), and a chance to fold the metrics."""
        d = self.source.take(ARRIVAL_CHUNK)  # requests are issued in order: start == source's
        self._chunk_start = start
        self._chunk_arrival = d.arrival_s.tolist() if d.arrival_s is not None else None
        self._chunk_type = d.type_index.tolist()
        self._chunk_prompt = d.prompt_tokens.tolist()
        self._chunk_output = d.output_tokens.tolist()
        self.collector.fold_itl()
        self.collector.fold_requests()

    def _schedule_arrival(self) -> None:
        # Arrivals are chained one at a time so the event heap stays small.
        j = self.next_index
        if j < self.num_requests:
            k = j - self._chunk_start
            if k >= ARRIVAL_CHUNK:
                self._refill(j)
                k = 0
            self.engine.schedule(self._chunk_arrival[k], self._arrive, priority=PRIORITY_ARRIVAL)

    def _arrive(self) -> None:
        self._issue(self.engine.now_s)
        self._schedule_arrival()

    def _issue(self, now: float) -> None:
        i = self.next_index
        if i >= self.num_requests:
            return
        self.next_index += 1
        k = i - self._chunk_start
        if k >= ARRIVAL_CHUNK:
            self._refill(i)
            k = 0
        rt, cls, direct = self._type_info[self._chunk_type[k]]
        req = cls(i, now, self._chunk_prompt[k], self._chunk_output[k], rt.plan, rt.name)
        if self.prefix_id is not None and self.prefix_id[i] >= 0:
            req.prefix_id = int(self.prefix_id[i])
            req.prefix_tokens = int(self.prefix_tokens[i])
        if self.store_id is not None and self.store_id[i] >= 0:
            req.store_id = int(self.store_id[i])
            req.store_tokens = int(self.store_tokens[i])
        if rt.reasoning is not None:
            reasoning.begin(req, rt.reasoning, int(self.thinking[i]))
        if direct is not None:
            direct.submit(req)
        else:
            self._submit(req)

    # --- moving along the plan -------------------------------------------------------------
    def _submit(self, req: Request) -> None:
        step = self.steps[req.type_name][req.stage_index]
        service = step.service
        if service is not None:
            service.submit(req)
            return
        stage = step.stage
        kind = step.kind
        if kind is GENERATE or kind is PREFILL:
            pool = req.routed_pool if stage.pool == ROUTED_POOL else stage.pool
            if req.served_pool:  # a service router chose another pool of this model before
                if req.pinned:  # a later round: back to the replica that holds its context
                    pool = req.served_pool
                else:
                    req.served_pool = ""
            req.stage_start_s = -1.0
            req.computed = req.cached_tokens  # a fresh prefill (cached prefix: blocks only)
            req.prefill_target = req.prompt_tokens
            req.generated = 0
            if req.rich and req.rounds_left and not req.total_output:  # round 1's prompt
                req.gen_prompt = req.prompt_tokens
            delay = self.frontend_s.get(pool)
            if delay:  # every call into the engine passes its serving front end first
                now = self.engine.now_s
                self.engine.schedule(now + delay, self._reach_scheduler, req, pool, now,
                                     priority=PRIORITY_ARRIVAL)
            else:
                self.pools[pool].submit(req)
        elif kind is DECODE:
            req.stage_start_s = -1.0
            self.pools[stage.pool].submit(req)
        elif kind is KV_RETRIEVAL:
            pool = self.pools[stage.pool]
            req.stage_enqueue_s = req.stage_start_s = self.engine.now_s
            store = self.stores.get(stage.pool)
            # no KV store (kv_tiers=none), or a request sharing no prefix (a trace row whose
            # blocks no other request starts with): nothing to look up, the prompt is computed
            if store is None or req.prefix_id < 0:
                req.cached_tokens = 0
                self._kv_fetched(req)
                return
            req.replica = store.choose(req, pool.router, pool.replicas)
            req.pinned = True
            store.fetch(req, req.replica, self._kv_fetched)
        else:
            self.services[stage.pool].submit(req)

    def _reach_scheduler(self, req: Request, pool: str, sent_s: float) -> None:
        """After the pool's front-end latency: record it (a visit of kind ``frontend``, all
        service) and hand the request to the pool's router and scheduler."""
        self._visit(req, "frontend", pool, sent_s, sent_s)
        self.pools[pool].submit(req)

    def _llm_done(self, req: Request) -> None:
        stage = req.plan[req.stage_index]
        kind = stage.kind
        pool = req.served_pool or (req.routed_pool if stage.pool == ROUTED_POOL else stage.pool)
        req.last_token_s = now = req.finish_s  # the replica's finish: the last generated token
        tokens = self.collector.generated_tokens
        if kind is GENERATE and self.plain_generate[req.type_name]:
            # the common single-model case, inlined: record the visit, count tokens, move on
            code = self.visit_index.get((req.type_name, req.stage_index, pool))
            if code is None:
                code = self._visit_code(req, kind, pool)
            self.visit_codes.append(code)
            self.visit_times.extend((req.gen_enqueue_s, req.stage_start_s, now))
            if self.record_visits:
                self._record_visit(req, kind, pool, req.gen_enqueue_s, req.stage_start_s, now)
            tokens[pool] += req.output_tokens * req.samples
            i = req.stage_index = req.stage_index + 1
            if i < len(req.plan):
                service = self.steps[req.type_name][i].service
                if service is not None:  # e.g. postprocess: straight to its pool
                    service.submit(req)
                else:
                    self._submit(req)
                return
            self.collector.complete(req)
            if self.closed_loop:
                self._closed_loop_next()
            return
        self._visit(req, kind, pool, req.gen_enqueue_s, req.stage_start_s)
        if kind is DECODE:
            tokens[pool] = tokens.get(pool, 0) + (req.output_tokens - 1) * req.samples
            self._next(req)
            return
        if kind is PREFILL:
            tokens[pool] = tokens.get(pool, 0) + 1
            if req.generated >= req.output_tokens:  # one-token answer: nothing to decode
                req.stage_index += 1
                self._next(req)
                return
            self._hand_off(req, pool)
            return
        tokens[pool] = tokens.get(pool, 0) + req.output_tokens * req.samples
        if req.rounds_left:
            reasoning.next_round(req, self._type(req).reasoning)
            self._submit(req)
            return
        if stage.pool == ROUTED_POOL:
            route = self.route_stage[req.type_name]
            if routing.escalate(route, req, self.route_rng[req.type_name]):
                req.cached_tokens = 0
                req.first_token_s = -1.0  # the user sees the escalated model's answer
                req.round_first_s = -1.0
                self._submit(req)
                return
        reasoning.finish(req)
        self._next(req)

    def _type(self, req: Request):
        return self.type_by_name[req.type_name]

    def _rejected(self, req: Request) -> None:
        if req.prefix_id >= 0 and req.cached_tokens == 0 and self.stores:
            for store in self.stores.values():  # its prefix will not be computed: wake waiters
                store.abandon(req)
        req.finish_s = self.engine.now_s
        self.collector.reject(req)
        self._closed_loop_next()

    def _closed_loop_next(self) -> None:
        if self.arrival.kind is ArrivalKind.CLOSED_LOOP:
            self.engine.schedule(self.engine.now_s + self.arrival.think_time_s, self._arrive_closed,
                                 priority=PRIORITY_ARRIVAL)

    def _arrive_closed(self) -> None:
        self._issue(self.engine.now_s)


def simulate(config: SimConfig, seed: int = 0, request_sink=None) -> SimResult:
    """Run one simulation. Pure: the same config and seed give the same result. With
    ``record_requests``, rows are ``SimResult.requests`` (by id), or with ``request_sink`` (a
    callable taking one row) go to it as requests finish and are not kept (requests None)."""
    streamed = config.record_requests and request_sink is not None
    run = _Run(config, seed, keep_requests=config.record_requests and not streamed)
    if streamed:
        run.collector.on_finished = lambda req: request_sink(request_row(req))
    run.start()
    run.engine.run()
    summary = summarize(config, run.collector, run.engine.num_events, run.engine.now_s)
    requests = request_rows(run.collector) if run.collector.keep_requests else None
    return SimResult(summary=summary, requests=requests, spans=run.collector.spans)
