"""NEAT's search state: the pytree `Neat.init` / `ask` / `tell` carry from generation to generation.

Stanley & Miikkulainen, "Evolving Neural Networks through Augmenting Topologies", Evolutionary
Computation 10(2):99-127, 2002. Genomes are padded arrays (`jaxnas.spaces.neat`); species live in
`max_species` slots, each with its representative, its age order and its stagnation counters.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct

from jaxnas.spaces.neat import Genome

BIG = jnp.iinfo(jnp.int32).max  # "no such species": the order of a dead slot, a draw's upper bound


@struct.dataclass
class NeatState:
    genomes: Genome  # (P, ...) the current generation
    species: jax.Array  # (P,) int32 species slot of each genome
    fitness: jax.Array  # (P,) float32 told fitness (-inf before `tell`)
    told: jax.Array  # () bool: fitness of `genomes` has been told
    rep: Genome  # (S, ...) each species' representative
    alive: jax.Array  # (S,) bool
    sp_order: jax.Array  # (S,) int32 creation number ("first species" = smallest)
    sp_best: jax.Array  # (S,) float32 best fitness the species ever had
    sp_since: jax.Array  # (S,) int32 generations since it improved
    pop_best: jax.Array  # () float32 best fitness ever
    pop_since: jax.Array  # () int32 generations since it improved
    best: Genome  # the best genome ever
    next_node: jax.Array  # () int32 next hidden node id
    next_innov: jax.Array  # () int32 next innovation number
    next_species: jax.Array  # () int32
    generation: jax.Array  # () int32 generations told
    threshold: jax.Array  # () float32 compatibility threshold in use (moves towards `Neat.target_species` if set)

