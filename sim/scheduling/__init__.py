"""LLM replicas and what sits around them (see the package docstring of ``sim``).

  pool.py          LLMPool: identical replicas behind a router; requests it can never serve
  router.py        replica routers
  replica.py       one replica: queues, admission bookkeeping, explicit steps, activity
  decode_runs.py   its decode set: closed-form decode runs, KV growth, preemption
  policies/        batching policies (static, continuous, mixed, chunked, prefill_first): one module each

May import: ``sim.config``, ``sim.cost``, ``sim.engine``, ``sim.hardware``, ``sim.metrics``,
``sim.request``, ``sim.roles``, ``sim.random_streams``, ``sim.errors`` and this folder.
"""
