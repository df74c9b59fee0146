"""The FID Inception-v3 network (pool3, 2048-d features) in Flax, with a loader for user-supplied weights.

Implements

* Inception-v3: Szegedy et al. 2016, "Rethinking the Inception Architecture for Computer Vision" (CVPR).
* The feature extractor of FID: Heusel et al. 2017, "GANs Trained by a Two Time-Scale Update Rule Converge
  to a Local Nash Equilibrium" -- the 2048-d pool3 activations of the TensorFlow Inception graph of
  2015-12-05, here in the PyTorch port of pytorch-fid (`pytorch_fid.inception.fid_inception_v3`). That
  port differs from torchvision's Inception-v3 in four block types, reproduced here: the average pools of
  Mixed_5b-5d, Mixed_6b-6e and Mixed_7b exclude the zero padding from the mean (TensorFlow semantics,
  `count_include_pad=False`), and Mixed_7c's pooling branch uses a 3x3 *max* pool (stride 1, pad 1).
  Every convolution is followed by BatchNorm (eps 0.001) and ReLU.

The features match pytorch-fid's `InceptionV3([3], resize_input=True, normalize_input=True)` (the
default used by `pytorch_fid.fid_score`): inputs (N, H, W, C) in [0, 1] are resized bilinearly to
299x299 exactly like `torch.nn.functional.interpolate(mode='bilinear', align_corners=False)` (no
antialiasing, also when shrinking), mapped to [-1, 1] by 2x - 1, and run through the network; the
output is the global average of the last block, (N, 2048) float32. `tests/test_inception.py` checks
parity against pytorch-fid itself on deterministic random weights (the fixture is built by
`tests/fixtures/make_inception_fixture.py`). Those numbers are then comparable with published FIDs
computed by pytorch-fid once the real weights are loaded.

Weights (not shipped; they cannot be downloaded from here). Obtain pytorch-fid's port of the TF graph:

    https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/pt_inception-2015-12-05-6726825d.pth

and pass either the file itself or a converted .npz to `load_inception`:

    from gans.inception import load_inception
    net = load_inception("pt_inception-2015-12-05-6726825d.pth")   # or "inception_fid.npz"
    feats = net.features(images)                                    # (N, 2048) float32

`load_inception` reads a PyTorch checkpoint without PyTorch (`gans/torch_checkpoint.py`): a restricted
unpickler (it resolves only OrderedDict, the tensor-rebuild helpers and the storage types; anything else is
refused) reads both the zip format (torch >= 1.6) and the older "legacy" format (a sequence of pickles followed by
raw storages, written by torch < 1.6 -- the pytorch-fid file dates from then). Both formats are
tested against small files written by torch, and full-size random FIDInceptionV3 checkpoints in both
formats were read identically to the state_dict torch saved. The real pytorch-fid file was not
available when this was written, so if reading it ever fails, convert it once where torch is installed:

    python -m gans.inception --convert pt_inception-2015-12-05-6726825d.pth inception_fid.npz

(`torch.load` is used when torch is importable, the built-in reader otherwise). The .npz keys are the
PyTorch state_dict names of pytorch-fid's FIDInceptionV3, e.g. 'Conv2d_1a_3x3.conv.weight',
'Mixed_5b.branch1x1.bn.running_mean'; its values the tensors as numpy arrays. The classifier head
('fc.weight', 'fc.bias') and the BatchNorm 'num_batches_tracked' counters may be present (they are
checked and ignored) or absent; any other missing, extra or mis-shaped key raises `ConfigError` naming
the key and the expected shape.

Implementation (all pure: a parameter pytree passed to `InceptionV3.apply`, no global state besides
jit's compilation cache):

* NHWC layout; torch OIHW conv weights become HWIO at load time.
* BatchNorm is folded into the convolution at load time (eval mode, running statistics):
  s = gamma / sqrt(running_var + 0.001), kernel' = kernel * s (per output channel),
  bias' = beta - running_mean * s. Each conv-BN-ReLU unit is then one convolution with a bias and a ReLU.
  Folding is done in float64 and stored as float32.
* Convolutions, and the resize, run with `lax.Precision.HIGHEST`, i.e. true float32 also on GPUs/TPUs.

Deviations from pytorch-fid (none change the features beyond float32 rounding):

* Folded BatchNorm reorders float32 operations. Measured against pytorch-fid on random weights: max
  abs difference 3.3e-6 (9e-7 of the largest feature) at 75x75 without resize, 4.5e-6 (2.5e-7) with the
  resize to 299 -- the size of pytorch-fid's own float32 error against a float64 run (2.6e-6, 3.1e-6).
* pytorch-fid on a CUDA GPU uses TF32 convolutions by default (torch.backends.cudnn.allow_tf32); this
  module always computes in full float32.
* `features` accepts grayscale images (C == 1) and repeats them to 3 channels (pytorch-fid's image
  loader converts files to RGB, which does the same for grayscale images).
* `features` pads the last partial batch (with zeros, results discarded) so every batch has one shape.
* `features` refuses non-float inputs and values outside [0, 1] (pytorch-fid does not check).
* `features(..., resize=False)` skips the resize (pytorch-fid's resize_input=False; needs H, W >= 75).
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import sys
import zipfile
import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from gans.torch_checkpoint import read_torch_state_dict  # noqa: F401 (part of this module's interface)
from jaxnas.common.errors import ConfigError, check, check_positive

FEATURE_DIM = 2048
INPUT_SIZE = 299  # pytorch-fid resizes every input to 299x299
MIN_SIZE = 75  # smallest input the network accepts (Mixed_7a needs a 3x3 map)
BN_EPS = 1e-3
NUM_CLASSES = 1008  # the TF graph's classifier head ('fc.*'), unused for features
WEIGHTS_URL = (
    "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/pt_inception-2015-12-05-6726825d.pth"
)

_HIGHEST = lax.Precision.HIGHEST


# --------------------------------------------------------------------------------------------------
# The network
# --------------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------------
# Pre-processing
# --------------------------------------------------------------------------------------------------


def bilinear_matrix(in_size: int, out_size: int) -> np.ndarray:
    """(out_size, in_size) float32 matrix of torch's bilinear resize, align_corners=False, no antialias.

    Output pixel d samples the input at s = max((d + 0.5) * in/out - 0.5, 0) (computed in float32 like
    torch's CPU kernel) and mixes floor(s) and floor(s) + 1 (clamped to the last pixel) linearly.
    """
    scale = np.float32(in_size) / np.float32(out_size)
    src = np.maximum(scale * (np.arange(out_size, dtype=np.float32) + np.float32(0.5)) - np.float32(0.5), 0)
    lo = np.minimum(np.floor(src).astype(np.int64), in_size - 1)
    hi = np.minimum(lo + 1, in_size - 1)
    frac = (src - lo.astype(np.float32)).astype(np.float32)
    m = np.zeros((out_size, in_size), np.float32)
    rows = np.arange(out_size)
    np.add.at(m, (rows, lo), np.float32(1) - frac)
    np.add.at(m, (rows, hi), frac)
    return m


def resize_bilinear(x: jax.Array, size: tuple[int, int]) -> jax.Array:
    """Resizes x (B, H, W, C) to (B, size[0], size[1], C) like torch F.interpolate(bilinear, align_corners=False)."""
    mh = jnp.asarray(bilinear_matrix(x.shape[1], size[0]))  # (H', H)
    mw = jnp.asarray(bilinear_matrix(x.shape[2], size[1]))  # (W', W)
    y = jnp.einsum("oh,bhwc->bowc", mh, x, precision=_HIGHEST)  # (B, H', W, C)
    return jnp.einsum("pw,bowc->bopc", mw, y, precision=_HIGHEST)  # (B, H', W', C)


def _pool3_features(params: Any, images: jax.Array, resize: bool) -> jax.Array:
    """images (B, H, W, 3) in [0, 1] -> (B, 2048): [resize to 299] -> 2x - 1 -> InceptionV3."""
    x = images.astype(jnp.float32)
    if resize:
        x = resize_bilinear(x, (INPUT_SIZE, INPUT_SIZE))
    return InceptionV3().apply({"params": params}, 2.0 * x - 1.0)


_pool3_features_jit = jax.jit(_pool3_features, static_argnames=("resize",))


@dataclasses.dataclass(frozen=True, eq=False)
class InceptionFeatures:
    """FID Inception-v3 pool3 feature extractor with loaded (BatchNorm-folded) parameters.

    Attributes:
      params: the `InceptionV3` parameter pytree (kernels HWIO with BatchNorm folded in, biases).
      feature_dim: 2048.
    """

    params: Any
    feature_dim: int = FEATURE_DIM

    def features(self, images: np.ndarray, batch_size: int = 50, *, resize: bool = True) -> np.ndarray:
        """Pool3 features (N, 2048) float32 of images (N, H, W, C) in [0, 1], C == 1 (gray) or 3 (RGB).

        Each batch is resized to 299x299 (torch bilinear, align_corners=False), mapped to [-1, 1] and
        run through the jit-compiled network; the last partial batch is zero-padded to the batch size,
        so one compilation serves every batch of a given (min(batch_size, N), H, W). `resize=False`
        feeds the images at their own size (H, W >= 75), which pytorch-fid does with resize_input=False.
        """
        images = np.asarray(images)
        check(images.ndim == 4 and images.shape[-1] in (1, 3), "images",
              f"got shape {images.shape}; must be (N, H, W, C) with C = 1 or 3")
        check(np.issubdtype(images.dtype, np.floating), "images",
              f"got dtype {images.dtype}; must be floats in [0, 1] (divide uint8 images by 255)")
        check(bool(np.isfinite(images).all()) and images.min(initial=0) >= -1e-6 and images.max(initial=0) <= 1 + 1e-6,
              "images", "values must be finite and lie in [0, 1]")
        check_positive("batch_size", batch_size, integer=True)
        if not resize:
            check(min(images.shape[1:3]) >= MIN_SIZE, "images",
                  f"got {images.shape[1]}x{images.shape[2]}; resize=False needs H, W >= {MIN_SIZE}")
        n = len(images)
        batch = max(1, min(batch_size, n))
        out = []
        for start in range(0, n, batch):
            chunk = images[start : start + batch].astype(np.float32)
            if chunk.shape[-1] == 1:
                chunk = np.repeat(chunk, 3, axis=-1)  # gray -> RGB, as PIL's convert('RGB')
            pad = batch - len(chunk)
            if pad:
                chunk = np.concatenate([chunk, np.zeros((pad, *chunk.shape[1:]), np.float32)])
            feats = _pool3_features_jit(self.params, chunk, resize=resize)  # (batch, 2048)
            out.append(np.asarray(feats)[: batch - pad])
        if not out:
            return np.zeros((0, self.feature_dim), np.float32)
        return np.concatenate(out).astype(np.float32, copy=False)


# --------------------------------------------------------------------------------------------------
# Weights: state_dict names and shapes, BatchNorm folding, checkpoint reading
# --------------------------------------------------------------------------------------------------

_BN_FIELDS = ("weight", "bias", "running_mean", "running_var")


def _conv_unit_shapes() -> dict[str, tuple[int, int, int, int]]:
    """'Mixed_5b.branch1x1' -> HWIO kernel shape, for every ConvUnit (from an abstract init)."""
    dummy = jax.ShapeDtypeStruct((1, MIN_SIZE, MIN_SIZE, 3), jnp.float32)
    variables = jax.eval_shape(InceptionV3().init, jax.random.key(0), dummy)
    flat = jax.tree_util.tree_flatten_with_path(variables["params"])[0]
    shapes = {}
    for path, leaf in flat:
        names = [p.key for p in path]
        if names[-1] == "kernel":
            shapes[".".join(names[:-1])] = tuple(int(d) for d in leaf.shape)
    return shapes


@functools.cache
def _units() -> dict[str, tuple[int, int, int, int]]:
    """Memo of `_conv_unit_shapes` (a constant of the architecture); callers must not mutate it."""
    return _conv_unit_shapes()


def expected_state_dict_shapes(*, optional: bool = False) -> dict[str, tuple[int, ...]]:
    """The state_dict keys (and shapes) of pytorch-fid's FIDInceptionV3 that the features need.

    With `optional`, also the keys a checkpoint may carry that are checked and ignored: each
    BatchNorm's 'num_batches_tracked' (shape ()) and the classifier head 'fc.weight', 'fc.bias'.
    """
    shapes: dict[str, tuple[int, ...]] = {}
    for unit, (kh, kw, cin, cout) in _units().items():
        shapes[f"{unit}.conv.weight"] = (cout, cin, kh, kw)
        for field in _BN_FIELDS:
            shapes[f"{unit}.bn.{field}"] = (cout,)
        if optional:
            shapes[f"{unit}.bn.num_batches_tracked"] = ()
    if optional:
        shapes["fc.weight"] = (NUM_CLASSES, FEATURE_DIM)
        shapes["fc.bias"] = (NUM_CLASSES,)
    return shapes


def validate_state_dict(state: Mapping[str, Any]) -> None:
    """Raises ConfigError naming the first missing, unexpected or mis-shaped key (with its expected shape)."""
    required = expected_state_dict_shapes()
    allowed = expected_state_dict_shapes(optional=True)
    missing = [k for k in required if k not in state]
    if missing:
        more = f" (and {len(missing) - 1} more missing keys)" if len(missing) > 1 else ""
        raise ConfigError(missing[0], f"missing from the weights; expected shape {required[missing[0]]}{more}")
    extra = [k for k in state if k not in allowed]
    if extra:
        more = f" (and {len(extra) - 1} more unexpected keys)" if len(extra) > 1 else ""
        hint = " (keys must be FIDInceptionV3 state_dict names such as 'Conv2d_1a_3x3.conv.weight')"
        raise ConfigError(str(extra[0]), f"unexpected key in the weights{more}{hint}")
    for key, value in state.items():
        got = tuple(np.shape(value))
        if got != allowed[key]:
            raise ConfigError(key, f"got shape {got}; expected {allowed[key]}")
        if key in required:
            check(np.issubdtype(np.asarray(value).dtype, np.floating) and bool(np.isfinite(value).all()),
                  key, "values must be finite floats")
        if key.endswith(".bn.running_var"):
            check(bool(np.all(np.asarray(value) + BN_EPS > 0)), key, f"running variances must be > -{BN_EPS}")


def params_from_state_dict(state: Mapping[str, Any]) -> dict:
    """Validates a FIDInceptionV3 state_dict (numpy arrays) and folds it into `InceptionV3` params.

    kernel (HWIO) = conv.weight.transpose(2, 3, 1, 0) * s and bias = bn.bias - bn.running_mean * s with
    s = bn.weight / sqrt(bn.running_var + 0.001), computed in float64, stored as float32.
    """
    validate_state_dict(state)
    params: dict = {}
    for unit in _units():
        names = ("conv.weight", "bn.weight", "bn.bias", "bn.running_mean", "bn.running_var")
        w, gamma, beta, mean, var = (np.asarray(state[f"{unit}.{k}"], np.float64) for k in names)
        s = gamma / np.sqrt(var + BN_EPS)  # (Cout,)
        node = params
        for name in unit.split("."):
            node = node.setdefault(name, {})
        node["kernel"] = (w.transpose(2, 3, 1, 0) * s).astype(np.float32)  # (kh, kw, Cin, Cout)
        node["bias"] = (beta - mean * s).astype(np.float32)
    return params


def random_state_dict(shapes: Mapping[str, tuple[int, ...]], seed: int = 0) -> dict[str, np.ndarray]:
    """Deterministic stand-in weights for tests (and the parity fixture), one generator per key.

    Each tensor comes from `np.random.default_rng([seed, zlib.crc32(key.encode())])`, so it depends only
    on the seed and its own key and shape. By key suffix: conv.weight ~ N(0, 2 / fan_in) (He, so ReLU
    activations stay O(1)); bn.weight ~ U(0.6, 1.4); bn.bias, bn.running_mean ~ N(0, 0.1^2);
    bn.running_var ~ U(0.6, 1.4); num_batches_tracked = 0 (int64); anything else (fc.*) ~ N(0, 0.01^2).
    All floats are float32.
    """
    out = {}
    for key, shape in shapes.items():
        shape = tuple(int(d) for d in shape)
        rng = np.random.default_rng([seed, zlib.crc32(key.encode())])
        if key.endswith("num_batches_tracked"):
            value = np.zeros(shape, np.int64)
        elif key.endswith("conv.weight"):
            fan_in = int(np.prod(shape[1:]))
            value = rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)
        elif key.endswith(("bn.weight", "bn.running_var")):
            value = rng.uniform(0.6, 1.4, shape)
        elif key.endswith(("bn.bias", "bn.running_mean")):
            value = 0.1 * rng.standard_normal(shape)
        else:
            value = 0.01 * rng.standard_normal(shape)
        out[key] = value if value.dtype == np.int64 else value.astype(np.float32)
    return out


def _read_weights(path: Path) -> dict[str, np.ndarray]:
    """A .npz of state_dict arrays, or a PyTorch checkpoint (told apart by content, not by name)."""
    check(path.is_file(), "path", f"{path} does not exist; download {WEIGHTS_URL} (see gans/inception.py)")
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as zf:
            is_npz = all(n.endswith(".npy") for n in zf.namelist())
        if is_npz:
            with np.load(path, allow_pickle=False) as data:
                return {k: data[k] for k in data.files}
    return read_torch_state_dict(path)


def load_inception(path: str | Path) -> InceptionFeatures:
    """Loads FID Inception weights: a .npz keyed by FIDInceptionV3 state_dict names, or the .pth itself.

    Raises:
      ConfigError naming the key (and expected shape) on missing, unexpected or mis-shaped entries, or
      'path' if the file is absent or unreadable.
    """
    params = params_from_state_dict(_read_weights(Path(path)))
    return InceptionFeatures(params=jax.tree_util.tree_map(jnp.asarray, params))


# --------------------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------------------


def convert(src: str | Path, dst: str | Path) -> int:
    """Converts a FIDInceptionV3 checkpoint to a .npz (torch.load if torch imports, else the built-in reader).

    The state_dict is validated before anything is written; returns the number of arrays written.
    """
    try:
        import torch
    except ImportError:
        torch = None
    if torch is not None:
        state = torch.load(str(src), map_location="cpu", weights_only=True)
        state = {k: v.detach().cpu().numpy() for k, v in state.items()}
    else:
        state = read_torch_state_dict(src)
    validate_state_dict(state)
    with open(dst, "wb") as f:  # a file object: np.savez would otherwise append '.npz' to other names
        np.savez(f, **state)
    return len(state)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gans.inception", description=__doc__.split("\n\n")[0])
    parser.add_argument("--convert", nargs=2, metavar=("IN_PTH", "OUT_NPZ"), required=True,
                        help="convert pytorch-fid's pt_inception-2015-12-05-6726825d.pth to a .npz")
    args = parser.parse_args(argv)
    try:
        count = convert(*args.convert)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"wrote {count} arrays to {args.convert[1]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
