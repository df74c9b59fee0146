"""Classification losses for imbalanced labels: class-weighted cross-entropy and softmax focal loss.

Implements
  * Lin, Goyal, Girshick, He, Dollar, "Focal Loss for Dense Object Detection", ICCV 2017:
    FL(p_y) = -alpha_y (1 - p_y)^gamma log p_y. The paper uses a sigmoid per class; we use the softmax
    form (p_y is the softmax probability of the true class), which the paper notes also works
    (optax only ships the sigmoid form). Default gamma = 2 and no alpha.
  * Class weights from Cui et al. (CVPR 2019, "Class-Balanced Loss Based on Effective Number of Samples")
    and "balanced" inverse-frequency weights: `mtl.class_weights`; `make_loss` configures the losses with them.

Conventions (where we choose, or deviate):
  * Every loss comes as `*_sums(...) -> (total, count)`: the weighted sum of per-example losses and the
    sum of the weights. `weighted_mean(total, count)` divides them. A data-parallel caller psums both
    parts over devices first and divides once, which gives the same number as one big batch.
  * Class-weighted cross-entropy follows PyTorch `nn.CrossEntropyLoss(weight=w, reduction='mean')`:
    sum_i m_i w_{y_i} nll_i / sum_i m_i w_{y_i}. The focal loss instead divides by sum_i m_i (the number
    of counted examples, the analogue of the paper's "number of anchors assigned to a ground-truth box");
    alpha is NOT part of its denominator. With gamma = 0 and alpha = None both equal plain cross-entropy.
  * `mask` (B,) is a per-example float weight: 0 means "this example has no label for this task".
    Labels outside [0, C) (e.g. the conventional -1 for "no label") are also given weight 0, and are
    gathered at a safe index so they never produce NaN or an out-of-range read. This cannot raise
    under `jax.jit`, so a label >= C is silently ignored too: validate labels on the host if in doubt.
  * A batch with no counted example gives total = count = 0 and a mean of 0 (not NaN).
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Sequence
from typing import Protocol

import jax
import jax.numpy as jnp
import numpy as np

from jaxnas.common import ConfigError, Registry, check, check_choice
from mtl.class_weights import class_balanced_weights, inverse_frequency_weights

__all__ = [
    "LOSSES",
    "LossFn",
    "cross_entropy",
    "cross_entropy_sums",
    "focal_loss",
    "focal_loss_sums",
    "make_loss",
    "weighted_mean",
]

ArrayLike = jax.Array | np.ndarray
FOCAL_ALPHA_SCHEMES = ("class_balanced", "inverse")


class LossFn(Protocol):
    """A configured loss: `(logits (B, C), labels (B,), mask (B,) | None) -> (total, count)` scalars."""

    def __call__(
        self, logits: jax.Array, labels: jax.Array, mask: jax.Array | None = None
    ) -> tuple[jax.Array, jax.Array]: ...


# ----------------------------------------------------------------------------------------------------
# Reductions and shared per-example pieces
# ----------------------------------------------------------------------------------------------------


def weighted_mean(total: jax.Array, count: jax.Array) -> jax.Array:
    """Returns `total / count`, and 0 where `count` is 0 (a batch with no counted example).

    Args:
      total: sum of weighted per-example losses (any shape, usually a scalar).
      count: sum of the weights, same shape.

    Returns:
      The weighted mean; exactly 0 (with zero gradient) where `count == 0`.
    """
    tiny = jnp.finfo(jnp.result_type(total, jnp.float32)).tiny
    return total / jnp.maximum(count, tiny)


def _prepare(
    logits: jax.Array, labels: jax.Array, mask: jax.Array | None, class_weights: ArrayLike | None
) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array | None]:
    """Validates shapes (statically) and returns (log_probs, safe_labels, example_weights, class_weights).

    log_probs is (B, C) in at least float32; safe_labels (B,) is in [0, C); example_weights (B,) is the
    mask times "label in range".
    """
    logits = jnp.asarray(logits)
    labels = jnp.asarray(labels)
    check(logits.ndim == 2, "logits", f"must have shape (B, C); got shape {tuple(logits.shape)}")
    batch, num_classes = logits.shape
    check(
        labels.shape == (batch,),
        "labels",
        f"must have shape (B,) = ({batch},) to match logits {tuple(logits.shape)}; got {tuple(labels.shape)}",
    )
    check(jnp.issubdtype(labels.dtype, jnp.integer), "labels", f"must be integers; got dtype {labels.dtype}")
    dtype = jnp.promote_types(logits.dtype, jnp.float32)
    log_probs = jax.nn.log_softmax(logits.astype(dtype), axis=-1)  # (B, C)

    valid = (labels >= 0) & (labels < num_classes)  # (B,)
    safe_labels = jnp.where(valid, labels, 0)  # (B,)
    weights = valid.astype(dtype)  # (B,)
    if mask is not None:
        mask = jnp.asarray(mask)
        check(mask.shape == (batch,), "mask", f"must have shape (B,) = ({batch},); got {tuple(mask.shape)}")
        weights = weights * mask.astype(dtype)
    if class_weights is not None:
        class_weights = jnp.asarray(class_weights, dtype)
        check(
            class_weights.shape == (num_classes,),
            "class_weights",
            f"must have shape (C,) = ({num_classes},) to match logits; got {tuple(class_weights.shape)}",
        )
    return log_probs, safe_labels, weights, class_weights


def _true_class_log_prob(log_probs: jax.Array, safe_labels: jax.Array) -> jax.Array:
    """log p_y per example: (B, C), (B,) -> (B,)."""
    return jnp.take_along_axis(log_probs, safe_labels[:, None], axis=-1)[:, 0]  # (B,)


# ----------------------------------------------------------------------------------------------------
# Cross-entropy (optionally class-weighted)
# ----------------------------------------------------------------------------------------------------


def cross_entropy_sums(
    logits: jax.Array,
    labels: jax.Array,
    *,
    class_weights: ArrayLike | None = None,
    mask: jax.Array | None = None,
) -> tuple[jax.Array, jax.Array]:
    """Cross-entropy as (total, count), PyTorch's weighted-mean convention.

    total = sum_i m_i w_{y_i} (-log p_{i, y_i}) and count = sum_i m_i w_{y_i}, with w = 1 when
    `class_weights` is None. `total / count` is `nn.CrossEntropyLoss(weight=w, reduction='mean')`.

    Args:
      logits: (B, C) unnormalised scores.
      labels: (B,) integer class ids; ids outside [0, C) (e.g. -1) do not count.
      class_weights: optional (C,) per-class weights.
      mask: optional (B,) per-example weights; 0 = the example does not count.

    Returns:
      (total, count), two float scalars.
    """
    log_probs, safe_labels, weights, class_weights = _prepare(logits, labels, mask, class_weights)
    nll = -_true_class_log_prob(log_probs, safe_labels)  # (B,)
    if class_weights is not None:
        weights = weights * class_weights[safe_labels]  # (B,)
    return jnp.sum(weights * nll), jnp.sum(weights)


def cross_entropy(
    logits: jax.Array,
    labels: jax.Array,
    *,
    class_weights: ArrayLike | None = None,
    mask: jax.Array | None = None,
) -> jax.Array:
    """Mean (class-weighted) cross-entropy over counted examples; see `cross_entropy_sums`.

    With `class_weights` the denominator is the sum of the weights of the counted examples' true
    classes (PyTorch `reduction='mean'`), so the result is a weighted average of per-example losses.

    Returns:
      A float scalar; 0 when no example counts.
    """
    return weighted_mean(*cross_entropy_sums(logits, labels, class_weights=class_weights, mask=mask))


# ----------------------------------------------------------------------------------------------------
# Softmax focal loss (Lin et al. 2017)
# ----------------------------------------------------------------------------------------------------


def _modulating_factor(log_p: jax.Array, gamma: float | jax.Array) -> jax.Array:
    """(1 - p)^gamma from log p, finite in value and gradient for every gamma >= 0.

    1 - p = -expm1(log p) keeps precision as p -> 1. For gamma < 1 the derivative gamma (1-p)^(gamma-1)
    is infinite at 1 - p = 0 (and 0 * inf = NaN in the chain rule), so 1 - p is clamped below at the
    smallest normal float. The clamp changes the loss by at most tiny^(1+gamma) and only where the true
    gradient is itself ~0.
    """
    one_minus_p = -jnp.expm1(log_p)  # (B,)
    tiny = jnp.finfo(one_minus_p.dtype).tiny
    return jnp.power(jnp.maximum(one_minus_p, tiny), gamma)  # (B,)


def _check_gamma(gamma: float | jax.Array) -> None:
    """A Python/numpy number must be >= 0; a (possibly traced) scalar array is accepted unchecked."""
    if isinstance(gamma, (numbers.Real, np.number)) and not isinstance(gamma, (bool, np.bool_)):
        check(bool(gamma >= 0), "gamma", f"got {gamma!r}; allowed: a number >= 0")
    else:
        check(
            isinstance(gamma, jax.Array) and jnp.ndim(gamma) == 0,
            "gamma",
            f"got {gamma!r}; allowed: a number >= 0 (or a scalar array)",
        )


def focal_loss_sums(
    logits: jax.Array,
    labels: jax.Array,
    *,
    gamma: float | jax.Array = 2.0,
    alpha: ArrayLike | None = None,
    mask: jax.Array | None = None,
) -> tuple[jax.Array, jax.Array]:
    """Softmax focal loss as (total, count).

    total = sum_i m_i alpha_{y_i} (1 - p_{i,y_i})^gamma (-log p_{i,y_i}) and count = sum_i m_i: the mean is
    over counted examples; alpha is not in the denominator (unlike weighted cross-entropy).

    Args:
      logits: (B, C) unnormalised scores.
      labels: (B,) integer class ids; ids outside [0, C) (e.g. -1) do not count.
      gamma: focusing parameter >= 0; 0 gives (alpha-weighted) cross-entropy. May be a traced scalar.
      alpha: optional (C,) per-class balancing weights; None means alpha = 1.
      mask: optional (B,) per-example weights; 0 = the example does not count.

    Returns:
      (total, count), two float scalars.
    """
    _check_gamma(gamma)
    log_probs, safe_labels, weights, alpha = _prepare(logits, labels, mask, alpha)
    log_p = _true_class_log_prob(log_probs, safe_labels)  # (B,)
    per_example = _modulating_factor(log_p, gamma) * -log_p  # (B,)
    if alpha is not None:
        per_example = alpha[safe_labels] * per_example  # (B,)
    return jnp.sum(weights * per_example), jnp.sum(weights)


def focal_loss(
    logits: jax.Array,
    labels: jax.Array,
    *,
    gamma: float | jax.Array = 2.0,
    alpha: ArrayLike | None = None,
    mask: jax.Array | None = None,
) -> jax.Array:
    """Mean softmax focal loss over counted examples; see `focal_loss_sums`.

    Returns:
      A float scalar; 0 when no example counts.
    """
    return weighted_mean(*focal_loss_sums(logits, labels, gamma=gamma, alpha=alpha, mask=mask))


# ----------------------------------------------------------------------------------------------------
# Registry of configured losses
# ----------------------------------------------------------------------------------------------------

LossFactory = Callable[..., LossFn]
LOSSES: Registry[LossFactory] = Registry("loss")


def _weighted_ce(class_weights: np.ndarray | None) -> LossFn:
    weights = None if class_weights is None else jnp.asarray(class_weights, jnp.float32)

    def loss(
        logits: jax.Array, labels: jax.Array, mask: jax.Array | None = None
    ) -> tuple[jax.Array, jax.Array]:
        return cross_entropy_sums(logits, labels, class_weights=weights, mask=mask)

    return loss


def _require_counts(name: str, counts: ArrayLike | None) -> ArrayLike:
    check(counts is not None, "counts", f"per-class counts are required for loss {name!r}")
    return counts


@LOSSES.register("ce")
def _make_ce(counts: ArrayLike | None, *, gamma: float, beta: float, focal_alpha: object) -> LossFn:
    del counts, gamma, beta, focal_alpha
    return _weighted_ce(None)


@LOSSES.register("weighted")
def _make_weighted(counts: ArrayLike | None, *, gamma: float, beta: float, focal_alpha: object) -> LossFn:
    del gamma, beta, focal_alpha
    return _weighted_ce(inverse_frequency_weights(_require_counts("weighted", counts)))


@LOSSES.register("class_balanced")
def _make_class_balanced(
    counts: ArrayLike | None, *, gamma: float, beta: float, focal_alpha: object
) -> LossFn:
    del gamma, focal_alpha
    return _weighted_ce(class_balanced_weights(_require_counts("class_balanced", counts), beta))


@LOSSES.register("focal")
def _make_focal(counts: ArrayLike | None, *, gamma: float, beta: float, focal_alpha: object) -> LossFn:
    _check_gamma(gamma)
    if focal_alpha is None:
        alpha = None
    elif isinstance(focal_alpha, str):
        check_choice("focal_alpha", focal_alpha, FOCAL_ALPHA_SCHEMES)
        counts = _require_counts(f"focal with focal_alpha={focal_alpha!r}", counts)
        if focal_alpha == "class_balanced":
            alpha = class_balanced_weights(counts, beta)
        else:
            alpha = inverse_frequency_weights(counts)
    else:
        alpha = np.asarray(focal_alpha, dtype=np.float64)
        check(
            alpha.ndim == 1 and bool(np.all(np.isfinite(alpha))) and bool(np.all(alpha >= 0)),
            "focal_alpha",
            f"must be None, one of {', '.join(FOCAL_ALPHA_SCHEMES)}, or a (C,) vector of weights >= 0; "
            f"got {focal_alpha!r}",
        )
    alpha_j = None if alpha is None else jnp.asarray(alpha, jnp.float32)

    def loss(
        logits: jax.Array, labels: jax.Array, mask: jax.Array | None = None
    ) -> tuple[jax.Array, jax.Array]:
        return focal_loss_sums(logits, labels, gamma=gamma, alpha=alpha_j, mask=mask)

    return loss


def make_loss(
    name: str,
    counts: ArrayLike | Sequence[float] | None = None,
    *,
    gamma: float = 2.0,
    beta: float = 0.9999,
    focal_alpha: str | ArrayLike | Sequence[float] | None = None,
) -> LossFn:
    """Builds a configured loss `(logits, labels, mask=None) -> (total, count)` by name.

    Names: `ce` (plain cross-entropy), `weighted` (CE with inverse-frequency weights), `class_balanced`
    (CE with Cui et al. weights, `beta`), `focal` (softmax focal loss, `gamma`, optional `focal_alpha`:
    None, 'class_balanced', 'inverse', or a (C,) vector). Reduce with `weighted_mean(total, count)`
    (after a psum of both parts in a data-parallel step).

    Args:
      name: one of `LOSSES.names()`.
      counts: (C,) training examples per class; required by `weighted`, `class_balanced` and by `focal`
        with a named `focal_alpha`.
      gamma: focal focusing parameter >= 0 (paper's best: 2).
      beta: class-balanced hyperparameter in [0, 1).
      focal_alpha: focal per-class alpha (see above); None (the default) means no alpha.

    Returns:
      The loss function; jit-able, closes over constant class weights.

    Raises:
      ConfigError: unknown `name` (field "loss") or an invalid setting (the field named in the message).
    """
    if not isinstance(name, str) or name not in LOSSES:
        raise ConfigError("loss", f"got {name!r}; allowed: {', '.join(LOSSES)}")
    return LOSSES.get(name)(counts, gamma=gamma, beta=beta, focal_alpha=focal_alpha)
