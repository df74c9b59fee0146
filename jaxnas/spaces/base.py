"""Categorical search spaces: an architecture is a fixed-length integer vector, one choice per position."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np


@dataclasses.dataclass(frozen=True)
class CategoricalSpace:
    """A space of `num_positions` independent choices among `num_choices` options each.

    Architectures are int32 arrays of shape `(..., num_positions)`, so populations stack and vmap.
    The object is immutable and hashable: it can be closed over or passed as a static argument.
    """

    name: str
    num_positions: int
    num_choices: int
    # What entry points need beyond the choices (kept out of equality, hashing and repr): how to print an
    # architecture, and the factory of its candidate network, `network(num_classes=..., **options)` -> a Flax
    # module applied as `model.apply(variables, images, arch, train=...)` (None: a table-only space).
    printer: Callable[[Any], str] | None = dataclasses.field(default=None, compare=False, repr=False)
    network: Callable[..., Any] | None = dataclasses.field(default=None, compare=False, repr=False)

    def to_string(self, arch: Any) -> str:
        """The architecture as its space prints it (default: the choice ids as digits)."""
        if self.printer is not None:
            return self.printer(arch)
        return "".join(str(int(c)) for c in np.asarray(arch).reshape(-1))

    @property
    def size(self) -> int:
        """Number of distinct architectures."""
        return self.num_choices**self.num_positions

    def sample(self, key: jax.Array, shape: tuple[int, ...] = ()) -> jax.Array:
        """Uniform samples, shape `shape + (num_positions,)`."""
        return jax.random.randint(key, shape + (self.num_positions,), 0, self.num_choices, dtype=jnp.int32)

    def mutate(self, key: jax.Array, arch: jax.Array) -> jax.Array:
        """Changes exactly one position, chosen uniformly, to a different choice chosen uniformly.

        This is the mutation of regularized evolution on NAS-Bench-201 (Dong & Yang 2020, `mutate_arch`:
        one edge, `while new_op == old_op: resample`), written without a loop: adding an offset in
        [1, num_choices) modulo num_choices is uniform over the other choices.
        """
        k_pos, k_off = jax.random.split(key)
        pos = jax.random.randint(k_pos, arch.shape[:-1], 0, self.num_positions)  # (...)
        offset = jax.random.randint(k_off, arch.shape[:-1], 1, self.num_choices)  # (...)
        hit = jnp.arange(self.num_positions) == pos[..., None]  # (..., L)
        return jnp.where(hit, (arch + offset[..., None]) % self.num_choices, arch).astype(jnp.int32)

    def encode(self, arch: jax.Array) -> jax.Array:
        """Integer code in [0, size): the architecture read as a base-`num_choices` number, first position most significant."""
        weights = self.num_choices ** jnp.arange(self.num_positions - 1, -1, -1)
        return jnp.sum(arch.astype(jnp.int32) * weights, axis=-1)

    def decode(self, code: jax.Array) -> jax.Array:
        """Inverse of `encode`: shape `code.shape + (num_positions,)`."""
        code = jnp.asarray(code, jnp.int32)
        weights = self.num_choices ** jnp.arange(self.num_positions - 1, -1, -1)
        return ((code[..., None] // weights) % self.num_choices).astype(jnp.int32)
