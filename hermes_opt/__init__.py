"""hermes-opt: Hydra configs + Optuna search on top of the ``sim`` simulator.

The folders are the stages of the data flow, each importing only the ones below it::

    cli  ->  run | report  ->  study  ->  compose  ->  sim
              calibration / validation  ->  compose  ->  sim

``compose`` turns Hydra configs into ``sim.SimConfig`` (catalogs, pricing, one evaluation);
``study`` defines a search (spec, space, objectives, storage, sampling); ``run`` evaluates trials
(driver, process pool, worker, progress, capacity); ``report`` writes what a decision maker reads;
``cli`` holds the entry points only. May import: nothing here (this file is a docstring); see
``docs/architecture.md`` and ``tests/layout/test_layout.py``, which checks the rules.
"""

__version__ = "0.1.0"
