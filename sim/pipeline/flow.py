"""Moving a request along its plan once a stage is done: record the visit, go to the next stage.

``StageFlow`` is the part of a run (``sim.simulation._Run``) that a finished service stage, KV
fetch or disaggregated hand-off calls; the run supplies the state it uses (``engine``,
``collector``, ``steps`` from ``sim.pipeline.steps.plan_steps``, the visit columns, ``_submit``,
``_closed_loop_next``, and for hand-offs ``pools`` and ``handoffs``). Each finished stage is
recorded as a visit (enqueue, start, end) under a small integer code per (type, stage, pool),
numbered in the order the run first sees them.
"""

from __future__ import annotations

from sim.pipeline.specs import FirstToken
from sim.pipeline.steps import apply_effect
from sim.request import Request, StageKind

KV_RETRIEVAL = StageKind.KV_RETRIEVAL


class StageFlow:
    """Visit recording and stage-to-stage moves of ``sim.simulation._Run``."""

    def _visit_code(self, req: Request, kind, pool: str) -> int:
        """A small integer per (type, stage, pool); keyed by the stage's index in the plan, which
        hashes faster than the enum (pseudo-stages like kv_transfer use their name)."""
        key = (req.type_name, req.stage_index if isinstance(kind, StageKind) else kind, pool)
        code = self.visit_index.get(key)
        if code is None:
            code = self.visit_index[key] = len(self.visit_index)
            self.visit_keys[code] = (req.type_name, getattr(kind, "value", kind), pool)
        return code

    def _visit(self, req: Request, kind, pool: str, enqueue_s: float, start_s: float) -> None:
        """Record a finished stage. ``kind`` is a StageKind (or a str for pseudo-stages)."""
        now = self.engine.now_s
        self.visit_codes.append(self._visit_code(req, kind, pool))
        self.visit_times.extend((enqueue_s, start_s, now))
        if self.record_visits:
            self._record_visit(req, kind, pool, enqueue_s, start_s, now)

    @staticmethod
    def _record_visit(req: Request, kind, pool: str, enqueue_s: float, start_s: float,
                      end_s: float) -> None:
        """The visit in the request's own row (``record_requests``): kind, pool, queue, service."""
        if req.visits is None:
            req.visits = []
        req.visits.append((getattr(kind, "value", kind), pool, start_s - enqueue_s, end_s - start_s))

    def _next(self, req: Request) -> None:
        req.stage_index += 1
        if req.stage_index < len(req.plan):
            self._submit(req)
            return
        req.finish_s = self.engine.now_s
        self.collector.complete(req)
        if self.closed_loop:
            self._closed_loop_next()

    def _service_done(self, req: Request, last: bool = False) -> None:
        """A service stage has finished: its effect on the request, its visit, the next stage
        (``_visit`` and ``_next`` inlined, with the stage's pool, knobs and code looked up once
        per plan in ``self.steps``). ``last``: the calling event ends when this returns; so does
        the next service pool's ``submit``, which is this method's last act."""
        i = req.stage_index
        steps = self.steps[req.type_name]
        step = steps[i]
        if step.effect:  # vector search, rerank or route: what it does to the request
            apply_effect(step, req, self.route_rng)
        code = step.code
        if code < 0:
            code = step.code = self._visit_code(req, step.kind, step.pool)
        now = self.engine.now_s
        self.visit_codes.append(code)
        self.visit_times.extend((req.stage_enqueue_s, req.stage_start_s, now))
        if self.record_visits:
            self._record_visit(req, step.kind, step.pool, req.stage_enqueue_s, req.stage_start_s,
                               now)
        i += 1
        req.stage_index = i
        if i < len(steps):
            service = steps[i].service
            if service is not None:
                service.submit(req, last)
            else:
                self._submit(req)
            return
        req.finish_s = now
        self.collector.complete(req)
        if self.closed_loop:
            self._closed_loop_next()

    def _kv_fetched(self, req: Request) -> None:
        self._visit(req, KV_RETRIEVAL, req.plan[req.stage_index].pool, req.stage_enqueue_s,
                    req.stage_start_s)
        self._next(req)

    def _hand_off(self, req: Request, pool: str) -> None:
        """Prefill done on a worker of ``pool``: its KV leaves over that worker's path to the
        decode pool (``sim.pipeline.disaggregation``)."""
        decode_pool = req.plan[req.stage_index + 1].pool
        now = self.engine.now_s
        if self.pools[decode_pool].spec.first_token is not FirstToken.PREFILL:
            # the client's first token (of this round) comes from the decode worker: the stamp
            # this prefill just made is taken back (an earlier round's stays)
            if req.first_token_s == now:
                req.first_token_s = -1.0
            if req.rich and req.round_first_s == now:
                req.round_first_s = -1.0
        links, bytes_per_token = self.handoffs[(pool, decode_pool)]
        link = links[req.replica]  # the prefill worker's path (shared if configured)
        link.transfer(req.prefill_target * bytes_per_token, self._handed_off, req, link.name, now)

    def _handed_off(self, req: Request, link_name: str, start_s: float) -> None:
        self._visit(req, "kv_transfer", link_name, start_s, start_s)
        req.stage_index += 1
        req.context = req.prefill_target  # the decode pool admits the transferred KV as is
        req.computed = req.prefill_target
        self._submit(req)
