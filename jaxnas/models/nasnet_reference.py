"""The plain NASNet / AmoebaNet network of ONE architecture, written separately from `jaxnas.models.nasnet`: the
independent check of its fixed-shape form (tests/test_nasnet.py). Its ops are written with other primitives than
the network's, so the check covers the ops as well as the dispatch, the masking and the stacked parameters.

Real, Aggarwal, Huang & Le, "Regularized Evolution for Image Classifier Architecture Search" (AAAI 2019), on the
NASNet search space (Zoph et al., CVPR 2018). Nothing here is dispatched or masked: each element reads its hidden
state by Python index, each op is built from XLA's own convolution and pooling primitives (`lax.conv_general_dilated`
with feature groups for the depthwise convolutions, `lax.reduce_window` for the average pool, the largest of nine
shifted views for the max pool), and a cell's output is the
real concatenation of its unused combinations only, of width k * F for k unused combinations. Its consumers (the
next cells' projections, the classifier) use the rows of the fixed-shape network's (B * F, ...) kernels that belong
to those k blocks, which is what the masked concatenation claims to compute.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxnas.spaces.nasnet import Cells, as_cells, unused

SEP = {"sep_conv_3x3": (3, 1), "sep_conv_5x5": (5, 1), "sep_conv_7x7": (7, 1), "dil_sep_conv_3x3": (3, 2)}


def _conv(x, kernel_hwio, stride=(1, 1), padding=((0, 0), (0, 0)), dilation=(1, 1), groups=1):
    return jax.lax.conv_general_dilated(x, kernel_hwio, stride, padding, rhs_dilation=dilation,
                                        dimension_numbers=("NHWC", "HWIO", "NHWC"), feature_group_count=groups,
                                        precision=jax.lax.Precision.HIGHEST)


def _bn(x, p, s, train, eps=1e-5):
    if train:
        mean, var = x.mean(axis=(0, 1, 2)), x.var(axis=(0, 1, 2))
    else:
        mean, var = s["mean"], s["var"]
    return (x - mean) / jnp.sqrt(var + eps) * p["scale"] + p["bias"]


def _pointwise(x, k):
    return _conv(x, k[None, None])


def _op(name, x, p, s, stride, train):
    relu = jax.nn.relu
    if name in SEP:
        k, d = SEP[name]
        f = x.shape[-1]
        pad = ((d * (k // 2),) * 2,) * 2
        y = _conv(relu(x), p["dw1"][:, :, None, :], (stride, stride), pad, (d, d), groups=f)
        y = _bn(_pointwise(y, p["pw1"]), p["bn1"], s["bn1"], train)
        y = _conv(relu(y), p["dw2"][:, :, None, :], (1, 1), pad, (d, d), groups=f)
        return _bn(_pointwise(y, p["pw2"]), p["bn2"], s["bn2"], train)
    if name == "conv_1x7_7x1":
        y = _conv(relu(x), p["k1"][None], (1, stride), ((0, 0), (3, 3)))
        y = _bn(y, p["bn1"], s["bn1"], train)
        y = _conv(relu(y), p["k2"][:, None], (stride, 1), ((3, 3), (0, 0)))
        return _bn(y, p["bn2"], s["bn2"], train)
    if name == "identity":
        return x if stride == 1 else _bn(_conv(relu(x), p["kernel"][None, None], (stride, stride)), p["bn"], s["bn"],
                                          train)
    window, strides, pad = (1, 3, 3, 1), (1, stride, stride, 1), ((0, 0), (1, 1), (1, 1), (0, 0))
    if name == "max_pool_3x3":  # the largest of the nine shifted views (the network uses reduce_window)
        h, w = x.shape[1], x.shape[2]
        xp = jnp.pad(x, pad, constant_values=-jnp.inf)
        return jnp.stack([xp[:, i:i + h:stride, j:j + w:stride] for i in range(3) for j in range(3)]).max(axis=0)
    total = jax.lax.reduce_window(x, 0.0, jax.lax.add, window, strides, pad)
    count = jax.lax.reduce_window(jnp.ones_like(x[..., :1]), 0.0, jax.lax.add, window, strides, pad)
    return total / count


def _project(x, rows, p, s, train, factorized):
    """ReLU, then the 1x1 (or factorized-reduction) projection using the kernel rows of x's channels, then BN."""
    x = jax.nn.relu(x)
    if factorized:
        shifted = jnp.pad(x, ((0, 0), (0, 1), (0, 1), (0, 0)))[:, 1:, 1:, :]  # the published pad-and-shift
        y = jnp.concatenate([_conv(x, p["path1"][rows][None, None], (2, 2)),
                             _conv(shifted, p["path2"][rows][None, None], (2, 2))], axis=-1)
    else:
        y = _pointwise(x, p["kernel"][rows])
    return _bn(y, p["bn"], s["bn"], train)


def reference_logits(cells: Cells, variables: dict[str, Any], x: Any, arch: Any, *, channels: int,
                     cells_per_stage: int, stem_multiplier: int = 3, stages: int = 3, train: bool = True) -> jax.Array:
    """Logits of the plain network of `arch` from a `NASNetNetwork`'s variables ({"params", "batch_stats"});
    `train`: BatchNorm by batch statistics (else by the stored running ones)."""
    params, stats = variables["params"], variables["batch_stats"]
    genes = as_cells(np.asarray(arch).reshape(-1), cells.B)
    free = unused(np.asarray(arch).reshape(-1), cells.B)
    x = jnp.asarray(x, jnp.float32)
    c_in = x.shape[-1]
    stem_kernel = params["stem"]["kernel"].reshape(3, 3, c_in, -1)
    h = _bn(_conv(x, stem_kernel, padding=((1, 1), (1, 1))), params["stem_bn"], stats["stem_bn"], train)
    all_rows = np.arange(h.shape[-1])
    prev, prev_rows = h, all_rows  # the previous cell's output and the kernel rows of its channels
    skip, skip_rows = h, all_rows  # the one before
    index = 0
    for stage in range(stages):
        f = channels * 2**stage
        kinds = ([True] if stage > 0 else []) + [False] * cells_per_stage
        for reduction in kinds:
            p, s = params[f"cell{index}"], stats[f"cell{index}"]
            states = [_project(prev, prev_rows, p["pre0"], s["pre0"], train, False),
                      _project(skip, skip_rows, p["pre1"], s["pre1"], train, skip.shape[1] != prev.shape[1])]
            g = genes[int(reduction)]
            for b in range(cells.B):
                total = 0.0
                for e in range(2):
                    i, name = int(g[b, e, 0]), cells.ops[int(g[b, e, 1])]
                    stride = 2 if reduction and i < 2 else 1
                    el = 2 * b + e  # the element's row of the cell's stacked parameters
                    p_op, s_op = (jax.tree.map(lambda a: a[el], t.get(name, {})) for t in (p, s["ops"]))
                    total = total + _op(name, states[i], p_op, s_op, stride, train)
                states.append(total)
            keep = [j for j in range(cells.B) if free[int(reduction), j]]
            out = jnp.concatenate([states[2 + j] for j in keep], axis=-1)  # the real, variable-width concatenation
            out_rows = np.concatenate([np.arange(j * f, (j + 1) * f) for j in keep])
            prev, prev_rows, skip, skip_rows = out, out_rows, prev, prev_rows
            index += 1
    pooled = jax.nn.relu(prev).mean(axis=(1, 2))
    return pooled @ params["head"]["kernel"][prev_rows] + params["head"]["bias"]
