"""Evolution with tournament selection, with and without aging.

Aging (regularized) evolution: Real, Aggarwal, Huang & Le, "Regularized Evolution for Image Classifier
Architecture Search", AAAI 2019, Algorithm 1. A population of P random architectures is evaluated;
then each cycle samples S individuals uniformly *with replacement* (as in Algorithm 1 and in the
NAS-Bench-201 code, `random.choice` S times), mutates the best of the sample, adds the child, and
removes the *oldest* individual. Defaults P=10, S=3 are those of the NAS-Bench-201 paper's REA runs
(`R-EA.sh`: `--ea_population 10 --ea_sample_size 3`).

Plain tournament selection (Liu, Simonyan, Vinyals, Fernando & Kavukcuoglu, "Hierarchical
Representations for Efficient Architecture Search", ICLR 2018, Sec. 3.2): the same tournament and
mutation, but nothing is removed by age: every evaluated architecture stays in the population, which
grows. Liu et al. use a tournament of 5% of the current population (`sample_fraction=0.05`); a fixed
`sample_size` is also accepted. Fixed shapes need a capacity: once it is full (only if more
evaluations are made than `capacity`), a child replaces the worst individual. Document-level
deviation: none within capacity.

A batch of B > 1 children per `ask` runs B independent tournaments on the same population, and
`tell` adds the B children and removes the B oldest members; B = 1 is the published sequential
algorithm. Deviation (batched aging only): Real et al.'s many workers report one at a time, each
report removing one oldest member; here B reports arrive together. For this to stay aging evolution,
and not become generational replacement (B = P replaces the whole population at every `tell`), aging
refuses B > P / 2: every member then survives at least two `tell`s and is a tournament candidate for
at least two batches. Plain tournament selection removes nothing by age and has no such limit.
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
from flax import struct

from jaxnas.common.errors import check, check_positive
from jaxnas.spaces.base import CategoricalSpace
from jaxnas.strategies.base import sanitize_fitness


@struct.dataclass
class EvolutionState:
    archs: jax.Array  # (N, L) int32: the population; N = population_size (aging) or capacity (no aging)
    fitness: jax.Array  # (N,) float32; -inf in empty slots
    born: jax.Array  # (N,) int32: evaluation number that created each member, -1 if empty
    count: jax.Array  # () int32: evaluations reported so far


@dataclasses.dataclass(frozen=True)
class Evolution:
    """Tournament-selection evolution. `aging=True` is regularized evolution; `False` keeps everyone."""

    space: CategoricalSpace
    population_size: int = 10
    sample_size: int = 3
    aging: bool = True
    capacity: int | None = None  # no-aging only: maximum population kept (default 1000)
    sample_fraction: float | None = None  # no-aging only: tournament = ceil(fraction * current population)
    batch_size: int = 1

    def __post_init__(self):
        check_positive("population_size", self.population_size, integer=True)
        check_positive("sample_size", self.sample_size, integer=True)
        check_positive("batch_size", self.batch_size, integer=True)
        check(self.sample_size <= self.population_size, "sample_size",
              f"got {self.sample_size}; allowed: <= population_size ({self.population_size})")
        if self.sample_fraction is not None:
            check(0 < self.sample_fraction <= 1, "sample_fraction", f"got {self.sample_fraction}; allowed: in (0, 1]")
        if self.aging:
            check(2 * self.batch_size <= self.population_size, "batch_size",
                  f"got {self.batch_size}; aging evolution needs batch_size <= population_size / 2 "
                  f"({self.population_size // 2} for population_size {self.population_size}), else each batch "
                  "replaces most of the population (generational replacement, not aging)")
        else:
            check(self.slots >= self.population_size, "capacity",
                  f"got {self.capacity}; allowed: >= population_size ({self.population_size})")

    @property
    def slots(self) -> int:
        """Static number of population slots."""
        if self.aging:
            return self.population_size
        return self.capacity if self.capacity is not None else 1000

    @property
    def max_sample(self) -> int:
        """Static upper bound on the tournament size."""
        if self.sample_fraction is None:
            return self.sample_size
        return max(1, math.ceil(self.sample_fraction * self.slots))

    def init(self, key: jax.Array) -> EvolutionState:
        del key  # the initial population is drawn by `ask`, so its evaluation goes through the caller
        n, length = self.slots, self.space.num_positions
        return EvolutionState(
            archs=jnp.zeros((n, length), jnp.int32),
            fitness=jnp.full((n,), -jnp.inf, jnp.float32),
            born=jnp.full((n,), -1, jnp.int32),
            count=jnp.zeros((), jnp.int32),
        )

    def _tournament(self, key: jax.Array, state: EvolutionState) -> jax.Array:
        """Index of the winner of one tournament over the filled slots."""
        filled = jnp.minimum(state.count, self.slots)
        idx = jax.random.randint(key, (self.max_sample,), 0, jnp.maximum(filled, 1))  # with replacement
        if self.sample_fraction is None:
            used = jnp.arange(self.max_sample) < self.sample_size
        else:
            size = jnp.maximum(1, jnp.ceil(self.sample_fraction * filled).astype(jnp.int32))
            used = jnp.arange(self.max_sample) < size
        scores = jnp.where(used, state.fitness[idx], -jnp.inf)
        return idx[jnp.argmax(scores)]  # ties: the first sampled

    def ask(self, key: jax.Array, state: EvolutionState) -> tuple[jax.Array, EvolutionState]:
        k_random, k_select, k_mutate = jax.random.split(key, 3)
        random_archs = self.space.initial_sample(k_random, (self.batch_size,))  # (B, L): the starting distribution
        parents = jax.vmap(self._tournament, in_axes=(0, None))(jax.random.split(k_select, self.batch_size), state)
        children = self.space.mutate(k_mutate, state.archs[parents])  # (B, L)
        filling = state.count + jnp.arange(self.batch_size) < self.population_size  # (B,)
        return jnp.where(filling[:, None], random_archs, children), state

    def tell(self, state: EvolutionState, archs: jax.Array, fitness: jax.Array) -> tuple[EvolutionState, dict[str, jax.Array]]:
        fitness = sanitize_fitness(fitness)
        number = state.count + jnp.arange(archs.shape[0])  # (B,) evaluation numbers
        if self.aging:
            slots = number % self.slots  # circular buffer: the B slots written next hold the B oldest (B <= P/2)
        else:
            worst = jax.lax.top_k(-state.fitness, archs.shape[0])[1]  # used only once capacity is exhausted
            slots = jnp.where(number < self.slots, number, worst)
        new = EvolutionState(
            archs=state.archs.at[slots].set(archs.astype(jnp.int32)),
            fitness=state.fitness.at[slots].set(fitness),
            born=state.born.at[slots].set(number),
            count=state.count + archs.shape[0],
        )
        return new, {}


def aging_evolution(space: CategoricalSpace, population_size: int = 10, sample_size: int = 3, batch_size: int = 1) -> Evolution:
    """Regularized evolution (Real et al. 2019) with the NAS-Bench-201 defaults P=10, S=3."""
    return Evolution(space, population_size, sample_size, aging=True, batch_size=batch_size)


def tournament(space: CategoricalSpace, population_size: int = 10, sample_size: int = 3, capacity: int = 1000,
               sample_fraction: float | None = None, batch_size: int = 1) -> Evolution:
    """Plain tournament selection without aging (Liu et al. 2018): the population only grows."""
    return Evolution(space, population_size, sample_size, aging=False, capacity=capacity,
                     sample_fraction=sample_fraction, batch_size=batch_size)
