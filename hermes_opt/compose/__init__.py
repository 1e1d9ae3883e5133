"""Compose a scenario: Hydra configs from ``conf/`` -> a validated ``sim.SimConfig``, priced.

The only translation point between YAML and the simulator. ``catalog`` reads the shipped groups,
``to_sim`` builds the typed specs (``pipeline`` the multi-stage parts, ``traces`` and
``csv_input`` the user files, ``calibration_profile`` the fitted cost-model profiles),
``pricing`` prices a deployment, ``overrides`` composes a trial's ``hermes-sim`` overrides
(cached), ``evaluate`` simulates and prices one scenario (the ``hermes-sim`` JSON), ``outputs``
writes its files.

May import: ``sim`` and this folder only.
"""
