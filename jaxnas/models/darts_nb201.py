"""The DARTS supernet of the NAS-Bench-201 cell: every edge a mixed op (Liu, Simonyan & Yang, "DARTS:
Differentiable Architecture Search", ICLR 2019), in the NAS-Bench-201 skeleton (Dong & Yang, ICLR 2020).

Each of a cell's 6 edges computes all five NAS-Bench-201 ops and returns sum_o w[e, o] * op_o(x), where the op
weights `w` (6, 5) are an input: softmax(alpha) for DARTS, a one-hot to run one architecture, or a straight-through
sample (GDAS). As in NAS-Bench-201's DARTS (`xautodl/models/cell_searchs/search_model_darts.py`), one alpha (6, 5)
is shared by all cells, the conv ops are ReLU-conv-BN with non-affine batch norms (one per op per edge), `none` is
zero and `avg_pool_3x3` has no batch norm; the rest of the network (stem, residual reductions, BN-ReLU, pooling,
linear head) is `jaxnas.models.nb201.NB201Network`'s, built from the same layers so the variables have the same
names: `to_nb201_variables` turns supernet variables into that network's variables for one architecture.

How a cell is computed: every node's outgoing edges share one ReLU, one 3x3 convolution of all their 3x3 kernels
concatenated (one (B*H*W, 9C) @ (9C, kC) product, `jaxnas.models.layers.conv3x3`), one 1x1 product and one 3x3
average pool (the same input, so the same result for every outgoing edge).

Deliberate deviations from the official code:
* No conv bias. NAS-Bench-201's search cells (affine=False) give each conv a bias, which the following batch norm
  subtracts again (exactly in training mode, up to the running mean in evaluation), so it is left out.
* `none` contributes nothing rather than 0 * x (the same unless x holds inf or NaN).
* Every op runs on every edge whatever the weights, so a one-hot weight still updates the running statistics of
  the unchosen conv ops (GDAS's PyTorch code runs only the sampled op). The running statistics only matter in
  evaluation mode; the search itself normalises by batch statistics.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxnas.models.layers import BatchNorm, Conv, avg_pool3x3, batch_norm, conv3x3, he_normal, matmul
from jaxnas.models.nb201 import CONV1, CONV3, NONE, POOL, SKIP, ResidualReduction
from jaxnas.spaces import nb201

NUM_EDGES, NUM_OPS = len(nb201.EDGES), len(nb201.OPS)
_STATS = ("conv3x3_mean", "conv3x3_var", "conv1x1_mean", "conv1x1_var")


def out_edges(src: int) -> list[int]:
    """The edges leaving node `src`, in edge order."""
    return [e for e, (s, _) in enumerate(nb201.EDGES) if s == src]


def mixed_edges(h: jax.Array, weights: jax.Array, w3: jax.Array, w1: jax.Array, stats: dict[str, jax.Array],
                edges: list[int], train: bool, edge_bias: jax.Array | None = None
                ) -> tuple[list[jax.Array], dict[str, jax.Array]]:
    """The mixed ops of `edges`, all reading node `h` (B, H, W, C): sum_o weights[e, o] * op_o(h) for each edge.

    w3 (6, 9C, C) and w1 (6, C, C) are the cell's kernels, `stats` its running statistics (each (6, C)); returns
    the edges' outputs and the statistics with the rows of `edges` moved (training) or unchanged (evaluation).
    """
    c, idx = h.shape[-1], np.asarray(edges)
    r = jax.nn.relu(h)
    y3 = conv3x3(r, jnp.concatenate([w3[e] for e in edges], axis=-1))  # (B, H, W, kC)
    y1 = matmul(r, jnp.concatenate([w1[e] for e in edges], axis=-1))  # (B, H, W, kC)
    new = dict(stats)
    y3, new["conv3x3_mean"], new["conv3x3_var"] = _norm(y3, stats, "conv3x3", idx, train)
    y1, new["conv1x1_mean"], new["conv1x1_var"] = _norm(y1, stats, "conv1x1", idx, train)
    pooled = avg_pool3x3(h)
    outs = [weights[e, SKIP] * h + weights[e, CONV1] * y1[..., i * c:(i + 1) * c]
            + weights[e, CONV3] * y3[..., i * c:(i + 1) * c] + weights[e, POOL] * pooled
            for i, e in enumerate(edges)]  # `none` (weights[e, NONE]) adds zero
    if edge_bias is not None:  # a scalar per edge added to its output (GDAS's code: the unsampled ops' weights)
        outs = [o + edge_bias[e] for o, e in zip(outs, edges)]
    return outs, new


def _norm(y, stats, op, idx, train):
    """Non-affine batch norm of k edges' outputs at once (channels of `y` are edge-major); rows `idx` updated."""
    mean, var = stats[f"{op}_mean"], stats[f"{op}_var"]
    y, m, v = batch_norm(y, None, None, mean[idx].reshape(-1), var[idx].reshape(-1), train)
    shape = (len(idx), mean.shape[-1])
    return y, mean.at[idx].set(m.reshape(shape)), var.at[idx].set(v.reshape(shape))


class MixedCell(nn.Module):
    """A NAS-Bench-201 cell whose edges are mixed ops; C channels in and out."""

    @nn.compact
    def __call__(self, x: jax.Array, weights: jax.Array, train: bool, edge_bias: jax.Array | None = None
                 ) -> jax.Array:
        c = x.shape[-1]
        w3 = self.param("conv3x3", he_normal, (NUM_EDGES, 9 * c, c))
        w1 = self.param("conv1x1", he_normal, (NUM_EDGES, c, c))
        init = {"mean": jnp.zeros, "var": jnp.ones}
        variables = {name: self.variable("batch_stats", name, init[name.split("_")[1]], (NUM_EDGES, c), jnp.float32)
                     for name in _STATS}
        stats = {name: v.value for name, v in variables.items()}
        weights = weights.astype(x.dtype)
        bias = None if edge_bias is None else edge_bias.astype(x.dtype)
        incoming: dict[int, list[jax.Array]] = {j: [] for j in range(1, nb201.NUM_NODES)}
        nodes = [x]
        for src in range(nb201.NUM_NODES - 1):
            if src > 0:
                nodes.append(sum(incoming[src]))
            edges = out_edges(src)
            outs, stats = mixed_edges(nodes[src], weights, w3, w1, stats, edges, train, bias)
            for e, y in zip(edges, outs):
                incoming[nb201.EDGES[e][1]].append(y)
        if train and not self.is_initializing():
            for name, v in variables.items():
                v.value = stats[name]
        return sum(incoming[nb201.NUM_NODES - 1])


class DartsNB201Network(nn.Module):
    """The NAS-Bench-201 search network: stem, 3 stages of `cells_per_stage` mixed cells (C, 2C, 4C), 2 residual
    reductions, BN-ReLU, global average pooling, linear head (NAS-Bench-201's DARTS: C=16, N=5)."""

    channels: int = 16
    cells_per_stage: int = 5
    num_classes: int = 10

    @nn.compact
    def __call__(self, x: jax.Array, weights: jax.Array, train: bool = False, edge_bias: jax.Array | None = None
                 ) -> jax.Array:
        """x (B, H, W, C_in) with H, W divisible by 4; weights (6, 5) op weights -> logits (B, num_classes).
        `edge_bias` (6,), if given, is added to every edge's output (GDAS's code estimator uses it)."""
        if weights.shape != (NUM_EDGES, NUM_OPS):
            raise ValueError(f"weights: expected shape {(NUM_EDGES, NUM_OPS)} (edges, ops), got {weights.shape}")
        widths = tuple(self.channels * 2**s for s in range(3))
        h = BatchNorm()(Conv(widths[0], 3)(x), train)
        k = 0
        for stage in range(3):
            if stage > 0:
                h = ResidualReduction(widths[stage])(h, train)
            for _ in range(self.cells_per_stage):
                h = MixedCell(name=f"Cell_{k}")(h, weights, train, edge_bias)  # NB201Network's names
                k += 1
        h = jax.nn.relu(BatchNorm()(h, train))
        return nn.Dense(self.num_classes)(h.mean(axis=(1, 2)))


def derive(alpha: jax.Array) -> jax.Array:
    """DARTS's discretisation for NAS-Bench-201: the op of largest alpha on each edge, (..., 6, 5) -> (..., 6) int32.

    As NAS-Bench-201's `genotype()`, `none` may win (the DARTS space's rule of excluding it does not apply here)."""
    return jnp.argmax(alpha, axis=-1).astype(jnp.int32)


def to_nb201_variables(variables: dict[str, Any], arch: Any) -> dict[str, Any]:
    """Supernet variables (either collection or both) -> `NB201Network` variables of architecture `arch` (6,).

    Every weight is shared; each edge's batch norm becomes affine with scale 1 and bias 0 (the supernet's are not
    affine) and gets the running statistics of the edge's conv op (of the 3x3 conv on edges without one)."""
    arch = jnp.asarray(arch)
    params, stats = dict(variables.get("params", {})), dict(variables.get("batch_stats", {}))
    for name in [n for n in params if n.startswith("Cell_")]:
        c = params[name]["conv1x1"].shape[-1]
        params[name] = {"conv3x3": params[name]["conv3x3"], "conv1x1": params[name]["conv1x1"],
                        **{f"bn_edge{e}": {"scale": jnp.ones((c,), jnp.float32), "bias": jnp.zeros((c,), jnp.float32)}
                           for e in range(NUM_EDGES)}}
    for name in [n for n in stats if n.startswith("Cell_")]:
        cell = stats[name]
        stats[name] = {f"bn_edge{e}": {k: jnp.where(arch[e] == CONV1, cell[f"conv1x1_{k}"][e], cell[f"conv3x3_{k}"][e])
                                       for k in ("mean", "var")} for e in range(NUM_EDGES)}
    return {k: v for k, v in (("params", params), ("batch_stats", stats)) if v}


__all__ = ["DartsNB201Network", "MixedCell", "mixed_edges", "derive", "to_nb201_variables",
           "NONE", "SKIP", "CONV1", "CONV3", "POOL", "NUM_EDGES", "NUM_OPS"]
