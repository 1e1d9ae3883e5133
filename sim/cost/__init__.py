"""Step-time models behind the ``StepCostModel`` protocol (``base``): the per-operator roofline
with calibratable terms (``roofline``), the table-driven model for measured shapes (``table``), a
constant model for closed-form tests, and ``factory`` to build one from a pool's spec.

May import: ``sim.errors``, ``sim.hardware`` and this folder; ``factory`` also reads
``sim.config`` (the roofline's parameters are part of the config, not the other way round).
"""
