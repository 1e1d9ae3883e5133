"""One exception type for every invalid input, so front ends can print one line and exit 2."""

from __future__ import annotations


class ConfigError(ValueError):
    """A configuration value is invalid. The message names the field, the value and what is allowed."""


def require(condition: bool, field: str, value: object, allowed: str) -> None:
    """Raise ConfigError('<field>=<value>: <allowed>') unless ``condition`` holds."""
    if not condition:
        raise ConfigError(f"{field}={value!r}: {allowed}")


def require_positive(field: str, value: float | int) -> None:
    require(isinstance(value, (int, float)) and value > 0, field, value, "must be > 0")


def require_non_negative(field: str, value: float | int) -> None:
    require(isinstance(value, (int, float)) and value >= 0, field, value, "must be >= 0")


def require_fraction(field: str, value: float, *, allow_zero: bool = False) -> None:
    low_ok = value >= 0 if allow_zero else value > 0
    require(isinstance(value, (int, float)) and low_ok and value <= 1, field, value,
            "must be in [0, 1]" if allow_zero else "must be in (0, 1]")
