"""Weight sharing: a one-shot supernet trained once, candidates scored with inherited weights.

The NAS-Bench-201 network takes its architecture as an input, so the same parameters serve every
cell: that *is* the supernet. It is trained with uniform single-path sampling (Guo et al., "Single
Path One-Shot Neural Architecture Search with Uniform Sampling", ECCV 2020; Bender et al., ICML 2018):
every SGD step draws one architecture uniformly and updates only the weights on that path. A
candidate is then scored by running the supernet with its architecture, without training.

Batch norm: the supernet's running statistics mix many paths, so candidates are evaluated with
batch statistics of the evaluation data (SPOS recalibrates BN statistics per candidate for the same
reason).
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxnas.evaluation.population import Candidate, PopulationTrainer
from jaxnas.spaces.base import CategoricalSpace


def train_supernet(trainer: PopulationTrainer, space: CategoricalSpace, steps: int, seed: int = 0) -> tuple[Candidate, np.ndarray, float]:
    """Trains one supernet for `steps` single-path steps; returns it, its loss curve and the wall time."""
    key = jax.random.key(seed)
    path_key, init_key = jax.random.fold_in(key, 1), jax.random.fold_in(key, 2)
    data_key = jax.random.fold_in(key, 2**31 - 1)
    sample = lambda step: space.sample(jax.random.fold_in(path_key, step))  # noqa: E731

    @jax.jit
    def run(data):
        cand = trainer.init_candidate(init_key, sample(0), data, total_steps=steps)
        return trainer.train_candidate(cand, sample, data, data_key, steps, total_steps=steps)

    start = time.perf_counter()
    cand, losses = jax.block_until_ready(run(trainer.data))
    return cand, np.asarray(losses), time.perf_counter() - start


def score_inherited(trainer: PopulationTrainer, supernet: Candidate, archs: np.ndarray, split: str = "valid") -> np.ndarray:
    """Accuracy (percent) of each architecture (P, L) with the supernet's weights, BN on batch statistics."""
    x, y = getattr(trainer.data, f"{split}_x"), getattr(trainer.data, f"{split}_y")

    @jax.jit
    def score(archs):
        def one(arch):
            logits, _ = trainer.model.apply({"params": supernet.params, "batch_stats": supernet.batch_stats}, x, arch,
                                            train=True, mutable=["batch_stats"])
            return 100.0 * jnp.mean(jnp.argmax(logits, -1) == y), optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

        return jax.lax.map(one, archs)  # one candidate at a time: evaluation memory stays that of one network

    return np.asarray(score(jnp.asarray(archs, jnp.int32))[0])
