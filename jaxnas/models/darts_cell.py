"""DARTS's discretisation of its own cell (Liu, Simonyan & Yang, "DARTS: Differentiable Architecture Search",
ICLR 2019, Sec. 2.4; `quark0/darts` `model_search.py` `genotype()`): a cell of two input nodes and `steps`
intermediate nodes, node i (0-based) with one mixed edge from each of the 2 + i earlier nodes, so 2 + 3 + ... edges
(14 for the paper's 4 nodes), alpha (edges, ops). Each node keeps its top-2 incoming edges, ranked by their
strongest op other than `none`, and each kept edge gets that op: `none` is never chosen.

Ties rank the earlier input first (Python's stable sort in the official code). The rule reads softmax(alpha) as the
official code does (the ranking inside an edge is the same for alpha; across edges it is not).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from jaxnas.common.errors import check

# The DARTS paper's operations (quark0/darts genotypes.PRIMITIVES).
DARTS_OPS: tuple[str, ...] = ("none", "max_pool_3x3", "avg_pool_3x3", "skip_connect", "sep_conv_3x3", "sep_conv_5x5",
                              "dil_conv_3x3", "dil_conv_5x5")


def num_edges(steps: int) -> int:
    """Mixed edges of a cell with `steps` intermediate nodes: 2 + 3 + ... + (steps + 1)."""
    return sum(2 + i for i in range(steps))


def derive_cell(alpha: np.ndarray, ops: Sequence[str] = DARTS_OPS, steps: int = 4, keep: int = 2
                ) -> list[tuple[str, int]]:
    """The cell alpha (edges, ops) encodes: per node, `keep` (op, input) pairs, strongest edge first; inputs are
    numbered 0, 1 (the cell's inputs) and 2 + i (intermediate node i)."""
    alpha = np.asarray(alpha, dtype=np.float64)
    check(alpha.shape == (num_edges(steps), len(ops)), "alpha",
          f"expected shape {(num_edges(steps), len(ops))} for {steps} nodes over {len(ops)} ops, got {alpha.shape}")
    check("none" in ops and len(ops) > 1, "ops", f"must contain 'none' and another op, got {tuple(ops)}")
    w = np.exp(alpha - alpha.max(-1, keepdims=True))
    w /= w.sum(-1, keepdims=True)
    none = list(ops).index("none")
    w_some = np.where(np.arange(len(ops)) == none, -np.inf, w)  # `none` excluded from strength and choice
    gene, start = [], 0
    for i in range(steps):
        n = 2 + i
        rows = w_some[start:start + n]
        ranked = sorted(range(n), key=lambda j: -rows[j].max())[:keep]
        gene += [(ops[int(np.argmax(rows[j]))], j) for j in ranked]
        start += n
    return gene


__all__ = ["DARTS_OPS", "derive_cell", "num_edges"]
