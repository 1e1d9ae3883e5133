"""Search space: each parameter's name is a Hydra override path of the ``sim`` config.

So a trial's parameters *are* the ``hermes-sim`` overrides that replay it: ``hardware=h200``
(a config-group choice) or ``scheduler.max_num_seqs=64`` (a value). Parameters may be
conditional (``when: {scheduler: chunked}``): they are only suggested, and only passed to the
simulator, when the named earlier parameter takes one of the listed values.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from decimal import Decimal
from functools import lru_cache
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

    @property
    def enumerable(self) -> bool:
        """A finite set of values: categorical, int, or float with a step."""
        return self.kind != "float" or self.step is not None

    def grid_size(self) -> int:
        """How many values :meth:`grid` has (without building it)."""
        if self.kind == "categorical":
            return len(self.choices)
        self._check_enumerable()
        if self.kind == "int":
            return (int(self.high) - int(self.low)) // int(self.step or 1) + 1
        # Optuna's rule for a float with a step (FloatDistribution: high rounded down onto the
        # grid), in decimal so that 0.1-steps land on 0.3, not 0.30000000000000004
        return int((_dec(self.high) - _dec(self.low)) // _dec(self.step)) + 1

    def value_at(self, k: int) -> Any:
        """The ``k``-th value of :meth:`grid` (0-based)."""
        if self.kind == "categorical":
            return self.choices[k]
        self._check_enumerable()
        if self.kind == "int":
            return int(self.low) + k * int(self.step or 1)
        return float(_dec(self.low) + k * _dec(self.step))

    def index_of(self, value: Any) -> int | None:
        """The position of ``value`` in :meth:`grid` (compared with ``==``, as conditions are),
        or None when it is not a value of this parameter."""
        if self.kind == "categorical":
            return next((k for k, c in enumerate(self.choices) if c == value), None)
        if not self.enumerable or not isinstance(value, (int, float)):
            return None
        value = int(value) if isinstance(value, bool) else value  # True == 1, as in conditions
        try:
            steps = (_dec(value) - _dec(self.low)) / _dec(self.step or 1)
        except ArithmeticError:  # nan or inf
            return None
        k = int(steps)
        return k if steps == k and 0 <= k < self.grid_size() else None

    def grid(self) -> list[Any]:
        """Every value (categorical, int — log ints included: every integer — or float with a
        step), in order; used by exhaustive enumeration."""
        return [self.value_at(k) for k in range(self.grid_size())]

    def _check_enumerable(self) -> None:
        if not self.enumerable:
            raise ConfigError(f"space.{self.name}: sampler grid needs a finite set: give step "
                              f"(or use type categorical)")


def _dec(value: float | None) -> Decimal:
    return Decimal(repr(value))


_OTHER = object()  # any value no condition names (conditions read only named values)


class _Enumeration:
    """The points of a (conditional) space, counted and numbered without listing them.

    A point is one value for every parameter active in it; points are numbered in the order of
    :meth:`SearchSpace.enumerate` (earlier parameters vary slowest, values in grid order).
    ``count(i, state)`` is the number of completions of parameters ``i..`` given the values of
    earlier parameters that later conditions read (``state``), memoised. Conditions only test
    membership in the values they name, so every value a condition does not name is one
    branch (``_OTHER``) times how many such values there are: a wide int range costs nothing.
    A float without step counts as a single value."""

    def __init__(self, space: SearchSpace) -> None:
        self.params = space.parameters
        n = len(self.params)
        read: list[frozenset[str]] = [frozenset()] * (n + 1)  # names conditions of params[i:] read
        named: dict[str, set[Any]] = {}  # parameter -> the values conditions name for it
        for i in reversed(range(n)):
            read[i] = read[i + 1] | {name for name, _ in self.params[i].when}
            for name, values in self.params[i].when:
                named.setdefault(name, set()).update(values)
        self.read, self.named = read, named
        # per parameter: its grid size and the (position, value) of the values conditions name
        self.branches: list[tuple[int, list[tuple[int, Any]]]] = []
        for param in self.params:
            size = param.grid_size() if param.enumerable else 1
            wanted = named.get(param.name, set())
            if param.kind == "categorical":  # every position, should a choice be listed twice
                hits = {k: c for k, c in enumerate(param.choices) if c in wanted}
            else:
                hits = {k: param.value_at(k) for v in wanted
                        if (k := param.index_of(v)) is not None}
            self.branches.append((size, sorted(hits.items(), key=lambda kv: kv[0])))
        self._memo: dict[tuple[int, tuple], int] = {}

    def _state(self, chosen: dict[str, Any], i: int) -> tuple:
        return tuple((k, v if v in self.named[k] else _OTHER) for k, v in chosen.items()
                     if k in self.read[i])

    def _sub(self, i: int, chosen: dict[str, Any], name: str, value: Any) -> int:
        return self.count(i + 1, self._state({**chosen, name: value}, i + 1))

    def count(self, i: int = 0, state: tuple = ()) -> int:
        if i == len(self.params):
            return 1
        key = (i, state)
        if key not in self._memo:
            param, chosen = self.params[i], dict(state)
            if not param.active(chosen):
                total = self.count(i + 1, self._state(chosen, i + 1))
            else:
                size, hits = self.branches[i]
                total = sum(self._sub(i, chosen, param.name, v) for _, v in hits)
                if size > len(hits):
                    total += (size - len(hits)) * self._sub(i, chosen, param.name, _OTHER)
            self._memo[key] = total
        return self._memo[key]

    def point(self, index: int) -> dict[str, Any]:
        chosen: dict[str, Any] = {}
        for i, param in enumerate(self.params):
            if not param.active(chosen):
                continue
            size, hits = self.branches[i]
            other = self._sub(i, chosen, param.name, _OTHER) if size > len(hits) else 0
            pos = 0  # grid position: runs of unnamed values lie between the named ones
            for k, value in [*hits, (size, None)]:
                run = (k - pos) * other
                if index < run:
                    chosen[param.name] = param.value_at(pos + index // other)
                    index %= other
                    break
                index -= run
                if k == size:
                    raise IndexError("point index out of range")
                sub = self._sub(i, chosen, param.name, value)
                if index < sub:
                    chosen[param.name] = value
                    break
                index -= sub
                pos = k + 1
        return chosen


@lru_cache(maxsize=16)
def _enumeration(space: SearchSpace) -> _Enumeration:
    return _Enumeration(space)


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
                    if catalog.source(param.name, choice):  # a user's file: check it now,
                        catalog.entry(param.name, choice)  # not as every trial's reason
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

    @property
    def continuous(self) -> list[str]:
        """Parameters that cannot be enumerated (floats without a step)."""
        return [p.name for p in self.parameters if not p.enumerable]

    def num_points(self) -> int:
        """The number of points of the space, conditions included (a conditional parameter
        multiplies only the points where its condition holds): ``len(self.enumerate())``,
        computed without listing them. A float without step counts as one value, so for a space
        with :attr:`continuous` keys this is the number of discrete combinations."""
        return _enumeration(self).count()

    def point(self, index: int) -> dict[str, Any]:
        """Point number ``index`` (0-based) of :meth:`enumerate`, without listing the others."""
        self.check_enumerable()
        total = self.num_points()
        if not 0 <= index < total:
            raise IndexError(f"point {index} of a space with {total} points")
        return _enumeration(self).point(index)

    def check_enumerable(self) -> None:
        """ConfigError naming the first parameter the grid sampler cannot enumerate."""
        for param in self.parameters:
            param._check_enumerable()


def format_value(value: Any) -> str:
    """Render a value the way Hydra's override grammar reads it back as the same type."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, str):
        return _hydra_string(value)
    return str(value)


@functools.lru_cache(maxsize=4096)
def _hydra_string(value: str) -> str:
    """A string as an override value: bare when the grammar reads it back as itself, else
    quoted ("a<b" is a grammar error bare: each trial failed at run time)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    try:
        if OverridesParser.create().parse_override(f"k={value}").value() == value:
            return value
    except Exception:  # noqa: BLE001 -- any grammar error means: quote it
        pass
    quoted = "'" + value.replace("'", "\\'") + "'"
    if OverridesParser.create().parse_override(f"k={quoted}").value() != value:
        raise ConfigError(f"{value!r}: cannot be written as a Hydra override value (quote, "
                          f"backslash or interpolation characters); use a plainer name")
    return quoted


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
        for i, choice in enumerate(choices):  # once here, not in every trial at run time
            if isinstance(choice, str):
                try:
                    format_value(choice)
                except ConfigError as err:
                    raise ConfigError(f"space.{name}.choices[{i}]={err}") from None
        params.append(Parameter(name=str(name), kind=str(kind), low=spec.get("low"),
                                high=spec.get("high"), step=spec.get("step"),
                                log=bool(spec.get("log", False)), choices=tuple(choices),
                                when=when_items))
    return SearchSpace(parameters=tuple(params))
