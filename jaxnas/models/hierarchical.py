"""Hierarchical NAS's candidate network: a genotype of `jaxnas.spaces.hierarchical` (motifs of motifs) as an INPUT, so
one compiled program trains every genotype (Liu, Simonyan, Vinyals, Fernando & Kavukcuoglu, "Hierarchical
Representations for Efficient Architecture Search", ICLR 2018, arXiv 1711.00436).

Skeleton (the paper's small CIFAR-10 search model, Fig. 2; the same in NASLib's `SmallHierarchicalSearchSpace`): a
3x3 convolution with C channels; `stages` = 3 stages of `cells_per_stage` cells (1 in the search model) with C, 2C,
4C channels, a 3x3 separable convolution of stride 2 between stages (doubling the channels), another of stride 1
between two cells of a stage and one after the last cell; global average pooling; a linear classifier. The
skeleton's convolutions are followed by batch normalisation and ReLU, as the primitives' (Sec. 2.3). Defaults for
the 2-core CPU: C = 8 (NASLib's version of the search model: 16), any input whose sides divide by 2 ** (stages - 1)
(8x8 or 16x16 images).

Primitives (Sec. 2.3), stride 1, SAME padding: `conv1x1` (1x1 convolution to C channels, BN, ReLU), `dwconv3x3`
(3x3 depthwise convolution, BN, ReLU; keeps its input's channels), `sepconv3x3` (3x3 depthwise then 1x1 to C
channels, BN, ReLU), `maxpool3x3`, `avgpool3x3` (padding not counted, as TF's SAME average pooling), `identity`.

Merge (Sec. 2.1): a node is the depthwise concatenation of its incoming edges, so its width depends on the genotype:
a pooling, depthwise or identity edge keeps its input's width, a convolution gives C. "Each level-2 motif is
followed by a 1x1 convolution with the same number of channels as on the motif input" (Sec. 4.1), so a motif maps
a width w to w; the cell's output width varies and the separable convolution after it brings it back to the
stage's width. Fixed shapes: widths are counted in *slots* of C channels. A node's slots are laid out block by
block, one block per predecessor (ascending) of the size that predecessor has (`slot_counts`: 1, 1, 2, 4, 8 for a
5-node cell; P, P, 2P, 4P inside a motif whose input has P slots), and a float mask (slots,) marks the slots an
edge filled (a convolution fills the first slot of its block). Unfilled slots hold zeros; every kernel that reads a
node has a row per slot, and the rows of the filled slots, in order, are the plain network's kernel. A node with no
filled slot is absent (its out-edges add nothing), as a motif whose output node is unreachable; a cell whose
output is unreachable gives zeros. `jaxnas.models.hierarchical_reference` builds the plain network of one genotype
with real concatenations from the same parameters; the tests check outputs and gradients against it.

Dispatch (`jaxnas.models.dispatch.choose`): every motif edge runs its primitive through `choose` ("switch": only
the chosen one; "select": all, one kept). A cell edge chooses between `none` and "run the motif it names": the
motif's ops are read from the genotype (a gather) and its DAG runs with them, which is a (1 + M)-way choice whose
motif branches differ only in the ops they read, written once; its "switch" is differentiated by recomputing the
chosen branch (`choose_recomputed`). Parameters have the same shapes for every genotype:
per cell edge, its projection and, per motif edge, one depthwise kernel (3, 3, width), one pointwise kernel
(width, C) and one batch norm (width), shared by the primitives that need them (`dwconv3x3` and `sepconv3x3` the
depthwise kernel, `sepconv3x3` and `conv1x1` the pointwise one; the batch norm follows whichever convolution the
edge holds, a 1x1 or separable convolution using its first C channels). An edge holds one primitive at a time, so
every genotype gets exactly its plain network's parameters, as NAS-Bench-201's one BatchNorm per edge
(`jaxnas.models.nb201`); sharing keeps the program small (one batch norm, applied after `choose`, instead of one in
each convolution branch).

Deviations: the post-motif 1x1 convolution is linear (no BN or ReLU: the paper names only the convolution);
initialisation is He normal with the fan-in the genotype gives (LeCun for the linear projection), the paper gives
none; the stride-2 separable convolutions pad 1 on each side (this project's convention) where TF's SAME pads the
bottom and right only; a cell whose output node no edge reaches outputs zeros (the paper does not say).
Cost (2-core CPU shared with other jobs, so rough; C = 8, 8x8 digits, batch 32, `PopulationTrainer`): the paper's
space (6 motifs, 4 and 5 nodes: 180 motif edges in 3 cells) trains at ~56 ms per candidate-step with map, after a
~4 min compile; its "select" gradient compiled in ~13 min and ran ~5x slower than "switch" (measured under heavy
load), so vmapped populations of the paper's space are for accelerators. A small space (2 motifs, 3 and 3 nodes)
trains at ~5 ms per candidate-step with map and ~19 ms with vmap, compiling in ~30 and ~45 s.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxnas.common.errors import check
from jaxnas.models.dispatch import choose, choose_recomputed
from jaxnas.models.layers import BatchNorm, Conv, avg_pool3x3, batch_norm, matmul
from jaxnas.spaces.hierarchical import Hierarchy, edge_index, edges

MAX_SLOTS = 64  # widest node allowed, in slots of C channels (widths double with every node)
CONV_LIKE = ("conv1x1", "sepconv3x3")  # primitives whose output has C channels (one slot)
CONVS = CONV_LIKE + ("dwconv3x3",)  # primitives followed by batch norm and ReLU


def slot_counts(nodes: int, first: int) -> list[int]:
    """Slots of each node of a `nodes`-node DAG whose input has `first`: node j has the sum of its predecessors'."""
    counts = [first]
    for _ in range(1, nodes):
        counts.append(sum(counts))
    return counts


def widest(hier: Hierarchy) -> int:
    """The most slots any node of the network can have (a motif on the cell's last edge into the output)."""
    cell = slot_counts(hier.cell_nodes, 1)
    return max([cell[-1]] + [slot_counts(hier.motif_nodes, p)[-1] for p in cell[:-1]])


def _kinds(hier: Hierarchy) -> jax.Array:
    """Per motif-edge op id: 0 none, 1 a convolution (fills one slot), 2 keeps its input's slots."""
    return jnp.asarray([0] + [1 if p in CONV_LIKE else 2 for p in hier.primitives], jnp.int32)


def edge_mask(kinds: jax.Array, op: Any, m: jax.Array) -> jax.Array:
    """The slots an edge with op `op` fills in its block, given its input's slot mask `m` (S,)."""
    k = kinds[op]
    first = jnp.zeros_like(m).at[0].set(jnp.max(m))
    return jnp.where(k == 0, jnp.zeros_like(m), jnp.where(k == 1, first, m))


def motif_masks(hier: Hierarchy, ops: Any, m: jax.Array) -> list[jax.Array]:
    """Slot masks of every node of a motif with edge ops `ops` (motif_edges,) run on an input with mask `m`."""
    kinds, nodes = _kinds(hier), [m]
    for j in range(1, hier.motif_nodes):
        nodes.append(jnp.concatenate([edge_mask(kinds, ops[edge_index(i, j)], nodes[i]) for i in range(j)]))
    return nodes


def channel_mask(m: jax.Array, c: int) -> jax.Array:
    """A slot mask (S,) as a channel mask (S * c,)."""
    return jnp.repeat(m, c)


def _shifted(x: jax.Array, k: jax.Array, stride: int = 1) -> jax.Array:
    """sum over the 3x3 taps of (x zero-padded by 1, shifted) * k[tap]: x (B, H, W, C), k (3, 3, C)."""
    h, w = x.shape[1], x.shape[2]
    xp = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    return sum(xp[:, dy:dy + h:stride, dx:dx + w:stride, :] * k[dy, dx] for dy in range(3) for dx in range(3))


@jax.custom_vjp
def _depthwise_s1(x: jax.Array, k: jax.Array) -> jax.Array:
    return _shifted(x, k)


def _depthwise_fwd(x, k):
    return _shifted(x, k), (x, k)


def _depthwise_bwd(res, g):
    x, k = res
    h, w = x.shape[1], x.shape[2]
    xp = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    taps = jnp.stack([xp[:, dy:dy + h, dx:dx + w, :] * g for dy in range(3) for dx in range(3)])  # (9, B, H, W, C)
    return _shifted(g, jnp.flip(k, (0, 1))), taps.sum(axis=(1, 2, 3)).reshape(k.shape)


_depthwise_s1.defvjp(_depthwise_fwd, _depthwise_bwd)


def depthwise3x3(x: jax.Array, k: jax.Array, stride: int = 1) -> jax.Array:
    """3x3 depthwise convolution, padding 1: x (B, H, W, C), k (3, 3, C), as nine shifted products (a batched
    elementwise program under vmap, where XLA:CPU runs a per-candidate grouped convolution 100x slower). Stride 1
    has a hand-written backward (the input gradient is the same sum with the flipped kernel, the kernel gradient one
    reduction), which keeps the program small; stride 2 (the skeleton's) is differentiated automatically."""
    return _depthwise_s1(x, k) if stride == 1 else _shifted(x, k, stride)


def max_pool3x3(x: jax.Array) -> jax.Array:
    """3x3 max pooling, stride 1, SAME (padding never wins)."""
    return jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (1, 3, 3, 1), (1, 1, 1, 1), "SAME")


def _fan_normal(gain: float):
    def init(key: jax.Array, shape: tuple[int, ...], fan_in: Any) -> jax.Array:
        return jax.random.normal(key, shape, jnp.float32) * jnp.sqrt(gain / jnp.maximum(fan_in, 1.0))
    return init


he, lecun = _fan_normal(2.0), _fan_normal(1.0)


def primitive_table(hier: Hierarchy, c: int):
    """`op(x, z, p) -> y` for op ids 0 (none), 1.. (`hier.primitives`) on x (B, H, W, S c): y has the input's S slots (a
    1x1 or separable convolution fills the first; the caller masks the unfilled ones). z is x's depthwise convolution
    when the caller computed it once for every branch ("select"), else None. The convolutions return their
    output before batch norm and ReLU, which the caller applies with the edge's one batch norm. An edge holds one
    primitive, so `dwconv3x3` and `sepconv3x3` share the depthwise kernel `dw` (3, 3, S c) and `sepconv3x3` and
    `conv1x1` the pointwise kernel `pw` (S c, c): every genotype has one kernel per edge, as its plain network."""
    def one_slot(y, x):
        return jnp.pad(y, ((0, 0), (0, 0), (0, 0), (0, x.shape[-1] - c)))

    def depthwise(x, z, p):
        return depthwise3x3(x, p["dw"]) if z is None else z

    ops = {"conv1x1": lambda x, z, p: one_slot(matmul(x, p["pw"]), x), "dwconv3x3": depthwise,
           "sepconv3x3": lambda x, z, p: one_slot(matmul(depthwise(x, z, p), p["pw"]), x),
           "maxpool3x3": lambda x, z, p: max_pool3x3(x), "avgpool3x3": lambda x, z, p: avg_pool3x3(x),
           "identity": lambda x, z, p: x}
    return [lambda x, z, p: jnp.zeros_like(x)] + [ops[name] for name in hier.primitives]


def _concrete(a: Any) -> bool:
    return isinstance(a, (int, np.integer, np.ndarray))


class MotifEdge(nn.Module):
    """One cell edge: `none`, or a level-2 motif then its 1x1 projection back to the input's width.

    `__call__(x (B, H, W, P c), m (P,), motif_ops (motif_edges,), present, train) -> (y, mask (P,))`. Each motif edge
    has one batch norm over its input's width, used (with ReLU) after whichever convolution the edge holds (a 1x1 or
    separable convolution uses its first C channels); its running statistics move only where it normalised a
    filled slot."""

    hier: Hierarchy
    channels: int
    slots: int  # P: slots of the node this edge reads
    dispatch: str = "switch"

    @nn.compact
    def __call__(self, x, m, motif_ops, present, train):
        hier, c = self.hier, self.channels
        counts = slot_counts(hier.motif_nodes, self.slots)
        masks = motif_masks(hier, motif_ops, m)
        params, stats = [], []
        for e, (i, _) in enumerate(edges(hier.motif_nodes)):
            w, fan = counts[i] * c, jnp.sum(masks[i]) * c
            params.append({"dw": self.param(f"e{e}_dw", he, (3, 3, w), 9.0),
                           "pw": self.param(f"e{e}_pw", he, (w, c), fan),
                           "scale": self.param(f"e{e}_bn_scale", nn.initializers.ones, (w,)),
                           "bias": self.param(f"e{e}_bn_bias", nn.initializers.zeros, (w,))})
            stats.append(self.variable("batch_stats", f"e{e}_bn",
                                       lambda w=w: {"mean": jnp.zeros((w,)), "var": jnp.ones((w,))}))
        proj = self.param("proj", lecun, (counts[-1] * c, self.slots * c), jnp.sum(masks[-1]) * c)
        table, kinds = primitive_table(hier, c), _kinds(hier)
        normed = np.array([False] + [p in CONVS for p in hier.primitives])
        # "select" runs every branch: the depthwise convolution two of them need is computed once, outside
        share_dw = self.dispatch == "select" and {"dwconv3x3", "sepconv3x3"} <= set(hier.primitives)

        def motif(x, params, proj, masks, olds, motif_ops):
            nodes, moved = [x], []
            for j in range(1, hier.motif_nodes):
                parts = []
                for i in range(j):
                    e = edge_index(i, j)
                    op, p, (old_mean, old_var) = motif_ops[e], params[e], olds[e]
                    z = depthwise3x3(nodes[i], p["dw"]) if share_dw and not _concrete(op) else None
                    y = choose(op, table, nodes[i], z, p, mode=self.dispatch)
                    filled = channel_mask(edge_mask(kinds, op, masks[i]), c)
                    if _concrete(op) and not normed[op]:
                        parts.append(y * filled)
                        moved.append((old_mean, old_var))
                        continue
                    yn, mean, var = batch_norm(y, p["scale"], p["bias"], old_mean, old_var, train)
                    use = jnp.asarray(normed)[op]
                    parts.append(jnp.where(use, jax.nn.relu(yn), y) * filled)
                    upd = use & (filled > 0)
                    moved.append((jnp.where(upd, mean, old_mean), jnp.where(upd, var, old_var)))
                nodes.append(jnp.concatenate(parts, axis=-1))
            return matmul(nodes[-1], proj), moved

        def absent(x, params, proj, masks, olds, motif_ops):
            return jnp.zeros_like(x), list(olds)

        olds = [(v.value["mean"], v.value["var"]) for v in stats]
        y, moved = choose_recomputed(present, [absent, motif], x, params, proj, masks, olds, motif_ops,
                                     mode=self.dispatch)
        if self.is_mutable_collection("batch_stats") and not self.is_initializing():
            for v, (mean, var) in zip(stats, moved):
                v.value = {"mean": mean, "var": var}
        m_out = m * jnp.asarray(present, jnp.float32) * jnp.max(masks[-1])
        return y * channel_mask(m_out, c), m_out


class Cell(nn.Module):
    """The level-3 motif: `__call__(x (B, H, W, C), arch (L,), train) -> (y (B, H, W, S C), slot mask (S,))`."""

    hier: Hierarchy
    channels: int
    dispatch: str = "switch"

    @nn.compact
    def __call__(self, x, arch, train):
        hier = self.hier
        table = arch[:hier.cell_offset].reshape(hier.motifs, hier.motif_edges)
        cell_ops = arch[hier.cell_offset:]
        counts = slot_counts(hier.cell_nodes, 1)
        nodes = [(x, jnp.ones((1,), jnp.float32))]
        for j in range(1, hier.cell_nodes):
            ys, ms = [], []
            for i in range(j):
                e = edge_index(i, j)
                op = cell_ops[e]
                if _concrete(op):
                    present, motif_ops = int(op > 0), table[max(int(op) - 1, 0)]
                else:
                    present, motif_ops = (op > 0).astype(jnp.int32), table[jnp.maximum(op - 1, 0)]
                y, m = MotifEdge(hier, self.channels, counts[i], self.dispatch, name=f"edge{e}")(
                    *nodes[i], motif_ops, present, train)
                ys.append(y)
                ms.append(m)
            nodes.append((jnp.concatenate(ys, axis=-1), jnp.concatenate(ms)))
        return nodes[-1]


class SepConvBN(nn.Module):
    """The skeleton's 3x3 separable convolution (stride 1 or 2) to `features` channels, BN, ReLU; reads a node whose
    unfilled slots are zero (slot mask `m`, used for the fan-in)."""

    features: int
    stride: int = 1

    @nn.compact
    def __call__(self, x, m, train):
        fan = jnp.sum(m) * (x.shape[-1] // m.shape[0])
        dw = self.param("dw", he, (3, 3, x.shape[-1]), 9.0)
        pw = self.param("pw", he, (x.shape[-1], self.features), fan)
        return jax.nn.relu(BatchNorm(name="bn")(matmul(depthwise3x3(x, dw, self.stride), pw), train))


class HierarchicalNetwork(nn.Module):
    """`apply(variables, images (B, H, W, C_in), arch (L,), train)` -> logits (B, num_classes); H and W divisible by
    2 ** (stages - 1)."""

    hier: Hierarchy
    num_classes: int = 10
    channels: int = 8
    cells_per_stage: int = 1
    stages: int = 3  # the paper's skeleton has 3 (C, 2C, 4C); fewer for tiny tests
    dispatch: str = "switch"  # "select" for vmapped populations (set by the engine, `jaxnas.models.dispatch`)

    def __post_init__(self):
        for field in ("num_classes", "channels", "cells_per_stage", "stages"):
            v = getattr(self, field)
            check(isinstance(v, int) and not isinstance(v, bool) and v >= 1, field,
                  f"got {v!r}; allowed: an integer >= 1")
        check(widest(self.hier) <= MAX_SLOTS, "motif_nodes, cell_nodes",
              f"got {self.hier.motif_nodes} and {self.hier.cell_nodes}: concatenation makes nodes {widest(self.hier)} "
              f"x channels wide; allowed: at most {MAX_SLOTS} x channels (the paper's 4 and 5 give 16)")
        super().__post_init__()

    @nn.compact
    def __call__(self, x: jax.Array, arch: Any, train: bool = False) -> jax.Array:
        k = 2 ** (self.stages - 1)
        check(x.ndim == 4 and x.shape[1] % k == 0 and x.shape[2] % k == 0, "image_size",
              f"got images of shape {tuple(x.shape[1:])}; allowed: height and width divisible by {k}")
        arch = np.asarray(arch, np.int32) if isinstance(arch, np.ndarray) else jnp.asarray(arch, jnp.int32)
        check(arch.shape == (self.hier.length,), "arch", f"got shape {arch.shape}; allowed: ({self.hier.length},)")
        c = self.channels
        h = jax.nn.relu(BatchNorm(name="stem_bn")(Conv(c, 3, name="stem")(x.astype(jnp.float32)), train))
        m = jnp.ones((1,), jnp.float32)
        for s in range(self.stages):
            width = c * 2 ** s
            for k in range(self.cells_per_stage):
                if s > 0 or k > 0:
                    h, m = SepConvBN(width, 2 if k == 0 else 1, name=f"sep{s}_{k}")(h, m, train), jnp.ones((1,))
                h, m = Cell(self.hier, width, self.dispatch, name=f"cell{s}_{k}")(h, arch, train)
        h = SepConvBN(width, 1, name="final")(h, m, train)
        return nn.Dense(self.num_classes, name="head")(h.mean(axis=(1, 2)))
