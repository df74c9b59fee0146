"""StyleGAN's building blocks: pure helpers (pixel norm, AdaIN, blur, fused resampling convs, lod fading,
minibatch stddev) and the equalized-learning-rate layers `EqDense` / `EqConv`.

Karras, Laine & Aila, "A Style-Based Generator Architecture for Generative Adversarial Networks", CVPR
2019, following the official TensorFlow code (``training/networks_stylegan.py``). Equalized learning rate
(Karras et al. 2018): weights stored ~ N(0, 1/lr_mul), scaled at runtime by ``lr_mul * gain / sqrt(fan_in)``,
biases by ``lr_mul``; leaky ReLU 0.2 with the sqrt(2) gain folded into the preceding layer's He constant (as
in the official StyleGAN1 code); [1, 2, 1] blur; minibatch standard deviation (Karras et al. 2018).

Deliberate deviations from the paper / official code:
  * Upsampling: nearest x2 -> conv3x3 -> blur (official ``blur(upscale2d_conv2d(x))``); downsampling
    (discriminator): blur -> conv3x3 -> 2x2 average pool (official ``conv2d_downscale2d(blur(x))``). The
    official code computes the conv and the resampling fused (a transposed / strided conv with the kernel's
    taps folded) only from 128px; we always compute them fused (`upsample_conv2d`, `conv2d_downsample`):
    the same function, 2-2.5x faster on the CPU (benchmarks/RESULTS.md, StyleGAN section).
  * The minibatch-stddev group size is the largest ``g <= min(mbstd_group, B)`` that divides ``B``
    (official: ``min(group_size, B)`` and requires divisibility), and groups are contiguous
    (`minibatch_stddev`).
"""

from __future__ import annotations

import math
from typing import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp

from gans.ops import downsample2x, instance_norm, interleave2x

LRELU_SLOPE = 0.2
GAIN = math.sqrt(2.0)


# ----------------------------------------------------------------------------------------------------
# Pure helpers.


def pixel_norm(z: jax.Array, eps: float = 1e-8) -> jax.Array:
    """Normalises each vector to unit mean square: ``z / sqrt(mean(z**2, -1) + eps)``."""
    return z * jax.lax.rsqrt(jnp.mean(jnp.square(z), axis=-1, keepdims=True) + eps)


def adain(x: jax.Array, scale: jax.Array, bias: jax.Array) -> jax.Array:
    """AdaIN: ``scale * instance_norm(x) + bias``. x: (B, H, W, C); scale, bias: (B, C)."""
    return instance_norm(x) * scale[:, None, None, :] + bias[:, None, None, :]


def lrelu(x: jax.Array) -> jax.Array:
    """Leaky ReLU with slope 0.2 (its sqrt(2) gain lives in the preceding layer's He constant)."""
    return jax.nn.leaky_relu(x, LRELU_SLOPE)


def blur(x: jax.Array) -> jax.Array:
    """[1, 2, 1] x [1, 2, 1] / 16 blur per channel with zero padding (official ``blur_filter``).

    Computed as two separable [1, 2, 1] / 4 passes of shifted adds: the same numbers as the official
    depthwise conv (up to float rounding), but XLA's CPU depthwise conv and its gradient are ~25-50x slower
    (measured: benchmarks/RESULTS.md, StyleGAN section).
    """
    p = jnp.pad(x, ((0, 0), (1, 1), (0, 0), (0, 0)))
    x = (p[:, :-2] + 2.0 * p[:, 1:-1] + p[:, 2:]) * 0.25  # along H
    p = jnp.pad(x, ((0, 0), (0, 0), (1, 1), (0, 0)))
    return (p[:, :, :-2] + 2.0 * p[:, :, 1:-1] + p[:, :, 2:]) * 0.25  # along W


_DN = ("NHWC", "HWIO", "NHWC")


def _fold_taps(w: jax.Array, axis: int) -> tuple[jax.Array, jax.Array]:
    """A 3-tap kernel axis seen by the two phases of a nearest-x2-upsampled input: ``[w0, w1 + w2]`` (even
    outputs, over input rows i-1, i) and ``[w0 + w1, w2]`` (odd outputs, over rows i, i+1)."""
    w0, w1, w2 = (jax.lax.index_in_dim(w, i, axis) for i in range(3))
    return jnp.concatenate([w0, w1 + w2], axis), jnp.concatenate([w0 + w1, w2], axis)


def upsample_conv2d(x: jax.Array, w: jax.Array) -> jax.Array:
    """``conv3x3_same(upsample2x(x), w)`` without forming the upsampled input. x: (B, H, W, Cin); w: (3, 3,
    Cin, Cout) -> (B, 2H, 2W, Cout).

    Each of the four output phases (row parity a, column parity c) is a 2x2 conv of x with the kernel's taps
    folded (`_fold_taps`); zero padding of the upsampled input is zero padding of x. The same function as the
    official fused ``upscale2d_conv2d`` (a transposed conv with the folded 4x4 kernel), which XLA runs
    several times slower on the CPU than these four small convs.
    """
    return interleave2x([[jax.lax.conv_general_dilated(x, wac, (1, 1), ((1 - a, a), (1 - c, c)), dimension_numbers=_DN)
                          for c, wac in enumerate(_fold_taps(wa, 1))] for a, wa in enumerate(_fold_taps(w, 0))])


def conv2d_downsample(x: jax.Array, w: jax.Array) -> jax.Array:
    """``downsample2x(conv3x3_same(x, w))`` as one stride-2 4x4 conv (official fused ``conv2d_downscale2d``:
    the 3x3 kernel's taps summed over the 2x2 pooling window, times 1/4). x: (B, H, W, Cin) -> (B, H/2, W/2,
    Cout)."""
    k = jnp.pad(w, ((1, 1), (1, 1), (0, 0), (0, 0)))
    k = (k[1:, 1:] + k[:-1, 1:] + k[1:, :-1] + k[:-1, :-1]) * 0.25  # (4, 4, Cin, Cout)
    return jax.lax.conv_general_dilated(x, k, (2, 2), ((1, 1), (1, 1)), dimension_numbers=_DN)


def lerp_clip(a: jax.Array, b: jax.Array, t: float | jax.Array) -> jax.Array:
    """Official ``lerp_clip``: ``a + (b - a) * clip(t, 0, 1)``, exactly ``a`` at t <= 0 and ``b`` at t >= 1."""
    t = jnp.asarray(t, a.dtype)
    return jnp.where(t <= 0, a, jnp.where(t >= 1, b, a + (b - a) * t))


def progressive_reals(x: jax.Array, lod: float | jax.Array) -> jax.Array:
    """Real images as seen at level of detail ``lod`` (official ``process_reals``), at full size.

    At integer ``lod = k`` the images are 2x2-box-averaged k times and nearest-upsampled back; between
    integers they are lerped between the two levels. x: (B, R, R, C); lod in [0, log2(R) - 2].
    """
    levels, y = [x], x
    for k in range(1, int(round(math.log2(x.shape[1]))) - 1):  # down to 4x4
        y = downsample2x(y)
        levels.append(jnp.repeat(jnp.repeat(y, 2**k, axis=1), 2**k, axis=2))
    levels.append(levels[-1])  # so level i + 1 exists at the coarsest lod
    stack = jnp.stack(levels)  # (L, B, R, R, C)
    lod = jnp.clip(jnp.asarray(lod, x.dtype), 0.0, len(levels) - 2)
    i = jnp.floor(lod).astype(jnp.int32)
    a, b = stack[i], stack[i + 1]
    return a + (b - a) * (lod - i.astype(x.dtype))


def minibatch_stddev(x: jax.Array, group_size: int = 4) -> jax.Array:
    """Appends one feature map holding the average per-group std (Karras et al. 2018).

    Groups are contiguous (examples ``G*m .. G*m+G-1`` form group ``m``); the official code strides them
    (``b % (B // G)``). Same statistics, but contiguous groups stay whole when a batch is split over
    devices, so a data-parallel step equals the single-device one (a documented deviation). The std
    is the population std over the group (``sqrt(var + 1e-8)``), averaged over (H, W, C).

    Args:
        x: features, (B, H, W, C).
        group_size: maximum group size; the largest divisor of B not above it is used.

    Returns:
        (B, H, W, C + 1).
    """
    b, h, w, c = x.shape
    g = max(d for d in range(1, min(group_size, b) + 1) if b % d == 0)
    y = x.reshape(b // g, g, h, w, c).astype(jnp.float32)  # (M, G, H, W, C)
    y = y - jnp.mean(y, axis=1, keepdims=True)
    y = jnp.sqrt(jnp.mean(jnp.square(y), axis=1) + 1e-8)  # (M, H, W, C)
    y = jnp.mean(y, axis=(1, 2, 3))  # (M,)
    y = jnp.repeat(y, g).astype(x.dtype)  # (B,): example b gets y[b // G]
    return jnp.concatenate([x, jnp.broadcast_to(y[:, None, None, None], (b, h, w, 1))], axis=-1)


# ----------------------------------------------------------------------------------------------------
# Equalized learning-rate layers.


class EqDense(nn.Module):
    """Dense layer with equalized learning rate: w ~ N(0, 1/lr_mul), runtime scale lr_mul*gain/sqrt(fan_in)."""

    features: int
    gain: float = GAIN
    lr_mul: float = 1.0
    bias_init: Callable = nn.initializers.zeros  # initial *effective* bias

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        fan_in = x.shape[-1]
        w = self.param("kernel", nn.initializers.normal(1.0 / self.lr_mul), (fan_in, self.features))
        b = self.param("bias", lambda k, s: self.bias_init(k, s) / self.lr_mul, (self.features,))
        coef = self.lr_mul * self.gain / math.sqrt(fan_in)
        return x @ (w * coef).astype(x.dtype) + (b * self.lr_mul).astype(x.dtype)


class EqConv(nn.Module):
    """Square 'SAME' conv with equalized learning rate (lr_mul 1). x: (B, H, W, Cin) -> (B, H, W, features).

    ``resample="up"``: nearest x2 upsampling before the conv (`upsample_conv2d`, 3x3 only) -> (B, 2H, 2W, f);
    ``"down"``: 2x2 average pooling after it (`conv2d_downsample`, 3x3 only) -> (B, H/2, W/2, f).
    """

    features: int
    kernel_size: int = 3
    gain: float = GAIN
    use_bias: bool = True
    resample: str = "none"

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        k, cin = self.kernel_size, x.shape[-1]
        w = self.param("kernel", nn.initializers.normal(1.0), (k, k, cin, self.features))
        w = (w * (self.gain / math.sqrt(k * k * cin))).astype(x.dtype)
        if self.resample == "up":
            y = upsample_conv2d(x, w)
        elif self.resample == "down":
            y = conv2d_downsample(x, w)
        else:
            y = jax.lax.conv_general_dilated(x, w, (1, 1), "SAME", dimension_numbers=_DN)
        if self.use_bias:
            y = y + self.param("bias", nn.initializers.zeros, (self.features,)).astype(x.dtype)
        return y

