"""Two-objective Pareto tools for accuracy (maximised) against a cost such as FLOPs (minimised).

* `pareto_mask`: the non-dominated points, by the sort-and-sweep of Kung, Luccio & Preparata ("On Finding the
  Maxima of a Set of Vectors", J. ACM 1975), O(n log n) in two dimensions.
* `hypervolume_2d`: the exact hypervolume indicator (Zitzler & Thiele, "Multiobjective Optimization Using
  Evolutionary Algorithms -- A Comparative Case Study", PPSN 1998): the area dominated by a set and bounded by a
  reference point, as the sum of the rectangles of the front sorted by cost.
* `mnas_reward`: MnasNet's scalarised reward (Tan et al., "MnasNet: Platform-Aware Neural Architecture Search for
  Mobile", CVPR 2019, Eq. 2), ACC(m) * (COST(m) / T)^w with w = alpha where COST <= T and w = beta otherwise; the
  paper's soft constraint is alpha = beta = -0.07 (the default here), its hard constraint alpha = 0, beta = -1.
  The paper's cost is measured latency; here any cost (FLOPs) takes its place. `mnas_reward` checks its inputs
  (NumPy); `mnas_reward_jax` is the same formula in jnp for use under jit and vmap, without value checks.

Ties: a point dominates another if it is at least as good in both objectives and strictly better in one. Of
several points with exactly the same (accuracy, cost), only the first (lowest index) is marked non-dominated, so
the mask selects each distinct front point once (NAS-Bench-Macro holds equivalent networks with identical
entries). Bad input raises `ConfigError` naming the argument.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxnas.common.errors import ConfigError, check

MNAS_SOFT_W = -0.07  # MnasNet's soft constraint, alpha = beta = -0.07 (Tan et al. 2019, Sec. 3)
MNAS_HARD = (0.0, -1.0)  # MnasNet's hard constraint (alpha, beta): no reward for compute saved below the target,
# the reward divided by the overshoot above it (Sec. 3)


def _vectors(acc: Any, cost: Any, names: tuple[str, str] = ("acc", "cost")) -> tuple[np.ndarray, np.ndarray]:
    """`acc` and `cost` as finite float64 vectors of one length; otherwise ConfigError naming the argument."""
    out = []
    for name, x in zip(names, (acc, cost)):
        try:
            v = np.asarray(x, dtype=np.float64)
        except (TypeError, ValueError):
            raise ConfigError(name, f"got {type(x).__name__}; allowed: a 1-D array of numbers") from None
        check(v.ndim == 1, name, f"got shape {v.shape}; allowed: a 1-D array")
        check(bool(np.isfinite(v).all()), name, f"has {int((~np.isfinite(v)).sum())} non-finite values; allowed: "
              "finite numbers")
        out.append(v)
    check(out[0].shape == out[1].shape, names[1], f"got {out[1].shape[0]} values for {out[0].shape[0]} in "
          f"{names[0]}; allowed: one per point")
    return out[0], out[1]


def pareto_mask(acc: Any, cost: Any) -> np.ndarray:
    """(n,) bool: True for the points no other point dominates (max `acc`, min `cost`); of exact duplicates only
    the first (lowest index) is True."""
    a, c = _vectors(acc, cost)
    order = np.lexsort((np.arange(len(a)), -a, c))  # cost ascending, then accuracy descending, then index
    a_sorted = a[order]
    # a point survives iff it is more accurate than every point before it in this order (all cheaper, or as cheap
    # and at least as accurate, or an identical point with a lower index)
    before = np.maximum.accumulate(np.concatenate([[-np.inf], a_sorted[:-1]]))
    mask = np.zeros(len(a), bool)
    mask[order] = a_sorted > before
    return mask


def hypervolume_2d(acc: Any, cost: Any, reference: tuple[float, float]) -> float:
    """The area dominated by the points and bounded by `reference` = (acc_ref, cost_ref): the measure of
    {(x, y): acc_ref <= x <= acc_i, cost_i <= y <= cost_ref for some point i}. Points not strictly better than
    the reference in both objectives add nothing; no points give 0."""
    a, c = _vectors(acc, cost)
    try:
        ref = np.asarray(reference, dtype=np.float64)
    except (TypeError, ValueError):
        ref = np.full(3, np.nan)
    check(ref.shape == (2,) and bool(np.isfinite(ref).all()), "reference",
          f"got {reference!r}; allowed: two finite numbers (acc_ref, cost_ref)")
    a_ref, c_ref = float(ref[0]), float(ref[1])
    keep = (a > a_ref) & (c < c_ref)
    a, c = a[keep], c[keep]
    if not len(a):
        return 0.0
    front = pareto_mask(a, c)
    a, c = a[front], c[front]
    order = np.argsort(c)  # along the front, cost ascending means accuracy ascending
    a, c = a[order], c[order]
    widths = np.diff(np.append(c, c_ref))  # cost span over which each point is the best affordable one
    return float(np.sum(widths * (a - a_ref)))


def _mnas(xp: Any, acc, cost, target, alpha, beta):
    ratio = cost / target
    return acc * ratio ** xp.where(cost <= target, alpha, beta)


def mnas_reward(acc: Any, cost: Any, target: float, w: float = MNAS_SOFT_W, beta: float | None = None) -> np.ndarray:
    """MnasNet's reward acc * (cost / target)^w (Eq. 2); `beta` (default `w`) is the exponent where cost > target.

    `acc` and `cost` are numbers or arrays of one shape; `cost` and `target` must be > 0. Returns float64.
    """
    a, c = (np.asarray(x, dtype=np.float64) for x in (acc, cost))
    check(a.shape == c.shape, "cost", f"got shape {c.shape} for acc of shape {a.shape}; allowed: the same shape")
    check(bool(np.isfinite(a).all()), "acc", "has non-finite values; allowed: finite numbers")
    check(bool(np.isfinite(c).all() and (c > 0).all()), "cost", "allowed: finite numbers > 0")
    for name, value in (("target", target), ("w", w), ("beta", w if beta is None else beta)):
        check(isinstance(value, (int, float, np.floating, np.integer)) and not isinstance(value, bool)
              and np.isfinite(value), name, f"got {value!r}; allowed: a finite number")
    check(target > 0, "target", f"got {target!r}; allowed: a number > 0")
    return _mnas(np, a, c, float(target), float(w), float(w if beta is None else beta))


def mnas_reward_jax(acc: jax.Array, cost: jax.Array, target: jax.Array | float,
                    w: jax.Array | float = MNAS_SOFT_W, beta: jax.Array | float | None = None) -> jax.Array:
    """`mnas_reward` in jnp (jit, vmap and grad); no value checks: the caller validated its settings."""
    acc, cost = jnp.asarray(acc, jnp.float32), jnp.asarray(cost, jnp.float32)
    return _mnas(jnp, acc, cost, target, w, w if beta is None else beta)
