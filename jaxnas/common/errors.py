"""Input validation at the edge: every message names the field and what is allowed."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


class ConfigError(ValueError):
    """A user-supplied setting is invalid. The message names the field and the allowed values."""

    def __init__(self, field: str, message: str):
        self.field = field
        super().__init__(f"{field}: {message}")


def check(condition: bool, field: str, message: str) -> None:
    """Raises `ConfigError(field, message)` unless `condition` holds."""
    if not condition:
        raise ConfigError(field, message)


def check_choice(field: str, value: Any, allowed: Iterable[Any]) -> None:
    """Checks that `value` is one of `allowed`."""
    allowed = list(allowed)
    if value not in allowed:
        raise ConfigError(field, f"got {value!r}; allowed: {', '.join(map(str, allowed))}")


def check_positive(field: str, value: Any, *, integer: bool = False) -> None:
    """Checks that `value` is a number > 0 (and an integer if `integer`)."""
    kind = "an integer" if integer else "a number"
    ok = isinstance(value, int) if integer else isinstance(value, (int, float))
    if isinstance(value, bool) or not ok or not value > 0:
        raise ConfigError(field, f"got {value!r}; allowed: {kind} > 0")


def check_nonnegative_int(field: str, value: Any) -> None:
    """Checks that `value` is an integer >= 0 (not a bool)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(field, f"got {value!r}; allowed: an integer >= 0")


def check_range(field: str, value: Any, low: float, high: float) -> None:
    """Checks `low <= value <= high`."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise ConfigError(field, f"got {value!r}; allowed: a number in [{low}, {high}]")
