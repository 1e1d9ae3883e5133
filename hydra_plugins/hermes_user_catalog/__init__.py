"""Hydra search-path plugin: the user catalog root (``$HERMES_OPT_CONFIG_DIR`` or
``~/.config/hermes-opt``) ahead of the package's conf in every composition, ``hermes-sim``'s
and a study's worker's alike; may import ``compose``."""
