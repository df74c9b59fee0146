"""StyleGAN generator and discriminator as Flax Linen modules (pure init/apply).

Implements Karras, Laine & Aila, "A Style-Based Generator Architecture for Generative Adversarial
Networks", CVPR 2019, following the official TensorFlow code (``training/networks_stylegan.py``) and its
defaults: pixel-normalised z, an 8-layer mapping MLP with learning-rate multiplier 0.01, a learned 4x4
constant, per-layer noise inputs with zero-initialised per-channel strengths, AdaIN after every conv,
equalized learning rate everywhere (Karras et al. 2018: weights stored ~ N(0, 1/lr_mul), scaled at
runtime by ``lr_mul * gain / sqrt(fan_in)``, biases by ``lr_mul``), leaky ReLU 0.2 with the sqrt(2) gain
folded into the preceding layer's He constant (as in the official StyleGAN1 code), [1, 2, 1] blur,
minibatch standard deviation in the discriminator, truncation trick and style mixing.

The implementation is split by concept; this module is the public entry point and re-exports it all:
  * `gans.stylegan_config`: `StyleGANConfig` (channel counts, structure, validation);
  * `gans.stylegan_layers`: pixel norm, AdaIN, blur, fused resampling convs, lod fading, minibatch stddev,
    the equalized-learning-rate layers `EqDense` / `EqConv`;
  * `gans.stylegan_styles`: broadcasting w, style mixing, truncation, the moving average of w;
  * `gans.stylegan_generator`: `MappingNetwork`, `SynthesisNetwork` and the `Generator` assembling them;
  * `gans.stylegan_discriminator`: `Discriminator`.
Each module documents its deliberate deviations from the paper / official code: progressive growing as the
official 'linear' structure, StyleGAN2's skip generator and residual discriminator as options, the style
bias reparametrisation, always-fused resampling convs, zero noise without ``randomize_noise``, per-example
style-mixing crossovers, contiguous minibatch-stddev groups.
"""

from __future__ import annotations

from gans.ops import downsample2x, instance_norm, interleave2x, upsample2x
from gans.stylegan_config import DISCRIMINATORS, STRUCTURES, StyleGANConfig
from gans.stylegan_discriminator import Discriminator
from gans.stylegan_generator import Generator, LayerEpilogue, MappingNetwork, SynthesisNetwork
from gans.stylegan_layers import (
    GAIN, LRELU_SLOPE, EqConv, EqDense, adain, blur, conv2d_downsample, lerp_clip, lrelu, minibatch_stddev,
    pixel_norm, progressive_reals, upsample_conv2d,
)
from gans.stylegan_styles import broadcast_ws, mix_styles, mixing_crossover, style_mixing_ws, truncate, update_w_avg

# Re-exported: gans.stylegan_train, the notebook and the tests import the networks from here (`sg.*`).
__all__ = [
    "DISCRIMINATORS", "GAIN", "LRELU_SLOPE", "STRUCTURES", "Discriminator", "EqConv", "EqDense", "Generator",
    "LayerEpilogue", "MappingNetwork", "StyleGANConfig", "SynthesisNetwork", "adain", "blur", "broadcast_ws",
    "conv2d_downsample", "downsample2x", "instance_norm", "interleave2x", "lerp_clip", "lrelu", "minibatch_stddev",
    "mix_styles", "mixing_crossover", "pixel_norm", "progressive_reals", "style_mixing_ws", "truncate",
    "update_w_avg", "upsample2x", "upsample_conv2d",
]
