"""StyleGAN settings: `StyleGANConfig` (sizes, channel counts, structure) and its validation.

Karras, Laine & Aila, "A Style-Based Generator Architecture for Generative Adversarial Networks", CVPR
2019, following the official TensorFlow code (``training/networks_stylegan.py``).

Channel counts use the official ``nf(stage) = min(int(fmap_base / 2**(stage * fmap_decay)), fmap_max)``
with ``fmap_decay = 1``; the block at resolution ``2**r`` has ``nf(r - 1)`` channels. With the official
``fmap_base=8192, fmap_max=512`` that is 512 everywhere up to 32x32 -- too big for a CPU. The digits
experiment uses ``fmap_base=256, fmap_max=128`` (128 / 64 / 32 channels at 4 / 8 / 16 px: the official halving
per resolution, scaled down); tests and benchmarks use that, ``fmap_base=1024, fmap_max=128``, or smaller.

``structure``: ``"progressive"`` (official progressive growing, 'linear' lod fading), ``"fixed"`` (final
resolution only) or ``"skip"`` (StyleGAN2's skip generator); ``discriminator``: ``"resnet"`` (StyleGAN2's
residual D) or ``"plain"`` (StyleGAN1's). See `gans.stylegan` for these deviations from the paper.
"""

from __future__ import annotations

import dataclasses
import math

from jaxnas.common.errors import check, check_choice, check_positive

DISCRIMINATORS = ("resnet", "plain")
STRUCTURES = ("progressive", "fixed", "skip")


@dataclasses.dataclass(frozen=True)
class StyleGANConfig:
    """StyleGAN settings (official defaults except resolution/discriminator; see module docstring)."""

    resolution: int = 32  # power of two >= 8
    channels: int = 1  # image channels
    z_dim: int = 512
    w_dim: int = 512
    mapping_layers: int = 8
    mapping_lr_mul: float = 0.01
    fmap_base: int = 8192  # nf(stage) = min(int(fmap_base / 2**stage), fmap_max)
    fmap_max: int = 512
    use_mapping: bool = True  # False: w = pixel_norm(z) (requires z_dim == w_dim)
    mbstd_group: int = 4
    discriminator: str = "resnet"  # "resnet" | "plain"
    structure: str = "progressive"  # "progressive" (official lod fading) | "fixed" | "skip" (StyleGAN2 G)

    def validate(self) -> None:
        """Raises `ConfigError` naming the first invalid field."""
        check_positive("resolution", self.resolution, integer=True)
        r = self.resolution
        check(r >= 8 and (r & (r - 1)) == 0, "resolution", f"got {r!r}; allowed: a power of two >= 8")
        for name in ("channels", "z_dim", "w_dim", "mapping_layers", "fmap_base", "fmap_max", "mbstd_group"):
            check_positive(name, getattr(self, name), integer=True)
        check_positive("mapping_lr_mul", self.mapping_lr_mul)
        check_choice("discriminator", self.discriminator, DISCRIMINATORS)
        check(isinstance(self.use_mapping, bool), "use_mapping", f"got {self.use_mapping!r}; allowed: a bool")
        check_choice("structure", self.structure, STRUCTURES)
        if not self.use_mapping:
            check(self.z_dim == self.w_dim, "use_mapping",
                  f"use_mapping=False needs z_dim == w_dim (got z_dim={self.z_dim}, w_dim={self.w_dim})")
        check(self.nf(self.log2_resolution - 1) >= 1, "fmap_base",
              f"got {self.fmap_base}; nf() is 0 at resolution {r} (need fmap_base >= {r // 2})")

    @property
    def log2_resolution(self) -> int:
        """log2 of the output resolution."""
        return int(round(math.log2(self.resolution)))

    @property
    def progressive(self) -> bool:
        """Whether the networks take a level of detail (progressive growing)."""
        return self.structure == "progressive"

    @property
    def max_lod(self) -> int:
        """The coarsest level of detail: lod ``log2(R) - 2`` renders 4x4 images (lod 0: R x R)."""
        return self.log2_resolution - 2

    @property
    def num_ws(self) -> int:
        """Number of style inputs: two per resolution, 4x4 included (= 2 * log2(R / 4) + 2)."""
        return 2 * (self.log2_resolution - 2) + 2

    def nf(self, stage: int) -> int:
        """Official channel count ``min(int(fmap_base / 2**stage), fmap_max)`` (fmap_decay = 1)."""
        return min(int(self.fmap_base / 2.0**stage), self.fmap_max)
