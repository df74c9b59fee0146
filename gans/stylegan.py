"""StyleGAN generator and discriminator as Flax Linen modules (pure init/apply).

Implements Karras, Laine & Aila, "A Style-Based Generator Architecture for Generative Adversarial
Networks", CVPR 2019, following the official TensorFlow code (``training/networks_stylegan.py``) and its
defaults: pixel-normalised z, an 8-layer mapping MLP with learning-rate multiplier 0.01, a learned 4x4
constant, per-layer noise inputs with zero-initialised per-channel strengths, AdaIN after every conv,
equalized learning rate everywhere (Karras et al. 2018: weights stored ~ N(0, 1/lr_mul), scaled at
runtime by ``lr_mul * gain / sqrt(fan_in)``, biases by ``lr_mul``), leaky ReLU 0.2 with the sqrt(2) gain
folded into the preceding layer's He constant (as in the official StyleGAN1 code), [1, 2, 1] blur,
minibatch standard deviation in the discriminator, truncation trick and style mixing.

Channel counts use the official ``nf(stage) = min(int(fmap_base / 2**(stage * fmap_decay)), fmap_max)``
with ``fmap_decay = 1``; the block at resolution ``2**r`` has ``nf(r - 1)`` channels. With the official
``fmap_base=8192, fmap_max=512`` that is 512 everywhere up to 32x32 -- too big for a CPU. The digits
experiment uses ``fmap_base=256, fmap_max=128`` (128 / 64 / 32 channels at 4 / 8 / 16 px: the official halving
per resolution, scaled down); tests and benchmarks use that, ``fmap_base=1024, fmap_max=128``, or smaller.

Deliberate deviations from the paper / official code:
  * ``structure="progressive"`` (the default) is the official progressive growing, ``structure='linear'``:
    every resolution has its own toRGB (generator) and fromRGB (discriminator), all are always computed,
    and a level-of-detail scalar ``lod`` (0 = full resolution, ``log2(R) - k`` = 2**k px) fades between
    them with ``lerp_clip``; the reals are faded the same way (`progressive_reals`). One compiled program
    serves every lod. The schedule lives in `gans.stylegan_train` (official 600k + 600k images per resolution;
    shorter CPU budgets scale it). ``"fixed"`` trains at the final resolution only (a single toRGB /
    fromRGB). ``"skip"`` is StyleGAN2's skip generator (Karras et al., CVPR 2020, Fig. 7b) without its
    weight demodulation: the output is the sum of every resolution's toRGB, each earlier one upsampled
    (nearest + [1, 2, 1] blur here; StyleGAN2 uses a [1, 3, 3, 1] filter), so the coarse resolutions
    draw the coarse image directly; its discriminator is the ``"fixed"`` one.
  * Style formula: ``adain(x, scale, bias) = scale * instance_norm(x) + bias`` where the affine layer A
    outputs ``scale`` directly and its bias is initialised to 1 for the scale half (0 for the bias half).
    The official ``style_mod`` computes ``x * (s + 1) + b`` with zero-initialised bias; the two are the
    same function class with identical outputs at init (a reparametrisation of the bias).
  * Upsampling: nearest x2 -> conv3x3 -> blur (official ``blur(upscale2d_conv2d(x))``); downsampling
    (discriminator): blur -> conv3x3 -> 2x2 average pool (official ``conv2d_downscale2d(blur(x))``). The
    official code computes the conv and the resampling fused (a transposed / strided conv with the kernel's
    taps folded) only from 128px; we always compute them fused (`upsample_conv2d`, `conv2d_downsample`):
    the same function, 2-2.5x faster on the CPU (benchmarks/RESULTS.md, StyleGAN section).
  * ``discriminator="resnet"`` (the default here) adds a skip path (2x2 average pool -> 1x1 conv, no bias,
    sum scaled by 1/sqrt(2)) as in StyleGAN2's residual D; ``"plain"`` is the StyleGAN1 official D.
  * ``randomize_noise=False`` (or ``noise_key=None``) uses zero noise, not the official stored per-layer
    noise constants: deterministic outputs without extra non-trainable state.
  * Style mixing draws the crossover per example (official: one crossover per minibatch), like the official
    code among the style inputs the current level of detail renders (`mixing_crossover`).
  * Mapping hidden width is ``w_dim`` (official ``mapping_fmaps=512 == dlatent_size``).
  * The minibatch-stddev group size is the largest ``g <= min(mbstd_group, B)`` that divides ``B``
    (official: ``min(group_size, B)`` and requires divisibility).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp

from gans.ops import downsample2x, instance_norm, interleave2x, upsample2x  # noqa: F401 (sg.* in tests)
from jaxnas.common.errors import ConfigError, check, check_choice, check_positive

LRELU_SLOPE = 0.2
GAIN = math.sqrt(2.0)
DISCRIMINATORS = ("resnet", "plain")
STRUCTURES = ("progressive", "fixed", "skip")


@dataclasses.dataclass(frozen=True)
class StyleGANConfig:
    """StyleGAN settings (official defaults except resolution/discriminator; see module docstring)."""

    resolution: int = 32  # power of two >= 8
    channels: int = 1  # image channels
    z_dim: int = 512
    w_dim: int = 512
    mapping_layers: int = 8
    mapping_lr_mul: float = 0.01
    fmap_base: int = 8192  # nf(stage) = min(int(fmap_base / 2**stage), fmap_max)
    fmap_max: int = 512
    use_mapping: bool = True  # False: w = pixel_norm(z) (requires z_dim == w_dim)
    mbstd_group: int = 4
    discriminator: str = "resnet"  # "resnet" | "plain"
    structure: str = "progressive"  # "progressive" (official lod fading) | "fixed" | "skip" (StyleGAN2 G)

    def validate(self) -> None:
        """Raises `ConfigError` naming the first invalid field."""
        check_positive("resolution", self.resolution, integer=True)
        r = self.resolution
        check(r >= 8 and (r & (r - 1)) == 0, "resolution", f"got {r!r}; must be a power of two >= 8")
        for name in ("channels", "z_dim", "w_dim", "mapping_layers", "fmap_base", "fmap_max", "mbstd_group"):
            check_positive(name, getattr(self, name), integer=True)
        check_positive("mapping_lr_mul", self.mapping_lr_mul)
        check_choice("discriminator", self.discriminator, DISCRIMINATORS)
        check(isinstance(self.use_mapping, bool), "use_mapping", f"got {self.use_mapping!r}; must be a bool")
        check_choice("structure", self.structure, STRUCTURES)
        if not self.use_mapping:
            check(self.z_dim == self.w_dim, "use_mapping",
                  f"use_mapping=False needs z_dim == w_dim (got z_dim={self.z_dim}, w_dim={self.w_dim})")
        check(self.nf(self.log2_resolution - 1) >= 1, "fmap_base",
              f"got {self.fmap_base}; nf() is 0 at resolution {r} (need fmap_base >= {r // 2})")

    @property
    def log2_resolution(self) -> int:
        """log2 of the output resolution."""
        return int(round(math.log2(self.resolution)))

    @property
    def progressive(self) -> bool:
        """Whether the networks take a level of detail (progressive growing)."""
        return self.structure == "progressive"

    @property
    def max_lod(self) -> int:
        """The coarsest level of detail: lod ``log2(R) - 2`` renders 4x4 images (lod 0: R x R)."""
        return self.log2_resolution - 2

    @property
    def num_ws(self) -> int:
        """Number of style inputs: two per resolution, 4x4 included (= 2 * log2(R / 4) + 2)."""
        return 2 * (self.log2_resolution - 2) + 2

    def nf(self, stage: int) -> int:
        """Official channel count ``min(int(fmap_base / 2**stage), fmap_max)`` (fmap_decay = 1)."""
        return min(int(self.fmap_base / 2.0**stage), self.fmap_max)


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
# Style-space functions around the generator.


def broadcast_ws(w: jax.Array, num_ws: int) -> jax.Array:
    """Repeats one w per example for every style input. (B, W) -> (B, num_ws, W)."""
    return jnp.broadcast_to(w[:, None, :], (w.shape[0], num_ws, w.shape[1]))


def mix_styles(w1: jax.Array, w2: jax.Array, crossover: jax.Array, num_ws: int | None = None) -> jax.Array:
    """Layers ``< crossover`` take w1, layers ``>= crossover`` take w2 (crossover == num_ws: no mixing).

    Args:
        w1, w2: (B, num_ws, W), or (B, W) together with ``num_ws``.
        crossover: (B,) int.
        num_ws: needed only for 2-D inputs.

    Returns:
        (B, num_ws, W).
    """
    if w1.ndim == 2:
        if num_ws is None:
            raise ConfigError("num_ws", "required when w1/w2 are (B, w_dim)")
        w1, w2 = broadcast_ws(w1, num_ws), broadcast_ws(w2, num_ws)
    layer = jnp.arange(w1.shape[1])  # (N,)
    use_w1 = layer[None, :] < jnp.asarray(crossover)[:, None]  # (B, N)
    return jnp.where(use_w1[..., None], w1, w2)


def mixing_crossover(key_mix: jax.Array, key_cut: jax.Array, batch: int, num_ws: int, prob: float = 0.9,
                     lod: float | jax.Array = 0.0) -> jax.Array:
    """Per example, the style-mixing crossover layer (B,) int: with probability ``prob`` drawn from
    U{1..active-1}, else ``num_ws`` (no mixing).

    ``active`` is the number of style inputs the image at level of detail ``lod`` uses, as in the official
    ``cur_layers = num_layers - int(lod) * 2``: while training at 4x4 every mixed example switches between
    the two 4x4 inputs, instead of mostly at layers the image does not show yet.
    """
    active = num_ws - 2 * jnp.floor(jnp.asarray(lod)).astype(jnp.int32)
    mixed = jax.random.uniform(key_mix, (batch,)) < prob
    cut = jax.random.randint(key_cut, (batch,), 1, jnp.maximum(active, 2))  # official randint(1, cur_layers)
    return jnp.where(mixed, cut, num_ws)


def style_mixing_ws(key: jax.Array, w1: jax.Array, w2: jax.Array, num_ws: int, prob: float = 0.9,
                    lod: float | jax.Array = 0.0) -> jax.Array:
    """Per example, with probability ``prob`` switches from w1 to w2 at a crossover (`mixing_crossover`).

    Args:
        key: PRNG key.
        w1, w2: (B, W).
        num_ws: number of style inputs.
        prob: mixing probability (official 0.9).
        lod: level of detail (progressive growing): the crossover stays among the layers it renders.

    Returns:
        (B, num_ws, W); unmixed examples use w1 everywhere.
    """
    k_mix, k_cut = jax.random.split(key)
    return mix_styles(w1, w2, mixing_crossover(k_mix, k_cut, w1.shape[0], num_ws, prob, lod), num_ws)


def truncate(ws: jax.Array, w_avg: jax.Array, psi: float | jax.Array, cutoff: int | None = None) -> jax.Array:
    """Truncation trick: ``w_avg + psi * (ws - w_avg)`` on layers ``< cutoff`` (None: all layers).

    Official defaults: psi 0.7, cutoff 8. ws: (B, N, W); w_avg: (W,).
    """
    n = ws.shape[1]
    cutoff = n if cutoff is None else cutoff
    keep = (jnp.arange(n) >= cutoff)[None, :, None]  # (1, N, 1): layers left untouched (exactly)
    return jnp.where(keep, ws, w_avg + psi * (ws - w_avg))


def update_w_avg(w_avg: jax.Array, w_batch_mean: jax.Array, decay: float = 0.995) -> jax.Array:
    """Moving average of w (official lerp): ``decay * w_avg + (1 - decay) * w_batch_mean``."""
    return decay * w_avg + (1.0 - decay) * w_batch_mean


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


# ----------------------------------------------------------------------------------------------------
# Generator.


class MappingNetwork(nn.Module):
    """z (B, z_dim) -> w (B, w_dim): pixel norm, then ``mapping_layers`` x (EqDense lr_mul 0.01 + lrelu)."""

    config: StyleGANConfig

    @nn.compact
    def __call__(self, z: jax.Array) -> jax.Array:
        cfg = self.config
        x = pixel_norm(z)  # (B, z_dim)
        if not cfg.use_mapping:
            return x
        for i in range(cfg.mapping_layers):
            x = lrelu(EqDense(cfg.w_dim, lr_mul=cfg.mapping_lr_mul, name=f"dense{i}")(x))  # (B, w_dim)
        return x


def _style_bias_init(key: jax.Array, shape: tuple[int, ...], dtype=jnp.float32) -> jax.Array:
    """Bias of the style affine A: 1 for the scale half, 0 for the bias half."""
    c = shape[0] // 2
    return jnp.concatenate([jnp.ones((c,), dtype), jnp.zeros((shape[0] - c,), dtype)])


class LayerEpilogue(nn.Module):
    """Official layer epilogue: + noise * strength, + bias, lrelu, AdaIN with style A(w)."""

    @nn.compact
    def __call__(self, x: jax.Array, w: jax.Array, noise_key: jax.Array | None) -> jax.Array:
        b, h, wd, c = x.shape
        strength = self.param("noise_strength", nn.initializers.zeros, (c,))
        if noise_key is not None:  # one channel, broadcast over C; a (B,) batch of keys: one per example
            if jnp.ndim(noise_key) == 0:
                noise = jax.random.normal(noise_key, (b, h, wd, 1), x.dtype)
            else:
                noise = jax.vmap(lambda k: jax.random.normal(k, (h, wd, 1), x.dtype))(noise_key)
            x = x + noise * strength.astype(x.dtype)
        x = lrelu(x + self.param("bias", nn.initializers.zeros, (c,)).astype(x.dtype))
        style = EqDense(2 * c, gain=1.0, bias_init=_style_bias_init, name="style")(w)  # (B, 2C)
        return adain(x, style[:, :c], style[:, c:])


class SynthesisNetwork(nn.Module):
    """ws (B, num_ws, w_dim) -> images (B, R, R, C), roughly in [-1, 1] (no output activation)."""

    config: StyleGANConfig

    @nn.compact
    def __call__(self, ws: jax.Array, noise_key: jax.Array | None = None,
                 randomize_noise: bool = True, lod: float | jax.Array = 0.0) -> jax.Array:
        cfg = self.config
        n = cfg.num_ws
        if ws.ndim != 3 or ws.shape[1:] != (n, cfg.w_dim):
            raise ConfigError("ws", f"expected shape (B, {n}, {cfg.w_dim}), got {ws.shape}")
        if not randomize_noise or noise_key is None:
            keys = [None] * n
        elif jnp.ndim(noise_key) == 0:
            keys = list(jax.random.split(noise_key, n))
        else:  # per-example keys (B,): the noise of an example does not depend on its batch-mates
            keys = [jax.vmap(lambda k, i=i: jax.random.fold_in(k, i))(noise_key) for i in range(n)]

        def epilogue(x: jax.Array, i: int) -> jax.Array:
            return LayerEpilogue(name=f"epilogue{i}")(x, ws[:, i], keys[i])

        const = self.param("const", nn.initializers.ones, (1, 4, 4, cfg.nf(1)))
        x = jnp.broadcast_to(const, (ws.shape[0], 4, 4, cfg.nf(1))).astype(ws.dtype)  # (B, 4, 4, nf1)
        x = epilogue(x, 0)
        x = epilogue(EqConv(cfg.nf(1), use_bias=False, name="conv4")(x), 1)
        top = cfg.log2_resolution

        def to_rgb(x: jax.Array, r: int) -> jax.Array:
            return EqConv(cfg.channels, kernel_size=1, gain=1.0, name="to_rgb" if r == top else f"to_rgb{2**r}")(x)

        img = to_rgb(x, 2) if cfg.structure != "fixed" else None  # (B, 4, 4, channels)
        for r in range(3, top + 1):
            res, ch = 2**r, cfg.nf(r - 1)
            x = blur(EqConv(ch, use_bias=False, resample="up", name=f"conv{res}_up")(x))  # (B, res, res, ch)
            x = epilogue(x, 2 * r - 4)
            x = epilogue(EqConv(ch, use_bias=False, name=f"conv{res}")(x), 2 * r - 3)
            if cfg.progressive:  # official 'linear': fade this level's image in over the last
                img = lerp_clip(to_rgb(x, r), upsample2x(img), lod - (top - r))
            elif cfg.structure == "skip":  # StyleGAN2: this level's image adds to the upsampled last one
                img = blur(upsample2x(img)) + to_rgb(x, r)
        return to_rgb(x, top) if cfg.structure == "fixed" else img  # (B, R, R, channels)


class Generator(nn.Module):
    """Mapping + synthesis. ``__call__(z, noise_key)`` (used for init) = synthesize(broadcast_ws(map(z)))."""

    config: StyleGANConfig

    def setup(self):
        self.config.validate()
        self.mapping = MappingNetwork(self.config)
        self.synthesis = SynthesisNetwork(self.config)

    def map(self, z: jax.Array) -> jax.Array:
        """z (B, z_dim) -> w (B, w_dim)."""
        if z.ndim != 2 or z.shape[1] != self.config.z_dim:
            raise ConfigError("z", f"expected shape (B, {self.config.z_dim}), got {z.shape}")
        return self.mapping(z)

    def synthesize(self, ws: jax.Array, noise_key: jax.Array | None = None,
                   randomize_noise: bool = True, lod: float | jax.Array = 0.0) -> jax.Array:
        """ws (B, num_ws, w_dim) -> images (B, R, R, C) at level of detail ``lod`` (0: full resolution)."""
        return self.synthesis(ws, noise_key, randomize_noise, lod)

    def __call__(self, z: jax.Array, noise_key: jax.Array | None = None,
                 randomize_noise: bool = True) -> jax.Array:
        return self.synthesize(broadcast_ws(self.map(z), self.config.num_ws), noise_key, randomize_noise)


# ----------------------------------------------------------------------------------------------------
# Discriminator.


class Discriminator(nn.Module):
    """images (B, R, R, C) -> logits (B,). fromRGB, blocks down to 4x4, mbstd + conv + 2 dense."""

    config: StyleGANConfig

    @nn.compact
    def __call__(self, images: jax.Array, lod: float | jax.Array = 0.0) -> jax.Array:
        cfg = self.config
        cfg.validate()
        r_log2 = cfg.log2_resolution
        want = (cfg.resolution, cfg.resolution, cfg.channels)
        if images.ndim != 4 or images.shape[1:] != want:
            raise ConfigError("images", f"expected shape (B, {', '.join(map(str, want))}), got {images.shape}")
        x = lrelu(EqConv(cfg.nf(r_log2 - 1), kernel_size=1, name="from_rgb")(images))  # (B, R, R, nf)
        img = images
        for r in range(r_log2, 2, -1):
            res = 2**r
            y = lrelu(EqConv(cfg.nf(r - 1), name=f"conv{res}")(x))
            y = lrelu(EqConv(cfg.nf(r - 2), resample="down", name=f"conv{res}_down")(blur(y)))  # (B, res/2, res/2, nf)
            if cfg.discriminator == "resnet":
                skip = EqConv(cfg.nf(r - 2), kernel_size=1, gain=1.0, use_bias=False, name=f"skip{res}")
                y = (y + skip(downsample2x(x))) * (1.0 / math.sqrt(2.0))
            if cfg.progressive:  # official 'linear' structure: fade to the next level's fromRGB
                img = downsample2x(img)
                low = lrelu(EqConv(cfg.nf(r - 2), kernel_size=1, name=f"from_rgb{res // 2}")(img))
                y = lerp_clip(y, low, lod - (r_log2 - r))
            x = y
        x = minibatch_stddev(x, cfg.mbstd_group)  # (B, 4, 4, nf(1) + 1)
        x = lrelu(EqConv(cfg.nf(1), name="conv4")(x))
        x = lrelu(EqDense(cfg.nf(0), name="dense4")(x.reshape(x.shape[0], -1)))  # (B, nf(0))
        return EqDense(1, gain=1.0, name="out")(x)[:, 0]  # (B,)
