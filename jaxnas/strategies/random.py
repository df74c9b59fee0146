"""Random search: every architecture is drawn from the space's starting distribution (`initial_sample`): uniform
(the NAS-Bench-201 baseline) unless the space defines its own (hierarchical NAS: trivial genotypes diversified by
many random mutations, Liu et al. 2018, Sec. 3.2)."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
from flax import struct

from jaxnas.spaces.base import CategoricalSpace


@struct.dataclass
class RandomState:
    num_told: jax.Array  # () int32: evaluations reported so far


@dataclasses.dataclass(frozen=True)
class RandomSearch:
    """Random sampling from the starting distribution; `tell` only counts."""

    space: CategoricalSpace
    batch_size: int = 1

    def init(self, key: jax.Array) -> RandomState:
        del key  # nothing random to initialise
        return RandomState(num_told=jnp.zeros((), jnp.int32))

    def ask(self, key: jax.Array, state: RandomState) -> tuple[jax.Array, RandomState]:
        return self.space.initial_sample(key, (self.batch_size,)), state

    def tell(self, state: RandomState, archs: jax.Array, fitness: jax.Array) -> tuple[RandomState, dict[str, jax.Array]]:
        del fitness
        return state.replace(num_told=state.num_told + archs.shape[0]), {}
