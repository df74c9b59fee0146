"""The supernets DARTS searches, one registry entry each (adding a space is one file plus one line here): the
shape of alpha, the column of the skip connection (DARTS-'s auxiliary skip is added there), the supernet module
called as (x, op weights of alpha's shape, train, edge bias of alpha's shape without the op axis or None), and the
jittable discretisation alpha (..., *alpha_shape) -> architecture (..., positions) int32 of the space the derived
cells are trained in.

* `nb201`: NAS-Bench-201's cell, one alpha (6 edges, 5 ops) for every cell; argmax per edge
  (`jaxnas.models.darts_nb201`); architectures of `jaxnas.spaces.nb201`.
* `nasnet`: DARTS's own cell, a normal and a reduction alpha (2, 14 edges, 8 ops) with its `steps` = 4 intermediate
  nodes (another number, as DARTS's `Network(steps=...)`: 2, 5, 9, ... edges); the paper's rule (top-2 edges per node
  by their strongest op other than `none`, that op) (`jaxnas.models.darts_nasnet`); architectures of
  `jaxnas.models.darts_nasnet.darts_space(steps)`, a NASNet space trained by `jaxnas.models.nasnet`.

Each registry entry is a function of `steps` (a cell whose size is fixed refuses any other than the default).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable

import flax.linen as nn
import jax

from jaxnas.common.errors import check, check_choice
from jaxnas.models import darts_nasnet, darts_nb201


@dataclasses.dataclass(frozen=True)
class SupernetSpace:
    name: str
    ops: tuple[str, ...]  # alpha's last axis
    alpha_shape: tuple[int, ...]
    skip: int  # the column of `skip_connect`
    build: Callable[[int, int, int, int], nn.Module]  # (channels, cells_per_stage, stages, classes) -> supernet
    derive: Callable[[jax.Array], jax.Array]


def _nb201(steps: int) -> SupernetSpace:
    check(steps == DEFAULT_STEPS, "darts.steps", f"got {steps}; NAS-Bench-201's cell is fixed (6 edges); allowed on "
          f"nb201: {DEFAULT_STEPS} (the default, unused)")
    return SupernetSpace("nb201", darts_nb201.nb201.OPS, (darts_nb201.NUM_EDGES, darts_nb201.NUM_OPS),
                         darts_nb201.SKIP, lambda c, n, _stages, k: darts_nb201.DartsNB201Network(c, n, k),
                         darts_nb201.derive)


def _nasnet(steps: int) -> SupernetSpace:
    return SupernetSpace(
        "nasnet", darts_nasnet.DARTS_OPS, (2, darts_nasnet.num_edges(steps), darts_nasnet.NUM_OPS), darts_nasnet.SKIP,
        lambda c, n, stages, k: darts_nasnet.DartsNASNetNetwork(c, n, k, stages, steps=steps),
        functools.partial(darts_nasnet.derive, steps=steps))


DEFAULT_STEPS = darts_nasnet.STEPS
SPACES: dict[str, Callable[[int], SupernetSpace]] = {"nb201": _nb201, "nasnet": _nasnet}


def supernet_space(name: str, steps: int = DEFAULT_STEPS) -> SupernetSpace:
    """The registered space `name` with `steps` intermediate nodes per cell; refused naming `darts.space` or
    `darts.steps` otherwise. One object (and so one set of jitted programs) per (name, steps)."""
    check_choice("darts.space", name, tuple(SPACES))
    return _cached_space(name, int(steps))


@functools.lru_cache(maxsize=None)
def _cached_space(name: str, steps: int) -> SupernetSpace:
    return SPACES[name](steps)


__all__ = ["SupernetSpace", "SPACES", "DEFAULT_STEPS", "supernet_space"]
