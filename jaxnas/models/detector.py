"""A small one-stage, anchor-free detector in the style of CenterNet (Zhou, Wang & Krähenbühl, "Objects as Points",
arXiv:1904.07850, 2019), sized for the detection search over (input resolution, number of conv layers).

Architecture: a plain backbone of `depth` 3x3 conv-BN-ReLU layers of `width` channels, then CenterNet's three heads,
each a 3x3 conv (`head_width` channels, bias) + ReLU + 1x1 conv (bias), on the backbone's output grid:

* `heatmap_logits` (B, H/S, W/S, num_classes): the class heatmap *before* the sigmoid; the 1x1 bias starts at
  -2.19 (= -log((1 - 0.1) / 0.1), CenterNet's prior of 0.1), so the initial heatmap is ~0.1 everywhere;
* `size` (B, H/S, W/S, 2): box (w, h) in output-grid cells (input pixels / S), as CenterNet's `wh` head;
* `offset` (B, H/S, W/S, 2): the sub-cell (x, y) offset of the box centre, in cells.

Stride rule (`layer_strides`): the output stride S (`stride`, a power of two, default 4) is the same for every
depth: layer i (0-based) is a stride-2 convolution iff i < log2(S), every later layer has stride 1. So depth must be
at least log2(S) (2 for S = 4), and the extra layers of a deeper candidate all run at the output resolution, where
the heads read them. The input (B, H, W, C) may have any H, W divisible by S (the caller resizes the images;
the search's `resolution`); other sizes are refused with a `ConfigError` naming `resolution`.

Deviations from the paper: the backbone is a plain conv stack, not a DLA-34 / Hourglass / ResNet with up-sampling
(the search space is depth x resolution); the heads' weights use He-normal initialisation (CenterNet: normal,
std 0.001) and only the heatmap bias is set (-2.19); the heatmap is returned as logits, so the loss uses
log-sigmoid instead of CenterNet's clamped sigmoid (`jaxnas.problems.detection`). The convolutions are the
project's patch-matmul `Conv` and its `BatchNorm` (PyTorch momentum 0.1, eps 1e-5), as in the other models.
"""

from __future__ import annotations

import math

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxnas.common.errors import check, check_positive
from jaxnas.models.layers import BatchNorm, Conv

HEATMAP_BIAS = -2.19  # CenterNet's initial heatmap bias: sigmoid(-2.19) ~= 0.1


def layer_strides(depth: int, stride: int) -> tuple[int, ...]:
    """The stride of each backbone layer: 2 for the first log2(`stride`) layers, then 1 (see the module docstring)."""
    check_detector(num_classes=1, depth=depth, width=1, stride=stride, head_width=None)
    n_down = int(math.log2(stride))
    return tuple(2 if i < n_down else 1 for i in range(depth))


def check_detector(num_classes: int, depth: int, width: int, stride: int, head_width: int | None) -> None:
    """Validates a detector's settings; raises `ConfigError` naming the field."""
    check_positive("num_classes", num_classes, integer=True)
    check_positive("depth", depth, integer=True)
    check_positive("width", width, integer=True)
    check_positive("stride", stride, integer=True)
    check(stride & (stride - 1) == 0, "stride", f"got {stride}; allowed: a power of two (1, 2, 4, 8, ...)")
    n_down = int(math.log2(stride))
    check(depth >= n_down, "depth",
          f"got {depth}; allowed: an integer >= {n_down} = log2(stride {stride}), one stride-2 layer per halving")
    if head_width is not None:
        check_positive("head_width", head_width, integer=True)


class _Head(nn.Module):
    """CenterNet's head: 3x3 conv (bias) + ReLU + 1x1 conv (bias)."""

    hidden: int
    out: int
    bias_init: float = 0.0

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        h = Conv(self.hidden, size=3, name="conv")(x) + self.param("conv_bias", nn.initializers.zeros, (self.hidden,))
        h = nn.relu(h)
        y = Conv(self.out, size=1, name="out")(h)
        return y + self.param("out_bias", nn.initializers.constant(self.bias_init), (self.out,))


class CenterNet(nn.Module):
    """CenterNet-style detector: `depth` conv-BN-ReLU layers of `width` channels at output stride `stride`, then
    the heatmap / size / offset heads (`head_width` channels, default `width`).

    `__call__(images (B, H, W, C), train)` returns a dict of `heatmap_logits` (B, H/S, W/S, num_classes), `size` and
    `offset` (B, H/S, W/S, 2); with `train=True` call `apply(..., mutable=["batch_stats"])`.
    """

    num_classes: int
    depth: int
    width: int = 16
    stride: int = 4
    head_width: int | None = None

    def __post_init__(self) -> None:
        check_detector(self.num_classes, self.depth, self.width, self.stride, self.head_width)
        super().__post_init__()

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> dict[str, jax.Array]:
        check(x.ndim == 4, "images", f"got shape {x.shape}; allowed: (batch, height, width, channels)")
        h, w = x.shape[1], x.shape[2]
        check(h % self.stride == 0 and w % self.stride == 0, "resolution",
              f"got {h}x{w}; allowed: height and width multiples of the output stride {self.stride}")
        for i, s in enumerate(layer_strides(self.depth, self.stride)):
            x = Conv(self.width, size=3, stride=s, name=f"conv{i}")(x)  # (B, H_i, W_i, width)
            x = nn.relu(BatchNorm(name=f"bn{i}")(x, train))
        hidden = self.head_width or self.width
        return {
            "heatmap_logits": _Head(hidden, self.num_classes, HEATMAP_BIAS, name="heatmap")(x),  # (B, h, w, K)
            "size": _Head(hidden, 2, name="size")(x),  # (B, h, w, 2)
            "offset": _Head(hidden, 2, name="offset")(x),  # (B, h, w, 2)
        }


def init_detector(model: CenterNet, key: jax.Array, input_shape: tuple[int, ...]) -> dict:
    """The model's variables (`params`, `batch_stats`) for inputs of `input_shape` (B, H, W, C)."""
    return model.init(key, jnp.zeros(input_shape, jnp.float32), train=False)
