"""The masked supernet of the NASNet / AmoebaNet cells: every op computed at every element slot, a one-hot of the
architecture's op id keeps one. The baseline that `benchmarks/nasnet_population_speed.py` measures the population
engine against (issue 23: "the masked supernet (every op on every edge, a one-hot picks one) is the easy design and
wastes most of the work").

It is `jaxnas.models.nasnet.NASNetNetwork` (same layout, same parameters and statistics, same names, so the same
variables run in both) with one change in how a traced architecture runs an element: each element reads its input
hidden state by index (as the population's network does), then computes all `len(ops)` ops of the space, each with
its own kernel size and dilation, and sums them weighted by the one-hot of its op id (`jaxnas.models.dispatch.choose`
in "select" mode); the gradient therefore runs every op's backward pass, with zero cotangents for the unchosen ones.
In a reduction cell an element's stride depends on its input (stride 2 on a cell input, 1 on a combination), so,
as in the network's own "select" form, every op is computed on both (2 x len(ops) branches, the one-hot over both).

How it differs from the network's `dispatch="select"`: that vectorised form shares one branch between the four
separable convolutions (one tap loop whose kernel size and dilation follow the op id, so outside `vmap` it runs only
the chosen size's taps, and under `vmap` the largest size in the batch). It is a cheaper, already optimised
one-hot network, not the plain masked supernet; here the 3x3, 5x5, 7x7 and dilated separable convolutions are four
separate ops, all computed. The `dispatch` field is accepted (the engine sets it) and ignored: this network always
masks. A concrete (numpy) architecture runs the plain network of that architecture, as `NASNetNetwork` does (and
what `init` traces), so only traced architectures, what the engine trains, pay for the mask.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from jaxnas.models.dispatch import choose
from jaxnas.models.nasnet import Cell, NASNetNetwork, network
from jaxnas.spaces.nasnet import Cells


class MaskedCell(Cell):
    """`jaxnas.models.nasnet.Cell` whose traced elements compute every op and keep one with a one-hot."""

    def _scanned(self, h0, h1, genes, params, stats, train):
        nb, n_ops = self.num_combinations, len(self.ops)
        g = jnp.asarray(genes, jnp.int32).reshape(2 * nb, 2)
        inputs = jnp.stack([h0, h1])  # (2, batch, H, W, F)
        if not self.reduction:  # one buffer of every hidden state: inputs 0, 1, then the combinations
            first = jnp.concatenate([inputs, jnp.zeros((nb,) + h0.shape, h0.dtype)])
        else:  # the combinations only, at half the size of the inputs
            first = jnp.zeros((nb, h0.shape[0], h0.shape[1] // 2, h0.shape[2] // 2, h0.shape[3]), h0.dtype)
        offset = 0 if self.reduction else 2  # where combination 0 sits in the buffer

        def read(buf, i):
            return jax.lax.dynamic_index_in_dim(buf, i, keepdims=False)

        def step(buf, xs):
            el, (inp, op), p, s = xs
            if not self.reduction:
                table = [self._branch(name, 1, 0, train) for name in self.ops]
                y, s = choose(op, table, op, read(buf, inp), p, s, mode="select")
            else:  # every op at stride 1 on the combination read, and at stride 2 on the cell input read
                table = [self._branch(name, 1, 1, train) for name in self.ops] + [
                    self._branch(name, 2, 0, train) for name in self.ops]
                x_in, x_comb = read(inputs, jnp.minimum(inp, 1)), read(buf, jnp.clip(inp - 2, 0, nb - 1))
                index = op + n_ops * (inp < 2).astype(jnp.int32)
                y, s = choose(index, table, op, x_in, x_comb, p, s, mode="select")
            target = offset + el // 2
            return jax.lax.dynamic_update_index_in_dim(buf, read(buf, target) + y, target, 0), s

        buf, stats = jax.lax.scan(step, first, (jnp.arange(2 * nb), (g[:, 0], g[:, 1]), params, stats))
        return buf[offset:], stats


class MaskedNASNetNetwork(NASNetNetwork):
    """`NASNetNetwork` built from `MaskedCell`s: `apply(variables, images (B, H, W, C), arch (8B,), train)` -> logits
    (B, num_classes), the same function of the same variables, every op computed at every element slot."""

    cell_type = MaskedCell


def supernet(cells: Cells, num_classes: int = 10, **options: Any) -> MaskedNASNetNetwork:
    """The masked supernet of a NASNet space's `cells`, with `jaxnas.models.nasnet.network`'s options (validated
    there, refused naming the option)."""
    net = network(cells, num_classes, **options)
    return MaskedNASNetNetwork(cells=net.cells, num_classes=net.num_classes, channels=net.channels,
                               cells_per_stage=net.cells_per_stage, stem_multiplier=net.stem_multiplier,
                               stages=net.stages, image_size=net.image_size, dispatch=net.dispatch)
