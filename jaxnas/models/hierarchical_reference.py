"""The plain network of ONE hierarchical genotype (Liu et al., ICLR 2018), written without slots or dispatch: the
independent check of `jaxnas.models.hierarchical` (used by the tests).

Nodes are real depthwise concatenations of variable width (Sec. 2.1); a node no edge reaches is absent and its
out-edges are skipped; each level-2 motif is followed by its 1x1 projection to the motif input's width (Sec. 4.1).
The convolutions are XLA's (`lax.conv_general_dilated`, depthwise as a grouped convolution) and batch norm is
written out (training mode: batch statistics, biased variance, eps 1e-5). Kernels are taken from a
`HierarchicalNetwork`'s parameters: a node is tracked as (tensor, the slots it fills in the padded layout), and a
kernel that reads it uses the rows of those slots, in order. Pooling uses the same `reduce_window` as the network so
that gradients split ties identically.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxnas.models.hierarchical import slot_counts
from jaxnas.spaces.hierarchical import Hierarchy, edge_index, edges

Node = tuple[jax.Array, list[int]]  # (B, H, W, len(slots) * c), the padded slots it fills


def _rows(slots: list[int], c: int) -> np.ndarray:
    return np.array([s * c + k for s in slots for k in range(c)], np.int32)


def _bn(z: jax.Array, scale: jax.Array, bias: jax.Array) -> jax.Array:
    mean = z.mean(axis=(0, 1, 2))
    var = jnp.square(z - mean).mean(axis=(0, 1, 2))
    return (z - mean) / jnp.sqrt(var + 1e-5) * scale + bias


def _depthwise(x: jax.Array, k: jax.Array, stride: int = 1) -> jax.Array:
    return jax.lax.conv_general_dilated(x, k[:, :, None, :], (stride, stride), ((1, 1), (1, 1)),
                                        dimension_numbers=("NHWC", "HWIO", "NHWC"), feature_group_count=x.shape[-1])


def _avg_pool(x: jax.Array) -> jax.Array:
    add = lambda a: jax.lax.reduce_window(a, 0.0, jax.lax.add, (1, 3, 3, 1), (1, 1, 1, 1), "SAME")
    return add(x) / add(jnp.ones((1,) + x.shape[1:3] + (1,), x.dtype))


def _max_pool(x: jax.Array) -> jax.Array:
    return jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (1, 3, 3, 1), (1, 1, 1, 1), "SAME")


def _primitive(name: str, p: dict, node: Node, c: int) -> Node:
    """One motif edge on a node; the result's slots are numbered inside the edge's block."""
    t, slots = node
    rows = _rows(slots, c)
    relu = jax.nn.relu
    if name == "identity":
        return t, slots
    if name == "maxpool3x3":
        return _max_pool(t), slots
    if name == "avgpool3x3":
        return _avg_pool(t), slots
    if name == "dwconv3x3":
        return relu(_bn(_depthwise(t, p["dw"][..., rows]), p["bn_scale"][rows], p["bn_bias"][rows])), slots
    first = slice(0, c)  # a 1x1 or separable convolution fills its block's first slot: the batch norm's first c
    if name == "sepconv3x3":
        z = _depthwise(t, p["dw"][..., rows]) @ p["pw"][rows]
        return relu(_bn(z, p["bn_scale"][first], p["bn_bias"][first])), [0]
    assert name == "conv1x1", name
    return relu(_bn(t @ p["pw"][rows], p["bn_scale"][first], p["bn_bias"][first])), [0]


def _graph(nodes: int, first: int, node: Node, run_edge) -> Node | None:
    """A DAG: node j concatenates, predecessor by predecessor, what `run_edge(e, node_i)` gives (None: no edge)."""
    counts = slot_counts(nodes, first)
    values: list[Node | None] = [node]
    for j in range(1, nodes):
        parts, slots, offset = [], [], 0
        for i in range(j):
            out = run_edge(edge_index(i, j), values[i]) if values[i] is not None else None
            if out is not None:
                parts.append(out[0])
                slots += [offset + s for s in out[1]]
            offset += counts[i]
        values.append((jnp.concatenate(parts, axis=-1), slots) if parts else None)
    return values[-1]


def motif(hier: Hierarchy, ep: dict, node: Node, ops: np.ndarray, slots: int, c: int) -> Node | None:
    """A level-2 motif with edge ops `ops` on a node of a `slots`-slot block, then its projection."""
    def run_edge(e, value):
        if ops[e] == 0:
            return None
        p = {k[len(f"e{e}_"):]: v for k, v in ep.items() if k.startswith(f"e{e}_")}
        return _primitive(hier.primitives[int(ops[e]) - 1], p, value, c)

    sink = _graph(hier.motif_nodes, slots, node, run_edge)
    if sink is None:
        return None
    return sink[0] @ ep["proj"][_rows(sink[1], c)][:, _rows(node[1], c)], node[1]


def cell(hier: Hierarchy, cp: dict, x: jax.Array, arch: Any, c: int) -> Node | None:
    """The level-3 motif on x (B, H, W, c)."""
    motif_ops, cell_ops = hier.split(arch)
    counts = slot_counts(hier.cell_nodes, 1)
    sources = [i for i, _ in edges(hier.cell_nodes)]

    def run_edge(e, value):
        op = int(cell_ops[e])
        return None if op == 0 else motif(hier, cp[f"edge{e}"], value, motif_ops[op - 1], counts[sources[e]], c)

    return _graph(hier.cell_nodes, 1, (x, [0]), run_edge)


def _sep(p: dict, node: Node, c_in: int, stride: int) -> jax.Array:
    t, slots = node
    rows = _rows(slots, c_in)
    z = _depthwise(t, p["dw"][..., rows], stride) @ p["pw"][rows]
    return jax.nn.relu(_bn(z, p["bn"]["scale"], p["bn"]["bias"]))


def reference_logits(hier: Hierarchy, params: dict, x: jax.Array, arch: Any, channels: int,
                     cells_per_stage: int = 1, stages: int = 3) -> jax.Array:
    """Training-mode logits of the plain network of `arch` with a `HierarchicalNetwork`'s `params`."""
    x = jnp.asarray(x, jnp.float32)
    c, c_in = channels, x.shape[-1]
    kernel = params["stem"]["kernel"].reshape(3, 3, c_in, c)
    h = jax.lax.conv_general_dilated(x, kernel, (1, 1), ((1, 1), (1, 1)), dimension_numbers=("NHWC", "HWIO", "NHWC"))
    node: Node = (jax.nn.relu(_bn(h, params["stem_bn"]["scale"], params["stem_bn"]["bias"])), [0])
    width = c
    for s in range(stages):
        for k in range(cells_per_stage):
            if s > 0 or k > 0:
                node = (_sep(params[f"sep{s}_{k}"], node, width, 2 if k == 0 else 1), [0])
            width = c * 2 ** s
            out = cell(hier, params[f"cell{s}_{k}"], node[0], arch, width)
            node = out if out is not None else (jnp.zeros(node[0].shape[:3] + (width,)), [0])
    h = _sep(params["final"], node, width, 1)
    return h.mean(axis=(1, 2)) @ params["head"]["kernel"] + params["head"]["bias"]
