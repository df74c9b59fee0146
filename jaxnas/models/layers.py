"""Convolution building blocks written as shifted slices + one matmul, and a masked batch norm.

Why not `lax.conv_general_dilated`: a population of candidates is trained with `vmap`, and vmapping a
convolution over per-candidate kernels lowers to a grouped convolution, which XLA:CPU runs several
times slower than a loop (../shared/NOTES.md). A 3x3 convolution is the same as stacking the nine
shifted copies of the padded input along channels (B, H, W, 9C) and multiplying by the kernel
reshaped to (9C, C_out); under vmap that is a plain batched matmul, fast on every backend, and the
patches of one input can be shared by every convolution that reads it (see `jaxnas.models.nb201`).
"""

from __future__ import annotations

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


def _avg_pool_fwd(x):
    return avg_pool3x3(x), None


def _avg_pool_bwd(_, g):
    g = jax.lax.optimization_barrier(g / _pool_counts(g.shape[1], g.shape[2]))
    return (_box_sum3x3(g),)  # the zero-padded box filter is its own adjoint


avg_pool3x3.defvjp(_avg_pool_fwd, _avg_pool_bwd)


@jax.custom_vjp
def conv3x3(x: jax.Array, kernel: jax.Array) -> jax.Array:
    """Stride-1, padding-1 3x3 convolution: x (B, H, W, C), kernel (9C, C_out) in patch layout."""
    return patches3x3(x) @ kernel


def _conv3x3_fwd(x, kernel):
    p = patches3x3(x)
    return p @ kernel, (p, kernel)


def _conv3x3_bwd(res, g):
    p, kernel = res
    g = jax.lax.optimization_barrier(g)
    dp = jax.lax.optimization_barrier(g @ kernel.T)  # (B, H, W, 9C)
    c, h, w = kernel.shape[0] // 9, g.shape[1], g.shape[2]
    dpp = jnp.pad(dp, ((0, 0), (1, 1), (1, 1), (0, 0)))
    # tap (dy, dx) read x[y + dy - 1, x + dx - 1], so x[y, x] collects dp[y - dy + 1, x - dx + 1, tap]
    dx = sum(dpp[:, 2 - dy:2 - dy + h, 2 - dx_:2 - dx_ + w, t * c:(t + 1) * c]
             for t, (dy, dx_) in enumerate((a, b) for a in range(3) for b in range(3)))
    return dx, jnp.einsum("BHWI,BHWO->IO", p, g)


conv3x3.defvjp(_conv3x3_fwd, _conv3x3_bwd)


def center_tap(kernel_1x1: jax.Array) -> jax.Array:
    """A 1x1 kernel (C_in, C_out) as the equivalent 3x3 kernel in patch layout (9 C_in, C_out)."""
    c_in, c_out = kernel_1x1.shape
    return jnp.zeros((9, c_in, c_out), kernel_1x1.dtype).at[4].set(kernel_1x1).reshape(9 * c_in, c_out)


def he_normal(key: jax.Array, shape: tuple[int, ...], dtype=jnp.float32) -> jax.Array:
    """He (fan-in) normal init for kernels stored as (..., taps * C_in, C_out): fan-in is shape[-2]."""
    return jax.random.normal(key, shape, dtype) * np.sqrt(2.0 / shape[-2])


class Conv(nn.Module):
    """3x3 (padding 1) or 1x1 convolution without bias, as patches @ kernel."""

    features: int
    size: int = 3
    stride: int = 1

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        c_in = x.shape[-1]
        kernel = self.param("kernel", he_normal, (self.size**2 * c_in, self.features))
        if self.size == 1:
            return x[:, :: self.stride, :: self.stride, :] @ kernel
        if self.stride == 1:
            return conv3x3(x, kernel)
        return patches3x3(x, self.stride) @ kernel


class BatchNorm(nn.Module):
    """Batch norm over (B, H, W) with running statistics (PyTorch momentum 0.1, eps 1e-5).

    `active` (a traced bool) gates the running-statistics update, so an op that a candidate does not
    use (or that a one-shot supernet did not sample this step) does not pollute its statistics.
    """

    affine: bool = True
    momentum: float = 0.1
    eps: float = 1e-5

    @nn.compact
    def __call__(self, x: jax.Array, train: bool, active: jax.Array | bool = True) -> jax.Array:
        c = x.shape[-1]
        ra_mean = self.variable("batch_stats", "mean", lambda: jnp.zeros((c,), jnp.float32))
        ra_var = self.variable("batch_stats", "var", lambda: jnp.ones((c,), jnp.float32))
        if train:
            mean = jnp.mean(x, axis=(0, 1, 2))
            var = jnp.mean(jnp.square(x - mean), axis=(0, 1, 2))
            if not self.is_initializing():
                n = x.shape[0] * x.shape[1] * x.shape[2]
                unbiased = var * n / max(n - 1, 1)
                ra_mean.value = jnp.where(active, (1 - self.momentum) * ra_mean.value + self.momentum * mean, ra_mean.value)
                ra_var.value = jnp.where(active, (1 - self.momentum) * ra_var.value + self.momentum * unbiased, ra_var.value)
        else:
            mean, var = ra_mean.value, ra_var.value
        y = (x - mean) * jax.lax.rsqrt(var + self.eps)
        if self.affine:
            y = y * self.param("scale", nn.initializers.ones, (c,)) + self.param("bias", nn.initializers.zeros, (c,))
        return y
