"""Pruning candidate networks: magnitude pruning (nominal savings) and filter pruning (real savings).

Magnitude pruning (Han, Pool, Tran & Dally, NeurIPS 2015), before or during training, with the gradual
cubic schedule of Zhu & Gupta ("To prune, or not to prune", 2017). It zeroes weights inside dense
kernels, which run exactly as before: its MACs saved are *nominal* (the non-zero weights' share).

Every convolution and linear kernel is a layer of its own (a cell's per-edge kernels included) and is
pruned to the target sparsity by weight magnitude. The mask is recomputed after every update at the
sparsity the schedule asks for at that step:

* `before`: the target sparsity from step 0 (prune the initial weights, train the survivors);
* `during`: s_t = s (1 - (1 - t / T_end)^3), rising from 0 to s by `end_fraction` of training.

Deviation: masks are recomputed each step rather than every few hundred steps (runs here are short),
so a pruned weight may return if it outgrows a kept one. Biases, BatchNorm parameters and 1-D leaves
are never pruned. FLOPs are multiply-accumulates per image of the kernels an architecture uses (the
network's `macs`).

Filter pruning (Li, Kadav, Durdanovic, Samet & Graf, "Pruning Filters for Efficient ConvNets", ICLR
2017): rank a layer's filters by the L1 norm of their kernel weights, remove the smallest with the
feature maps they produce and the matching input channels of the layers that read them, and train on
at the smaller width. The network implements it (`pruned(fraction)`, `prune_filters(candidate, arch,
fraction)`; NAS-Bench-201's in `jaxnas.models.nb201_surgery`), and the rule for NAS-Bench-201 is this one.
The pruned candidate is a genuinely smaller `NB201Network` (`widths`, `inner_widths`), so it trains and
evaluates faster. Which widths can be cut: within a stage every cell
adds its edges' outputs to its input (skip edges, node sums), so like a ResNet's block outputs (tied by
the shortcut) all cells of a stage share one set of channels, the stage's stream. Two groups are pruned,
each keeping `round((1 - fraction) * width)` channels:

* the internal width of each residual reduction block (its first conv's filters, ranked by their own
  L1 norms): exactly Li et al.'s rule for ResNets, which prune the first layer of each residual block;
* each stage's stream. Li et al. prune the shortcut-tied layers of ResNet-34 by the shortcut's
  pruning; here the stream channel j is ranked by the summed L1 norm of every filter that writes it:
  the stem conv (stage 0) or the reduction's second conv and 1x1 shortcut (stages 1, 2), and in every
  cell of the stage the filter j of each edge's conv that the architecture uses. Removing j removes
  those filters, their BatchNorm channels, and the input channel j of every conv (all 9 taps), of the
  next reduction and of the classifier that read the stream.

Deviations: Li et al. prune a converged network and fine-tune it at a small learning rate; here, so
that pruning saves *training* time in a search, a candidate trains densely for a fraction of its
steps (`experiments.speedups`, `pruning.prune_at`), is pruned once, and continues the same SGD run
(schedule, momentum buffers and BN statistics of the kept channels) at the smaller width: fine-tuned
from the kept weights, not retrained. The stream criterion (a sum over the layers writing a channel)
is ours; Li et al. give no rule for channels tied by summation inside a cell.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from jaxnas.common.errors import check, check_choice, check_range


def _prune_leaf(w: jax.Array, sparsity: jax.Array, per_edge: bool) -> jax.Array:
    """Zeroes the `sparsity` fraction of smallest-magnitude entries (per edge for stacked cell kernels)."""
    if per_edge:
        return jax.vmap(lambda x: _prune_leaf(x, sparsity, False))(w)
    flat = jnp.abs(w).reshape(-1)
    k = jnp.floor(sparsity * flat.size).astype(jnp.int32)  # entries to remove
    order = jnp.argsort(flat)  # ascending magnitude; ties broken by position
    keep = jnp.zeros(flat.size, bool).at[order].set(jnp.arange(flat.size) >= k)
    return jnp.where(keep.reshape(w.shape), w, 0.0)


def is_stacked_kernel(name: str, leaf: jax.Array) -> bool:
    """The library's convention for a stack of per-position kernels (a cell's per-edge kernels, one leaf
    (positions, fan_in, fan_out) so that the architecture can be an input): a leaf of 3 or more dimensions not
    named `kernel` (Flax's name for one layer's weights; BatchNorm and bias leaves are 1-D)."""
    return name != "kernel" and leaf.ndim >= 3


def prune(params: Any, sparsity: jax.Array | float) -> Any:
    """Magnitude-prunes every kernel of a parameter tree to `sparsity` (a fraction in [0, 1)): each `kernel` leaf
    of 2 or more dimensions is one layer, each stacked kernel (`is_stacked_kernel`) one layer per position."""
    def visit(path, leaf):
        name = getattr(path[-1], "key", "")
        stacked = is_stacked_kernel(name, leaf)
        if not (stacked or (name == "kernel" and leaf.ndim >= 2)):
            return leaf
        return _prune_leaf(leaf, jnp.asarray(sparsity, jnp.float32), per_edge=stacked)

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
