"""Pytree helpers shared by the search loops and the trainers."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp


def tree_where(pred: jax.Array, on_true: Any, on_false: Any) -> Any:
    """Selects between two pytrees of the same structure with a scalar predicate (a step not taken, a
    non-finite update refused, optimiser moments reset at a phase change)."""
    return jax.tree.map(lambda a, b: jnp.where(pred, a, b), on_true, on_false)
