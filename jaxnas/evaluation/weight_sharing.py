"""Weight sharing: a one-shot supernet trained once, candidates scored with inherited weights.

A candidate network here takes its architecture as an input, so the same parameters serve every
architecture: that *is* the supernet. It is trained with uniform single-path sampling (Guo et al., "Single
Path One-Shot Neural Architecture Search with Uniform Sampling", ECCV 2020; Bender et al., ICML 2018):
every SGD step draws one architecture uniformly and updates only the weights on that path. A
candidate is then scored by running the supernet with its architecture, without training.

Which weights a step updates: the published implementations are PyTorch, where a parameter that the
sampled path did not use has no gradient (`.grad is None`) and the optimiser skips it entirely: no
weight decay, no momentum step, its momentum buffer untouched. Here every parameter is a leaf of one
tree and every leaf gets a gradient (zero off the path), so coupled weight decay and momentum would
move every weight. The network's `path_mask(params, arch)` names the weights the sampled path uses (for
NAS-Bench-201: `jaxnas.models.nb201_surgery.path_mask`) and the step keeps every other weight *and its
momentum buffer* bit-identical (`off_path="frozen"`, the default; `"decayed"` is the plain optimiser step,
for comparison).

Batch norm: the supernet's running statistics mix many paths, so candidates are evaluated with
batch statistics of the evaluation data (SPOS recalibrates BN statistics per candidate for the same
reason). Running statistics of unused edges are not updated during training (`BatchNorm(active=)`).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxnas.common.errors import check_choice
from jaxnas.evaluation.capabilities import require
from jaxnas.evaluation.population import Candidate, PopulationTrainer, batch_indices
from jaxnas.spaces.base import CategoricalSpace

OFF_PATH = ("frozen", "decayed")


def make_supernet_step(trainer: PopulationTrainer, total_steps: int, off_path: str = "frozen"
                       ) -> Callable[[Candidate, jax.Array, jax.Array, jax.Array], tuple[Candidate, jax.Array]]:
    """`step(cand, arch, x, y) -> (cand, loss)`: one SGD step of the supernet on the path `arch`.

    The trainer's optimiser (NAS-Bench-201's SGD, cosine schedule over `total_steps`); with
    `off_path="frozen"` weights off the path and their optimiser state stay bit-identical. A non-finite
    loss leaves the state as it was (as in `PopulationTrainer`) and only advances the step.
    """
    check_choice("weight_sharing.off_path", off_path, OFF_PATH)
    if off_path == "frozen":
        require(trainer.model, "path_mask", "weight sharing with off_path=frozen")
    opt = trainer.settings.make_optimizer(total_steps)

    def loss_fn(params, batch_stats, x, y, arch):
        logits, updates = trainer.model.apply({"params": params, "batch_stats": batch_stats}, x, arch, train=True,
                                              mutable=["batch_stats"])
        return trainer.objective.loss(logits, y), updates["batch_stats"]

    def step(c: Candidate, arch: jax.Array, x: jax.Array, y: jax.Array) -> tuple[Candidate, jax.Array]:
        (loss, stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(c.params, c.batch_stats, x, y, arch)
        updates, opt_state = opt.update(grads, c.opt_state, c.params)
        params = optax.apply_updates(c.params, updates)
        if off_path == "frozen":
            mask = trainer.model.path_mask(c.params, arch)
            # the same mask over every parameter-shaped part of the optimiser state (momentum buffers);
            # the rest (the schedule's step count) is global and always advances
            state_mask = optax.tree_utils.tree_map_params(opt, lambda _, m: m, opt_state, mask,
                                                          transform_non_params=lambda _: jnp.ones((), bool))
            params = jax.tree.map(jnp.where, mask, params, c.params)
            opt_state = jax.tree.map(jnp.where, state_mask, opt_state, c.opt_state)
        new = Candidate(params=params, batch_stats=stats, opt_state=opt_state, step=c.step + 1)
        new = jax.tree.map(lambda a, b: jnp.where(jnp.isfinite(loss), a, b), new, c)
        return new.replace(step=c.step + 1), loss

    return step


def train_supernet(trainer: PopulationTrainer, space: CategoricalSpace, steps: int, seed: int = 0,
                   off_path: str = "frozen") -> tuple[Candidate, np.ndarray, float]:
    """Trains one supernet for `steps` single-path steps; returns it, its loss curve and the wall time."""
    key = jax.random.key(seed)
    path_key, init_key = jax.random.fold_in(key, 1), jax.random.fold_in(key, 2)
    data_key = jax.random.fold_in(key, 2**31 - 1)
    sample = lambda step: space.sample(jax.random.fold_in(path_key, step))  # noqa: E731
    step_fn = make_supernet_step(trainer, steps, off_path)

    @jax.jit
    def run(data):
        n, bs = data.train_x.shape[0], trainer.settings.batch_size
        cand = trainer.init_candidate(init_key, sample(0), data, total_steps=steps)

        def body(c, _):
            idx = batch_indices(data_key, c.step, n, bs)  # (B,)
            return step_fn(c, sample(c.step), data.train_x[idx], data.train_y[idx])

        return jax.lax.scan(body, cand, None, length=steps)

    start = time.perf_counter()
    cand, losses = jax.block_until_ready(run(trainer.data))
    return cand, np.asarray(losses), time.perf_counter() - start


def score_inherited(trainer: PopulationTrainer, supernet: Candidate, archs: np.ndarray, split: str = "valid") -> np.ndarray:
    """The trainer's metric (accuracy as a fraction by default) of each architecture (P, L) with the supernet's
    weights, BN on batch statistics."""
    x, y = getattr(trainer.data, f"{split}_x"), getattr(trainer.data, f"{split}_y")

    @jax.jit
    def score(archs):
        def one(arch):
            logits, _ = trainer.model.apply({"params": supernet.params, "batch_stats": supernet.batch_stats}, x, arch,
                                            train=True, mutable=["batch_stats"])
            return trainer.objective.metric(logits, y), trainer.objective.loss(logits, y)

        return jax.lax.map(one, archs)  # one candidate at a time: evaluation memory stays that of one network

    return np.asarray(score(jnp.asarray(archs, jnp.int32))[0])
