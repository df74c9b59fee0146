"""StyleGAN discriminator: fromRGB, blocks down to 4x4, minibatch stddev, conv and two dense layers.

Karras, Laine & Aila, "A Style-Based Generator Architecture for Generative Adversarial Networks", CVPR
2019, following the official TensorFlow code (``training/networks_stylegan.py``).

Deliberate deviations from the paper / official code:
  * ``discriminator="resnet"`` (the default here) adds a skip path (2x2 average pool -> 1x1 conv, no bias,
    sum scaled by 1/sqrt(2)) as in StyleGAN2's residual D; ``"plain"`` is the StyleGAN1 official D.
  * With ``structure="progressive"`` every resolution has its own fromRGB and a level-of-detail scalar
    ``lod`` fades between them (`lerp_clip`, official 'linear' structure); ``"fixed"`` and ``"skip"`` use a
    single fromRGB at the final resolution.
"""

from __future__ import annotations

import math

import flax.linen as nn
import jax

from gans.ops import downsample2x
from gans.stylegan_config import StyleGANConfig
from gans.stylegan_layers import EqConv, EqDense, blur, lerp_clip, lrelu, minibatch_stddev
from jaxnas.common.errors import ConfigError


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
