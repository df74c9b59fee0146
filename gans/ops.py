"""Resampling and normalisation shared by the StyleGAN and CycleGAN networks (pure functions, NHWC)."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def instance_norm(x: jax.Array, eps: float = 1e-8) -> jax.Array:
    """Normalises each channel of each example to mean 0, std 1 over (H, W). x: (B, H, W, C)."""
    x = x - jnp.mean(x, axis=(1, 2), keepdims=True)
    return x * jax.lax.rsqrt(jnp.mean(jnp.square(x), axis=(1, 2), keepdims=True) + eps)


def upsample2x(x: jax.Array) -> jax.Array:
    """Nearest-neighbour x2 upsampling. (B, H, W, C) -> (B, 2H, 2W, C)."""
    return jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2)


def downsample2x(x: jax.Array) -> jax.Array:
    """2x2 average pooling. (B, H, W, C) -> (B, H/2, W/2, C)."""
    b, h, w, c = x.shape
    return x.reshape(b, h // 2, 2, w // 2, 2, c).mean(axis=(2, 4))


def interleave2x(phases: list[list[jax.Array]]) -> jax.Array:
    """An image of twice the size from its four phases: ``phases[a][c]`` (B, H, W, C) holds the output pixels
    (2i + a, 2j + c). -> (B, 2H, 2W, C)."""
    y = jnp.stack([jnp.stack(row, axis=3) for row in phases], axis=2)  # (B, H, 2, W, 2, C)
    b, h, _, w, _, c = y.shape
    return y.reshape(b, 2 * h, 2 * w, c)
