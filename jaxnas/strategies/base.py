"""The ask/tell interface every search strategy implements.

A strategy is an immutable, hashable settings object (structural settings: space, batch size,
population size) with three pure methods over a `flax.struct.dataclass` state that holds no PRNG key:

    state = strategy.init(key)
    archs, state = strategy.ask(key, state)          # archs: (batch_size, num_positions) int32
    state, metrics = strategy.tell(state, archs, fitness)   # fitness: (batch_size,), higher is better

All three can run inside `jax.lax.scan` and be `jax.vmap`-ed over seeds. A NaN fitness (a failed
evaluation) is treated as the worst possible score, never as a number to learn from.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, Protocol

import jax
import jax.numpy as jnp

from jaxnas.common.tree import tree_where  # noqa: F401  (re-exported: older code imports it from here)
from jaxnas.spaces.base import CategoricalSpace


class Strategy(Protocol):
    space: CategoricalSpace
    batch_size: int

    def init(self, key: jax.Array) -> Any: ...

    def ask(self, key: jax.Array, state: Any) -> tuple[jax.Array, Any]: ...

    def tell(self, state: Any, archs: jax.Array, fitness: jax.Array) -> tuple[Any, dict[str, jax.Array]]: ...


def sanitize_fitness(fitness: jax.Array) -> jax.Array:
    """float32 fitness with NaN mapped to -inf, so a failed evaluation is never selected."""
    fitness = jnp.asarray(fitness, jnp.float32)
    return jnp.where(jnp.isnan(fitness), -jnp.inf, fitness)


def jitted(strategy: Strategy) -> tuple[Callable[..., Any], Callable[..., Any]]:
    """`jax.jit(strategy.ask), jax.jit(strategy.tell)`, made once per strategy: equal strategies (hashable settings
    objects) share their compiled programs, so a second search in one process (a resumed one, a baseline beside
    it) does not compile them again. Each new `jax.jit` of a bound method compiles anew (measured: 20 s per
    Q-learning `ask` in MetaQNN's space on the 2-core CPU, three times in one test)."""
    try:
        return _jitted(strategy)
    except TypeError:  # an unhashable strategy: jitted for this caller only
        return jax.jit(strategy.ask), jax.jit(strategy.tell)


@functools.lru_cache(maxsize=64)
def _jitted(strategy: Strategy) -> tuple[Callable[..., Any], Callable[..., Any]]:
    return jax.jit(strategy.ask), jax.jit(strategy.tell)
