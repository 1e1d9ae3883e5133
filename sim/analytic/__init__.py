"""The analytical tier: closed-form estimates of a deployment's capacity and latency at load from
the same step-time model the simulator uses (``estimate``), in about a millisecond instead of a
simulation, for screening candidates before simulating them (docs/opt.md "Screening").

May import: ``sim.config``, ``sim.cost``, ``sim.hardware``, ``sim.workload``, ``sim.pipeline``,
``sim.errors``, ``sim.request``, ``sim.roles`` and this folder. No Hydra, Optuna or I/O.
"""
