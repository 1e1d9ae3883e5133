"""Batching policies: one strategy object per policy, listed in ``registry``.

  base.py        the interface (``BatchingStrategy``): name, token budget, flags, validate,
                 next_step
  contract.py    ``ReplicaView``: what a strategy may read and call on a replica
  admission.py   whole-prompt admission (static, continuous, mixed)
  static.py      a batch forms when the replica is idle and runs until every member ends
  continuous.py  iteration-level; prefill-only steps take priority over decode
  mixed.py       decodes and whole new prompts in one step under the token budget
  chunked.py     Sarathi: decodes first, then prompt chunks fill the token budget
  prefill_first.py  SGLang's default: prompt chunks in prefill-only steps, decodes wait
  registry.py    ``STRATEGIES`` (every policy) and the ``BatchPolicy`` enum derived from it

Adding a policy: a module with a ``BatchingStrategy`` subclass, one line in
``registry.STRATEGIES``, and a ``hermes_opt/conf/scheduler/<name>.yaml``. The ``BatchPolicy`` enum (``scheduler.policy``
values, in ``STRATEGIES`` order) is derived from the registry, so it needs no edit.

May import: ``sim.errors``, ``sim.request`` and this folder (never ``sim.config`` or the
replica: policies see the spec duck-typed and the replica through ``contract.ReplicaView``, so
``sim.config`` can import the registry).
"""
