"""Multi-stage pipelines: one module per stage kind.

  specs.py          frozen specs: vector indexes, links, prefixes, reasoning (KV stores: sim.kvstore)
  service.py        batched multi-server pools for non-LLM stages (CPU, encoders, retrieval)
  cpu_stage.py      pre/post-processing and rule routing on CPU cores
  rag.py            embedding, vector search (flat / IVF-PQ / HNSW) and rerank costs
  reasoning.py      thinking lengths, multi-round context growth, best-of-N
  routing.py        model routing (rule, classifier, cascade)
  disaggregation.py prefill -> decode KV hand-off over a network link
  pools.py          the run's non-LLM pools and hand-off links, built from their specs
  workload.py       per-request pipeline draws (prefix ids, thinking lengths, per-type arrivals)
  validate.py       plan rules (called by ``SimConfig``)

``sim.simulation`` moves requests between the stages. ``sim.config`` imports only ``specs`` and
``validate`` from here, and neither imports ``sim.config`` (no cycles).

May import: any ``sim`` module below ``sim.simulation`` (engine, network, cost, hardware, metrics,
workload, request, roles; ``sim.config`` for specs) and this folder.
"""
