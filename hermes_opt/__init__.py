"""hermes-opt: Hydra configs + Optuna search on top of the ``sim`` simulator."""

__version__ = "0.1.0"
