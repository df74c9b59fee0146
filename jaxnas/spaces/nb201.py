"""The NAS-Bench-201 cell search space (Dong & Yang, "NAS-Bench-201: Extending the Scope of
Reproducible Neural Architecture Search", ICLR 2020).

A cell is a DAG over 4 nodes; each of its 6 edges i->j (i < j) carries one of 5 operations, giving
5^6 = 15,625 cells. An architecture is an int32 array of shape (6,), one op id per edge in the order
of the canonical string: 0->1, 0->2, 1->2, 0->3, 1->3, 2->3, i.e.

    |op~0|+|op~0|op~1|+|op~0|op~1|op~2|

where `op~i` in the j-th group is the op on edge i->j. Op ids follow the benchmark's `ops` column:
0 none, 1 skip_connect, 2 nor_conv_1x1, 3 nor_conv_3x3, 4 avg_pool_3x3.

The benchmark index of an architecture is the row order of the NAS-Bench-201 table, not a formula of
the ops; it is looked up through the table (`jaxnas.problems.nb201_table.NB201Table`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import numpy as np

from jaxnas.common.errors import ConfigError
from jaxnas.spaces.base import CategoricalSpace

OPS: tuple[str, ...] = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
EDGES: tuple[tuple[int, int], ...] = ((0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3))  # (source, target)
NUM_NODES = 4

_OP_ID = {name: i for i, name in enumerate(OPS)}


def to_string(arch: jax.Array | np.ndarray | Sequence[int]) -> str:
    """Canonical NAS-Bench-201 string of one architecture (shape (6,))."""
    ops = np.asarray(arch).reshape(-1)
    if ops.shape != (len(EDGES),) or ops.min() < 0 or ops.max() >= len(OPS):
        raise ValueError(f"arch: expected {len(EDGES)} op ids in [0, {len(OPS)}), got {ops.tolist()}")
    groups = []
    for target in range(1, NUM_NODES):
        tokens = [f"{OPS[ops[e]]}~{src}" for e, (src, dst) in enumerate(EDGES) if dst == target]
        groups.append("|" + "|".join(tokens) + "|")
    return "+".join(groups)


def from_string(text: str) -> np.ndarray:
    """Parses a canonical string into an int32 array of shape (6,); malformed strings raise ConfigError."""
    groups = text.strip().split("+")
    if len(groups) != NUM_NODES - 1:
        raise ConfigError("arch_str", f"expected {NUM_NODES - 1} '+'-separated node groups, got {text!r}")
    arch = np.full(len(EDGES), -1, np.int32)
    edge_id = {edge: e for e, edge in enumerate(EDGES)}
    for target, group in enumerate(groups, start=1):
        tokens = [t for t in group.split("|") if t]
        if len(tokens) != target:
            raise ConfigError("arch_str", f"node {target} needs {target} inputs, got {group!r} in {text!r}")
        for token in tokens:
            op, _, src = token.partition("~")
            if op not in _OP_ID or not src.isdigit() or (int(src), target) not in edge_id:
                raise ConfigError("arch_str", f"bad token {token!r} in {text!r}; ops: {', '.join(OPS)}")
            arch[edge_id[(int(src), target)]] = _OP_ID[op]
    if (arch < 0).any():
        raise ConfigError("arch_str", f"every edge must appear once: {text!r}")
    return arch


def network(num_classes: int = 10, channels: int = 16, cells_per_stage: int = 5) -> Any:
    """The NAS-Bench-201 candidate network (`jaxnas.models.nb201.NB201Network`)."""
    from jaxnas.models.nb201 import NB201Network  # the network imports this module: import late

    return NB201Network(channels, cells_per_stage, num_classes)


SPACE = CategoricalSpace(name="nb201", num_positions=len(EDGES), num_choices=len(OPS), printer=to_string,
                         network=network)
