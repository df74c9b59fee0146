"""The DARTS supernet of its own NASNet-like cell (Liu, Simonyan & Yang, "DARTS: Differentiable Architecture
Search", ICLR 2019, Sec. 2.1 and 3.1.1; `quark0/darts` `model_search.py`): a normal and a reduction cell, each of two
input nodes and `steps` = 4 intermediate nodes, node i summing one mixed edge from every earlier node (14 edges),
every edge the softmax-weighted sum of the 8 DARTS ops (`jaxnas.models.darts_cell.DARTS_OPS`), the cell's output the
concatenation of all intermediate nodes. One alpha per cell type, shared by every cell of that type: the op weights
are (2, 14, 8), normal then reduction.

Built from the NASNet network's parts (`jaxnas.models.nasnet_ops`) in its layout (`jaxnas.models.nasnet`): the
stem (3x3 convolution to 3F channels, BN), `stages` stacks of `cells_per_stage` normal cells with a reduction cell
between stacks, F doubled at each reduction cell (DARTS's search network, 8 cells with C=16, is stages=3,
cells_per_stage=2, channels=16), the cell inputs brought to F channels by ReLU-conv1x1-BN or the factorized reduction,
global average pooling and a linear head. Hidden states are numbered as in `jaxnas.spaces.nasnet`: 0 the previous
cell's output, 1 the one before, 2 + i intermediate node i; edge (i, j) is node i's edge from state j, edges ordered
node by node (`darts_cell.num_edges`). In a reduction cell the edges from states 0 and 1 have stride 2.

The ops, as DARTS's search network builds them (affine=False batch norms, PyTorch convention): `none` contributes
nothing; the pools are followed by a batch norm (`MixedOp`); `skip_connect` is the identity, or in a reduction cell
on a cell input the strided ReLU-conv1x1-BN of `nasnet_ops` (DARTS: `FactorizedReduce`, deviation); the separable
convolutions (ReLU-depthwise-pointwise-BN twice) and the dilated ones (once, dilation 2) are `nasnet_ops`'. Every
edge owns every op's kernels (stacked along a leading edge axis); the edges leaving one state run together, each op
`vmap`ped over them. `derive` turns alpha into an architecture of `darts_space(steps)` (`DARTS_SPACE` for 4 nodes),
the NASNet space of the cells DARTS derives (its evaluation network: `jaxnas.models.nasnet`, cell output the concatenation of all combinations).

Deviations besides the reduction skip: no auxiliary head or drop path (search network: none either); the input-state
numbering is NASNet's (DARTS's s0 is our state 1), which only changes which of two exactly tied edges ranks first.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxnas.models import nasnet_ops as ops
from jaxnas.models.darts_cell import DARTS_OPS, num_edges
from jaxnas.models.layers import BatchNorm, Conv, batch_norm
from jaxnas.spaces import nasnet

STEPS = 4  # DARTS's intermediate nodes per cell
NUM_EDGES, NUM_OPS = num_edges(STEPS), len(DARTS_OPS)
SKIP, NONE = DARTS_OPS.index("skip_connect"), DARTS_OPS.index("none")
# The architecture DARTS derives, in the NASNet space's encoding: B = 4 combinations of two (input, op) elements
# over the DARTS ops except `none` (`skip_connect` is the space's `identity`), every combination concatenated.
EVAL_OPS = tuple("identity" if o == "skip_connect" else o for o in DARTS_OPS if o != "none")


def darts_space(steps: int = STEPS) -> Any:
    """The NASNet space (a `CategoricalSpace`, one object per `steps`) of the cells DARTS derives with `steps`
    intermediate nodes: B = steps combinations."""
    return nasnet.space(B=steps, ops=EVAL_OPS, output="all")


DARTS_SPACE = darts_space()
_NO_AFFINE = {"scale": None, "bias": None}


def edges_from(src: int, steps: int = STEPS) -> list[int]:
    """The edges reading state `src`, in edge order (node i's edges start at num_edges(i))."""
    return [num_edges(i) + src for i in range(max(src - 1, 0), steps)]


def _kernels_only(tree: Any) -> Any:
    """An op's parameters without its batch norms' scale and bias (DARTS's search ops are affine=False)."""
    return {k: v for k, v in tree.items() if not k.startswith("bn")}


def _non_affine(p: Any) -> Any:
    return {**p, **{k: _NO_AFFINE for k in ("bn", "bn1", "bn2")}}


def _searched(name: str, reduction: bool) -> bool:
    """Whether op `name` of the search owns kernels (skip_connect: only as the strided op of a reduction cell)."""
    return name in ops.SEPARABLE or name in ops.DILATED or (name == "skip_connect" and reduction)


def _stats(name: str, f: int) -> Any:
    return ops.init_stats("identity" if name == "skip_connect" else name, f)


def apply_op(name: str, x: jax.Array, p: Any, s: Any, stride: int, train: bool) -> tuple[jax.Array, Any]:
    """Search op `name` (not `none`) on x with kernels p (no batch-norm affine parameters) and statistics s."""
    if name in ops.POOLS:
        y, _ = ops.apply(name, x, {}, {}, stride, train)
        y, m, v = batch_norm(y, None, None, s["bn"]["mean"], s["bn"]["var"], train)
        return y, {"bn": {"mean": m, "var": v}}
    if name == "skip_connect":
        return ops.apply("identity", x, _non_affine(p), s, stride, train) if stride > 1 else (x, s)
    return ops.apply(name, x, _non_affine(p), s, stride, train)


def _patches(x: jax.Array, k: int, d: int, stride: int) -> jax.Array:
    """The k*k SAME shifted views (dilation d, row-major taps) of x (..., B, H, W, F): (k*k, ..., B, H', W', F)."""
    h, w, pad = x.shape[-3], x.shape[-2], d * (k // 2)
    xp = jnp.pad(x, [(0, 0)] * (x.ndim - 3) + [(pad, pad), (pad, pad), (0, 0)])
    return jnp.stack([xp[..., i * d:i * d + h:stride, j * d:j * d + w:stride, :] for i in range(k) for j in range(k)])


_CENTRE3 = np.array([i * 5 + j for i in range(1, 4) for j in range(1, 4)])  # the 3x3 taps inside a 5x5 window


def _depthwise(p: jax.Array, kernel: jax.Array, shared: bool) -> jax.Array:
    """Per-edge depthwise convolutions from taps p (T, [E,] B, H, W, F) (`shared`: one input for every edge) and
    kernels (E, k, k, F), T = k*k: (E, B, H, W, F)."""
    e, f = kernel.shape[0], kernel.shape[-1]
    spec = "tbhwf,etf->ebhwf" if shared else "tebhwf,etf->ebhwf"
    # (XLA:CPU, 64 8x8 images, F = 8, 8 edges, a 5x5 window, forward and backward: this einsum 7.4 ms; a grouped
    # `lax.conv` with a channel multiplier 263 ms; a sum of tap products was faster forward, 3x slower in a step)
    return jnp.einsum(spec, p, kernel.reshape(e, -1, f), preferred_element_type=jnp.float32)


def _pointwise(y: jax.Array, kernel: jax.Array) -> jax.Array:
    return jnp.einsum("ebhwf,efg->ebhwg", y, kernel, preferred_element_type=jnp.float32)


def _bn(y: jax.Array, s: Any, train: bool) -> tuple[jax.Array, Any]:
    """Non-affine batch norm of every edge's y (E, B, H, W, F) with its own statistics (E, F)."""
    if y.shape[0] != s["mean"].shape[0]:  # one input for every edge
        y = jnp.broadcast_to(y, (s["mean"].shape[0],) + y.shape[1:])
    y, m, v = jax.vmap(lambda a, mm, vv: batch_norm(a, None, None, mm, vv, train))(y, s["mean"], s["var"])
    return y, {"mean": m, "var": v}


def source_ops(x: jax.Array, params: Any, stats: Any, idx: np.ndarray, stride: int, train: bool
               ) -> tuple[dict[int, jax.Array], Any]:
    """Every op (but `none`) on every edge `idx` that reads state x (B, H, W, F): ({op column: (E_idx, B, H', W', F)},
    statistics with the rows of `idx` updated). The same function as `apply_op` edge by edge (tested), computed
    together: the taps of ReLU(x) are cut once (a 5x5 window at dilation 1 and 2; the 3x3 ops use its centre) and
    every edge's depthwise and pointwise kernels contract them in one einsum each."""
    rows = lambda tree: jax.tree.map(lambda a: a[idx], tree)  # noqa: E731
    p = {n: rows(v) for n, v in params.items()}
    s = {n: rows(v) for n, v in stats.items()}
    new, outs = dict(s), {}
    r = jax.nn.relu(x)
    taps = {1: _patches(r, 5, 1, stride), 2: _patches(r, 5, 2, stride)}
    for name, (k, d) in {**ops.SEPARABLE, **ops.DILATED}.items():
        if name not in DARTS_OPS:
            continue
        t = taps[d] if k == 5 else taps[d][_CENTRE3]
        q = p[name]
        if name in ops.DILATED:
            y, new[name] = _pointwise(_depthwise(t, q["dw"], True), q["pw"]), {}
            y, new[name]["bn"] = _bn(y, s[name]["bn"], train)
        else:
            y, b1 = _bn(_pointwise(_depthwise(t, q["dw1"], True), q["pw1"]), s[name]["bn1"], train)
            y = _pointwise(_depthwise(_patches(jax.nn.relu(y), k, 1, 1), q["dw2"], False), q["pw2"])
            y, b2 = _bn(y, s[name]["bn2"], train)
            new[name] = {"bn1": b1, "bn2": b2}
        outs[DARTS_OPS.index(name)] = y
    for name in ops.POOLS:
        y, _ = ops.apply(name, x, {}, {}, stride, train)
        outs[DARTS_OPS.index(name)], bn = _bn(y[None], s[name]["bn"], train)
        new[name] = {"bn": bn}
    if stride == 1:
        outs[SKIP] = x[None]
    else:  # the strided identity of a reduction cell: ReLU-conv1x1/2-BN
        y, bn = _bn(_pointwise(r[None, :, ::stride, ::stride, :], p["skip_connect"]["kernel"]),
                    s["skip_connect"]["bn"], train)
        outs[SKIP], new["skip_connect"] = y, {"bn": bn}
    stats = {n: (jax.tree.map(lambda a, b: a.at[idx].set(b), stats[n], new[n]) if n in new else v)
             for n, v in stats.items()}
    return outs, stats


class MixedDartsCell(nn.Module):
    """A DARTS search cell with F = `filters`: (previous output, the one before, op weights (E, 8), train, edge
    bias (E,) or None) -> (batch, H', W', steps * F)."""

    reduction: bool
    filters: int
    steps: int = STEPS

    def _pre(self, name: str, x: jax.Array, factorized: bool, train: bool) -> jax.Array:
        p = self.param(name, lambda k: _kernels_only(ops.init_preprocess(k, x.shape[-1], self.filters, factorized)))
        v = self.variable("batch_stats", name, lambda: {"bn": ops._bn_stats(self.filters)})
        y, new = ops.preprocess(x, _non_affine(p), v.value, train)
        if train and not self.is_initializing():
            v.value = new
        return y

    @nn.compact
    def __call__(self, s0: jax.Array, s1: jax.Array, weights: jax.Array, train: bool,
                 edge_bias: jax.Array | None = None) -> jax.Array:
        f, n_edges = self.filters, num_edges(self.steps)
        states = [self._pre("pre0", s0, False, train), self._pre("pre1", s1, s1.shape[1] != s0.shape[1], train)]
        named = [o for o in DARTS_OPS if _searched(o, self.reduction)]
        params = {o: self.param(o, lambda k, o=o: jax.vmap(
            lambda kk: _kernels_only(ops.init_params("identity" if o == "skip_connect" else o, kk, f)))(
            jax.random.split(k, n_edges))) for o in named}
        with_stats = [o for o in DARTS_OPS if o != "none" and (o != "skip_connect" or self.reduction)]
        stats_var = self.variable("batch_stats", "ops", lambda: {
            o: jax.tree.map(lambda a: jnp.broadcast_to(a, (n_edges,) + a.shape), _stats(o, f)) for o in with_stats})
        stats = stats_var.value
        weights = weights.astype(s0.dtype)
        incoming: dict[int, list[jax.Array]] = {2 + i: [] for i in range(self.steps)}
        for src in range(2 + self.steps - 1):
            if src >= 2:
                states.append(sum(incoming[src]))
            edges = edges_from(src, self.steps)
            idx = np.asarray(edges)
            stride = 2 if self.reduction and src < 2 else 1
            outs, stats = source_ops(states[src], params, stats, idx, stride, train)
            total = sum(weights[idx, o][:, None, None, None, None] * y for o, y in outs.items())
            if edge_bias is not None:  # GDAS's code estimator: the unsampled ops' weights added to each edge
                total = total + edge_bias.astype(s0.dtype)[idx][:, None, None, None, None]
            for k, e in enumerate(edges):
                incoming[2 + _node_of(e)].append(total[k])
        states.append(sum(incoming[1 + self.steps]))
        if train and not self.is_initializing():
            stats_var.value = stats
        return jnp.concatenate(states[2:], axis=-1)


def _node_of(edge: int) -> int:
    i = 0
    while num_edges(i + 1) <= edge:
        i += 1
    return i


class DartsNASNetNetwork(nn.Module):
    """The DARTS search network: `apply(variables, images, weights (2, E, 8), train, edge_bias (2, E) or None)`."""

    channels: int = 8
    cells_per_stage: int = 1
    num_classes: int = 10
    stages: int = 3
    stem_multiplier: int = 3
    steps: int = STEPS

    @nn.compact
    def __call__(self, x: jax.Array, weights: jax.Array, train: bool = False, edge_bias: jax.Array | None = None
                 ) -> jax.Array:
        shape = (2, num_edges(self.steps), NUM_OPS)
        if weights.shape != shape:
            raise ValueError(f"weights: expected shape {shape} (normal/reduction, edges, ops), got {weights.shape}")
        s0 = s1 = BatchNorm(name="stem_bn")(Conv(self.stem_multiplier * self.channels, 3, name="stem")(
            x.astype(jnp.float32)), train)
        k = 0
        for stage in range(self.stages):
            f = self.channels * 2**stage
            kinds = ([True] if stage > 0 else []) + [False] * self.cells_per_stage
            for reduction in kinds:
                c = int(reduction)
                bias = None if edge_bias is None else edge_bias[c]
                cell = MixedDartsCell(reduction, f, self.steps, name=f"cell{k}")
                s0, s1 = cell(s0, s1, weights[c], train, bias), s0
                k += 1
        return nn.Dense(self.num_classes, name="head")(s0.mean(axis=(1, 2)))


def derive(alpha: jax.Array, steps: int = STEPS) -> jax.Array:
    """DARTS's discretisation (`darts_cell.derive_cell`, jittable): alpha (..., 2, E, 8) -> an architecture of
    `darts_space(steps)` (..., 8 * steps) int32. Per node, the 2 edges whose strongest non-`none` op weighs most (the
    earlier state first on a tie), each with that op."""
    w = jax.nn.softmax(alpha, -1)
    w = jnp.where(jnp.arange(NUM_OPS) == NONE, -jnp.inf, w)
    genes = []
    for i in range(steps):
        rows = w[..., num_edges(i):num_edges(i + 1), :]  # (..., 2, 2 + i, ops)
        top = jnp.argsort(-rows.max(-1), axis=-1, stable=True)[..., :2]  # (..., 2, 2)
        op = jnp.take_along_axis(jnp.argmax(rows, -1), top, axis=-1) - 1  # `none` (column 0) dropped
        genes.append(jnp.stack([top, op], -1))  # (..., 2 cells, 2 elements, (input, op))
    arch = jnp.stack(genes, -3)  # (..., 2 cells, steps, 2, 2)
    return arch.reshape(arch.shape[:-4] + (8 * steps,)).astype(jnp.int32)


__all__ = ["DARTS_OPS", "DartsNASNetNetwork", "MixedDartsCell", "apply_op", "source_ops", "derive", "edges_from",
           "DARTS_SPACE", "darts_space", "EVAL_OPS", "num_edges",
           "NUM_EDGES", "NUM_OPS", "SKIP", "NONE", "STEPS"]
