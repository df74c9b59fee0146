"""Categorical search spaces: an architecture is a fixed-length integer vector, one choice per position.

One class covers every shape of discrete space the strategies search:

* the uniform case (NAS-Bench-201, NAS-Bench-Macro): `num_choices` options at every position, every
  combination valid;
* a different number of options per position (`choices`): a NASNet cell slot's input index ranges over the
  hidden states made so far, its op over the op list; a hierarchical motif's levels have different op sets;
* a validity rule over earlier positions (`rule`): MetaQNN's allowed layer transitions, a padded chain that
  must stay terminated once it ends.

Every consumer sees one interface: `masks(arch)` gives, for each position, which of the `num_choices` ids
are allowed there given the positions before it; `sample`, `mutate` and REINFORCE's controller never
produce a masked id; `encode`/`decode` number architectures in mixed radix.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxnas.common.errors import check

# A rule: `rule(arch, position) -> (..., num_choices) bool`, the ids allowed at `position` (a Python int)
# given `arch[..., :position]` (later entries of `arch` are arbitrary and must not be read). It must allow
# at least one id after every valid prefix. Written with jnp so that it runs under jit and vmap.
Rule = Callable[[jax.Array, int], jax.Array]

MAX_PREFIX_STATES = 1_000_000  # tabular agents: the prefix-tree default refuses spaces with more states than this


@dataclasses.dataclass(frozen=True)
class AgentStates:
    """How a tabular agent (MetaQNN's Q-learning) sees a partly built architecture.

    `index(arch, position)` -> (...) int32 in [0, num_states): the state the agent is in before choosing
    `position`, read from `arch[..., :position]` only. `decisions(arch)` -> (...) int32: how many positions of
    `arch` are decisions; the rest are forced padding after a terminating choice (None: every position).
    Two positions may share a state (MetaQNN's states are (depth, layer, representation-size bin), not prefixes).
    """

    num_states: int
    index: Callable[[jax.Array, int], jax.Array]
    decisions: Callable[[jax.Array], jax.Array] | None = None


@dataclasses.dataclass(frozen=True)
class CategoricalSpace:
    """A space of `num_positions` choices; position i has `choices[i]` options (default `num_choices` each).

    `num_choices` is the largest option count: masks and a controller's logits have that width. Architectures
    are int32 arrays of shape `(..., num_positions)`, so populations stack and vmap. The object is immutable
    and hashable: it can be closed over or passed as a static argument.
    """

    name: str
    num_positions: int
    num_choices: int
    choices: tuple[int, ...] | None = None  # options per position; None: `num_choices` at every position
    rule: Rule | None = None  # allowed ids given the earlier positions; None: every combination is valid
    # What entry points need beyond the choices (kept out of equality, hashing and repr): how to print an
    # architecture, and the factory of its candidate network, `network(num_classes=..., **options)` -> a Flax
    # module applied as `model.apply(variables, images, arch, train=...)` (None: a table-only space).
    printer: Callable[[Any], str] | None = dataclasses.field(default=None, compare=False, repr=False)
    network: Callable[..., Any] | None = dataclasses.field(default=None, compare=False, repr=False)
    # The states of a tabular agent (None: the prefix tree, `prefix_states`, where it has at most MAX_PREFIX_STATES).
    agent_states: AgentStates | None = dataclasses.field(default=None, compare=False, repr=False)
    # Builds this space for other settings (`factory(image_size=..., **options)`: MetaQNN's rules depend on the
    # input size); None: the space has no settings.
    factory: Callable[..., CategoricalSpace] | None = dataclasses.field(default=None, compare=False, repr=False)
    # The space's own mutation, `mutation(key, arch (..., L)) -> arch`, used by `mutate` (AmoebaNet's hidden-state /
    # op / identity mutations, hierarchical NAS's level-wise edge mutation); None: the generic one-position mutation.
    mutation: Callable[[jax.Array, jax.Array], jax.Array] | None = dataclasses.field(default=None, compare=False,
                                                                                      repr=False)
    # The distribution a search starts from, `initial(key, shape) -> (*shape, L)`, used by `initial_sample` (the
    # first population of evolution, random search's draws, the random baseline); None: `sample`, uniform.
    # Hierarchical NAS starts from trivial genotypes diversified by many random mutations (Liu et al. 2018, Sec. 3.2).
    initial: Callable[[jax.Array, tuple[int, ...]], jax.Array] | None = dataclasses.field(default=None, compare=False,
                                                                                          repr=False)

    def __post_init__(self):
        check(self.num_positions >= 1, f"space {self.name}: num_positions", f"got {self.num_positions}; allowed: >= 1")
        if self.choices is not None:
            check(len(self.choices) == self.num_positions, f"space {self.name}: choices",
                  f"got {len(self.choices)} counts for {self.num_positions} positions")
            check(all(1 <= c <= self.num_choices for c in self.choices), f"space {self.name}: choices",
                  f"got {self.choices}; every count must be in [1, num_choices={self.num_choices}]")
        check(self.num_choices >= 2, f"space {self.name}: num_choices", f"got {self.num_choices}; allowed: >= 2")

    # --- shape of the space -----------------------------------------------------------------------------------
    @property
    def counts(self) -> tuple[int, ...]:
        """Options per position."""
        return self.choices if self.choices is not None else (self.num_choices,) * self.num_positions

    @property
    def uniform(self) -> bool:
        """True when every position has all `num_choices` options and every combination is valid."""
        return self.rule is None and all(c == self.num_choices for c in self.counts)

    @property
    def size(self) -> int:
        """Number of integer codes (`encode`'s range): the architectures when there is no rule, an upper bound
        on the valid ones when there is."""
        return math.prod(self.counts)

    def to_string(self, arch: Any) -> str:
        """The architecture as its space prints it (default: the choice ids joined by '-')."""
        if self.printer is not None:
            return self.printer(arch)
        ids = np.asarray(arch).reshape(-1)
        return ("" if self.num_choices <= 10 else "-").join(str(int(c)) for c in ids)

    # --- validity ---------------------------------------------------------------------------------------------
    def position_mask(self, arch: jax.Array, position: int) -> jax.Array:
        """(..., num_choices) bool: the ids allowed at `position` given `arch[..., :position]`."""
        arch = jnp.asarray(arch, jnp.int32)
        mask = jnp.broadcast_to(jnp.arange(self.num_choices) < self.counts[position], arch.shape[:-1] + (self.num_choices,))
        if self.rule is not None:
            mask = mask & self.rule(arch, position)
        return mask

    def masks(self, arch: jax.Array) -> jax.Array:
        """(..., num_positions, num_choices) bool: `position_mask` of every position of `arch`."""
        return jnp.stack([self.position_mask(arch, p) for p in range(self.num_positions)], axis=-2)

    def is_valid(self, arch: jax.Array) -> jax.Array:
        """(...) bool: every id of `arch` is allowed at its position."""
        arch = jnp.asarray(arch, jnp.int32)
        in_range = (arch >= 0) & (arch < self.num_choices)
        taken = jnp.take_along_axis(self.masks(arch), jnp.clip(arch, 0, self.num_choices - 1)[..., None], axis=-1)[..., 0]
        return jnp.all(in_range & taken, axis=-1)

    # --- sampling and mutation --------------------------------------------------------------------------------
    def sample(self, key: jax.Array, shape: tuple[int, ...] = ()) -> jax.Array:
        """Samples of shape `shape + (num_positions,)`: each position uniform over its allowed ids given the
        earlier ones (uniform over the space when there is no rule)."""
        if self.uniform:
            return jax.random.randint(key, shape + (self.num_positions,), 0, self.num_choices, dtype=jnp.int32)
        arch = jnp.zeros(shape + (self.num_positions,), jnp.int32)
        for p, k in enumerate(jax.random.split(key, self.num_positions)):
            arch = arch.at[..., p].set(_uniform_among(k, self.position_mask(arch, p)))
        return arch

    def initial_sample(self, key: jax.Array, shape: tuple[int, ...] = ()) -> jax.Array:
        """Samples of the space's starting distribution (`initial` where it has one, else `sample`)."""
        if self.initial is not None:
            return jnp.asarray(self.initial(key, shape), jnp.int32)
        return self.sample(key, shape)

    def mutate(self, key: jax.Array, arch: jax.Array) -> jax.Array:
        """The space's own `mutation` where it has one; otherwise: changes one position, chosen uniformly among
        those with another allowed id, to another allowed id chosen uniformly; later positions that the change makes invalid are redrawn uniformly among their
        allowed ids (only a `rule` can make them so).

        The uniform case is the mutation of regularized evolution on NAS-Bench-201 (Dong & Yang 2020,
        `mutate_arch`: one edge, `while new_op == old_op: resample`), written without a loop: adding an offset
        in [1, num_choices) modulo num_choices is uniform over the other choices.
        """
        arch = jnp.asarray(arch, jnp.int32)
        if self.mutation is not None:
            return self.mutation(key, arch).astype(jnp.int32)
        if self.uniform:
            k_pos, k_off = jax.random.split(key)
            pos = jax.random.randint(k_pos, arch.shape[:-1], 0, self.num_positions)  # (...)
            offset = jax.random.randint(k_off, arch.shape[:-1], 1, self.num_choices)  # (...)
            hit = jnp.arange(self.num_positions) == pos[..., None]  # (..., L)
            return jnp.where(hit, (arch + offset[..., None]) % self.num_choices, arch).astype(jnp.int32)
        k_pos, k_new, k_fix = jax.random.split(key, 3)
        current = jax.nn.one_hot(arch, self.num_choices, dtype=bool)  # (..., L, C)
        alternatives = self.masks(arch) & ~current  # (..., L, C)
        pos = _uniform_among(k_pos, alternatives.any(-1))  # (...); position 0 if none can change
        alt_at_pos = jnp.take_along_axis(alternatives, pos[..., None, None], axis=-2)[..., 0, :]  # (..., C)
        new = jnp.where(alt_at_pos.any(-1), _uniform_among(k_new, alt_at_pos), jnp.take_along_axis(arch, pos[..., None], -1)[..., 0])
        arch = jnp.where(jnp.arange(self.num_positions) == pos[..., None], new[..., None], arch)
        if self.rule is not None:
            for p, k in enumerate(jax.random.split(k_fix, self.num_positions)):
                mask = self.position_mask(arch, p)
                ok = jnp.take_along_axis(mask, arch[..., p:p + 1], -1)[..., 0]
                arch = arch.at[..., p].set(jnp.where(ok, arch[..., p], _uniform_among(k, mask)))
        return arch.astype(jnp.int32)

    def states(self) -> AgentStates:
        """The tabular agent's view of this space: its own `agent_states`, else the prefix tree."""
        return self.agent_states if self.agent_states is not None else prefix_states(self)

    # --- numbering --------------------------------------------------------------------------------------------
    def _radix(self) -> jax.Array:
        """Place value of each position: the first position is the most significant digit."""
        places = np.cumprod((1,) + self.counts[::-1])[:-1][::-1].copy()
        return jnp.asarray(places, jnp.int32)

    def encode(self, arch: jax.Array) -> jax.Array:
        """Integer code in [0, size): the architecture read as a mixed-radix number (position i has base
        `counts[i]`), first position most significant; a base-`num_choices` number in the uniform case."""
        if self.uniform:
            weights = self.num_choices ** jnp.arange(self.num_positions - 1, -1, -1)
            return jnp.sum(arch.astype(jnp.int32) * weights, axis=-1)
        return jnp.sum(jnp.asarray(arch, jnp.int32) * self._radix(), axis=-1)

    def decode(self, code: jax.Array) -> jax.Array:
        """Inverse of `encode`: shape `code.shape + (num_positions,)`."""
        code = jnp.asarray(code, jnp.int32)
        if self.uniform:
            weights = self.num_choices ** jnp.arange(self.num_positions - 1, -1, -1)
            return ((code[..., None] // weights) % self.num_choices).astype(jnp.int32)
        return ((code[..., None] // self._radix()) % jnp.asarray(self.counts, jnp.int32)).astype(jnp.int32)


def prefix_states(space: CategoricalSpace) -> AgentStates:
    """The prefix tree as agent states: before position p the state is the choices made so far, numbered as
    `offset[p] + mixed-radix code of arch[:p]` (the root, then every 1-prefix, ...). Exact for any space: on
    NAS-Bench-201 the state before edge e is (e, the ops of edges 0..e-1), 3,906 states in all."""
    counts = space.counts
    sizes = [math.prod(counts[:p]) for p in range(space.num_positions)]
    total = sum(sizes)
    check(total <= MAX_PREFIX_STATES, f"space {space.name}: agent_states",
          f"got a prefix tree of {total:,} states; allowed: at most {MAX_PREFIX_STATES:,} (give the space its own "
          f"AgentStates, as MetaQNN's does)")
    offsets = np.cumsum([0] + sizes[:-1]).tolist()

    def index(arch: jax.Array, position: int) -> jax.Array:
        arch = jnp.asarray(arch, jnp.int32)
        code = jnp.zeros(arch.shape[:-1], jnp.int32)
        for p in range(position):
            code = code * counts[p] + arch[..., p]
        return (offsets[position] + code).astype(jnp.int32)

    return AgentStates(num_states=total, index=index)


def _uniform_among(key: jax.Array, mask: jax.Array) -> jax.Array:
    """(...) int32: an index drawn uniformly among the True entries of `mask` (..., C); 0 where none is True."""
    return jax.random.categorical(key, jnp.where(mask, 0.0, -jnp.inf)).astype(jnp.int32)
