"""Checks of an entry point's settings as the user types them (`train.steps`), before any work (issue 20).

Light on purpose (no jax, no matplotlib): an entry point validates with these before it imports what a run
needs, so a refused setting exits in about a second. Each error is a `ConfigError` naming the dotted field,
which the shared CLI prints as `error: config.FIELD: got VALUE; allowed ...`.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

from ml_collections import config_dict

from experiments.cli import lookup
from jaxnas.common.errors import ConfigError, check


class Bounds(NamedTuple):
    """An allowed range: integers (never bools) or numbers (NaN and infinity refused), ends included unless open."""

    kind: type
    low: float
    high: float
    open_low: bool = False

    def check(self, field: str, value: Any) -> None:
        number = isinstance(value, int) or (self.kind is float and isinstance(value, float))
        ok = number and not isinstance(value, bool)
        if not (ok and (self.low < value if self.open_low else self.low <= value) and value <= self.high):  # NaN: no
            raise ConfigError(field, f"got {value!r}; allowed: {'an integer' if self.kind is int else 'a number'} in "
                                     f"{'(' if self.open_low else '['}{_number(self.low)}, {_number(self.high)}]")


def _number(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def check_bounds(config: config_dict.ConfigDict, bounds: Mapping[str, Bounds]) -> None:
    """Each dotted `field` of `bounds` is a number of its kind inside its range."""
    for field, b in bounds.items():
        b.check(field, lookup(config, field))


def check_choices(config: config_dict.ConfigDict, choices: Mapping[str, Iterable[Any]]) -> None:
    """Each dotted `field` of `choices` is one of its values, of the same type (`true`, not `1`)."""
    for field, allowed in choices.items():
        allowed, value = tuple(allowed), lookup(config, field)
        names = ", ".join(str(a).lower() if isinstance(a, bool) else str(a) for a in allowed)
        check(isinstance(value, type(allowed[0])) and value in allowed, field, f"got {value!r}; allowed: {names}")


def check_strings(config: config_dict.ConfigDict, fields: Iterable[str]) -> None:
    """Each dotted field is a string."""
    for field in fields:
        check(isinstance(lookup(config, field), str), field, f"got {lookup(config, field)!r}; allowed: a string")


def check_files(config: config_dict.ConfigDict, fields: tuple[str, ...]) -> None:
    """Each dotted field is a string: empty (the default file) or an existing file."""
    check_strings(config, fields)
    for field in fields:
        path = lookup(config, field)
        check(not path or os.path.isfile(path), field, f"file not found: {path!r}" + (
            "; it is a directory" if os.path.isdir(path) else ""))


_EPSILON_TABLE = ("'' (the paper's schedule scaled to total_models) or comma-separated EPSILON:COUNT pairs, epsilon in "
                  "[0, 1], count an integer >= 0, e.g. '1.0:60,0.5:20,0.1:20'")


def parse_epsilon_schedule(text: Any, field: str = "epsilon_schedule") -> tuple[tuple[float, int], ...] | None:
    """Q-learning's epsilon table as typed: '1.0:55,0.9:4' -> ((1.0, 55), (0.9, 4)); '' -> None (the paper's
    schedule, scaled). Whether the counts sum to total_models is the strategy's check (it knows the total)."""
    check(isinstance(text, str), field, f"got {text!r}; allowed: {_EPSILON_TABLE}")
    if not text.strip():
        return None
    pairs = []
    for part in text.split(","):
        eps, sep, count = part.partition(":")
        try:
            pair = (float(eps), int(count))
        except ValueError:
            pair = None
        check(bool(sep) and pair is not None and 0 <= pair[0] <= 1 and pair[1] >= 0, field,
              f"got {text!r} (entry {part.strip()!r}); allowed: {_EPSILON_TABLE}")
        pairs.append(pair)
    return tuple(pairs)


class EpsilonTable:
    """The rule of a Q-learning epsilon table typed as text (`parse_epsilon_schedule`)."""

    def check(self, field: str, value: Any) -> None:
        parse_epsilon_schedule(value, field)


# Strategy sections shared by the table protocol and the trained search (configs nb201.py, nas_search.py).
STRATEGY_BOUNDS = {
    **{f"{s}.{f}": Bounds(int, 1, 100_000) for s in ("aging_evolution", "tournament")
       for f in ("population_size", "sample_size")},
    "tournament.sample_fraction": Bounds(float, 0.0, 1.0),
    "reinforce.learning_rate": Bounds(float, 0.0, 10.0, open_low=True), "reinforce.hidden_size": Bounds(int, 1, 4096),
    "reinforce.num_layers": Bounds(int, 1, 16), "reinforce.baseline_decay": Bounds(float, 0.0, 1.0),
    "reinforce.entropy_weight": Bounds(float, 0.0, 10.0), "reinforce.temperature": Bounds(float, 0.0, 100.0),
    "reinforce.tanh_constant": Bounds(float, 0.0, 100.0),
    "qlearning.learning_rate": Bounds(float, 0.0, 1.0, open_low=True), "qlearning.discount": Bounds(float, 0.0, 1.0),
    "qlearning.initial_q": Bounds(float, -100.0, 100.0), "qlearning.replay_samples": Bounds(int, 0, 100_000),
    "qlearning.max_resamples": Bounds(int, 0, 100_000), "qlearning.epsilon_schedule": EpsilonTable(),
}


def as_setting(error: ConfigError, fields: Mapping[str, str],
               parts: Iterable[str] = ("images", "labels")) -> ConfigError:
    """A library's `ConfigError` under the setting that gave it its input (`labels` -> `data.npz`), its message
    kept; for `parts` of an input (an array of the file) the library's name stays in front: `labels: ...`."""
    field = fields.get(error.field)
    if field is None:
        return error
    return ConfigError(field, str(error) if error.field in parts else str(error).split(": ", 1)[1])
