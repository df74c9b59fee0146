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
