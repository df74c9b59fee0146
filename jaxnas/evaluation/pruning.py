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
are never pruned. FLOPs are multiply-accumulates per image of the kernels an architecture uses.

Filter pruning (Li, Kadav, Durdanovic, Samet & Graf, "Pruning Filters for Efficient ConvNets", ICLR
2017): rank a layer's filters by the L1 norm of their kernel weights, remove the smallest with the
feature maps they produce and the matching input channels of the layers that read them, and train on
at the smaller width. The pruned candidate is a genuinely smaller `NB201Network` (`widths`,
`inner_widths`), so it trains and evaluates faster. Which widths can be cut: within a stage every cell
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
import numpy as np

from jaxnas.common.errors import check, check_choice, check_range
from jaxnas.models.nb201 import CONV1, CONV3, NB201Network

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


# --- filter pruning (Li et al. 2017) -------------------------------------------------------------------------------
def kept_count(width: int, fraction: float) -> int:
    """Channels kept of `width` when removing `fraction` of them (at least one)."""
    return max(1, round((1.0 - fraction) * width))


def pruned_network(model: NB201Network, fraction: float) -> NB201Network:
    """The smaller NB201Network a `fraction` of every stage's and every reduction's channels removed leaves."""
    check_range("pruning.channel_fraction", fraction, 0.0, 0.95)
    widths = tuple(kept_count(w, fraction) for w in model.stage_widths())
    inner = model.inner_widths or model.stage_widths()[1:]
    return NB201Network(model.channels, model.cells_per_stage, model.num_classes, widths=widths,
                        inner_widths=tuple(kept_count(w, fraction) for w in inner))


def _col_l1(kernel: jax.Array) -> jax.Array:
    """L1 norm of each output filter of a kernel (..., fan_in, C_out) -> (C_out,)."""
    return jnp.abs(kernel).reshape(-1, kernel.shape[-1]).sum(0)


def filter_ranking(params: Any, arch: jax.Array, cells_per_stage: int) -> dict[str, list[jax.Array]]:
    """Li et al.'s L1 criterion: a score per channel of each stage's stream (3 x (C_s,)) and of each
    reduction's internal width (2 x (C_{r+1},)); the smallest scores are pruned first."""
    arch = jnp.asarray(arch)
    stage = [_col_l1(params["Conv_0"]["kernel"])]
    for r in range(2):
        red = params[f"ResidualReduction_{r}"]
        stage.append(_col_l1(red["Conv_1"]["kernel"]) + _col_l1(red["Conv_2"]["kernel"]))
    for i in range(3 * cells_per_stage):
        cell = params[f"Cell_{i}"]
        per_edge3 = jax.vmap(_col_l1)(cell["conv3x3"])  # (6, C)
        per_edge1 = jax.vmap(_col_l1)(cell["conv1x1"])  # (6, C)
        stage[i // cells_per_stage] = stage[i // cells_per_stage] + (
            (arch == CONV3)[:, None] * per_edge3 + (arch == CONV1)[:, None] * per_edge1).sum(0)
    inner = [_col_l1(params[f"ResidualReduction_{r}"]["Conv_0"]["kernel"]) for r in range(2)]
    return {"stage": stage, "inner": inner}


def _keep(score: jax.Array, k: int) -> jax.Array:
    """Indices (k,) of the k largest scores, in channel order."""
    return jnp.sort(jax.lax.top_k(score, k)[1])


def _taps(idx: jax.Array, width: int) -> jax.Array:
    """Rows of a 3x3 kernel in patch layout (9 * width, ...) that read channels `idx`: (9 k,)."""
    return (jnp.arange(9)[:, None] * width + idx[None, :]).reshape(-1)


def shrink(tree: Any, keep: dict[str, list[jax.Array]], widths: tuple[int, int, int], cells_per_stage: int) -> Any:
    """Slices an NB201Network tree (params, batch statistics or a momentum buffer) to the kept channels.

    `keep["stage"][s]` and `keep["inner"][r]` are the kept channel indices; `widths` the unpruned stage widths.
    """
    stage, inner = keep["stage"], keep["inner"]

    def leaf(path, w):
        names = [str(getattr(p, "key", "")) for p in path]
        top, name = names[0], names[-1]
        if top == "Conv_0":  # stem (9 C_in, C_0)
            return w[:, stage[0]]
        if top in ("BatchNorm_0", "BatchNorm_1"):  # stem BN, last BN
            return w[stage[0] if top == "BatchNorm_0" else stage[2]]
        if top == "Dense_0":
            return w[stage[2]] if name == "kernel" else w
        if top.startswith("Cell_"):
            s = int(top.split("_")[1]) // cells_per_stage
            idx, c = stage[s], widths[s]
            if name == "conv3x3":  # (6, 9C, C)
                return w[:, _taps(idx, c)][:, :, idx]
            if name == "conv1x1":  # (6, C, C)
                return w[:, idx][:, :, idx]
            return w[idx]  # bn_edge*
        if top.startswith("ResidualReduction_"):
            r = int(top.split("_")[1])
            src, dst, mid = stage[r], stage[r + 1], inner[r]
            layer = names[1]
            if layer == "Conv_0":  # (9 C_r, inner)
                return w[_taps(src, widths[r])][:, mid]
            if layer == "BatchNorm_0":
                return w[mid]
            if layer == "Conv_1":  # (9 inner, C_{r+1})
                return w[_taps(mid, widths[r + 1])][:, dst]
            if layer == "BatchNorm_1":
                return w[dst]
            if layer == "Conv_2":  # 1x1 shortcut (C_r, C_{r+1})
                return w[src][:, dst]
        raise ValueError(f"shrink: unknown parameter {'/'.join(names)}")

    return jax.tree_util.tree_map_with_path(leaf, tree)


def filter_prune_candidate(cand: Any, arch: jax.Array, model: NB201Network, fraction: float) -> Any:
    """One trained `Candidate` of `model` -> the same candidate at `pruned_network(model, fraction)`'s widths.

    Weights, BN running statistics and the optimiser's momentum buffers keep the channels with the largest
    filter L1 norms (`filter_ranking`); the step count and the schedule carry on, so training continues.
    """
    small = pruned_network(model, fraction)
    ranking = filter_ranking(cand.params, arch, model.cells_per_stage)
    keep = {"stage": [_keep(sc, k) for sc, k in zip(ranking["stage"], small.widths)],
            "inner": [_keep(sc, k) for sc, k in zip(ranking["inner"], small.inner_widths)]}
    cut = lambda t: shrink(t, keep, model.stage_widths(), model.cells_per_stage)  # noqa: E731
    is_params = lambda x: isinstance(x, dict) and "Dense_0" in x  # noqa: E731 (a params-shaped part: momentum)
    opt_state = jax.tree.map(lambda x: cut(x) if is_params(x) else x, cand.opt_state, is_leaf=is_params)
    return cand.replace(params=cut(cand.params), batch_stats=cut(cand.batch_stats), opt_state=opt_state)
