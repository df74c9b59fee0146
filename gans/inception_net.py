"""The FID Inception-v3 network up to pool3 (2048-d features) as Flax Linen modules.

Implements

* Inception-v3: Szegedy et al. 2016, "Rethinking the Inception Architecture for Computer Vision" (CVPR).
* The feature extractor of FID: Heusel et al. 2017, "GANs Trained by a Two Time-Scale Update Rule Converge
  to a Local Nash Equilibrium" -- the 2048-d pool3 activations of the TensorFlow Inception graph of
  2015-12-05, here in the PyTorch port of pytorch-fid (`pytorch_fid.inception.fid_inception_v3`). That
  port differs from torchvision's Inception-v3 in four block types, reproduced here: the average pools of
  Mixed_5b-5d, Mixed_6b-6e and Mixed_7b exclude the zero padding from the mean (TensorFlow semantics,
  `count_include_pad=False`), and Mixed_7c's pooling branch uses a 3x3 *max* pool (stride 1, pad 1).
  Every convolution is followed by BatchNorm (eps 0.001) and ReLU.

Submodule names follow the torch attribute names, so parameter paths mirror pytorch-fid's state_dict keys.
Every conv-BN-ReLU unit is one convolution with a bias (BatchNorm folded in at load time,
`gans.inception_weights`) and a ReLU, in NHWC layout with `lax.Precision.HIGHEST` (true float32 also on
GPUs/TPUs). Feature extraction (resize, scaling, batching) and loading are in `gans.inception`.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

FEATURE_DIM = 2048
INPUT_SIZE = 299  # pytorch-fid resizes every input to 299x299
MIN_SIZE = 75  # smallest input the network accepts (Mixed_7a needs a 3x3 map)

_HIGHEST = lax.Precision.HIGHEST


class ConvUnit(nn.Module):
    """Convolution with BatchNorm folded in (kernel HWIO and per-channel bias), then ReLU.

    Corresponds to one torch `BasicConv2d` (conv without bias -> BatchNorm2d(eps=0.001) -> ReLU).
    """

    features: int
    kernel_size: tuple[int, int]
    stride: int = 1
    padding: tuple[int, int] = (0, 0)

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:  # x: (B, H, W, Cin)
        kh, kw = self.kernel_size
        kernel = self.param("kernel", nn.initializers.lecun_normal(), (kh, kw, x.shape[-1], self.features), jnp.float32)
        bias = self.param("bias", nn.initializers.zeros, (self.features,), jnp.float32)
        (ph, pw) = self.padding
        y = lax.conv_general_dilated(
            x, kernel, window_strides=(self.stride, self.stride), padding=((ph, ph), (pw, pw)),
            dimension_numbers=("NHWC", "HWIO", "NHWC"), precision=_HIGHEST,
        )  # (B, H', W', Cout)
        return nn.relu(y + bias)


def _avg_pool_3x3_same(x: jax.Array) -> jax.Array:
    """3x3 stride-1 average pool, pad 1, the padded zeros left out of each mean (TensorFlow 'SAME')."""
    return nn.avg_pool(x, (3, 3), strides=(1, 1), padding=((1, 1), (1, 1)), count_include_pad=False)


def _max_pool_3x3_same(x: jax.Array) -> jax.Array:
    """3x3 stride-1 max pool, pad 1 (padding never wins: reduce_window pads with -inf)."""
    return nn.max_pool(x, (3, 3), strides=(1, 1), padding=((1, 1), (1, 1)))


def _max_pool_3x3_down(x: jax.Array) -> jax.Array:
    """3x3 stride-2 max pool without padding (floor of the output size)."""
    return nn.max_pool(x, (3, 3), strides=(2, 2), padding="VALID")


class MixedA(nn.Module):
    """35x35 block (Mixed_5b-5d): 1x1 | 1x1->5x5 | 1x1->3x3->3x3 | avg pool (pad excluded)->1x1."""

    pool_features: int

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        one = ConvUnit(64, (1, 1), name="branch1x1")(x)
        five = ConvUnit(48, (1, 1), name="branch5x5_1")(x)
        five = ConvUnit(64, (5, 5), padding=(2, 2), name="branch5x5_2")(five)
        dbl = ConvUnit(64, (1, 1), name="branch3x3dbl_1")(x)
        dbl = ConvUnit(96, (3, 3), padding=(1, 1), name="branch3x3dbl_2")(dbl)
        dbl = ConvUnit(96, (3, 3), padding=(1, 1), name="branch3x3dbl_3")(dbl)
        pool = ConvUnit(self.pool_features, (1, 1), name="branch_pool")(_avg_pool_3x3_same(x))
        return jnp.concatenate([one, five, dbl, pool], axis=-1)


class ReductionB(nn.Module):
    """35 -> 17 reduction (Mixed_6a): 3x3/2 | 1x1->3x3->3x3/2 | max pool 3x3/2."""

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        three = ConvUnit(384, (3, 3), stride=2, name="branch3x3")(x)
        dbl = ConvUnit(64, (1, 1), name="branch3x3dbl_1")(x)
        dbl = ConvUnit(96, (3, 3), padding=(1, 1), name="branch3x3dbl_2")(dbl)
        dbl = ConvUnit(96, (3, 3), stride=2, name="branch3x3dbl_3")(dbl)
        return jnp.concatenate([three, dbl, _max_pool_3x3_down(x)], axis=-1)


class MixedC(nn.Module):
    """17x17 block with factorised 7x7 convolutions (Mixed_6b-6e); avg pool excludes the padding."""

    channels_7x7: int

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        c = self.channels_7x7
        row, col = ((1, 7), (0, 3)), ((7, 1), (3, 0))  # (kernel, padding) of a 1x7 and a 7x1 conv
        one = ConvUnit(192, (1, 1), name="branch1x1")(x)
        seven = ConvUnit(c, (1, 1), name="branch7x7_1")(x)
        seven = ConvUnit(c, row[0], padding=row[1], name="branch7x7_2")(seven)
        seven = ConvUnit(192, col[0], padding=col[1], name="branch7x7_3")(seven)
        dbl = ConvUnit(c, (1, 1), name="branch7x7dbl_1")(x)
        for i, (width, (kernel, pad)) in enumerate(((c, col), (c, row), (c, col), (192, row)), start=2):
            dbl = ConvUnit(width, kernel, padding=pad, name=f"branch7x7dbl_{i}")(dbl)
        pool = ConvUnit(192, (1, 1), name="branch_pool")(_avg_pool_3x3_same(x))
        return jnp.concatenate([one, seven, dbl, pool], axis=-1)


class ReductionD(nn.Module):
    """17 -> 8 reduction (Mixed_7a): 1x1->3x3/2 | 1x1->1x7->7x1->3x3/2 | max pool 3x3/2."""

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        three = ConvUnit(192, (1, 1), name="branch3x3_1")(x)
        three = ConvUnit(320, (3, 3), stride=2, name="branch3x3_2")(three)
        seven = ConvUnit(192, (1, 1), name="branch7x7x3_1")(x)
        seven = ConvUnit(192, (1, 7), padding=(0, 3), name="branch7x7x3_2")(seven)
        seven = ConvUnit(192, (7, 1), padding=(3, 0), name="branch7x7x3_3")(seven)
        seven = ConvUnit(192, (3, 3), stride=2, name="branch7x7x3_4")(seven)
        return jnp.concatenate([three, seven, _max_pool_3x3_down(x)], axis=-1)


class MixedE(nn.Module):
    """8x8 block with split 1x3 / 3x1 outputs (Mixed_7b: avg pool without padding; Mixed_7c: max pool)."""

    pool: str  # "avg" or "max"

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        def split(h, prefix):  # parallel 1x3 and 3x1 convolutions, concatenated
            a = ConvUnit(384, (1, 3), padding=(0, 1), name=f"{prefix}a")(h)
            b = ConvUnit(384, (3, 1), padding=(1, 0), name=f"{prefix}b")(h)
            return jnp.concatenate([a, b], axis=-1)

        one = ConvUnit(320, (1, 1), name="branch1x1")(x)
        three = split(ConvUnit(384, (1, 1), name="branch3x3_1")(x), "branch3x3_2")
        dbl = ConvUnit(448, (1, 1), name="branch3x3dbl_1")(x)
        dbl = split(ConvUnit(384, (3, 3), padding=(1, 1), name="branch3x3dbl_2")(dbl), "branch3x3dbl_3")
        pooled = _max_pool_3x3_same(x) if self.pool == "max" else _avg_pool_3x3_same(x)
        pool = ConvUnit(192, (1, 1), name="branch_pool")(pooled)
        return jnp.concatenate([one, three, dbl, pool], axis=-1)


class InceptionV3(nn.Module):
    """FID Inception-v3 up to pool3: x (B, H, W, 3) in [-1, 1], H, W >= 75 -> (B, 2048).

    Submodule names follow the torch attribute names, so parameter paths mirror the state_dict keys
    (e.g. params['Mixed_5b']['branch1x1']['kernel'] <- 'Mixed_5b.branch1x1.conv.weight' + '.bn.*').
    """

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        x = ConvUnit(32, (3, 3), stride=2, name="Conv2d_1a_3x3")(x)  # 299 -> 149
        x = ConvUnit(32, (3, 3), name="Conv2d_2a_3x3")(x)  # 147
        x = ConvUnit(64, (3, 3), padding=(1, 1), name="Conv2d_2b_3x3")(x)  # 147
        x = _max_pool_3x3_down(x)  # 73
        x = ConvUnit(80, (1, 1), name="Conv2d_3b_1x1")(x)
        x = ConvUnit(192, (3, 3), name="Conv2d_4a_3x3")(x)  # 71
        x = _max_pool_3x3_down(x)  # 35
        x = MixedA(32, name="Mixed_5b")(x)  # 256 channels
        x = MixedA(64, name="Mixed_5c")(x)  # 288
        x = MixedA(64, name="Mixed_5d")(x)  # 288
        x = ReductionB(name="Mixed_6a")(x)  # 17x17x768
        for name, c7 in (("Mixed_6b", 128), ("Mixed_6c", 160), ("Mixed_6d", 160), ("Mixed_6e", 192)):
            x = MixedC(c7, name=name)(x)  # 768
        x = ReductionD(name="Mixed_7a")(x)  # 8x8x1280
        x = MixedE("avg", name="Mixed_7b")(x)  # 2048
        x = MixedE("max", name="Mixed_7c")(x)  # 2048
        return jnp.mean(x, axis=(1, 2))  # (B, 2048): global average pool ("pool3")
