"""StyleGAN's style-space functions around the generator: broadcasting w, style mixing, truncation, w average.

Karras, Laine & Aila, "A Style-Based Generator Architecture for Generative Adversarial Networks", CVPR
2019, following the official TensorFlow code (``training/networks_stylegan.py``). Style mixing
regularisation (official probability 0.9) and the truncation trick in W (official psi 0.7, cutoff 8).

Deviation: style mixing draws the crossover per example (official: one crossover per minibatch), like the
official code among the style inputs the current level of detail renders (`mixing_crossover`).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxnas.common.errors import ConfigError


# ----------------------------------------------------------------------------------------------------
# Style-space functions around the generator.


def broadcast_ws(w: jax.Array, num_ws: int) -> jax.Array:
    """Repeats one w per example for every style input. (B, W) -> (B, num_ws, W)."""
    return jnp.broadcast_to(w[:, None, :], (w.shape[0], num_ws, w.shape[1]))


def mix_styles(w1: jax.Array, w2: jax.Array, crossover: jax.Array, num_ws: int | None = None) -> jax.Array:
    """Layers ``< crossover`` take w1, layers ``>= crossover`` take w2 (crossover == num_ws: no mixing).

    Args:
        w1, w2: (B, num_ws, W), or (B, W) together with ``num_ws``.
        crossover: (B,) int.
        num_ws: needed only for 2-D inputs.

    Returns:
        (B, num_ws, W).
    """
    if w1.ndim == 2:
        if num_ws is None:
            raise ConfigError("num_ws", "required when w1/w2 are (B, w_dim)")
        w1, w2 = broadcast_ws(w1, num_ws), broadcast_ws(w2, num_ws)
    layer = jnp.arange(w1.shape[1])  # (N,)
    use_w1 = layer[None, :] < jnp.asarray(crossover)[:, None]  # (B, N)
    return jnp.where(use_w1[..., None], w1, w2)


def mixing_crossover(key_mix: jax.Array, key_cut: jax.Array, batch: int, num_ws: int, prob: float = 0.9,
                     lod: float | jax.Array = 0.0) -> jax.Array:
    """Per example, the style-mixing crossover layer (B,) int: with probability ``prob`` drawn from
    U{1..active-1}, else ``num_ws`` (no mixing).

    ``active`` is the number of style inputs the image at level of detail ``lod`` uses, as in the official
    ``cur_layers = num_layers - int(lod) * 2``: while training at 4x4 every mixed example switches between
    the two 4x4 inputs, instead of mostly at layers the image does not show yet.
    """
    active = num_ws - 2 * jnp.floor(jnp.asarray(lod)).astype(jnp.int32)
    mixed = jax.random.uniform(key_mix, (batch,)) < prob
    cut = jax.random.randint(key_cut, (batch,), 1, jnp.maximum(active, 2))  # official randint(1, cur_layers)
    return jnp.where(mixed, cut, num_ws)


def style_mixing_ws(key: jax.Array, w1: jax.Array, w2: jax.Array, num_ws: int, prob: float = 0.9,
                    lod: float | jax.Array = 0.0) -> jax.Array:
    """Per example, with probability ``prob`` switches from w1 to w2 at a crossover (`mixing_crossover`).

    Args:
        key: PRNG key.
        w1, w2: (B, W).
        num_ws: number of style inputs.
        prob: mixing probability (official 0.9).
        lod: level of detail (progressive growing): the crossover stays among the layers it renders.

    Returns:
        (B, num_ws, W); unmixed examples use w1 everywhere.
    """
    k_mix, k_cut = jax.random.split(key)
    return mix_styles(w1, w2, mixing_crossover(k_mix, k_cut, w1.shape[0], num_ws, prob, lod), num_ws)


def truncate(ws: jax.Array, w_avg: jax.Array, psi: float | jax.Array, cutoff: int | None = None) -> jax.Array:
    """Truncation trick: ``w_avg + psi * (ws - w_avg)`` on layers ``< cutoff`` (None: all layers).

    Official defaults: psi 0.7, cutoff 8. ws: (B, N, W); w_avg: (W,).
    """
    n = ws.shape[1]
    cutoff = n if cutoff is None else cutoff
    keep = (jnp.arange(n) >= cutoff)[None, :, None]  # (1, N, 1): layers left untouched (exactly)
    return jnp.where(keep, ws, w_avg + psi * (ws - w_avg))


def update_w_avg(w_avg: jax.Array, w_batch_mean: jax.Array, decay: float = 0.995) -> jax.Array:
    """Moving average of w (official lerp): ``decay * w_avg + (1 - decay) * w_batch_mean``."""
    return decay * w_avg + (1.0 - decay) * w_batch_mean

