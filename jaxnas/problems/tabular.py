"""A tabular benchmark as a jit-able objective: every architecture of a space, looked up by its code.

`Table` is what the budgeted search protocol (`jaxnas.search.BudgetedSearch`) queries; each benchmark's loader
(`nb201_table.py`, `macro_table.py`) fills one, and `jaxnas.problems.BENCHMARKS` says how to load and print it.
Loaders read every number through `table_number`, so a user's table with an accuracy of 1000, a NaN, a negative
time or a word where a number belongs is refused at load in one line naming the file, the row and the column.
Neither shipped table documents missing values (both are complete), so no cell may be NaN.
"""

from __future__ import annotations

import os

import dataclasses
import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from jaxnas.common.errors import ConfigError
from jaxnas.spaces.base import CategoricalSpace

PERCENT = (0.0, 100.0)  # accuracies as the benchmarks' files give them (the loaders divide by 100)
NONNEGATIVE = (0.0, math.inf)  # parameter counts, FLOPs
POSITIVE = (0.0, math.inf, True)  # costs: a zero cost would let a budget buy unboundedly many evaluations


def table_number(value: Any, bounds: tuple, *, field: str, where: str, column: str, integer: bool = False) -> float:
    """One table cell as a finite float within `bounds` = (low, high[, low_open]); otherwise a one-line ConfigError.

    `value` may be a number or (CSV) its text. The error reads `FIELD: WHERE, column COLUMN: got VALUE; allowed
    ...`, where `field` is the setting that named the file and `where` names the file and the row
    (e.g. `/x/t.csv: line 12 (arch |nor_conv_3x3~0|...)`).
    """
    low, high, low_open = (*bounds, False)[:3]
    number: float | None = None
    if isinstance(value, (str, int, float)) and not isinstance(value, bool):
        try:
            number = float(value.strip() if isinstance(value, str) else value)
        except (ValueError, OverflowError):  # a word; an integer beyond float range
            number = math.inf if isinstance(value, int) else None
    ok = number is not None and math.isfinite(number) and (low < number if low_open else low <= number) \
        and number <= high and (not integer or number.is_integer())
    if not ok:
        if math.isfinite(high):
            span = f"{'an integer in ' if integer else ''}{'(' if low_open else '['}{low:g}, {high:g}]"
        else:
            span = f"{'an integer' if integer else 'a finite number'} {'>' if low_open else '>='} {low:g}"
        shown = repr(value)[:60] if number is None else repr(number)
        raise ConfigError(field, f"{where}, column {column}: got {shown}; allowed {span}")
    return number


@struct.dataclass
class Evaluation:
    """What one table query returns; every field has the architectures' batch shape."""

    valid: jax.Array  # the search's fitness (NAS-Bench-201: validation accuracy, a fraction)
    test: jax.Array  # reported only, never used to choose (NAS-Bench-201: test accuracy, a fraction)
    cost: jax.Array  # what the evaluation is charged against the budget (seconds, or 1 per evaluation)
    index: jax.Array  # the benchmark's own index of the architecture


@struct.dataclass
class Table:
    """All architectures of `space`, ordered by `space.encode`, as device arrays (a pytree: pass it to jit)."""

    valid: jax.Array  # (N,) float32
    test: jax.Array  # (N,) float32
    cost: jax.Array  # (N,) float32
    index: jax.Array  # (N,) int32: benchmark index of each code
    code: jax.Array  # (N,) int32: code of each benchmark index (inverse permutation)
    space: CategoricalSpace = struct.field(pytree_node=False)
    extras: dict[str, jax.Array] = struct.field(default_factory=dict)  # (N,) per-architecture columns (FLOPs...)

    def query(self, arch: jax.Array) -> Evaluation:
        """Looks up architectures of shape (..., num_positions); jit- and vmap-able."""
        code = self.space.encode(arch)
        return Evaluation(valid=self.valid[code], test=self.test[code], cost=self.cost[code], index=self.index[code])

    def index_of(self, arch: jax.Array) -> jax.Array:
        """Benchmark index of architectures of shape (..., num_positions)."""
        return self.index[self.space.encode(arch)]

    def arch_of(self, index: jax.Array) -> jax.Array:
        """Architecture (..., num_positions) of benchmark indices."""
        return self.space.decode(self.code[jnp.asarray(index)])

    @property
    def min_cost(self) -> float:
        return float(jnp.min(self.cost))

    @property
    def best_index(self) -> int:
        """Benchmark index of the architecture with the best fitness (ties: the lowest code)."""
        return int(self.index[jnp.argmax(self.valid)])


@dataclasses.dataclass(frozen=True)
class TabularBenchmark:
    """A `BENCHMARKS` entry: everything the table protocol's entry point needs to run and report a benchmark.

    `load(path, **options)` returns a `Table` (a missing or malformed file raises ConfigError); the options come
    from the entry point's config section of the benchmark's name. Architectures print through `space`.
    """

    name: str
    title: str  # for headings and plots: "NAS-Bench-201, CIFAR-10-valid"
    space: CategoricalSpace
    load: Callable[..., Table]
    budget_unit: str  # "simulated s" or "evaluations": what `Table.cost` counts
    fitness: str  # what `valid` holds, for reports
    reported: str  # what `test` holds, for reports
    note: str = ""  # caveats printed under the results table
    published: dict[str, tuple[float, float, float, float]] = dataclasses.field(default_factory=dict)


def file_stamp(path: str) -> tuple[int, int] | None:
    """(modification time in ns, size) of a file, None if it cannot be read: part of a table cache's key, so a
    table file edited in place is read again, also within one process (a notebook)."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size
