"""StyleGAN generator: the mapping network, the synthesis network and the `Generator` assembling them.

Karras, Laine & Aila, "A Style-Based Generator Architecture for Generative Adversarial Networks", CVPR
2019, following the official TensorFlow code (``training/networks_stylegan.py``). Pixel-normalised z,
an 8-layer mapping MLP with learning-rate multiplier 0.01, a learned 4x4 constant, per-layer noise inputs
with zero-initialised per-channel strengths, AdaIN after every conv.

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
  * ``randomize_noise=False`` (or ``noise_key=None``) uses zero noise, not the official stored per-layer
    noise constants: deterministic outputs without extra non-trainable state.
  * Mapping hidden width is ``w_dim`` (official ``mapping_fmaps=512 == dlatent_size``).
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from gans.ops import upsample2x
from gans.stylegan_config import StyleGANConfig
from gans.stylegan_layers import EqConv, EqDense, adain, blur, lerp_clip, lrelu, pixel_norm
from gans.stylegan_styles import broadcast_ws
from jaxnas.common.errors import ConfigError


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
