"""Incremental training: a child grown from a trained parent by a function-preserving change.

The change (in the spirit of Net2Net, Chen, Goodfellow & Shlens, ICLR 2016) is the network's: its
`grow(params, batch_stats, arch, position, op)` returns a child that computes exactly the parent's function
and `growable(arch)` the positions where it can. For NAS-Bench-201 (`jaxnas.models.nb201_surgery.grow`) an
edge that carries `none` in the parent gets a convolution (nor_conv_3x3 or nor_conv_1x1) in the child. The
new op is ReLU-conv-BN; its BatchNorm scale and shift start at zero, so the op outputs exactly zero and the
child computes the parent's function (the "zero-init the last BN gamma" device of Goyal et al. 2017). The
scale receives gradient at once, so the new op starts learning from the first step. Every other weight and
running statistic is inherited; the optimiser state starts fresh.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jaxnas.evaluation.capabilities import require
from jaxnas.evaluation.population import Candidate, PopulationTrainer


def grow_candidates(trainer: PopulationTrainer, parents: Candidate, archs: np.ndarray, positions: np.ndarray,
                    ops: np.ndarray, total_steps: int) -> tuple[Candidate, np.ndarray]:
    """Grows each parent (leading axis P) and gives it a fresh optimiser for `total_steps` more steps."""
    require(trainer.model, "grow", "incremental training")
    children, child_archs = [], []
    for i in range(len(archs)):
        one = jax.tree.map(lambda a: a[i], parents)
        params, stats, arch = trainer.model.grow(one.params, one.batch_stats, archs[i], int(positions[i]), int(ops[i]))
        opt_state = trainer.settings.make_optimizer(total_steps).init(params)
        children.append(Candidate(params=params, batch_stats=stats, opt_state=opt_state, step=jnp.zeros((), jnp.int32)))
        child_archs.append(arch)
    return jax.tree.map(lambda *xs: np.stack([np.asarray(x) for x in xs]), *children), np.stack(child_archs)
