"""Per-class weight schemes for imbalanced labels, computed on the host (numpy) from training counts.

Implements
  * Cui, Jia, Lin, Song, Belongie, "Class-Balanced Loss Based on Effective Number of Samples", CVPR 2019:
    effective number E_n = (1 - beta^n) / (1 - beta), class weight w_c proportional to 1 / E_{n_c},
    normalised so that sum_c w_c = C.
  * "Balanced" inverse-frequency weights w_c = N / (C n_c), as `sklearn.utils.class_weight` computes them.

Both schemes give weight 0 to classes whose count is 0 (they never occur as training labels, so the weight
only matters for evaluation-time losses, where it makes them not count). The losses that use these weights
(class-weighted cross-entropy, focal alpha) live in `mtl.losses`.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import numpy as np

from jaxnas.common import ConfigError, check

__all__ = ["class_balanced_weights", "inverse_frequency_weights"]

ArrayLike = jax.Array | np.ndarray


def _check_counts(counts: ArrayLike | Sequence[float]) -> np.ndarray:
    """Returns counts as a float64 (C,) array, or raises ConfigError('counts', ...)."""
    try:
        arr = np.asarray(counts, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ConfigError("counts", f"must be a 1-D array of per-class counts; got {counts!r}") from err
    check(arr.ndim == 1 and arr.size >= 1, "counts", f"must be a non-empty 1-D array; got shape {arr.shape}")
    check(
        bool(np.all(np.isfinite(arr)) and np.all(arr >= 0)),
        "counts",
        f"must be finite and >= 0; got {arr.tolist()}",
    )
    check(bool(np.any(arr > 0)), "counts", f"must have at least one class with count > 0; got {arr.tolist()}")
    return arr


def inverse_frequency_weights(counts: ArrayLike | Sequence[float]) -> np.ndarray:
    """'Balanced' weights w_c = N / (C n_c), as `sklearn.utils.class_weight.compute_class_weight('balanced')`.

    Args:
      counts: (C,) number of training examples per class; N = sum(counts), C = len(counts).

    Returns:
      (C,) float64 weights; a class with n_c = 0 gets weight 0 (C still counts it).
    """
    n = _check_counts(counts)  # (C,)
    safe = np.where(n > 0, n, 1.0)
    return np.where(n > 0, n.sum() / (n.size * safe), 0.0)


def class_balanced_weights(counts: ArrayLike | Sequence[float], beta: float = 0.9999) -> np.ndarray:
    """Cui et al. (CVPR 2019) class-balanced weights from the effective number of samples.

    E_n = (1 - beta^n) / (1 - beta); w_c = (1 / E_{n_c}) * C / sum_k (1 / E_{n_k}), so sum_c w_c = C.
    beta = 0 gives equal weights (E_n = 1); beta -> 1 gives E_n -> n, i.e. inverse-frequency weights.

    Args:
      counts: (C,) number of training examples per class.
      beta: hyperparameter in [0, 1); the paper uses 0.9, 0.99, 0.999, 0.9999.

    Returns:
      (C,) float64 weights summing to C; a class with n_c = 0 gets weight 0 (excluded from the raw sum,
      included in the target sum C).
    """
    n = _check_counts(counts)  # (C,)
    check(
        isinstance(beta, (int, float)) and not isinstance(beta, bool) and 0.0 <= beta < 1.0,
        "beta",
        f"got {beta!r}; allowed: a number in [0, 1)",
    )
    present = n > 0
    if beta == 0.0:
        effective = present.astype(np.float64)  # E_n = 1 for n >= 1
    else:
        # 1 - beta^n = -expm1(n log beta): accurate for beta near 1 and small n.
        effective = -np.expm1(n * np.log(beta)) / (1.0 - beta)  # (C,)
    inverse = np.where(present, 1.0 / np.where(present, effective, 1.0), 0.0)  # (C,)
    return inverse * (n.size / inverse.sum())
