"""Prefix-KV stores: tier topology, sharing domains, policies and contended transfers.

  specs.py          frozen specs: tiers (device + link), sharing domains, store policies
  store.py          the store: lookups, promotion/demotion, in-flight deduplication, fixed mode
  fabric.py         transfers over several shared resources at once (max-min fair sharing)
  affinity.py       cache-aware routing of requests tied to a client
  policies.py       eviction / admission registries; lru.py, lfu.py, s3fifo.py, admission.py

``sim.simulation`` owns one store per LLM pool that has one. ``sim.config`` imports ``specs``.

May import: sim.engine, sim.network, sim.request, sim.errors and this folder.
"""
