"""FID Inception-v3 weights: pytorch-fid's state_dict names and shapes, validation, BatchNorm folding.

The network (`gans.inception_net.InceptionV3`) is Szegedy et al. 2016 ("Rethinking the Inception
Architecture for Computer Vision", CVPR) in pytorch-fid's port of the TensorFlow FID graph (Heusel et al.
2017, "GANs Trained by a Two Time-Scale Update Rule Converge to a Local Nash Equilibrium"). Its weights
come as pytorch-fid's `FIDInceptionV3` state_dict (keys such as 'Conv2d_1a_3x3.conv.weight',
'Mixed_5b.branch1x1.bn.running_mean'). The classifier head ('fc.weight', 'fc.bias') and the BatchNorm
'num_batches_tracked' counters may be present (checked and ignored) or absent; any other missing, extra or
mis-shaped key raises `ConfigError` naming the key and the expected shape.

BatchNorm is folded into the convolution (eval mode, running statistics): s = gamma / sqrt(running_var +
0.001), kernel' = kernel * s (per output channel), bias' = beta - running_mean * s, computed in float64 and
stored as float32; torch OIHW conv weights become HWIO. Reading files (.pth or .npz) is in `gans.inception`.
"""

from __future__ import annotations

import functools
import zlib
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from gans.inception_net import FEATURE_DIM, MIN_SIZE, InceptionV3
from jaxnas.common.errors import ConfigError, check

BN_EPS = 1e-3
NUM_CLASSES = 1008  # the TF graph's classifier head ('fc.*'), unused for features

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
