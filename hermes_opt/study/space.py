"""Search space: each parameter's name is a Hydra override path of the ``sim`` config.

So a trial's parameters *are* the ``hermes-sim`` overrides that replay it: ``hardware=h200``
(a config-group choice) or ``scheduler.max_num_seqs=64`` (a value). Parameters may be
conditional (``when: {scheduler: chunked}``): they are only suggested, and only passed to the
simulator, when the named earlier parameter takes one of the listed values.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import optuna

from hermes_opt.compose import catalog
from sim.errors import ConfigError, require

KINDS = ("int", "float", "categorical")
SCALAR_TYPES = (bool, int, float, str)


@dataclass(frozen=True, slots=True, kw_only=True)
class Parameter:
    name: str  # Hydra override path, e.g. "cluster.tp" or "hardware"
    kind: str  # int | float | categorical
    low: float | None = None
    high: float | None = None
    step: float | None = None
    log: bool = False
    choices: tuple[Any, ...] = ()
    when: tuple[tuple[str, tuple[Any, ...]], ...] = ()  # (earlier parameter, allowed values)

    def __post_init__(self) -> None:
        field_ = f"space.{self.name}"
        require(self.kind in KINDS, f"{field_}.type", self.kind, f"allowed: {', '.join(KINDS)}")
        if self.kind == "categorical":
            require(len(self.choices) >= 1, f"{field_}.choices", list(self.choices),
                    "needs at least one choice")
            for choice in self.choices:
                require(isinstance(choice, SCALAR_TYPES), f"{field_}.choices", choice,
                        "choices must be strings, numbers or booleans")
            return
        for key in ("low", "high"):
            value = getattr(self, key)
            require(isinstance(value, (int, float)) and not isinstance(value, bool),
                    f"{field_}.{key}", value, "must be a number")
        if self.kind == "int":
            for key in ("low", "high", "step"):
                value = getattr(self, key)
                require(value is None or float(value).is_integer(), f"{field_}.{key}", value,
                        "must be a whole number for type int")
        require(self.high >= self.low, f"{field_}.high", self.high, f"must be >= low={self.low}")
        if self.log:
            require(self.low > 0, f"{field_}.low", self.low, "must be > 0 with log: true")
            require(self.step in (None, 1), f"{field_}.step", self.step,
                    "cannot combine step with log: true")
        if self.step is not None:
            require(self.step > 0, f"{field_}.step", self.step, "must be > 0")

    @property
    def is_group(self) -> bool:
        """A config-group choice (``hardware=h200``) rather than a value (``cluster.tp=2``)."""
        return "." not in self.name and bool(catalog.options(self.name))

    def active(self, chosen: dict[str, Any]) -> bool:
        return all(chosen.get(name) in values for name, values in self.when)

    def suggest(self, trial: optuna.Trial) -> Any:
        if self.kind == "categorical":
            return trial.suggest_categorical(self.name, list(self.choices))
        if self.kind == "int":
            return trial.suggest_int(self.name, int(self.low), int(self.high),
                                     step=int(self.step or 1), log=self.log)
        return trial.suggest_float(self.name, float(self.low), float(self.high), step=self.step,
                                   log=self.log)

    def grid(self) -> list[Any]:
        """Every value (categorical, int, or float with a step); used by exhaustive enumeration."""
        if self.kind == "categorical":
            return list(self.choices)
        if self.step is None and self.kind == "float":
            raise ConfigError(f"space.{self.name}: a float without step cannot be enumerated")
        step = self.step or 1
        values, value = [], self.low
        while value <= self.high + 1e-12:
            values.append(int(value) if self.kind == "int" else float(value))
            value += step
        return values


@dataclass(frozen=True, slots=True, kw_only=True)
class SearchSpace:
    parameters: tuple[Parameter, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        seen: list[str] = []
        for param in self.parameters:
            require(param.name not in seen, f"space.{param.name}", param.name, "listed twice")
            for name, _ in param.when:
                require(name in seen, f"space.{param.name}.when", name,
                        f"must name a parameter listed before it; earlier: {seen or 'none'}")
            if param.is_group:
                allowed = catalog.options(param.name)
                for choice in param.choices:
                    require(choice in allowed, f"space.{param.name}.choices", choice,
                            f"unknown {param.name}; allowed: {', '.join(allowed)}")
            seen.append(param.name)

    @property
    def names(self) -> list[str]:
        return [p.name for p in self.parameters]

    def suggest(self, trial: optuna.Trial) -> dict[str, Any]:
        """Suggest every active parameter, in order (define-by-run, so conditions work)."""
        chosen: dict[str, Any] = {}
        for param in self.parameters:
            if param.active(chosen):
                chosen[param.name] = param.suggest(trial)
        return chosen

    def enumerate(self) -> list[dict[str, Any]]:
        """Every candidate of a discrete space (conditional parameters expand only when active)."""
        candidates: list[dict[str, Any]] = [{}]
        for param in self.parameters:
            grown = []
            for chosen in candidates:
                if param.active(chosen):
                    grown.extend({**chosen, param.name: value} for value in param.grid())
                else:
                    grown.append(chosen)
            candidates = grown
        return candidates


def format_value(value: Any) -> str:
    """Render a value the way Hydra's override grammar reads it back as the same type."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def to_overrides(params: dict[str, Any]) -> list[str]:
    return [f"{name}={format_value(value)}" for name, value in params.items()]


def parse_space(node: Any) -> SearchSpace:
    """``space:`` mapping of the study YAML -> SearchSpace (ConfigError names the bad field)."""
    if node is None:
        return SearchSpace()
    require(isinstance(node, dict), "space", type(node).__name__,
            "must be a mapping of <override path>: {type, low, high, step, log, choices, when}")
    params = []
    allowed_keys = {"type", "low", "high", "step", "log", "choices", "when"}
    for name, spec in node.items():
        require(isinstance(spec, dict), f"space.{name}", spec,
                "must be a mapping like {type: int, low: 1, high: 8}")
        unknown = sorted(set(spec) - allowed_keys)
        require(not unknown, f"space.{name}", unknown, f"unknown keys; allowed: {sorted(allowed_keys)}")
        kind = spec.get("type", "categorical" if "choices" in spec else None)
        when = spec.get("when") or {}
        require(isinstance(when, dict), f"space.{name}.when", when,
                "must be a mapping {<earlier parameter>: <value or list of values>}")
        when_items = tuple((str(k), tuple(v) if isinstance(v, list) else (v,))
                           for k, v in when.items())
        choices = spec.get("choices") or ()
        require(isinstance(choices, (list, tuple)), f"space.{name}.choices", choices, "must be a list")
        params.append(Parameter(name=str(name), kind=str(kind), low=spec.get("low"),
                                high=spec.get("high"), step=spec.get("step"),
                                log=bool(spec.get("log", False)), choices=tuple(choices),
                                when=when_items))
    return SearchSpace(parameters=tuple(params))
