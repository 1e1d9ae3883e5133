"""Command-line ``key=value`` arguments applied to a study definition (``definition.load``)."""

from __future__ import annotations

from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from sim.errors import ConfigError, require


def merge_overrides(base: list[str], extra: list[str]) -> list[str]:
    """``base`` with ``extra`` applied: a key given again replaces its earlier value in place
    (so the replay command never names a key twice), new keys are appended."""
    merged = list(base)
    for arg in extra:
        key = arg.split("=", 1)[0]
        same = [i for i, b in enumerate(merged) if b.split("=", 1)[0] == key]
        if same:
            merged[same[0]] = arg
        else:
            merged.append(arg)
    return merged


def apply_override(raw: dict, arg: str) -> None:
    """Set a study field from ``key=value`` (``n_trials=50``, ``space.cluster.tp.choices=[1,2]``)."""
    key, _, text = arg.partition("=")
    try:
        value = OmegaConf.to_container(OmegaConf.from_dotlist([f"v={text}"]))["v"]
    except OmegaConfBaseException as err:
        raise ConfigError(f"{key}={text!r}: {str(err).splitlines()[0]}") from None
    parts = key.split(".")
    if parts[0] == "space" and len(parts) > 2:
        # parameter names contain dots (cluster.tp): the last part is the field
        raw.setdefault("space", {}).setdefault(".".join(parts[1:-1]), {})[parts[-1]] = value
        return
    node = raw
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        require(isinstance(node, dict), key, text, f"{part} is not a mapping")
    node[parts[-1]] = value
