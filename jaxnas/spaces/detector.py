"""The detector search space: a CenterNet-style detector's input resolution and backbone depth (issue 25; the knobs
EfficientDet's compound scaling turns, Tan, Pang & Le, CVPR 2020).

An architecture is an int32 array (2,): position 0 indexes `resolutions` (square input sizes, multiples of the
detector's output stride, ascending), position 1 indexes `depths` (backbone convolution layers, ascending). The
default space: resolutions 32, 36, ..., 96 px (17 sizes, every multiple of the stride 4) and depths 2..8 (7 depths),
119 configurations; its default configuration, the middle of both ranges, is (64 px, depth 5), fixed here before any
search ran.

Mutation (aging evolution, `mutate`): one of the two genes, chosen uniformly, changes:
* depth: +1 or -1 with equal probability, reflected at the ends (depth 2 can only grow, 8 only shrink);
* resolution: a continuous step in pixels drawn from N(0, `resolution_sigma`^2) (default 2 strides = 8 px), rounded to
  a multiple of the stride, at least one stride in the drawn direction, then clipped to the range.
Crossover is not used: with two genes a child of two parents is one of the two "corners" of their rectangle, which
a mutation of either parent reaches as well (Real et al.'s aging evolution has no crossover either).
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from jaxnas.common.errors import check
from jaxnas.spaces.base import CategoricalSpace

RESOLUTIONS: tuple[int, ...] = tuple(range(32, 97, 4))
DEPTHS: tuple[int, ...] = tuple(range(2, 9))
STRIDE = 4


@dataclasses.dataclass(frozen=True)
class DetectorChoices:
    """The searched values: resolutions (px, multiples of `stride`, ascending) and depths (ascending)."""

    resolutions: tuple[int, ...] = RESOLUTIONS
    depths: tuple[int, ...] = DEPTHS
    stride: int = STRIDE
    resolution_sigma: float = 8.0

    def __post_init__(self) -> None:
        res, dep = tuple(int(r) for r in self.resolutions), tuple(int(d) for d in self.depths)
        object.__setattr__(self, "resolutions", res)
        object.__setattr__(self, "depths", dep)
        check(len(res) >= 2 and all(a < b for a, b in zip(res, res[1:])), "resolutions",
              f"got {res}; allowed: at least two sizes, strictly ascending")
        check(all(r > 0 and r % self.stride == 0 for r in res), "resolutions",
              f"got {res}; allowed: positive multiples of the stride {self.stride}")
        check(all(b - a == res[1] - res[0] for a, b in zip(res, res[1:])), "resolutions",
              f"got {res}; allowed: evenly spaced (the mutation steps in pixels)")
        min_depth = int(np.log2(self.stride))
        check(len(dep) >= 2 and all(b == a + 1 for a, b in zip(dep, dep[1:])) and dep[0] >= min_depth, "depths",
              f"got {dep}; allowed: at least two consecutive integers from {min_depth} (= log2 of the stride) up")
        check(self.resolution_sigma > 0, "resolution_sigma", f"got {self.resolution_sigma}; allowed: > 0")

    @property
    def default(self) -> np.ndarray:
        """The middle of both ranges (the lower middle for an even count)."""
        return np.array([(len(self.resolutions) - 1) // 2, (len(self.depths) - 1) // 2], np.int32)

    def values(self, arch: np.ndarray) -> tuple[int, int]:
        """(resolution px, depth) of one architecture."""
        a = np.asarray(arch).reshape(-1)
        return self.resolutions[int(a[0])], self.depths[int(a[1])]

    def arch_of(self, resolution: int, depth: int) -> np.ndarray:
        check(resolution in self.resolutions, "resolution", f"got {resolution}; allowed: {self.resolutions}")
        check(depth in self.depths, "depth", f"got {depth}; allowed: {self.depths}")
        return np.array([self.resolutions.index(resolution), self.depths.index(depth)], np.int32)

    def to_string(self, arch: np.ndarray) -> str:
        r, d = self.values(arch)
        return f"{r}px-d{d}"

    def mutate(self, key: jax.Array, arch: jax.Array) -> jax.Array:
        """One gene changed (see the module docstring); `arch` (..., 2)."""
        arch = jnp.asarray(arch, jnp.int32)
        k_gene, k_sign, k_step = jax.random.split(key, 3)
        gene = jax.random.bernoulli(k_gene, 0.5, arch.shape[:-1])  # True: resolution, False: depth
        n_res, n_dep = len(self.resolutions), len(self.depths)
        sign = jnp.where(jax.random.bernoulli(k_sign, 0.5, arch.shape[:-1]), 1, -1)
        depth = arch[..., 1] + sign
        depth = jnp.where(depth < 0, 1, jnp.where(depth >= n_dep, n_dep - 2, depth))  # reflected
        spacing = self.resolutions[1] - self.resolutions[0]
        step_px = self.resolution_sigma * jax.random.normal(k_step, arch.shape[:-1])
        steps = jnp.round(step_px / spacing).astype(jnp.int32)
        steps = jnp.where(steps == 0, jnp.where(step_px >= 0, 1, -1), steps)  # at least one step
        res = jnp.clip(arch[..., 0] + steps, 0, n_res - 1)
        res = jnp.where(res == arch[..., 0], jnp.where(res == 0, 1, n_res - 2), res)  # at an end: step inwards
        return jnp.stack([jnp.where(gene, res, arch[..., 0]), jnp.where(gene, arch[..., 1], depth)], -1)

    def space(self) -> CategoricalSpace:
        counts = (len(self.resolutions), len(self.depths))
        return CategoricalSpace(name="detector", num_positions=2, num_choices=max(counts), choices=counts,
                                printer=self.to_string, mutation=self.mutate)


SPACE = DetectorChoices().space()
