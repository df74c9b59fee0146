"""The FID Inception-v3 network (pool3, 2048-d features) in Flax, with a loader for user-supplied weights.

The network, its citations (Szegedy et al. 2016; Heusel et al. 2017's FID features in pytorch-fid's port) and the
four block types where that port differs from torchvision are described in `gans/inception_net.py`.

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
jit's compilation cache). The network is in `gans.inception_net`, the state_dict layout, validation and
BatchNorm folding in `gans.inception_weights`; this module extracts features, reads weights files and is
the CLI.

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
import sys
import zipfile
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from gans.inception_net import FEATURE_DIM, INPUT_SIZE, MIN_SIZE, InceptionV3
from gans.inception_weights import params_from_state_dict, validate_state_dict
from gans.torch_checkpoint import read_torch_state_dict
from jaxnas.common.errors import ConfigError, check, check_positive

WEIGHTS_URL = (
    "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/pt_inception-2015-12-05-6726825d.pth"
)

_HIGHEST = lax.Precision.HIGHEST


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
              f"got shape {images.shape}; allowed: (N, H, W, C) with C = 1 or 3")
        check(np.issubdtype(images.dtype, np.floating), "images",
              f"got dtype {images.dtype}; allowed: floats in [0, 1] (divide uint8 images by 255)")
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
# Weights files
# --------------------------------------------------------------------------------------------------


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
    """Converts a FIDInceptionV3 checkpoint to a .npz with the built-in reader (`gans/torch_checkpoint.py`; the
    library never imports torch).

    The state_dict is validated before anything is written; returns the number of arrays written.
    """
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
