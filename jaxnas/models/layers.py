"""Convolution building blocks written as shifted slices + one matmul, and a masked batch norm.

Why not `lax.conv_general_dilated`: a population of candidates is trained with `vmap`, and vmapping a
convolution over per-candidate kernels lowers to a grouped convolution, which XLA:CPU runs several
times slower than a loop (../shared/NOTES.md). A 3x3 convolution is the same as stacking the nine
shifted copies of the padded input along channels (B, H, W, 9C) and multiplying by the kernel
reshaped to (9C, C_out); under vmap that is a plain batched matmul, fast on every backend, and the
patches of one input can be shared by every convolution that reads it (see `jaxnas.models.nb201`).
"""

from __future__ import annotations

import functools
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np


def patches3x3(x: jax.Array, stride: int = 1) -> jax.Array:
    """(B, H, W, C) -> (B, H/stride, W/stride, 9C): the 3x3 neighbourhoods, zero padding 1, row-major taps."""
    h, w = x.shape[1], x.shape[2]
    xp = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    taps = [xp[:, dy:dy + h:stride, dx:dx + w:stride, :] for dy in range(3) for dx in range(3)]
    return jnp.concatenate(taps, axis=-1)


def _box_sum3x3(x: jax.Array) -> jax.Array:
    """Sum over each 3x3 neighbourhood (zero padding), separably: 6 shifted adds instead of 9."""
    h, w = x.shape[1], x.shape[2]
    xp = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    rows = xp[:, :, 0:w] + xp[:, :, 1:w + 1] + xp[:, :, 2:w + 2]
    return rows[:, 0:h] + rows[:, 1:h + 1] + rows[:, 2:h + 2]


def _pool_counts(h: int, w: int) -> np.ndarray:
    ones = np.pad(np.ones((h, w), np.float32), 1)
    return sum(ones[dy:dy + h, dx:dx + w] for dy in range(3) for dx in range(3))[None, :, :, None]


# Hand-written backward passes. Autodiff is correct here, but XLA:CPU fuses the upstream cotangent
# computation into each of the 9 shifted taps of these ops' gradients and recomputes it 9 times;
# materialising the cotangent once (optimization_barrier) made a cell's backward ~1.5x faster.
@jax.custom_vjp
def avg_pool3x3(x: jax.Array) -> jax.Array:
    """3x3 average pooling, stride 1, padding 1, padded zeros not counted (PyTorch count_include_pad=False,
    as in NAS-Bench-201's `avg_pool_3x3`)."""
    return _box_sum3x3(x) / _pool_counts(x.shape[1], x.shape[2])


def _avg_pool_fwd(x):  # computed here, not by calling avg_pool3x3: forward mode (jvp of a gradient) traces this
    return _box_sum3x3(x) / _pool_counts(x.shape[1], x.shape[2]), None


def _avg_pool_bwd(_, g):
    g = jax.lax.optimization_barrier(g / _pool_counts(g.shape[1], g.shape[2]))
    return (_box_sum3x3(g),)  # the zero-padded box filter is its own adjoint


avg_pool3x3.defvjp(_avg_pool_fwd, _avg_pool_bwd)


def matmul(a: jax.Array, b: jax.Array) -> jax.Array:
    """`a @ b` accumulated and returned in float32 whatever the inputs' dtype (bfloat16 inputs: AMX / tensor cores)."""
    return jnp.matmul(a, b, preferred_element_type=jnp.float32)


@jax.custom_vjp
def conv3x3(x: jax.Array, kernel: jax.Array) -> jax.Array:
    """Stride-1, padding-1 3x3 convolution: x (B, H, W, C), kernel (9C, C_out) in patch layout; float32 result.

    x and kernel share a dtype (float32, or bfloat16 for bf16 compute); products accumulate in float32."""
    return matmul(patches3x3(x), kernel)


def _conv3x3_fwd(x, kernel):
    p = patches3x3(x)
    return matmul(p, kernel), (p, kernel)


def _conv3x3_bwd(res, g):
    p, kernel = res
    g = jax.lax.optimization_barrier(g.astype(kernel.dtype))
    dp = jax.lax.optimization_barrier(matmul(g, kernel.T))  # (B, H, W, 9C)
    c, h, w = kernel.shape[0] // 9, g.shape[1], g.shape[2]
    dpp = jnp.pad(dp, ((0, 0), (1, 1), (1, 1), (0, 0)))
    # tap (dy, dx) read x[y + dy - 1, x + dx - 1], so x[y, x] collects dp[y - dy + 1, x - dx + 1, tap]
    dx = sum(dpp[:, 2 - dy:2 - dy + h, 2 - dx_:2 - dx_ + w, t * c:(t + 1) * c]
             for t, (dy, dx_) in enumerate((a, b) for a in range(3) for b in range(3)))
    return dx.astype(p.dtype), _kernel_grad(p, g, kernel.dtype)


conv3x3.defvjp(_conv3x3_fwd, _conv3x3_bwd)


def _kernel_grad(patches: jax.Array, g: jax.Array, dtype: Any) -> jax.Array:
    """A 3x3 kernel's gradient in patch layout (9C, C_out): one matmul of the patches with the output cotangent."""
    return jnp.einsum("BHWI,BHWO->IO", patches, g, preferred_element_type=jnp.float32).astype(dtype)


def _hwio(kernel: jax.Array) -> jax.Array:
    """A 3x3 kernel from patch layout (9C, C_out) to XLA's (3, 3, C, C_out)."""
    return kernel.reshape(3, 3, kernel.shape[0] // 9, kernel.shape[-1])


def conv3x3_direct(x: jax.Array, kernel: jax.Array) -> jax.Array:
    """`conv3x3` computed by XLA's convolution (same arguments and result, kernel in patch layout (9C, C_out)):
    `conv_same` on the kernel reshaped to (3, 3, C, C_out), so its backward pass is `conv_same`'s, by hand.

    Used where candidates run one at a time (`jaxnas.models.dispatch`, ``"switch"``): no (B, H, W, 9C) patch
    tensor is built. Autodiff's own gradients are convolutions that XLA:CPU runs 3-100x slower inside a loop
    (`lax.scan` / `lax.map`; measured: 2.3 s against 16 ms for four 16x16x16 layers, and a whole NAS-Bench-201
    step 50 ms against 21 ms).
    """
    return conv_same(x, _hwio(kernel))


def conv3x3_direct_grads(x: jax.Array, kernel: jax.Array, g: jax.Array) -> tuple[jax.Array, jax.Array]:
    """`conv3x3_direct`'s backward pass: the cotangents (dx, dkernel) for the output cotangent g, computed from the
    inputs alone (no forward convolution), for ops that write their own backward pass (`dispatch.choose_saving`)."""
    dx, dk = conv_same_grads(x, _hwio(kernel), g)
    return dx, dk.reshape(kernel.shape)


def kernel_grad_conv(x: jax.Array, g: jax.Array, k: int) -> jax.Array:
    """The gradient (k, k, C, C_out) of a stride-1 SAME k x k convolution's kernel, from its input x (B, H, W, C)
    and output cotangent g (B, H, W, C_out), as one XLA convolution in the canonical NHWC / HWIO layout: the
    input with its batch as the channels (C, H, W, B), the cotangent as a (H, W, B, C_out) kernel.

    Measured on XLA:CPU (one core, batch 64, 16x16x16): about 1.1 ms, against 2.6 ms to build the (B, H, W, 9C)
    patch tensor alone and 1.4 ms for its product with the cotangent; autodiff's own form of this convolution
    (batch as the contracted feature dimension, not transposed into place) is the one that is slow in loops."""
    xt = jnp.transpose(x, (3, 1, 2, 0)).astype(g.dtype)
    gk = jnp.transpose(g, (1, 2, 0, 3))
    out = jax.lax.conv_general_dilated(xt, gk, (1, 1), ((k // 2, k // 2),) * 2,
                                       dimension_numbers=("NHWC", "HWIO", "NHWC"),
                                       preferred_element_type=jnp.float32)  # (C, k, k, C_out)
    return jnp.transpose(out, (1, 2, 0, 3))


def center_tap(kernel_1x1: jax.Array) -> jax.Array:
    """A 1x1 kernel (C_in, C_out) as the equivalent 3x3 kernel in patch layout (9 C_in, C_out)."""
    c_in, c_out = kernel_1x1.shape
    return jnp.zeros((9, c_in, c_out), kernel_1x1.dtype).at[4].set(kernel_1x1).reshape(9 * c_in, c_out)


def he_normal(key: jax.Array, shape: tuple[int, ...], dtype=jnp.float32) -> jax.Array:
    """He (fan-in) normal init for kernels stored as (..., taps * C_in, C_out): fan-in is shape[-2]."""
    return jax.random.normal(key, shape, dtype) * np.sqrt(2.0 / shape[-2])


class Conv(nn.Module):
    """3x3 (padding 1) or 1x1 convolution without bias, as patches @ kernel.

    `dtype`: the products' input dtype (None: float32; bfloat16 for bf16 compute); results are float32.
    `direct`: a stride-1 3x3 kernel runs as XLA's convolution (`conv3x3_direct`), for a network trained alone or
    candidates run one after another (`lax.map`); the default patches product is the form that vmaps."""

    features: int
    size: int = 3
    stride: int = 1
    dtype: Any = None
    direct: bool = False

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        c_in = x.shape[-1]
        kernel = self.param("kernel", he_normal, (self.size**2 * c_in, self.features))
        x, kernel = x.astype(self.dtype or x.dtype), kernel.astype(self.dtype or kernel.dtype)
        if self.size == 1:
            return matmul(x[:, :: self.stride, :: self.stride, :], kernel)
        if self.stride == 1:
            return conv3x3_direct(x, kernel) if self.direct else conv3x3(x, kernel)
        return matmul(patches3x3(x, self.stride), kernel)


def batch_norm(x: jax.Array, scale: jax.Array | None, bias: jax.Array | None, ra_mean: jax.Array, ra_var: jax.Array,
               train: bool, momentum: float = 0.1, eps: float = 1e-5, custom_grad: bool = False
               ) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Functional batch norm over (B, H, W): (y, new running mean, new running variance).

    Training normalises by the batch statistics and moves the running ones by `momentum` (PyTorch's rule,
    unbiased variance); evaluation normalises by the running ones and returns them unchanged.

    `custom_grad`: training uses a hand-written backward pass (`_bn_train`: fewer passes over x on the CPU), which
    reverse mode only can differentiate; leave it off where forward mode is used (DARTS' exact Hessian-vector
    products).
    """
    if train and custom_grad:
        c = x.shape[-1]
        y, mean, var = _bn_train(x, jnp.ones((c,), x.dtype) if scale is None else scale,
                                 jnp.zeros((c,), x.dtype) if bias is None else bias, eps)
    else:
        mean, var = _batch_moments(x) if train else (ra_mean, ra_var)
        y = _normalize(x, mean, var, scale, bias, eps)
    if not train:
        return y, ra_mean, ra_var
    n = x.shape[0] * x.shape[1] * x.shape[2]
    return (y, (1 - momentum) * ra_mean + momentum * mean,
            (1 - momentum) * ra_var + momentum * var * n / max(n - 1, 1))


def _batch_moments(x: jax.Array) -> tuple[jax.Array, jax.Array]:
    mean = jnp.mean(x, axis=(0, 1, 2))
    return mean, jnp.mean(jnp.square(x - mean), axis=(0, 1, 2))


def _normalize(x, mean, var, scale, bias, eps):
    y = (x - mean) * jax.lax.rsqrt(var + eps)
    return y if scale is None else y * scale + bias


@functools.partial(jax.custom_vjp, nondiff_argnums=(3,))
def _bn_train(x: jax.Array, scale: jax.Array, bias: jax.Array, eps: float) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Training batch norm over (B, H, W): (y, batch mean, biased batch variance), with a hand-written backward pass.

    Autodiff of the formula keeps x - mean and the normalised x as residuals, so XLA:CPU writes each to memory
    and the backward pass makes several more passes over them; this keeps (x, mean, variance) and gives the
    input gradient in one reduction pass (the two sums) and one elementwise pass."""
    mean, var = _batch_moments(x)
    return _normalize(x, mean, var, scale, bias, eps), mean, var


def _bn_train_fwd(x, scale, bias, eps):
    y, mean, var = _bn_train(x, scale, bias, eps)
    return (y, mean, var), (x, mean, var, scale)


def _bn_train_bwd(eps, res, cts):
    x, mean, var, scale = res
    gy, gmean, gvar = cts
    n = x.shape[0] * x.shape[1] * x.shape[2]
    rstd = jax.lax.rsqrt(var + eps)
    xc = x - mean
    gbias = jnp.sum(gy, axis=(0, 1, 2))
    gscale = jnp.sum(gy * xc, axis=(0, 1, 2)) * rstd
    # d y / d x through the batch statistics, plus the statistics' own cotangents (mean: 1/n; variance: 2 (x - mean)/n)
    gx = (scale * rstd) * (gy - gbias / n - xc * (rstd * gscale / n)) + gmean / n + xc * (2 * gvar / n)
    return gx.astype(x.dtype), gscale.astype(scale.dtype), gbias.astype(scale.dtype)


_bn_train.defvjp(_bn_train_fwd, _bn_train_bwd)


def _bn_variables(module: nn.Module, c: int, affine: bool = True) -> tuple[Any, Any, Any, Any]:
    """A batch norm's variables, declared in `module`: (scale, bias or None, running-mean and -variance Variables)."""
    ra_mean = module.variable("batch_stats", "mean", lambda: jnp.zeros((c,), jnp.float32))
    ra_var = module.variable("batch_stats", "var", lambda: jnp.ones((c,), jnp.float32))
    scale = module.param("scale", nn.initializers.ones, (c,)) if affine else None
    bias = module.param("bias", nn.initializers.zeros, (c,)) if affine else None
    return scale, bias, ra_mean, ra_var


class BatchNormState(nn.Module):
    """The variables of a `BatchNorm` (same names), for an op that normalises inside a `lax.switch` branch.

    `__call__(c)` returns (scale, bias, running mean, running variance); `store` writes new running statistics
    (not while initialising, as `BatchNorm`).
    """

    @nn.compact
    def __call__(self, c: int) -> tuple[jax.Array, ...]:
        scale, bias, ra_mean, ra_var = _bn_variables(self, c)
        return scale, bias, ra_mean.value, ra_var.value

    def store(self, mean: jax.Array, var: jax.Array) -> None:
        if self.is_mutable_collection("batch_stats") and not self.is_initializing():
            self.put_variable("batch_stats", "mean", mean)
            self.put_variable("batch_stats", "var", var)


class BatchNorm(nn.Module):
    """Batch norm over (B, H, W) with running statistics (PyTorch momentum 0.1, eps 1e-5).

    `active` (a traced bool) gates the running-statistics update, so an op that a candidate does not
    use (or that a one-shot supernet did not sample this step) does not pollute its statistics.
    """

    affine: bool = True
    momentum: float = 0.1
    eps: float = 1e-5
    custom_grad: bool = False  # `batch_norm`'s hand-written backward pass (reverse mode only)

    @nn.compact
    def __call__(self, x: jax.Array, train: bool, active: jax.Array | bool = True) -> jax.Array:
        scale, bias, ra_mean, ra_var = _bn_variables(self, x.shape[-1], self.affine)
        y, mean, var = batch_norm(x, scale, bias, ra_mean.value, ra_var.value, train, self.momentum, self.eps,
                                  self.custom_grad)
        if train and not self.is_initializing():
            ra_mean.value = jnp.where(active, mean, ra_mean.value)
            ra_var.value = jnp.where(active, var, ra_var.value)
        return y


def _lax_conv_same(x: jax.Array, kernel_hwio: jax.Array) -> jax.Array:
    k = kernel_hwio.shape[0]
    return jax.lax.conv_general_dilated(x, kernel_hwio, (1, 1), ((k // 2, k // 2),) * 2,
                                        dimension_numbers=("NHWC", "HWIO", "NHWC"),
                                        preferred_element_type=jnp.float32)


@jax.custom_vjp
def conv_same(x: jax.Array, kernel: jax.Array) -> jax.Array:
    """Stride-1 SAME convolution with an odd k x k kernel in XLA's layout (k, k, C_in, C_out), no bias.

    The backward pass is written by hand because autodiff's convolution gradients are slow inside loops on
    XLA:CPU (see `conv3x3_direct`): the input gradient is a convolution with the flipped, transposed kernel, and the
    kernel gradient `kernel_grad_conv` (no k*k-times-larger patch tensor).
    """
    return _lax_conv_same(x, kernel)


def _conv_same_fwd(x, kernel):
    return conv_same(x, kernel), (x, kernel)


def conv_same_grads(x: jax.Array, kernel: jax.Array, g: jax.Array) -> tuple[jax.Array, jax.Array]:
    """`conv_same`'s backward pass: (dx, dkernel) for the output cotangent g, from the inputs alone."""
    g = g.astype(kernel.dtype)
    dx = _lax_conv_same(g, jnp.flip(kernel, (0, 1)).transpose(0, 1, 3, 2))
    return dx.astype(x.dtype), kernel_grad_conv(x, g, kernel.shape[0]).astype(kernel.dtype)


conv_same.defvjp(_conv_same_fwd, lambda res, g: conv_same_grads(*res, g))
