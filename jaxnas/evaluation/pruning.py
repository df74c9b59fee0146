"""Magnitude pruning of candidate networks (Han, Pool, Tran & Dally, NeurIPS 2015), before or during
training, with the gradual cubic schedule of Zhu & Gupta ("To prune, or not to prune", 2017).

Every convolution and linear kernel is a layer of its own (a cell's per-edge kernels included) and is
pruned to the target sparsity by weight magnitude. The mask is recomputed after every update at the
sparsity the schedule asks for at that step:

* `before`: the target sparsity from step 0 (prune the initial weights, train the survivors);
* `during`: s_t = s (1 - (1 - t / T_end)^3), rising from 0 to s by `end_fraction` of training.

Deviation: masks are recomputed each step rather than every few hundred steps (runs here are short),
so a pruned weight may return if it outgrows a kept one. Biases, BatchNorm parameters and 1-D leaves
are never pruned. FLOPs are multiply-accumulates per image of the kernels an architecture uses.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxnas.common.errors import check, check_choice, check_range
from jaxnas.evaluation.nb201_network import CONV1, CONV3

PRUNABLE = ("kernel", "conv3x3", "conv1x1")


def _prune_leaf(w: jax.Array, sparsity: jax.Array, per_edge: bool) -> jax.Array:
    """Zeroes the `sparsity` fraction of smallest-magnitude entries (per edge for stacked cell kernels)."""
    if per_edge:
        return jax.vmap(lambda x: _prune_leaf(x, sparsity, False))(w)
    flat = jnp.abs(w).reshape(-1)
    k = jnp.floor(sparsity * flat.size).astype(jnp.int32)  # entries to remove
    order = jnp.argsort(flat)  # ascending magnitude; ties broken by position
    keep = jnp.zeros(flat.size, bool).at[order].set(jnp.arange(flat.size) >= k)
    return jnp.where(keep.reshape(w.shape), w, 0.0)


def prune(params: Any, sparsity: jax.Array | float) -> Any:
    """Magnitude-prunes every kernel of a parameter tree to `sparsity` (a fraction in [0, 1))."""
    def visit(path, leaf):
        name = getattr(path[-1], "key", "")
        if name not in PRUNABLE or leaf.ndim < 2:
            return leaf
        return _prune_leaf(leaf, jnp.asarray(sparsity, jnp.float32), per_edge=name in ("conv3x3", "conv1x1"))

    return jax.tree_util.tree_map_with_path(visit, params)


def scheduled_sparsity(step: jax.Array, final: float, total_steps: int, mode: str, end_fraction: float = 0.75) -> jax.Array:
    """The sparsity to hold after `step` updates."""
    if mode == "before":
        return jnp.float32(final)
    t = jnp.clip((step + 1) / max(1.0, end_fraction * total_steps), 0.0, 1.0)
    return final * (1.0 - (1.0 - t) ** 3)


def make_pruner(final_sparsity: float, mode: str, total_steps: int) -> Callable[[Any, jax.Array], Any]:
    """`post_update(params, step) -> params` for `PopulationTrainer`."""
    check_range("sparsity", final_sparsity, 0.0, 0.99)
    check_choice("prune_mode", mode, ("before", "during"))
    check(total_steps > 0, "steps", "must be > 0")
    return lambda params, step: prune(params, scheduled_sparsity(step, final_sparsity, total_steps, mode))


def conv_macs(params: Any, arch: np.ndarray, image_hw: int, cells_per_stage: int) -> float:
    """Multiply-accumulates per image of the kernels `arch` uses, counting only non-zero weights.

    Walks the NB201Network parameter tree (stem, cells per stage, residual reductions, classifier).
    """
    arch = np.asarray(arch)
    nnz = lambda w: float(np.count_nonzero(np.asarray(w)))  # noqa: E731
    total = nnz(params["Conv_0"]["kernel"]) * image_hw**2 + nnz(params["Dense_0"]["kernel"])
    for name, sub in params.items():
        if name.startswith("Cell_"):
            side = image_hw // 2 ** (int(name.split("_")[1]) // cells_per_stage)
            for e, op in enumerate(arch):
                if op == CONV3:
                    total += nnz(sub["conv3x3"][e]) * side**2
                elif op == CONV1:
                    total += nnz(sub["conv1x1"][e]) * side**2
        elif name.startswith("ResidualReduction_"):
            side = image_hw // 2 ** (int(name.split("_")[1]) + 1)
            total += sum(nnz(sub[c]["kernel"]) for c in ("Conv_0", "Conv_1", "Conv_2")) * side**2
    return total
