"""The NAS-Bench-201 candidate network, built from an architecture array so populations vmap.

Macro skeleton (Dong & Yang, ICLR 2020, Fig. 1): a 3x3 conv + BN stem; three stages of N cells with
C, 2C and 4C channels, joined by residual reduction blocks (ReLU-conv3x3/2-BN, ReLU-conv3x3-BN, plus
an avg-pool/2 + conv1x1 shortcut); BN + ReLU; global average pooling; a linear classifier. The
paper's network has C=16, N=5; both are settings here, so CPU tests use tiny ones.

A cell is the 4-node DAG of `jaxnas.spaces.nb201`: node j sums op_ij(node_i) over i < j, ops
none / skip_connect / nor_conv_1x1 / nor_conv_3x3 (ReLU-conv-BN) / avg_pool_3x3 (count_include_pad
False). The architecture is an *input* (an int array (6,)), not a Python structure, so one set of
parameter shapes serves every architecture and a population of different cells stacks and vmaps.

How the cell avoids the masked supernet's waste: the naive vmappable cell computes every op on every
edge and keeps one with a one-hot. Here each edge's op is folded into one effective 3x3 kernel
(K = [op is conv3x3] W3 + [op is conv1x1] centre(W1)), and all outgoing edges of a node are fused
into one matmul over that node's shared 3x3 patches: one (B*H*W, 9C) @ (9C, k*C) product per node
instead of a 3x3 and a 1x1 convolution per edge. Skip and pooling are cheap elementwise terms.
Deviation: one BatchNorm per edge serves whichever conv op the edge carries (NB201 keeps one per op
per edge; identical for a fixed architecture, and in a one-shot supernet the statistics update only
when the edge carries a conv).
"""

from __future__ import annotations

import functools
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxnas.models import nb201_surgery as surgery
from jaxnas.models.dispatch import choose_saving
from jaxnas.models.layers import (BatchNorm, BatchNormState, Conv, avg_pool3x3, batch_norm, center_tap, conv3x3,
                                  conv3x3_direct, conv3x3_direct_grads, he_normal, matmul)
from jaxnas.spaces import nb201

NONE, SKIP, CONV1, CONV3, POOL = range(5)
assert nb201.OPS == ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")


def _op_table(train: bool, dtype):
    """NB201's ops on (h, 3x3 kernel (9C, C), 1x1 kernel (C, C), the edge's BN variables) -> ((y, BN statistics),
    residual), and their backward passes ((residual, operands, dy) -> operand cotangents), for
    `dispatch.choose_saving`. The conv ops are ReLU-conv-BN and keep their convolution's output as the residual
    (the backward pass recomputes only the elementwise batch norm); the others leave the edge's BN statistics as
    they are and keep h (unused)."""
    def conv_fwd(conv):
        def fwd(h, w3, w1, bn):
            z = conv(relu_as(h, dtype), w3.astype(dtype), w1.astype(dtype))
            return batch_norm(z, *bn, train, custom_grad=True), z
        return fwd

    def conv_bwd(conv_vjp):
        def bwd(z, operands, g):
            h, w3, w1, (scale, bias, ra_mean, ra_var) = operands
            _, bn_vjp = jax.vjp(lambda z, s, b: batch_norm(z, s, b, ra_mean, ra_var, train, custom_grad=True)[0],
                                z, scale, bias)
            gz, gscale, gbias = bn_vjp(g)
            gx, gw3, gw1 = conv_vjp(relu_as(h, dtype), w3.astype(dtype), w1.astype(dtype), gz)
            gh = jnp.where(h > 0, gx.astype(h.dtype), 0)
            return gh, gw3.astype(w3.dtype), gw1.astype(w1.dtype), (gscale, gbias, jnp.zeros_like(ra_mean),
                                                                     jnp.zeros_like(ra_var))
        return bwd

    def conv3_vjp(x, w3, w1, gz):
        gx, gw = conv3x3_direct_grads(x, w3, gz)
        return gx, gw, jnp.zeros_like(w1)

    def conv1_vjp(x, w3, w1, gz):
        gz = gz.astype(w1.dtype)
        gx = matmul(gz, w1.T)
        gw = jnp.einsum("BHWO,BHWI->IO", gz, x, preferred_element_type=jnp.float32)
        return gx, jnp.zeros_like(w3), gw

    def keep(y):  # an op without BN: its output, the statistics unchanged, h as the (unused) residual
        return lambda h, w3, w1, bn: ((y(h), bn[2], bn[3]), h)

    def plain_bwd(dh):  # the cotangents of an op that reads only h
        def bwd(res, operands, g):
            h, w3, w1, bn = operands
            return dh(h, g), jnp.zeros_like(w3), jnp.zeros_like(w1), tuple(jnp.zeros_like(v) for v in bn)
        return bwd

    forward = (keep(jnp.zeros_like),                                           # none
               keep(lambda h: h),                                              # skip_connect
               conv_fwd(lambda x, w3, w1: matmul(x, w1)),                      # nor_conv_1x1
               conv_fwd(lambda x, w3, w1: conv3x3_direct(x, w3)),              # nor_conv_3x3
               keep(avg_pool3x3))                                              # avg_pool_3x3
    backward = (plain_bwd(lambda h, g: jnp.zeros_like(h)),
                plain_bwd(lambda h, g: g.astype(h.dtype)),
                conv_bwd(conv1_vjp),
                conv_bwd(conv3_vjp),
                plain_bwd(lambda h, g: jax.vjp(avg_pool3x3, h)[1](g)[0]))
    return forward, backward


def relu_as(h: jax.Array, dtype: Any) -> jax.Array:
    """ReLU, cast to the products' input dtype."""
    return jax.nn.relu(h).astype(dtype)


class Cell(nn.Module):
    """One NAS-Bench-201 cell with C input and output channels; `dispatch` as in `jaxnas.models.dispatch`."""

    dispatch: str = "select"
    dtype: Any = jnp.float32  # the products' input dtype (bfloat16: bf16 compute, float32 accumulation)

    @nn.compact
    def __call__(self, x: jax.Array, arch: jax.Array, train: bool) -> jax.Array:
        c = x.shape[-1]
        n_edges = len(nb201.EDGES)
        w3 = self.param("conv3x3", he_normal, (n_edges, 9 * c, c))
        w1 = self.param("conv1x1", he_normal, (n_edges, c, c))
        if self.dispatch == "switch":
            return self._switched(x, arch, train, w3, w1)
        op = jax.nn.one_hot(arch, len(nb201.OPS), dtype=x.dtype)  # (6, 5)
        kernels = op[:, CONV3, None, None] * w3 + op[:, CONV1, None, None] * jax.vmap(center_tap)(w1)  # (6, 9C, C)
        is_conv = op[:, CONV3] + op[:, CONV1]  # (6,)
        norms = [BatchNorm(name=f"bn_edge{e}") for e in range(n_edges)]

        nodes = [x]
        incoming: dict[int, list[jax.Array]] = {j: [] for j in range(1, nb201.NUM_NODES)}
        for src in range(nb201.NUM_NODES - 1):
            if src > 0:
                nodes.append(sum(incoming[src]))
            h = nodes[src]
            out_edges = [e for e, (s, _) in enumerate(nb201.EDGES) if s == src]
            fused = conv3x3(relu_as(h, self.dtype),
                            jnp.concatenate([kernels[e] for e in out_edges], axis=-1).astype(self.dtype))  # (B,H,W,kC)
            pooled = avg_pool3x3(h)
            for k, e in enumerate(out_edges):
                conv = norms[e](fused[..., k * c:(k + 1) * c], train, active=is_conv[e] > 0)
                incoming[nb201.EDGES[e][1]].append(is_conv[e] * conv + op[e, SKIP] * h + op[e, POOL] * pooled)
        return sum(incoming[nb201.NUM_NODES - 1])

    def _switched(self, x, arch, train, w3, w1):
        """Only each edge's chosen op runs (`lax.switch`), its BatchNorm inside the conv branches; differentiated
        through the ops' own backward passes (`choose_saving`: no zero residuals for the branches not taken, no
        second convolution)."""
        (forward, backward), c = _op_table(train, self.dtype), x.shape[-1]
        nodes = [x]
        for j in range(1, nb201.NUM_NODES):
            total = None
            for e, (src, dst) in enumerate(nb201.EDGES):
                if dst != j:
                    continue
                norm = BatchNormState(name=f"bn_edge{e}")
                y, mean, var = choose_saving(arch[e], forward, backward, nodes[src], w3[e], w1[e], norm(c),
                                             mode="switch")
                norm.store(mean, var)
                total = y if total is None else total + y
            nodes.append(total)
        return nodes[-1]


class ResidualReduction(nn.Module):
    """NB201's `ResNetBasicblock` with stride 2: halves the resolution, sets the channels to `features`."""

    features: int
    inner: int | None = None  # width of the first conv's output (default `features`; smaller when pruned)
    dtype: Any = None
    direct: bool = False  # candidates one at a time: `Conv.direct` (XLA's convolution), `BatchNorm.custom_grad`

    @nn.compact
    def __call__(self, x: jax.Array, train: bool) -> jax.Array:
        conv = functools.partial(Conv, dtype=self.dtype, direct=self.direct)
        norm = functools.partial(BatchNorm, custom_grad=self.direct)
        a = norm()(conv(self.inner or self.features, 3, stride=2)(jax.nn.relu(x)), train)
        b = norm()(conv(self.features, 3)(jax.nn.relu(a)), train)
        b_, h, w, c = x.shape
        pooled = x.reshape(b_, h // 2, 2, w // 2, 2, c).mean(axis=(2, 4))  # avg pool 2x2, stride 2
        return Conv(self.features, 1, dtype=self.dtype)(pooled) + b


class NB201Network(nn.Module):
    """Stem, 3 stages of `cells_per_stage` cells (C, 2C, 4C), 2 residual reductions, BN-ReLU, pool, linear.

    `widths` (3 ints) and `inner_widths` (2 ints) override the stage widths and the reductions' internal
    widths (a channel-pruned network, `jaxnas.evaluation.pruning`); by default they are C, 2C, 4C and
    the following stage's width, the NAS-Bench-201 network.
    """

    channels: int = 16
    cells_per_stage: int = 5
    num_classes: int = 10
    widths: tuple[int, int, int] | None = None
    inner_widths: tuple[int, int] | None = None
    dispatch: str = "select"  # "switch": only each edge's chosen op runs (`jaxnas.models.dispatch`; set by the engine)
    dtype: Any = jnp.float32  # the convolutions' input dtype: bfloat16 computes in bf16, accumulating in float32

    def stage_widths(self) -> tuple[int, int, int]:
        """Channels of each stage's cells: `widths`, or C, 2C, 4C."""
        return tuple(self.widths) if self.widths is not None else tuple(self.channels * 2**s for s in range(3))

    # --- what the speed-ups ask of a candidate network (jaxnas.evaluation; implementations in nb201_surgery) ---
    grow_op = CONV3  # the op incremental training inserts
    grow_description = "nor_conv_3x3 into a `none` edge"

    def path_mask(self, params, arch):
        """Weight sharing: a bool tree like `params`, True where the architecture uses the weight."""
        return surgery.path_mask(params, arch)

    def growable(self, arch):
        """Incremental training: the positions of `arch` where `grow` can insert an op."""
        return surgery.growable_edges(arch)

    def grow(self, params, batch_stats, arch, position: int, op: int):
        """Incremental training: the child (params, batch_stats, arch) computing the parent's function."""
        return surgery.grow(params, batch_stats, arch, position, op)

    def macs(self, params, arch, image_hw: int) -> float:
        """Multiply-accumulates per image of the kernels `arch` uses, counting only non-zero weights."""
        return surgery.conv_macs(params, arch, image_hw, self.cells_per_stage)

    def pruned(self, fraction: float) -> NB201Network:
        """Filter pruning: this network with `fraction` of every stage's and reduction's channels removed."""
        return surgery.pruned_network(self, fraction)

    def prune_filters(self, cand, arch, fraction: float):
        """Filter pruning: a trained candidate of this network at `pruned(fraction)`'s widths."""
        return surgery.filter_prune_candidate(cand, arch, self, fraction)

    def widths_summary(self) -> dict[str, list[int]]:
        """The prunable widths, for reports."""
        inner = self.inner_widths or self.stage_widths()[1:]
        return {"widths": list(self.stage_widths()), "inner_widths": list(inner)}

    @nn.compact
    def __call__(self, x: jax.Array, arch: jax.Array, train: bool = False) -> jax.Array:
        """x (B, H, W, C_in) with H, W divisible by 4; arch (6,) op ids -> logits (B, num_classes)."""
        widths = self.stage_widths()
        direct = self.dispatch == "switch"
        h = BatchNorm(custom_grad=direct)(Conv(widths[0], 3, dtype=self.dtype, direct=direct)(x), train)
        for stage in range(3):
            if stage > 0:
                inner = self.inner_widths[stage - 1] if self.inner_widths is not None else None
                h = ResidualReduction(widths[stage], inner, self.dtype, direct)(h, train)
            for _ in range(self.cells_per_stage):
                h = Cell(self.dispatch, self.dtype)(h, arch, train)
        h = jax.nn.relu(BatchNorm(custom_grad=direct)(h, train))
        return nn.Dense(self.num_classes)(h.mean(axis=(1, 2)))  # the head stays float32
