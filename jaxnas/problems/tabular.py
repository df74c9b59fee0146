"""A tabular benchmark as a jit-able objective: every architecture of a space, looked up by its code.

`Table` is what the budgeted search protocol (`jaxnas.search.BudgetedSearch`) queries; each benchmark's loader
(`nb201_table.py`, `macro_table.py`) fills one, and `jaxnas.problems.BENCHMARKS` says how to load and print it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import jax
import jax.numpy as jnp
from flax import struct

from jaxnas.spaces.base import CategoricalSpace


@struct.dataclass
class Evaluation:
    """What one table query returns; every field has the architectures' batch shape."""

    valid: jax.Array  # the search's fitness (NAS-Bench-201: validation accuracy, percent)
    test: jax.Array  # reported only, never used to choose (NAS-Bench-201: test accuracy, percent)
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
