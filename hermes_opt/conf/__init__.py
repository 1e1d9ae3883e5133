"""Config groups (YAML) composed by Hydra; a package so Hydra finds it as ``hermes_opt.conf`` once
installed. May import: nothing (no Python here but this docstring)."""
