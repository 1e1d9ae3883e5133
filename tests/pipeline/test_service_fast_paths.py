"""The service pools' and KV store's fast paths give exactly what the general paths give.

* A dispatch run at once (``ServicePool.submit`` through ``Engine.run_now``: the submitting
  event ends with the submit and nothing else is pending at that instant) equals the scheduled
  dispatch event: the same summary (``num_events`` included), per-request rows and trace spans.
* Encoder batches priced from integer sums equal ``StepShape.for_prefill_chunks`` of the listed
  sequences, float for float.
* ``KVStore.holds`` over the policies' key dicts equals the general loop over the copies.
"""

from __future__ import annotations

import dataclasses
import random

import numpy as np
import pipeline_builders as pb
import pytest

from sim import PoolRole, PoolSpec, SchedulerSpec, simulate
from sim.cost.base import StepShape
from sim.cost.factory import build_cost_model
from sim.engine import Engine
from sim.kvstore.policies import Eviction
from sim.kvstore.specs import Domain, KVLinkSpec, KVStoreSpec, KVTierSpec, TierKind
from sim.kvstore.store import KVStore
from sim.pipeline.rag import EncoderCost
from sim.pipeline.service import ServicePool
from sim.pipeline.specs import IndexKind, IndexSpec
from sim.request import RichRequest


def _rag_config(n: int, rate: float):
    xeon = "xeon_6980p"
    pools = (
        pb.llm_pool(replicas=2),
        pb.cpu_pool(),
        PoolSpec(name="embed", model=pb.model("bge_large_en"), hardware=pb.hw(xeon),
                 role=PoolRole.EMBED, scheduler=SchedulerSpec(max_num_seqs=8,
                                                              max_batched_tokens=2048)),
        PoolSpec(name="search", model=None, hardware=pb.hw(xeon), role=PoolRole.RETRIEVAL,
                 workers_per_node=2, scheduler=SchedulerSpec(max_num_seqs=4),
                 index=IndexSpec(kind=IndexKind.IVF_PQ, num_vectors=10_000_000, dim=768,
                                 nlist=16384, nprobe=32, pq_bytes=32)),
        PoolSpec(name="rerank", model=pb.model("bge_reranker_large"), hardware=pb.hw("h100_sxm"),
                 role=PoolRole.RERANK, scheduler=SchedulerSpec(max_num_seqs=8,
                                                               max_batched_tokens=8192)),
    )
    plan = (pb.stage("preprocess", "cpu"), pb.stage("embed", "embed"),
            pb.stage("vector_search", "search", top_k=6, doc_tokens=128),
            pb.stage("rerank", "rerank", top_n=2), pb.stage("generate", "llm"),
            pb.stage("postprocess", "cpu"))
    return pb.config(pools, plan, n=n, arrival=pb.poisson(rate), prompt=pb.lognormal(150, 80),
                     output=pb.lognormal(60, 30, hi=256))


@pytest.mark.parametrize("rate", [2.0, 40.0])
def test_dispatching_at_once_equals_the_scheduled_dispatch_event(monkeypatch, rate):
    cfg = dataclasses.replace(_rag_config(300, rate), record_requests=True, record_trace=True)
    at_once = []
    run_now = Engine.run_now
    monkeypatch.setattr(Engine, "run_now", lambda self, callback, args=():
                        at_once.append(callback.__self__.name) or run_now(self, callback, args))
    fast = simulate(cfg, 3)
    assert len(at_once) > 300  # embed, search and rerank mostly start at once
    submit = ServicePool.submit
    monkeypatch.setattr(ServicePool, "submit", lambda self, req, last=False: submit(self, req))
    slow = simulate(cfg, 3)
    assert fast.summary == slow.summary
    assert fast.requests == slow.requests
    assert list(fast.spans) == list(slow.spans)


def _encoder(model_name: str, role: PoolRole) -> EncoderCost:
    spec = PoolSpec(name="enc", model=pb.model(model_name), hardware=pb.hw("h100_sxm"), role=role)
    return EncoderCost(build_cost_model(spec), spec.model)


@pytest.mark.parametrize("kind, model_name, role", [
    ("embed", "bge_large_en", PoolRole.EMBED),
    ("rerank", "bge_reranker_large", PoolRole.RERANK),
    ("reward", "reward_8b", PoolRole.REWARD),
])
def test_encoder_batch_time_equals_the_prefill_chunk_shape(kind, model_name, role):
    cost = _encoder(model_name, role)
    rng = random.Random(7)
    plan = (pb.stage(kind, "enc"),)
    for _ in range(200):
        batch = []
        for i in range(rng.randint(1, 12)):
            req = RichRequest(i, 0.0, rng.randint(1, 3000), rng.randint(1, 900), plan)
            req.prefix_tokens = rng.choice([0, 0, rng.randint(0, 400)])
            req.docs, req.doc_tokens = rng.randint(0, 12), rng.randint(1, 600)
            req.samples = rng.randint(1, 4)
            batch.append(req)
        chunks = [(0, t) for req in batch for t in cost.sequences(req)]
        assert cost.batch_time_s(batch) == cost.cost.step_time_s(
            StepShape.for_prefill_chunks(chunks))
        assert [cost.work_tokens(r) for r in batch] == [sum(cost.sequences(r)) for r in batch]


@pytest.mark.parametrize("eviction", list(Eviction), ids=lambda e: e.value)
@pytest.mark.parametrize("tiers", [1, 2, 3, 4])
def test_kv_holds_equals_the_general_lookup(eviction, tiers):
    kinds = [(TierKind.HBM, Domain.REPLICA), (TierKind.DRAM, Domain.NODE),
             (TierKind.SSD, Domain.RACK), (TierKind.SSD, Domain.CLUSTER)][:tiers]
    specs = tuple(KVTierSpec(name=f"t{i}", kind=kind, domain=domain, capacity_bytes=(i + 1) * 5e6,
                             bandwidth_bytes_per_s=1e10,
                             link=KVLinkSpec(bandwidth_bytes_per_s=1e10) if i else None)
                  for i, (kind, domain) in enumerate(kinds))
    spec = KVStoreSpec(pool="llm", tiers=specs, node_replicas=2, rack_replicas=4, eviction=eviction)
    store = KVStore(Engine(), spec, 8, 1.0, np.random.default_rng(0), None, 0)
    rng = random.Random(tiers)
    for _ in range(400):
        store._insert(rng.randrange(tiers), rng.randrange(8), rng.randrange(60), 1e6)
    lookups = [(p, r) for p in range(70) for r in range(8)]
    assert [store.holds(p, r) for p, r in lookups] == \
        [KVStore.holds(store, p, r) for p, r in lookups]
