"""The ops of the NASNet / AmoebaNet cells as pure functions of (input, parameters, BatchNorm statistics).

Real, Aggarwal, Huang & Le, "Regularized Evolution for Image Classifier Architecture Search" (AAAI 2019), Methods
Details: "none (identity); 3x3, 5x5 and 7x7 separable convs; 3x3 avg pool; 3x3 max pool; 3x3 dilated sep. conv;
1x7 then 7x1 conv", on the NASNet search space (Zoph et al., CVPR 2018). How each op is built follows NASNet's
Appendix and the published AmoebaNet code (tensorflow/tpu models/official/amoeba_net/network_utils.py):

* every convolution is ReLU-conv-BN, without bias; a separable convolution is a depthwise k x k convolution then a
  pointwise 1x1 convolution (no BN or ReLU between them), and the whole ReLU-separable-BN is applied twice, the
  stride only in the first (`_stacked_separable_conv`, NASNet's "separable ops applied twice");
* the dilated separable convolution is the same with dilation 2 in both depthwise convolutions (the published
  code names it `dil_2_separable_..._2`, two layers; its parser drops the rate, so this is our reading);
* 1x7 then 7x1: ReLU-conv1x7-BN-ReLU-conv7x1-BN, the stride on the width in the first and on the height in the
  second (the published code's branch without its F/4 bottleneck: deviation, the paper names no bottleneck);
* identity: the input itself; with stride 2 (a reduction cell reading a cell input) ReLU-conv1x1/2-BN (the published
  'none' with a stride);
* 3x3 average pooling (padding not counted, TF's SAME) and 3x3 max pooling, stride 1 or 2, no parameters (every
  hidden state already has F channels, so the published 1x1 after a pooling is never needed);
* DARTS's dilated convolutions (Liu et al., ICLR 2019; `quark0/darts` `operations.py` `DilConv`), for the DARTS
  space's cells: ReLU, depthwise k x k with dilation 2, pointwise 1x1, BN, once (not stacked twice).

Stride 2 takes the windows centred on even rows and columns (padding k // 2 on every side, PyTorch's and DARTS'
convention); TensorFlow's SAME stride-2 windows are centred one pixel later on even sizes (deviation). Convolutions
are written as loops over shifted views (the depthwise ones, with a hand-written backward pass) and matmuls, not
`lax.conv`: XLA:CPU runs grouped (depthwise) convolutions and their gradients one to two orders of magnitude slower
inside the engine's `lax.map` (measured below), and under `vmap` the matmuls batch (../shared/NOTES.md).
BatchNorm: `layers.batch_norm` (the project's PyTorch convention: momentum 0.1, eps 1e-5; the published code uses
decay 0.9997, eps 1e-3).
Kernels are He-normal (fan-in) initialised, as elsewhere in the project (the published code: fan-out scaling).
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxnas.models.layers import batch_norm, matmul

SEPARABLE = {"sep_conv_3x3": (3, 1), "sep_conv_5x5": (5, 1), "sep_conv_7x7": (7, 1), "dil_sep_conv_3x3": (3, 2)}
DILATED = {"dil_conv_3x3": (3, 2), "dil_conv_5x5": (5, 2)}  # DARTS's DilConv: one ReLU-depthwise-pointwise-BN
POOLS = ("avg_pool_3x3", "max_pool_3x3")

Tree = dict[str, Any]


# --- primitives ----------------------------------------------------------------------------------------------------
def _he(key: jax.Array, shape: tuple[int, ...], fan_in: int) -> jax.Array:
    return jax.random.normal(key, shape, jnp.float32) * np.sqrt(2.0 / fan_in)


def _taps(x: jax.Array, k: int, stride: int, dilation: int) -> list[jax.Array]:
    """The k x k shifted views of x (B, H, W, C) for a SAME window, strided: k*k arrays (B, H/s, W/s, C), row-major."""
    h, w = x.shape[1], x.shape[2]
    pad = dilation * (k // 2)
    xp = jnp.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    return [xp[:, i * dilation:i * dilation + h:stride, j * dilation:j * dilation + w:stride, :]
            for i in range(k) for j in range(k)]


KMAX, PMAX = 7, 4  # the largest depthwise kernel and the largest SAME padding (7x7 pads 3; the dilated 5x5 pads 4)


def pad_kernel(kernel: jax.Array) -> jax.Array:
    """A (k, k, C) depthwise kernel centred in a (7, 7, C) one (zeros around): every separable op's kernel has the
    same shape inside the dispatch."""
    o = (KMAX - kernel.shape[0]) // 2
    return jnp.pad(kernel, ((o, o), (o, o), (0, 0)))


def _shifted(xp: jax.Array, i: jax.Array, j: jax.Array, k: jax.Array, d: jax.Array, stride: int, hw: tuple[int, int]
             ) -> jax.Array:
    """Tap (i, j) of a k x k window with dilation d over xp (C, B, H + 2 PMAX, W + 2 PMAX): (C, B, H/s, W/s)."""
    c, b = xp.shape[:2]
    view = jax.lax.dynamic_slice(xp, (0, 0, PMAX + (i - k // 2) * d, PMAX + (j - k // 2) * d), (c, b) + hw)
    return view[:, :, ::stride, ::stride]


def _channels_first(x: jax.Array) -> jax.Array:
    """(B, H, W, C) -> (C, B, H + 2 PMAX, W + 2 PMAX), zero padded: the taps' layout (reductions and broadcasts over
    contiguous rows run 2-5x faster on XLA:CPU than with channels last)."""
    return jnp.pad(x, ((0, 0), (PMAX, PMAX), (PMAX, PMAX), (0, 0))).transpose(3, 0, 1, 2)


def _tap_loop(x: jax.Array, kernel7: jax.Array, k: jax.Array, d: jax.Array, stride: int) -> jax.Array:
    """sum over the k*k centre taps t = (i, j) of kernel7 of kernel7[t] * x shifted by d * (t - k // 2), SAME;
    a `fori_loop` whose trip count k*k may be traced (one compiled body for every kernel size)."""
    b, h, w, c = x.shape
    xp, o = _channels_first(x), KMAX // 2 - k // 2

    def body(t, acc):
        i, j = t // k, t % k
        weight = jax.lax.dynamic_slice(kernel7, (o + i, o + j, 0), (1, 1, c))[0, 0]
        return acc + _shifted(xp, i, j, k, d, stride, (h, w)) * weight[:, None, None, None]

    out = jax.lax.fori_loop(0, k * k, body, jnp.zeros((c, b, -(-h // stride), -(-w // stride)), x.dtype))
    return out.transpose(1, 2, 3, 0)


@functools.partial(jax.custom_vjp, nondiff_argnums=(4,))
def depthwise(x: jax.Array, kernel7: jax.Array, k: jax.Array, d: jax.Array, stride: int = 1) -> jax.Array:
    """Depthwise k x k convolution with dilation d, SAME, stride `stride`: one filter per channel, the centre k x k
    of kernel7 (7, 7, C) (`pad_kernel`); k and d may be traced, so one compiled loop serves every separable op.

    Written as a loop over taps of shifted views with a hand-written backward pass (the input gradient is the same
    loop over the cotangent with the flipped kernel, scattered back to the input grid when strided; the kernel
    gradient one reduction per tap). On the 2-core CPU, six 7x7 layers trained in a `lax.map`: XLA's grouped
    convolution 2,540 ms per step, unrolled taps with autodiff 179 ms (6.5 s to compile), this loop 113 ms (0.65 s).
    The taps are taken channels first: the loop alone ran 2-5x faster than channels last (inside the whole network
    the two were within the noise of the shared machine)."""
    return _tap_loop(x, kernel7, k, d, stride)


def _depthwise_fwd(x, kernel7, k, d, stride):
    return _tap_loop(x, kernel7, k, d, stride), (x, kernel7, k, d)


def _depthwise_bwd(stride, res, g):
    x, kernel7, k, d = res
    b, h, w, c = x.shape
    up = g if stride == 1 else jnp.zeros(x.shape, g.dtype).at[:, ::stride, ::stride, :].set(g)
    dx = _tap_loop(up, kernel7[::-1, ::-1], k, d, 1)
    xp, gt, o = _channels_first(x), g.transpose(3, 0, 1, 2), KMAX // 2 - k // 2

    def body(t, dk):
        i, j = t // k, t % k
        tap = jnp.sum(_shifted(xp, i, j, k, d, stride, (h, w)) * gt, axis=(1, 2, 3))
        return jax.lax.dynamic_update_slice(dk, tap[None, None], (o + i, o + j, 0))

    return dx, jax.lax.fori_loop(0, k * k, body, jnp.zeros_like(kernel7)), None, None


depthwise.defvjp(_depthwise_fwd, _depthwise_bwd)


def separable(x: jax.Array, p: Tree, s: Tree, k: Any, d: Any, stride: int, train: bool) -> tuple[jax.Array, Tree]:
    """(ReLU, depthwise k x k (dilation d), pointwise, BN) twice, the stride in the first; p's depthwise kernels
    `dw1`, `dw2` padded to 7x7. k and d may be traced (the four separable ops share this code)."""
    k, d = jnp.asarray(k, jnp.int32), jnp.asarray(d, jnp.int32)
    y = matmul(depthwise(jax.nn.relu(x), p["dw1"], k, d, stride), p["pw1"])
    y, s1 = bn(y, p["bn1"], s["bn1"], train)
    y = matmul(depthwise(jax.nn.relu(y), p["dw2"], k, d, 1), p["pw2"])
    y, s2 = bn(y, p["bn2"], s["bn2"], train)
    return y, {"bn1": s1, "bn2": s2}


def padded(p: Tree) -> Tree:
    """A separable op's parameters with its depthwise kernels padded to 7x7."""
    return {**p, "dw1": pad_kernel(p["dw1"]), "dw2": pad_kernel(p["dw2"])}


def line_conv(x: jax.Array, kernel: jax.Array, stride: int, axis: int) -> jax.Array:
    """A 1 x k (axis 2, width) or k x 1 (axis 1, height) SAME convolution, kernel (k, C_in, C_out), strided along
    `axis` only: the k shifted copies stacked along channels times the kernel, one matmul."""
    k, c_in, c_out = kernel.shape
    n = x.shape[axis]
    pad = [(0, 0)] * 4
    pad[axis] = (k // 2, k // 2)
    xp = jnp.pad(x, pad)
    views = []
    for t in range(k):
        idx = [slice(None)] * 4
        idx[axis] = slice(t, t + n, stride)
        views.append(xp[tuple(idx)])
    return matmul(jnp.concatenate(views, axis=-1), kernel.reshape(k * c_in, c_out))


def avg_pool(x: jax.Array, stride: int) -> jax.Array:
    """3x3 average pooling, SAME, the padded zeros not counted (TensorFlow's SAME average pooling)."""
    total = sum(_taps(x, 3, stride, 1))
    ones = jnp.ones((1,) + x.shape[1:3] + (1,), x.dtype)
    return total / sum(_taps(ones, 3, stride, 1))


def max_pool(x: jax.Array, stride: int) -> jax.Array:
    """3x3 max pooling, SAME (padding never wins); XLA's `reduce_window`, whose gradient goes to one maximum of each
    window (1.5x faster to train than a maximum over shifted views on the 2-core CPU)."""
    return jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (1, 3, 3, 1), (1, stride, stride, 1),
                                 ((0, 0), (1, 1), (1, 1), (0, 0)))


def bn(x: jax.Array, p: Tree, s: Tree, train: bool) -> tuple[jax.Array, Tree]:
    """BatchNorm with parameters p = {scale, bias} and statistics s = {mean, var}: (y, new statistics)."""
    y, mean, var = batch_norm(x, p["scale"], p["bias"], s["mean"], s["var"], train)
    return y, {"mean": mean, "var": var}


def _bn_params(c: int) -> Tree:
    return {"scale": jnp.ones((c,), jnp.float32), "bias": jnp.zeros((c,), jnp.float32)}


def _bn_stats(c: int) -> Tree:
    return {"mean": jnp.zeros((c,), jnp.float32), "var": jnp.ones((c,), jnp.float32)}


# --- the cell ops ----------------------------------------------------------------------------------------------------
def has_params(name: str, reduction: bool) -> bool:
    """Whether op `name` owns parameters in a normal (False) or reduction (True) cell."""
    return name not in POOLS and (name != "identity" or reduction)


def _he_many(key: jax.Array, specs: dict[str, tuple[tuple[int, ...], int]]) -> Tree:
    """He-normal kernels {name: (shape, fan_in)} cut from one normal draw (one random-number program per op)."""
    sizes = [int(np.prod(shape)) for shape, _ in specs.values()]
    flat = jax.random.normal(key, (sum(sizes),), jnp.float32)
    out, start = {}, 0
    for (name, (shape, fan_in)), n in zip(specs.items(), sizes):
        out[name] = flat[start:start + n].reshape(shape) * np.sqrt(2.0 / fan_in)
        start += n
    return out


def init_params(name: str, key: jax.Array, f: int) -> Tree:
    """The parameters of op `name` on F = f channels (call only where `has_params`)."""
    if name in SEPARABLE:
        k = SEPARABLE[name][0]
        w = _he_many(key, {"dw1": ((k, k, f), k * k), "pw1": ((f, f), f), "dw2": ((k, k, f), k * k),
                           "pw2": ((f, f), f)})
        return {**w, "bn1": _bn_params(f), "bn2": _bn_params(f)}
    if name in DILATED:
        k = DILATED[name][0]
        return {**_he_many(key, {"dw": ((k, k, f), k * k), "pw": ((f, f), f)}), "bn": _bn_params(f)}
    if name == "conv_1x7_7x1":
        w = _he_many(key, {"k1": ((7, f, f), 7 * f), "k2": ((7, f, f), 7 * f)})
        return {**w, "bn1": _bn_params(f), "bn2": _bn_params(f)}
    if name == "identity":  # its strided form in a reduction cell
        return {"kernel": _he(key, (f, f), f), "bn": _bn_params(f)}
    raise ValueError(f"op {name!r} has no parameters")


def init_stats(name: str, f: int) -> Tree:
    """The BatchNorm statistics of op `name` (call only where `has_params`)."""
    if name in SEPARABLE or name == "conv_1x7_7x1":
        return {"bn1": _bn_stats(f), "bn2": _bn_stats(f)}
    return {"bn": _bn_stats(f)}


def apply(name: str, x: jax.Array, p: Tree, s: Tree, stride: int, train: bool) -> tuple[jax.Array, Tree]:
    """Op `name` on x (B, H, W, F) with its parameters p and statistics s -> (y (B, H/stride, W/stride, F), new s)."""
    if name in SEPARABLE:
        return separable(x, padded(p), s, *SEPARABLE[name], stride, train)
    if name in DILATED:
        k, d = DILATED[name]
        y = matmul(depthwise(jax.nn.relu(x), pad_kernel(p["dw"]), jnp.int32(k), jnp.int32(d), stride), p["pw"])
        y, sb = bn(y, p["bn"], s["bn"], train)
        return y, {"bn": sb}
    if name == "conv_1x7_7x1":
        y, s1 = bn(line_conv(jax.nn.relu(x), p["k1"], stride, axis=2), p["bn1"], s["bn1"], train)
        y, s2 = bn(line_conv(jax.nn.relu(y), p["k2"], stride, axis=1), p["bn2"], s["bn2"], train)
        return y, {"bn1": s1, "bn2": s2}
    if name == "identity":
        if stride == 1:
            return x, s
        y, sb = bn(matmul(jax.nn.relu(x)[:, ::stride, ::stride, :], p["kernel"]), p["bn"], s["bn"], train)
        return y, {"bn": sb}
    if name == "avg_pool_3x3":
        return avg_pool(x, stride), s
    if name == "max_pool_3x3":
        return max_pool(x, stride), s
    raise ValueError(f"unknown op {name!r}")


# --- cell input preprocessing ------------------------------------------------------------------------------------
def init_preprocess(key: jax.Array, c_in: int, f: int, factorized: bool) -> Tree:
    """ReLU-conv1x1-BN (kernel (c_in, f)) or, for an input of twice the size, the factorized reduction (two
    half-width 1x1 paths)."""
    if factorized:
        paths = _he_many(key, {"path1": ((c_in, f // 2), c_in), "path2": ((c_in, f // 2), c_in)})
        return {**paths, "bn": _bn_params(f)}
    return {"kernel": _he(key, (c_in, f), c_in), "bn": _bn_params(f)}


def preprocess(x: jax.Array, p: Tree, s: Tree, train: bool) -> tuple[jax.Array, Tree]:
    """A cell input to F channels at the cell's size: ReLU, then a 1x1 convolution or NASNet's factorized reduction
    (`factorized_reduction`: the 1x1 convolutions of the even and of the odd pixels, concatenated), then BN."""
    x = jax.nn.relu(x)
    if "path1" in p:
        y = jnp.concatenate([matmul(x[:, ::2, ::2, :], p["path1"]), matmul(x[:, 1::2, 1::2, :], p["path2"])], -1)
    else:
        y = matmul(x, p["kernel"])
    y, sb = bn(y, p["bn"], s["bn"], train)
    return y, {"bn": sb}
