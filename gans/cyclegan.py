"""CycleGAN networks, losses and image history pool as Flax Linen modules and pure functions.

Implements Zhu, Park, Isola & Efros, "Unpaired Image-to-Image Translation using Cycle-Consistent
Adversarial Networks", ICCV 2017, following the behaviour of the official PyTorch code
(junyanz/pytorch-CycleGAN-and-pix2pix: ``models/networks.py``, ``util/image_pool.py``,
``models/cycle_gan_model.py``) and its CycleGAN defaults:

  * ``ResnetGenerator`` (``netG='resnet_9blocks'``; ``resnet_6blocks`` for 128px): reflect pad 3, conv7x7,
    ``n_downsampling`` strided convs, ``n_res_blocks`` residual blocks with reflection padding and no
    dropout (``cycle_gan_model`` sets ``no_dropout=True``), ``n_downsampling`` transposed convs that exactly
    double H and W (torch ``ConvTranspose2d(k=3, s=2, p=1, output_padding=1)``), reflect pad 3, conv7x7, tanh.
  * ``PatchDiscriminator`` (``netD='basic'``, the 70x70 PatchGAN at ``disc_layers=3``): raw scores, no sigmoid.
  * Instance norm without learned scale/shift, biased variance, eps 1e-5, batch statistics also at test time
    (``norm='instance'`` -> ``InstanceNorm2d(affine=False, track_running_stats=False)``); hence every conv has
    a bias (official ``use_bias = norm_layer == InstanceNorm2d``).
  * Initialisation ``init_type='normal'``, ``init_gain=0.02``: every conv and transposed-conv weight
    ~ N(0, 0.02), biases 0.
  * Losses: LSGAN by default (``gan_mode='lsgan'``, targets 1 / 0, mean squared error), the discriminator
    loss halved (``loss_D = (loss_D_real + loss_D_fake) * 0.5``), cycle L1 with lambda_A = lambda_B = 10,
    identity L1 with weight ``lambda_identity = 0.5`` times the lambda of the domain it is computed in.
  * Image history pool of 50 fakes per discriminator (Shrivastava et al. 2017), ``util/image_pool.py``.

Naming. ``g_ab`` maps domain A to domain B (official ``netG_A``), ``g_ba`` maps B to A (``netG_B``).
Discriminators are named by the domain they judge: ``d_a`` scores A images (real_A vs g_ba(real_B)) and is
the official ``netD_B``; ``d_b`` scores B images (real_B vs g_ab(real_A)) and is the official ``netD_A``.

Deliberate deviations from the official code:
  * Layout NHWC (official NCHW). A conv kernel ``(kh, kw, in, out)`` is torch ``weight[out, in, kh, kw]``;
    a transposed-conv kernel ``(kh, kw, in, out)`` is torch ``ConvTranspose2d.weight[in, out, kh, kw]``
    (see `conv_transpose_torch`), so official weights port by transposition alone.
  * Adversarial ``kind="minimax"`` is an extra: its generator loss ``mean(log(1 - sigmoid(s)))`` is the
    saturating original of Goodfellow et al. 2014. The official ``gan_mode='vanilla'`` is our
    ``"nonsaturating"`` (BCE-with-logits with target 1 for the generator). ``wgangp`` is not provided.
  * The pool is pure (``pool_init`` / ``pool_query`` on a `PoolState`) and draws from a JAX key instead of
    Python's ``random``; decisions and their probabilities are the official ones, per image in batch order.
    Inputs are passed through ``stop_gradient`` (official stores and returns ``image.data``).
  * Networks accept any H, W divisible by ``2**n_downsampling`` (generator) or with a non-empty patch
    output (discriminator), not only ``resolution``; ``resolution`` is what `CycleGANConfig.validate`
    checks and what `init_cyclegan` initialises at.
  * Data pipeline (resize 286, random crop 256, flips), optimisers and schedules are not part of this module.
"""

from __future__ import annotations

import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp

from gans.ops import instance_norm as _instance_norm, interleave2x
from jaxnas.common.errors import ConfigError, check, check_choice, check_nonnegative_int, check_positive

IN_EPS = 1e-5  # torch InstanceNorm2d default
LRELU_SLOPE = 0.2
CHANNELS = (1, 3)


# ----------------------------------------------------------------------------------------------------
# Geometry of the PatchGAN.


def patch_output_size(resolution: int, disc_layers: int) -> int:
    """Side of the PatchGAN score map for a ``resolution`` x ``resolution`` input (0: too small).

    Torch arithmetic: each of the ``disc_layers`` 4x4 stride-2 pad-1 convs maps h to ``(h - 2) // 2 + 1``,
    each of the two 4x4 stride-1 pad-1 convs maps h to ``h - 1``. 256px, 3 layers -> 30 (the 30x30 patch map).
    """
    h = resolution
    for _ in range(disc_layers):
        h = (h - 2) // 2 + 1
        if h < 1:
            return 0
    return max(h - 2, 0)


def receptive_field(disc_layers: int) -> int:
    """Receptive field (pixels) of one PatchGAN score: 70 for 3 layers (34 for 2, 16 for 1).

    Backwards from one output pixel, ``r_in = (r_out - 1) * stride + 4``: two stride-1 convs, then
    ``disc_layers`` stride-2 convs.
    """
    r = 1
    for stride in [1, 1] + [2] * disc_layers:
        r = (r - 1) * stride + 4
    return r


# ----------------------------------------------------------------------------------------------------
# Config.


@dataclasses.dataclass(frozen=True)
class CycleGANConfig:
    """CycleGAN network settings; defaults are the official 256px ones (``resnet_9blocks``, 70x70 PatchGAN).
    The loss settings (kind, cycle lambda, identity weight) and the pool size are training settings
    (`gans.cyclegan_train.CycleGANSettings`) and arguments of the loss / pool functions."""

    resolution: int = 256  # training crop; multiple of 4 (and of 2**n_downsampling), >= 16
    channels_a: int = 3  # 1 or 3
    channels_b: int = 3  # 1 or 3
    ngf: int = 64  # generator width after the first conv
    ndf: int = 64  # discriminator width after the first conv
    n_res_blocks: int = 9  # 9 official at 256px, 6 at 128px
    n_downsampling: int = 2
    disc_layers: int = 3  # stride-2 convs in D; 3 = 70x70 PatchGAN
    init_std: float = 0.02  # N(0, init_std) conv weights, zero biases

    def validate(self) -> None:
        """Raises `ConfigError` naming the first invalid field."""
        self.validate_networks()

    def validate_networks(self) -> None:
        """Checks only the fields the networks use (what `ResnetGenerator` / `PatchDiscriminator` call)."""
        r = self.resolution
        check_positive("resolution", r, integer=True)
        check(r >= 16 and r % 4 == 0, "resolution", f"got {r!r}; allowed: a multiple of 4 and >= 16")
        check_choice("channels_a", self.channels_a, CHANNELS)
        check_choice("channels_b", self.channels_b, CHANNELS)
        for name in ("ngf", "ndf", "disc_layers"):
            check_positive(name, getattr(self, name), integer=True)
        check_nonnegative_int("n_res_blocks", self.n_res_blocks)
        check_nonnegative_int("n_downsampling", self.n_downsampling)
        f = 2**self.n_downsampling
        check(r % f == 0 and r // f >= 2, "n_downsampling",
              f"got {self.n_downsampling}; resolution {r} must be a multiple of 2**n_downsampling = {f} "
              f"with a bottleneck of at least 2x2 (reflection padding)")
        p = patch_output_size(r, self.disc_layers)
        check(p >= 1, "disc_layers",
              f"got {self.disc_layers}; the patch output at resolution {r} would be empty (need >= 1x1)")
        check_positive("init_std", self.init_std)

    @property
    def patch_size(self) -> int:
        """Side of the discriminator's score map at ``resolution``."""
        return patch_output_size(self.resolution, self.disc_layers)


# ----------------------------------------------------------------------------------------------------
# Pure layers.


def instance_norm(x: jax.Array, eps: float = IN_EPS) -> jax.Array:
    """torch ``InstanceNorm2d(affine=False)``: per (example, channel) over (H, W), biased variance, eps 1e-5.

    Statistics in float32; the result has x's dtype. x: (B, H, W, C).
    """
    return _instance_norm(x.astype(jnp.float32), eps).astype(x.dtype)


def reflect_pad(x: jax.Array, p: int) -> jax.Array:
    """torch ``ReflectionPad2d(p)`` on (B, H, W, C) (mirror without repeating the edge; needs p < H, W)."""
    return jnp.pad(x, ((0, 0), (p, p), (p, p), (0, 0)), mode="reflect")


def conv_transpose_torch(x: jax.Array, kernel: jax.Array, stride: int = 2, padding: int = 1,
                         output_padding: int = 1) -> jax.Array:
    """torch ``ConvTranspose2d`` (no bias) in NHWC: out side ``(in - 1) * stride - 2 * padding + k + output_padding``.

    ``kernel[kh, kw, i, o]`` is torch ``weight[i, o, kh, kw]``. The transposed conv is the gradient of a
    conv: dilate the input by ``stride``, pad ``k - 1 - padding`` before and ``k - 1 - padding +
    output_padding`` after, and correlate with the spatially flipped kernel. For k=3, s=2, p=1, op=1 the
    output is exactly 2x the input.

    Args:
        x: (B, H, W, Cin).
        kernel: (k, k, Cin, Cout).

    Returns:
        (B, H', W', Cout).
    """
    k = kernel.shape[0]
    if (k, stride, padding, output_padding) == (3, 2, 1, 1):
        return _conv_transpose_3x3_s2(x, kernel.astype(x.dtype))
    lo, hi = k - 1 - padding, k - 1 - padding + output_padding
    return jax.lax.conv_general_dilated(
        x, kernel[::-1, ::-1].astype(x.dtype), window_strides=(1, 1), padding=((lo, hi), (lo, hi)),
        lhs_dilation=(stride, stride), dimension_numbers=("NHWC", "HWIO", "NHWC"))


def _conv_transpose_3x3_s2(x: jax.Array, kernel: jax.Array) -> jax.Array:
    """`conv_transpose_torch` for k=3, s=2, p=1, op=1 without the zero-dilated input: output row 2m is
    ``x[m] k[1]``, row 2m+1 is ``x[m] k[2] + x[m+1] k[0]`` (columns alike), so each of the four output phases is
    a 1x1, 1x2, 2x1 or 2x2 conv of x. The same numbers; XLA:CPU runs the `lhs_dilation` conv over the dilated
    input and is 3-10x slower (benchmarks/RESULTS.md, CycleGAN section). x: (B, H, W, Cin) -> (B, 2H, 2W, Cout)."""
    def taps(v: jax.Array, axis: int, phase: int) -> jax.Array:  # the kernel taps one output phase reads
        pick = [1] if phase == 0 else [2, 0]  # offsets 0 (and +1) into x
        return jnp.take(v, jnp.asarray(pick), axis=axis)

    return interleave2x([[jax.lax.conv_general_dilated(x, taps(taps(kernel, 0, a), 1, c), (1, 1), ((0, a), (0, c)),
                                                       dimension_numbers=("NHWC", "HWIO", "NHWC")) for c in (0, 1)]
                         for a in (0, 1)])


def _conv(cfg: CycleGANConfig, features: int, kernel: int, stride: int, pad: int, name: str) -> nn.Conv:
    """Conv with zero padding ``pad`` (torch ``Conv2d(padding=pad)``), N(0, init_std) weight, zero bias."""
    return nn.Conv(features, (kernel, kernel), strides=(stride, stride), padding=((pad, pad), (pad, pad)),
                   use_bias=True, kernel_init=nn.initializers.normal(cfg.init_std),
                   bias_init=nn.initializers.zeros, name=name)


class ConvTranspose2x(nn.Module):
    """torch ``ConvTranspose2d(3, stride=2, padding=1, output_padding=1)``: (B, H, W, Cin) -> (B, 2H, 2W, features)."""

    features: int
    init_std: float = 0.02

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        kernel = self.param("kernel", nn.initializers.normal(self.init_std), (3, 3, x.shape[-1], self.features))
        bias = self.param("bias", nn.initializers.zeros, (self.features,))
        return conv_transpose_torch(x, kernel, 2, 1, 1) + bias.astype(x.dtype)


# ----------------------------------------------------------------------------------------------------
# Generator.


class ResnetBlock(nn.Module):
    """x + IN(conv3x3(pad_r(ReLU(IN(conv3x3(pad_r(x))))))), reflection padding 1, no dropout. Shape kept."""

    config: CycleGANConfig
    features: int

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        cfg = self.config
        y = _conv(cfg, self.features, 3, 1, 0, "conv0")(reflect_pad(x, 1))
        y = nn.relu(instance_norm(y))
        y = _conv(cfg, self.features, 3, 1, 0, "conv1")(reflect_pad(y, 1))
        return x + instance_norm(y)


class ResnetGenerator(nn.Module):
    """Official ``ResnetGenerator``: images (B, H, W, in_channels) in [-1, 1] -> (B, H, W, out_channels) in (-1, 1).

    Apply as ``ResnetGenerator(cfg, cin, cout).apply({'params': p}, x)``. H and W must be multiples of
    ``2**n_downsampling``.
    """

    config: CycleGANConfig
    in_channels: int
    out_channels: int

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        cfg = self.config
        cfg.validate_networks()
        check_positive("in_channels", self.in_channels, integer=True)
        check_positive("out_channels", self.out_channels, integer=True)
        f = 2**cfg.n_downsampling
        if x.ndim != 4 or x.shape[-1] != self.in_channels or x.shape[1] % f or x.shape[2] % f \
                or min(x.shape[1:3]) // f < 2:
            raise ConfigError("images", f"expected (B, H, W, {self.in_channels}) with H, W multiples of {f} "
                                        f"and >= {2 * f}, got {x.shape}")
        h = nn.relu(instance_norm(_conv(cfg, cfg.ngf, 7, 1, 0, "conv_in")(reflect_pad(x, 3))))  # (B, H, W, ngf)
        for i in range(cfg.n_downsampling):
            ch = cfg.ngf * 2 ** (i + 1)
            h = nn.relu(instance_norm(_conv(cfg, ch, 3, 2, 1, f"down{i}")(h)))  # (B, H/2^(i+1), ., ch)
        ch = cfg.ngf * f
        for i in range(cfg.n_res_blocks):
            h = ResnetBlock(cfg, ch, name=f"res{i}")(h)  # (B, H/f, W/f, ngf*f)
        for i in range(cfg.n_downsampling):
            ch = cfg.ngf * 2 ** (cfg.n_downsampling - i - 1)
            h = nn.relu(instance_norm(ConvTranspose2x(ch, cfg.init_std, name=f"up{i}")(h)))  # (B, 2x, 2x, ch)
        h = _conv(cfg, self.out_channels, 7, 1, 0, "conv_out")(reflect_pad(h, 3))  # (B, H, W, out_channels)
        return jnp.tanh(h)


# ----------------------------------------------------------------------------------------------------
# Discriminator.


class PatchDiscriminator(nn.Module):
    """Official ``NLayerDiscriminator``: images (B, H, W, channels) -> raw scores (B, p, p, 1), no sigmoid.

    conv4x4/2 ndf, LReLU 0.2 (no norm); ``disc_layers - 1`` x (conv4x4/2, IN, LReLU) with
    ``ndf * min(2**n, 8)`` channels; conv4x4/1 ``ndf * min(2**disc_layers, 8)``, IN, LReLU; conv4x4/1 -> 1.
    All pads are zero pads of 1. ``p = patch_output_size(H, disc_layers)``.
    """

    config: CycleGANConfig
    channels: int

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        cfg = self.config
        cfg.validate_networks()
        if x.ndim != 4 or x.shape[-1] != self.channels or min(
                patch_output_size(x.shape[1], cfg.disc_layers), patch_output_size(x.shape[2], cfg.disc_layers)) < 1:
            raise ConfigError("images", f"expected (B, H, W, {self.channels}) with a non-empty patch output "
                                        f"at disc_layers={cfg.disc_layers}, got {x.shape}")
        h = nn.leaky_relu(_conv(cfg, cfg.ndf, 4, 2, 1, "conv0")(x), LRELU_SLOPE)  # (B, H/2, W/2, ndf)
        for n in range(1, cfg.disc_layers):
            h = _conv(cfg, cfg.ndf * min(2**n, 8), 4, 2, 1, f"conv{n}")(h)
            h = nn.leaky_relu(instance_norm(h), LRELU_SLOPE)  # (B, H/2^(n+1), ., ndf*min(2^n, 8))
        h = _conv(cfg, cfg.ndf * min(2**cfg.disc_layers, 8), 4, 1, 1, f"conv{cfg.disc_layers}")(h)
        h = nn.leaky_relu(instance_norm(h), LRELU_SLOPE)  # (B, p+1, p+1, .)
        return _conv(cfg, 1, 4, 1, 1, "out")(h)  # (B, p, p, 1)


# ----------------------------------------------------------------------------------------------------
# The four networks.


def cyclegan_modules(cfg: CycleGANConfig) -> dict[str, nn.Module]:
    """``g_ab`` (A -> B), ``g_ba`` (B -> A), ``d_a`` (judges A images), ``d_b`` (judges B images)."""
    cfg.validate_networks()
    return {
        "g_ab": ResnetGenerator(cfg, cfg.channels_a, cfg.channels_b),
        "g_ba": ResnetGenerator(cfg, cfg.channels_b, cfg.channels_a),
        "d_a": PatchDiscriminator(cfg, cfg.channels_a),
        "d_b": PatchDiscriminator(cfg, cfg.channels_b),
    }


def init_cyclegan(cfg: CycleGANConfig, key: jax.Array) -> dict:
    """Params of the four networks, each from its own split of ``key``, initialised at ``resolution``.

    Returns:
        ``{"g_ab": p, "g_ba": p, "d_a": p, "d_b": p}``; apply with ``module.apply({"params": p}, x)``.
    """
    modules = cyclegan_modules(cfg)
    r = cfg.resolution
    in_ch = {"g_ab": cfg.channels_a, "g_ba": cfg.channels_b, "d_a": cfg.channels_a, "d_b": cfg.channels_b}
    keys = dict(zip(("g_ab", "g_ba", "d_a", "d_b"), jax.random.split(key, 4)))
    return {name: m.init(keys[name], jnp.zeros((1, r, r, in_ch[name]), jnp.float32))["params"]
            for name, m in modules.items()}
