"""CycleGAN's image history pool (Shrivastava et al. 2017; the official code's util/image_pool.py), pure and jit-able:
the discriminator sees a mix of the newest fakes and older ones."""

from __future__ import annotations

import flax.struct
import jax
import jax.numpy as jnp

from jaxnas.common.errors import ConfigError, check, check_nonnegative_int


@flax.struct.dataclass
class PoolState:
    """``images``: (size, H, W, C) stored fakes (rows ``>= count`` are unused zeros); ``count``: int32 ()."""

    images: jax.Array
    count: jax.Array

    @property
    def size(self) -> int:
        return self.images.shape[0]


def pool_init(size: int, image_shape: tuple[int, int, int], dtype=jnp.float32) -> PoolState:
    """An empty pool of ``size`` images of shape ``image_shape`` (H, W, C). size 0 disables the pool."""
    check_nonnegative_int("pool_size", size)
    check(len(tuple(image_shape)) == 3, "image_shape", f"got {image_shape!r}; allowed: (H, W, C)")
    return PoolState(images=jnp.zeros((size, *image_shape), dtype), count=jnp.zeros((), jnp.int32))


def pool_query(state: PoolState, images: jax.Array, key: jax.Array) -> tuple[PoolState, jax.Array]:
    """Official ``ImagePool.query``: the images to show the discriminator, and the updated pool.

    Per image, in batch order (``lax.scan``): while the pool holds fewer than ``size`` images, store it at
    index ``count`` and return it; once full, with probability 0.5 return a uniformly chosen stored image and
    store the new one in its place, otherwise return the new image. ``size == 0``: images returned unchanged.
    Inputs go through ``stop_gradient`` (official uses ``image.data``).

    Args:
        state: from `pool_init` or a previous query.
        images: (B, H, W, C) with (H, W, C) the pool's image shape.
        key: PRNG key; the result is deterministic given it.

    Returns:
        (new_state, out_images) with out_images of the shape and dtype of ``images``.
    """
    size = state.size
    if size == 0:
        return state, images
    if images.ndim != 4 or images.shape[1:] != state.images.shape[1:]:
        raise ConfigError("images", f"expected (B, {', '.join(map(str, state.images.shape[1:]))}), "
                                    f"got {images.shape}")
    images = jax.lax.stop_gradient(images)

    def step(carry, xs):
        pool, count = carry
        img, k = xs  # (H, W, C), key
        k_coin, k_idx = jax.random.split(k)
        not_full = count < size
        swap = jax.random.uniform(k_coin) < 0.5  # official: random.uniform(0, 1) > 0.5
        idx = jax.random.randint(k_idx, (), 0, size)  # official: random.randint(0, size - 1), inclusive
        stored = pool[idx]
        out = jnp.where(not_full | ~swap, img, stored.astype(img.dtype))
        write_idx = jnp.where(not_full, count, idx)
        write = not_full | swap
        new_row = jnp.where(write, img.astype(pool.dtype), pool[write_idx])
        pool = jax.lax.dynamic_update_index_in_dim(pool, new_row, write_idx, 0)
        return (pool, count + not_full.astype(jnp.int32)), out

    keys = jax.random.split(key, images.shape[0])
    (pool, count), out = jax.lax.scan(step, (state.images, state.count), (images, keys))
    return PoolState(images=pool, count=count), out
