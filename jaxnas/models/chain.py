"""MetaQNN's candidate network: a chain of layers read from an architecture array, padded so populations stack.

The architecture (`jaxnas.spaces.metaqnn`) is an *input*, so one compiled program trains every chain. Shapes are
those of the widest, largest case: the feature map stays (B, N, N, C) with N the input size and C the most
filters; a chain whose pooling has shrunk it to n x n keeps its values in the top-left n x n corner and zeros
elsewhere, and a layer with fewer filters than C leaves the other channels at zero. Fully connected layers write
a (B, V) vector, V the widest layer or the class count. Every layer position owns the parameters of every layer
kind it may hold: one k x k kernel of the largest receptive field and the most filters (a smaller convolution
uses its centre and first channels), fully connected matrices from a flattened fc_max_size x fc_max_size map
and from a vector, GAP's 1x1 convolution. A chain of a given architecture computes exactly what the plain,
unpadded network of that architecture computes with the corresponding slices of these parameters
(tests/test_chain.py checks outputs and gradients against such a network written separately).

Layers (the published Caffe generator, `libs/caffe/string_to_model.py`): convolution + bias + ReLU, SAME padding;
max pooling, VALID; fully connected + bias + ReLU; GAP = 1x1 convolution to the class count + ReLU + global
average pooling; the softmax layer is a fully connected layer to the classes over whatever the chain produced
(flattened if it is a map). Initialisation: Caffe's `xavier` filler (uniform +-sqrt(3 / fan_in)) with the fan-in
of the layer the architecture puts there, biases zero. No batch normalisation (the published default).

Dispatch (`jaxnas.models.dispatch`): ``"switch"`` runs only each position's chosen layer (candidates one after
another on a CPU); ``"select"`` computes every layer kind and keeps the chosen one (vmapped populations).
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxnas.common.errors import check
from jaxnas.models.dispatch import choose
from jaxnas.models.layers import conv_same
from jaxnas.spaces.metaqnn import KINDS, Layers, walk

CONV, POOL, FC, GAP = (KINDS.index(k) for k in ("conv", "pool", "fc", "gap"))


def _xavier(key: jax.Array, shape: tuple[int, ...], fan_in: jax.Array) -> jax.Array:
    """Caffe's xavier filler, uniform in +-sqrt(3 / fan_in); `fan_in` may be traced (it depends on the architecture)."""
    return jax.random.uniform(key, shape, jnp.float32, -1.0, 1.0) * jnp.sqrt(3.0 / jnp.maximum(fan_in, 1))


def _zeros(key: jax.Array, shape: tuple[int, ...]) -> jax.Array:
    return jnp.zeros(shape, jnp.float32)


def spatial_mask(n: jax.Array, size: int) -> jax.Array:
    """(size, size, 1) float32: 1 in the top-left n x n corner."""
    inside = jnp.arange(size) < n
    return (inside[:, None] & inside[None, :]).astype(jnp.float32)[..., None]


def max_pool(m: jax.Array, window: int, stride: int) -> jax.Array:
    """VALID max pooling of the whole (B, N, N, C) map, padded back to N x N with zeros (bottom and right)."""
    out = jax.lax.reduce_window(m, -jnp.inf, jax.lax.max, (1, window, window, 1), (1, stride, stride, 1), "VALID")
    pad = m.shape[1] - out.shape[1]
    return jnp.pad(out, ((0, 0), (0, pad), (0, pad), (0, 0)))


class ChainNetwork(nn.Module):
    """`apply(variables, images (B, N, N, C_in), arch (layer_limit + 1,), train)` -> logits (B, num_classes)."""

    layers: Layers
    num_classes: int = 10
    dispatch: str = "switch"

    @nn.compact
    def __call__(self, x: jax.Array, arch: jax.Array, train: bool = False) -> jax.Array:
        lay = self.layers
        size = lay.image_size
        check(x.ndim == 4 and x.shape[1] == x.shape[2] == size, "image_size",
              f"got images of shape {tuple(x.shape[1:])}; this MetaQNN space is for {size}x{size} inputs")
        arch = jnp.asarray(arch, jnp.int32)
        c_in = x.shape[-1]
        c = max(max(lay.conv_filters), c_in)
        v = max(max(lay.fc_widths), self.num_classes)
        s, k_max = lay.fc_max_size, max(lay.conv_sizes)
        kind, width, ksize = (jnp.asarray(a) for a in (lay.kind, lay.width, lay.size))

        m = jnp.pad(x.astype(jnp.float32), ((0, 0), (0, 0), (0, 0), (0, c - c_in)))
        vec = jnp.zeros((x.shape[0], v), jnp.float32)
        # Each position's parameters (named per position, initialised with the fan-in its layer has) and the scalars
        # its layer reads, stacked so that one layer body runs every position (`lax.scan`): the layer table is traced
        # once, not once per position. Unrolled: a rolled scan doubled a batch's running time on the CPU.
        ch = jnp.asarray(c_in, jnp.int32)  # channels (or units) the previous layer produced
        positions = []
        for p in range(lay.layer_limit):
            w = walk(lay, arch, p)
            op = arch[p]
            k_op = jnp.where(kind[op] == CONV, ksize[op], 1)
            prev_kind = kind[jnp.maximum(w.prev, 0)]
            positions.append({
                "op": op, "n": w.n, "spatial_in": (w.prev < 0) | (prev_kind == CONV) | (prev_kind == POOL),
                "kernel": self.param(f"conv_{p}", _xavier, (k_max, k_max, c, max(lay.conv_filters)), k_op * k_op * ch),
                "bias": self.param(f"conv_bias_{p}", _zeros, (max(lay.conv_filters),)),
                "fc_map": self.param(f"fc_map_{p}", _xavier, (s * s * c, max(lay.fc_widths)),
                                     jnp.maximum(w.n, 1) ** 2 * ch),
                "fc_vec": self.param(f"fc_vec_{p}", _xavier, (v, max(lay.fc_widths)), ch),
                "fc_bias": self.param(f"fc_bias_{p}", _zeros, (max(lay.fc_widths),)),
                "gap": self.param(f"gap_{p}", _xavier, (c, self.num_classes), ch),
                "gap_bias": self.param(f"gap_bias_{p}", _zeros, (self.num_classes,))})
            k_kind = kind[op]
            ch = jnp.where(k_kind == CONV, width[op], jnp.where(k_kind == FC, width[op],
                           jnp.where(k_kind == GAP, self.num_classes, ch)))

        def layer(carry, at):
            m, vec = carry
            mask = spatial_mask(at["n"], size)

            def conv_op(f: int, k: int):
                def run(m, vec):
                    lo = (k_max - k) // 2
                    y = conv_same(m, at["kernel"][lo:lo + k, lo:lo + k, :, :f]) + at["bias"][:f]
                    y = jax.nn.relu(y) * mask
                    return jnp.pad(y, ((0, 0), (0, 0), (0, 0), (0, c - f))), vec
                return run

            def pool_op(window: int, stride: int):
                def run(m, vec):
                    return max_pool(m, window, stride) * spatial_mask((at["n"] - window) // stride + 1, size), vec
                return run

            def fc_op(units: int):
                def run(m, vec):
                    flat = m[:, :s, :s, :].reshape(m.shape[0], -1)
                    pre = jnp.where(at["spatial_in"], flat @ at["fc_map"][:, :units], vec @ at["fc_vec"][:, :units])
                    out = jax.nn.relu(pre + at["fc_bias"][:units])
                    return jnp.zeros_like(m), jnp.pad(out, ((0, 0), (0, v - units)))
                return run

            def gap_op(m, vec):
                y = jax.nn.relu(m.reshape(-1, c) @ at["gap"] + at["gap_bias"])
                y = y.reshape(m.shape[:3] + (self.num_classes,))
                mean = jnp.sum(y * mask, axis=(1, 2)) / jnp.maximum(at["n"], 1) ** 2
                return jnp.zeros_like(m), jnp.pad(mean, ((0, 0), (0, v - self.num_classes)))

            table = []
            for layer_kind, prm in lay.table:
                table.append({"end": lambda: (lambda m, vec: (m, vec)), "conv": lambda: conv_op(*prm),
                              "pool": lambda: pool_op(*prm), "fc": lambda: fc_op(*prm), "gap": lambda: gap_op}[layer_kind]())
            return choose(at["op"], table, m, vec, mode=self.dispatch), None

        stacked = jax.tree.map(lambda *xs: jnp.stack(xs), *positions)  # layer_limit >= 1 (`Layers` checks it)
        (m, vec), _ = jax.lax.scan(layer, (m, vec), stacked, unroll=True)

        end = walk(lay, arch, lay.layer_limit)
        is_vec = (end.prev >= 0) & ((kind[jnp.maximum(end.prev, 0)] == FC) | (kind[jnp.maximum(end.prev, 0)] == GAP))
        out_map = self.param("softmax_map", _xavier, (size * size * c, self.num_classes), jnp.maximum(end.n, 1) ** 2 * ch)
        out_vec = self.param("softmax_vec", _xavier, (v, self.num_classes), ch)
        out_bias = self.param("softmax_bias", _zeros, (self.num_classes,))
        return jnp.where(is_vec, vec @ out_vec, m.reshape(m.shape[0], -1) @ out_map) + out_bias


def reference_logits(lay: Layers, params: Any, x: np.ndarray, arch: np.ndarray, num_classes: int) -> jax.Array:
    """The plain network of one architecture, written without padding, from the corresponding slices of a
    `ChainNetwork`'s parameters: the independent check of the padded network (used by the tests)."""
    ids = [int(i) for i in np.asarray(arch).reshape(-1)]
    size, c_max = lay.image_size, max(max(lay.conv_filters), x.shape[-1])
    s, k_max = lay.fc_max_size, max(lay.conv_sizes)
    h = jnp.asarray(x, jnp.float32)
    n, vec = size, None
    for p, op in enumerate(ids[:lay.layer_limit]):
        layer_kind, prm = lay.table[op]
        if layer_kind == "end":
            break
        if layer_kind == "conv":
            f, k = prm
            lo = (k_max - k) // 2
            kern = params[f"conv_{p}"][lo:lo + k, lo:lo + k, :h.shape[-1], :f]
            h = jax.nn.relu(jax.lax.conv_general_dilated(h, kern, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))
                            + params[f"conv_bias_{p}"][:f])
        elif layer_kind == "pool":
            window, stride = prm
            h = jax.lax.reduce_window(h, -jnp.inf, jax.lax.max, (1, window, window, 1), (1, stride, stride, 1), "VALID")
            n = h.shape[1]
        elif layer_kind == "fc":
            units = prm[0]
            if vec is None:
                cin = h.shape[-1]
                rows = np.array([(i * s + j) * c_max + ch for i in range(n) for j in range(n) for ch in range(cin)])
                pre = h.reshape(h.shape[0], -1) @ params[f"fc_map_{p}"][rows, :units]
            else:
                pre = vec @ params[f"fc_vec_{p}"][:vec.shape[-1], :units]
            vec = jax.nn.relu(pre + params[f"fc_bias_{p}"][:units])
        else:  # gap
            y = jax.nn.relu(h @ params[f"gap_{p}"][:h.shape[-1]] + params[f"gap_bias_{p}"])
            vec = jnp.mean(y, axis=(1, 2))
    if vec is not None:
        return vec @ params["softmax_vec"][:vec.shape[-1]] + params["softmax_bias"]
    cin = h.shape[-1]
    rows = np.array([(i * size + j) * c_max + ch for i in range(n) for j in range(n) for ch in range(cin)])
    return h.reshape(h.shape[0], -1) @ params["softmax_map"][rows] + params["softmax_bias"]
