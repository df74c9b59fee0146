"""Incremental training: a child grown from a trained parent by a function-preserving change.

The change (in the spirit of Net2Net, Chen, Goodfellow & Shlens, ICLR 2016): an edge that carries
`none` in the parent gets a convolution (nor_conv_3x3 or nor_conv_1x1) in the child. The new op is
ReLU-conv-BN; its BatchNorm scale and shift start at zero, so the op outputs exactly zero and the child
computes the parent's function (the "zero-init the last BN gamma" device of Goyal et al. 2017). The
scale receives gradient at once, so the new op starts learning from the first step. Every other
weight and running statistic is inherited; the optimiser state starts fresh.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxnas.common.errors import check, check_choice
from jaxnas.models.nb201 import CONV1, CONV3, NONE
from jaxnas.evaluation.population import Candidate, PopulationTrainer


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


def grow_candidates(trainer: PopulationTrainer, parents: Candidate, archs: np.ndarray, edges: np.ndarray,
                    ops: np.ndarray, total_steps: int) -> tuple[Candidate, np.ndarray]:
    """Grows each parent (leading axis P) and gives it a fresh optimiser for `total_steps` more steps."""
    children, child_archs = [], []
    for i in range(len(archs)):
        one = jax.tree.map(lambda a: a[i], parents)
        params, stats, arch = grow(one.params, one.batch_stats, archs[i], int(edges[i]), int(ops[i]))
        opt_state = trainer.settings.optimizer(total_steps).init(params)
        children.append(Candidate(params=params, batch_stats=stats, opt_state=opt_state, step=jnp.zeros((), jnp.int32)))
        child_archs.append(arch)
    return jax.tree.map(lambda *xs: np.stack([np.asarray(x) for x in xs]), *children), np.stack(child_archs)
