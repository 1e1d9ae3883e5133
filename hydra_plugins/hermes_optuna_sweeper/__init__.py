"""Hydra 1.3 sweeper backed by Optuna 5 that honours SLO constraints (``hydra/sweeper=hermes_optuna``).

The upstream ``hydra-optuna-sweeper`` 1.3 pins ``optuna<3``, and its 1.4 pre-release needs
pre-release Hydra and cannot pass constraints to the sampler; this one works with both stable
releases and reports SLO violations to Optuna as constraints (<= 0 feasible).

May import: ``sim``, ``hermes_opt.compose``, ``hermes_opt.study``, ``hermes_opt.run`` and this
folder (it shares the optimizer's samplers, scoring and feasibility checks).
"""
