"""The NAS-Bench-Macro search space (Su et al., "Prioritized Architecture Sampling with Monte-Carlo Tree
Search", CVPR 2021; data and format: ../shared/data/nasbench_macro/README.md).

A network is a chain of 8 searched layers in three stages of 2, 3 and 3 layers (the first layer of each stage
has stride 2 and doubles the width, 32 -> 64 -> 128 -> 256 channels), each layer one of 3 blocks, giving
3^8 = 6,561 networks. An architecture is an int32 array of shape (8,), first layer first; its string is the
benchmark's key, the 8 digits. Op ids follow the benchmark:
0 identity (a 1x1 conv + BN where the stride or width changes), 1 MobileNetV2 inverted residual with kernel 3
and expansion 3, 2 the same with kernel 5 and expansion 6.

The space is the uniform case of `CategoricalSpace`: every layer has the same 3 choices and every combination
is valid. `SPACE.encode` reads the 8 digits as a base-3 number, so the code of an architecture is also its
position in the table (`jaxnas.problems.macro_table`).
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import numpy as np

from jaxnas.common.errors import ConfigError
from jaxnas.spaces.base import CategoricalSpace

OPS: tuple[str, ...] = ("identity", "mbconv_k3_e3", "mbconv_k5_e6")
STAGES: tuple[int, ...] = (2, 3, 3)  # searched layers per stage; each stage's first layer has stride 2
WIDTHS: tuple[int, ...] = (64, 128, 256)  # output channels of each stage (the stem has 32)

_POSITIONS = sum(STAGES)


def to_string(arch: jax.Array | np.ndarray | Sequence[int]) -> str:
    """The benchmark's key of one architecture (shape (8,)): its op ids as 8 digits, first layer first."""
    ops = np.asarray(arch).reshape(-1)
    if ops.shape != (_POSITIONS,) or ops.min() < 0 or ops.max() >= len(OPS):
        raise ValueError(f"arch: expected {_POSITIONS} op ids in [0, {len(OPS)}), got {ops.tolist()}")
    return "".join(str(int(o)) for o in ops)


def from_string(text: str) -> np.ndarray:
    """Parses a benchmark key (8 digits in 0-2) into an int32 array of shape (8,); bad keys raise ConfigError."""
    key = text.strip()
    if len(key) != _POSITIONS or any(c not in "012" for c in key):
        raise ConfigError("arch_str", f"expected {_POSITIONS} digits in 0-{len(OPS) - 1}, got {text!r}")
    return np.array([int(c) for c in key], np.int32)


def describe(arch: jax.Array | np.ndarray | Sequence[int]) -> str:
    """The architecture stage by stage, for reports: `identity, mbconv_k3_e3 | ... | ...`."""
    ops = [OPS[int(o)] for o in np.asarray(arch).reshape(-1)]
    bounds = np.cumsum((0,) + STAGES)
    return " | ".join(", ".join(ops[a:b]) for a, b in zip(bounds[:-1], bounds[1:]))


SPACE = CategoricalSpace(name="macro", num_positions=_POSITIONS, num_choices=len(OPS), printer=to_string)
