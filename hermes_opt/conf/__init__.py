"""Config groups (YAML) composed by Hydra; a package so Hydra can find it once installed."""
