"""Image classification as the population engine's objective: the loss it trains on and the metric it reports.

The engine (`jaxnas.evaluation.population.PopulationTrainer`) takes any object with these two methods, so a
detector's loss and mAP-like score, or a searched input size's objective, plug in the same way.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import optax


@dataclasses.dataclass(frozen=True)
class Classification:
    """Softmax cross-entropy on integer labels (the NAS-Bench-201 recipe's loss); metric: top-1 accuracy, a fraction."""

    def loss(self, logits: jax.Array, labels: jax.Array) -> jax.Array:
        """Mean cross-entropy over the batch, a scalar to minimise."""
        return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()

    def metric(self, logits: jax.Array, labels: jax.Array) -> jax.Array:
        """Top-1 accuracy as a fraction in [0, 1], a scalar to maximise (the search's fitness)."""
        return jnp.mean(jnp.argmax(logits, -1) == labels)
