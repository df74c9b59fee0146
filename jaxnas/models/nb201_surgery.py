"""What the speed-ups need to know about the NAS-Bench-201 network's parameters, kept beside the network.

`jaxnas.evaluation` is space-agnostic: a candidate network offers these operations as methods (see
`NB201Network`) and the speed-ups call them. This module holds their NAS-Bench-201 implementations:

* `path_mask` (weight sharing): which weights a single-path architecture uses. On the path: the stem, the
  residual reductions, the last BN and the classifier (always used); in each cell, edge e's 3x3 kernel if the
  edge carries nor_conv_3x3, its 1x1 kernel if it carries nor_conv_1x1, and the edge's BatchNorm if it carries
  either (this network shares one BN per edge between the two conv ops). An op counts as used when the path
  selects it, even where a later `none` edge cuts it off from the output: NB201's `none` op is `x.mul(0.)`, so
  PyTorch gives such weights a zero gradient, not None, and updates them.
* `growable_edges`, `grow` (incremental training, in the spirit of Net2Net, Chen, Goodfellow & Shlens, ICLR
  2016): an edge that carries `none` gets a convolution whose BatchNorm scale and shift start at zero, so the
  child computes the parent's function (the "zero-init the last BN gamma" device of Goyal et al. 2017).
* `conv_macs` (pruning's cost): multiply-accumulates per image of the kernels an architecture uses.
* filter pruning (Li, Kadav, Durdanovic, Samet & Graf, ICLR 2017; the rule and its deviations are described in
  `jaxnas.evaluation.pruning`): `filter_ranking`, `shrink`, `pruned_network`, `filter_prune_candidate`.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxnas.common.errors import check, check_choice, check_range
from jaxnas.spaces.nb201 import OPS

# op ids (jaxnas.models.nb201 defines the same; importing them from there would be an import cycle)
NONE, CONV1, CONV3 = OPS.index("none"), OPS.index("nor_conv_1x1"), OPS.index("nor_conv_3x3")


def path_mask(params: Any, arch: jax.Array) -> Any:
    """A bool tree shaped like the NB201Network `params`: True where the architecture (6,) uses the weight."""
    arch = jnp.asarray(arch)
    conv = (arch == CONV3) | (arch == CONV1)  # (6,) edges whose BN is used

    def leaf(path, w):
        names = [str(getattr(p, "key", "")) for p in path]
        if not any(n.startswith("Cell_") for n in names):
            return jnp.ones(w.shape, bool)  # stem, reductions, last BN, classifier: on every path
        if names[-1] == "conv3x3":
            on = arch == CONV3  # (6,) one kernel per edge: (6, 9C, C)
        elif names[-1] == "conv1x1":
            on = arch == CONV1  # (6, C, C)
        elif names[-2].startswith("bn_edge"):
            on = conv[int(names[-2][len("bn_edge"):])]
        else:
            raise ValueError(f"path_mask: unknown cell parameter {'/'.join(names)}")
        return jnp.broadcast_to(on.reshape(on.shape + (1,) * (w.ndim - on.ndim)), w.shape)

    return jax.tree_util.tree_map_with_path(leaf, params)


def growable_edges(arch: np.ndarray) -> np.ndarray:
    """Edges of `arch` that carry `none` (where a new op can be inserted)."""
    return np.flatnonzero(np.asarray(arch) == NONE)


def grow(params: Any, batch_stats: Any, arch: np.ndarray, edge: int, op: int) -> tuple[Any, Any, np.ndarray]:
    """The child (params, batch_stats, arch) with `op` inserted on `edge` of every cell, function preserved."""
    arch = np.array(arch)
    check(arch[edge] == NONE, "edge", f"edge {edge} carries op {arch[edge]}, not none; growable: {growable_edges(arch)}")
    check_choice("op", op, (CONV1, CONV3))
    arch[edge] = op
    bn = f"bn_edge{edge}"

    def zero_bn(path, leaf):
        names = [getattr(p, "key", "") for p in path]
        return jnp.zeros_like(leaf) if bn in names and names[-1] in ("scale", "bias") else leaf

    def reset_stats(path, leaf):
        names = [getattr(p, "key", "") for p in path]
        if bn not in names:
            return leaf
        return jnp.zeros_like(leaf) if names[-1] == "mean" else jnp.ones_like(leaf)

    return (jax.tree_util.tree_map_with_path(zero_bn, params),
            jax.tree_util.tree_map_with_path(reset_stats, batch_stats), arch)


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


def pruned_network(model: Any, fraction: float) -> Any:
    """The smaller NB201Network a `fraction` of every stage's and every reduction's channels removed leaves."""
    check_range("pruning.channel_fraction", fraction, 0.0, 0.95)
    widths = tuple(kept_count(w, fraction) for w in model.stage_widths())
    inner = model.inner_widths or model.stage_widths()[1:]
    return model.clone(widths=widths, inner_widths=tuple(kept_count(w, fraction) for w in inner))


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


def filter_prune_candidate(cand: Any, arch: jax.Array, model: Any, fraction: float) -> Any:
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
