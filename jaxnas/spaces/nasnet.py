"""The NASNet cell space searched by AmoebaNet's regularized evolution (Real, Aggarwal, Huang & Le, "Regularized
Evolution for Image Classifier Architecture Search", AAAI 2019, Methods and Methods Details; the space of Zoph,
Vasudevan, Shlens & Le, "Learning Transferable Architectures for Scalable Image Recognition", CVPR 2018, Sec. 3).

An architecture is a normal cell and a reduction cell. Each cell has two inputs, hidden states 0 (the previous
cell's output, the "direct input") and 1 (the output of the cell before it, the "skip input"; the order of the
published `tensorflow/tpu` AmoebaNet code, whose `_cell_base` lists the previous cell first), and builds B
pairwise combinations: combination b applies one op to a hidden state and another op to a hidden state (both
chosen among 0, 1 and the combinations 2 .. 1 + b made before it, repeats allowed) and adds the results, giving
hidden state 2 + b. The combinations that no later combination reads are concatenated along channels into the
cell's output (NASNet Sec. 3: "all of the unused hidden states generated in the convolutional cell are
concatenated"; AmoebaNet: "any hidden states that remain unused ... are concatenated"). The cell inputs 0 and 1
are never concatenated (they are not generated in the cell; the maintainers' reading in tensorflow/tpu#130).

Encoding: one int32 vector of 8B positions, cell-major (normal then reduction), then combination, then element
(left, right), then (input index, op id). An input position of combination b has 2 + b options, so every vector
whose ids are within the counts is a valid, loop-free cell (no rule is needed); an op position has len(ops).
Sampling is uniform per position, so "all architectures ... are possible and equally likely" (AmoebaNet).

Mutation (`mutation`, the space's own): with probability `identity_prob` the child is the parent (AmoebaNet's
identity mutation, "fixed at the small, arbitrary value of 0.05"); otherwise a hidden-state mutation or an op
mutation, with equal probability ("other mutation probabilities were uniform"). Both pick the normal or the
reduction cell, one of the B combinations and one of its two elements uniformly; the hidden-state mutation replaces
that element's input by another hidden state of the cell that precedes the combination (uniform among the others,
so never a loop), the op mutation its op by another op (uniform among the others).

Settings (`space(...)`, the same settings give the same object): B = 5 combinations per cell (NASNet, AmoebaNet);
ops = the AmoebaNet op list in the paper's order ("none (identity); 3x3, 5x5 and 7x7 separable convs; 3x3 avg pool;
3x3 max pool; 3x3 dilated sep. conv; 1x7 then 7x1 conv"); identity_prob = 0.05 (AmoebaNet Methods Details).
Deliberate deviations: NASNet's RL search also chose how to combine (add or concatenate); AmoebaNet always adds, as
here. The published AmoebaNet-A specification (`model_specs.py`) concatenates a hand-set list of states that for
some cells includes input 1 or states a later combination reads; this space follows the papers' rule instead, so
`AMOEBANET_A` below is the published wiring, built with this space's output rule.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxnas.common.errors import check
from jaxnas.spaces.base import CategoricalSpace

OPS = ("identity", "sep_conv_3x3", "sep_conv_5x5", "sep_conv_7x7", "avg_pool_3x3", "max_pool_3x3",
       "dil_sep_conv_3x3", "conv_1x7_7x1")
# Ops a space may also use: DARTS's (Liu et al., ICLR 2019) dilated convolutions, for the cells DARTS derives.
KNOWN_OPS = OPS + ("dil_conv_3x3", "dil_conv_5x5")
OUTPUTS = ("unused", "all")  # which combinations a cell concatenates: NASNet's unused ones, or all (DARTS)
CELLS = ("normal", "reduction")
IDENTITY_PROB = 0.05  # AmoebaNet, Methods Details


@dataclasses.dataclass(frozen=True)
class Cells:
    """The settings of one NASNet space: combinations per cell, the op list, the identity-mutation probability, and
    the cell output: "unused" (NASNet / AmoebaNet: the combinations no later one reads) or "all" (DARTS: every
    combination, `multiplier` = steps in `quark0/darts`)."""

    B: int = 5
    ops: tuple[str, ...] = OPS
    identity_prob: float = IDENTITY_PROB
    output: str = "unused"

    def __post_init__(self):
        check(isinstance(self.B, int) and not isinstance(self.B, bool) and self.B >= 1, "B",
              f"got {self.B!r}; allowed: an integer >= 1")
        check(len(self.ops) >= 2 and len(set(self.ops)) == len(self.ops) and all(o in KNOWN_OPS for o in self.ops),
              "ops", f"got {self.ops!r}; allowed: two or more distinct names among {', '.join(KNOWN_OPS)}")
        check(self.output in OUTPUTS, "output", f"got {self.output!r}; allowed: {', '.join(OUTPUTS)}")
        check(isinstance(self.identity_prob, (int, float)) and 0 <= self.identity_prob <= 1, "identity_prob",
              f"got {self.identity_prob!r}; allowed: a number in [0, 1]")

    @property
    def num_positions(self) -> int:
        return 8 * self.B

    @property
    def counts(self) -> tuple[int, ...]:
        """Options per position: 2 + b for an input of combination b, len(ops) for an op."""
        return tuple(c for _cell in CELLS for b in range(self.B) for _elem in range(2) for c in (2 + b, len(self.ops)))

    def position(self, cell: int, comb: int, elem: int, what: int) -> int:
        """Index of (cell, combination, element, 0 = input / 1 = op) in the vector."""
        return ((cell * self.B + comb) * 2 + elem) * 2 + what


def as_cells(arch: Any, B: int) -> Any:
    """(..., 8B) -> (..., 2 cells, B combinations, 2 elements, 2 = (input, op)); numpy in, numpy out."""
    a = arch if isinstance(arch, jax.Array) else np.asarray(arch)
    return a.reshape(a.shape[:-1] + (2, B, 2, 2))


def unused(arch: Any, B: int) -> Any:
    """(..., 2, B) bool: combination j of each cell is read by no later combination (it joins the output).

    jnp for a traced or device array, numpy for a concrete one (the network's two paths)."""
    xp = jnp if isinstance(arch, jax.Array) else np
    inputs = as_cells(arch, B)[..., 0]  # (..., 2, B, 2)
    reads = inputs[..., :, :, None] == (2 + xp.arange(B))  # (..., 2, B readers, 2 elements, B states)
    return ~xp.any(reads, axis=(-3, -2))


def output_mask(cells: Cells, arch: Any) -> Any:
    """(..., 2, B) bool: the combinations each cell concatenates into its output (`unused`, or all of them)."""
    free = unused(arch, cells.B)
    return free if cells.output == "unused" else (free | True)


def describe(cells: Cells, arch: Any) -> str:
    """The genotype as text: `normal: 2=sep_conv_3x3(0)+max_pool_3x3(1) 3=... out=concat(3,4) | reduction: ...`."""
    a = as_cells(np.asarray(arch).reshape(-1), cells.B)
    free = output_mask(cells, np.asarray(arch).reshape(-1))
    parts = []
    for c, name in enumerate(CELLS):
        combos = [f"{2 + b}=" + "+".join(f"{cells.ops[a[c, b, e, 1]]}({a[c, b, e, 0]})" for e in range(2))
                  for b in range(cells.B)]
        out = ",".join(str(2 + j) for j in range(cells.B) if free[c, j])
        parts.append(f"{name}: " + " ".join(combos) + f" out=concat({out})")
    return " | ".join(parts)


def encode_genotype(cells: Cells, normal: Sequence[tuple[int, str, int, str]],
                    reduction: Sequence[tuple[int, str, int, str]]) -> np.ndarray:
    """The vector of a genotype given per cell as B tuples (left input, left op, right input, right op)."""
    arch = np.zeros(cells.num_positions, np.int32)
    for c, combos in enumerate((normal, reduction)):
        check(len(combos) == cells.B, "genotype", f"got {len(combos)} combinations; allowed: B={cells.B}")
        for b, (i0, o0, i1, o1) in enumerate(combos):
            for e, (i, o) in enumerate(((i0, o0), (i1, o1))):
                check(0 <= i < 2 + b and o in cells.ops, "genotype",
                      f"got input {i}, op {o!r} in combination {b}; allowed: inputs 0..{1 + b}, ops {cells.ops}")
                arch[cells.position(c, b, e, 0)] = i
                arch[cells.position(c, b, e, 1)] = cells.ops.index(o)
    return arch


def mutate(cells: Cells, key: jax.Array, arch: jax.Array) -> jax.Array:
    """AmoebaNet's mutation of `arch` (..., 8B), independently for every leading index; jittable.

    identity with probability `identity_prob`; else, with equal probability, a hidden-state or an op mutation of a
    uniformly chosen (cell, combination, element); the new id is uniform among the other allowed ids (an offset in
    [1, count) added modulo count), so a non-identity mutation always changes exactly one position."""
    arch = jnp.asarray(arch, jnp.int32)
    batch = arch.shape[:-1]
    k_id, k_kind, k_cell, k_comb, k_elem, k_new = jax.random.split(key, 6)
    identity = jax.random.uniform(k_id, batch) < cells.identity_prob
    hidden = jax.random.bernoulli(k_kind, 0.5, batch)
    cell = jax.random.randint(k_cell, batch, 0, 2)
    comb = jax.random.randint(k_comb, batch, 0, cells.B)
    elem = jax.random.randint(k_elem, batch, 0, 2)
    pos = ((cell * cells.B + comb) * 2 + elem) * 2 + jnp.where(hidden, 0, 1)  # (...)
    count = jnp.where(hidden, 2 + comb, len(cells.ops))  # options at `pos` (>= 2)
    old = jnp.take_along_axis(arch, pos[..., None], axis=-1)[..., 0]
    new = (old + jax.random.randint(k_new, batch, 1, count)) % count
    hit = (jnp.arange(cells.num_positions) == pos[..., None]) & ~identity[..., None]
    return jnp.where(hit, new[..., None], arch).astype(jnp.int32)


def network(cells: Cells, num_classes: int = 10, **options: Any) -> Any:
    """The candidate network of this space (`jaxnas.models.nasnet.network`: options `channels`,
    `cells_per_stage`, `stem_multiplier`, `image_size`, `dispatch`)."""
    from jaxnas.models.nasnet import network as build  # the network imports this module: import late

    return build(cells, num_classes=num_classes, **options)


@functools.lru_cache(maxsize=64)
def _space(cells: Cells) -> CategoricalSpace:
    return CategoricalSpace(
        name="nasnet", num_positions=cells.num_positions, num_choices=max(len(cells.ops), cells.B + 1),
        choices=cells.counts, printer=functools.partial(describe, cells), network=functools.partial(network, cells),
        factory=space, mutation=functools.partial(mutate, cells))


def space(B: int = 5, ops: Sequence[str] = OPS, identity_prob: float = IDENTITY_PROB,
          image_size: int | None = None, output: str = "unused") -> CategoricalSpace:
    """The NASNet / AmoebaNet space with B combinations per cell over `ops` (the same settings give the same object).

    `image_size` is accepted for the entry points' `factory(image_size=..., ...)` call and does not change the space
    (the network works at any size divisible by 4)."""
    del image_size
    check(not isinstance(ops, str), "ops", f"got {ops!r}; allowed: a sequence of names among {', '.join(OPS)}")
    return _space(Cells(B, tuple(ops), identity_prob, output))


def cells_of(s: CategoricalSpace) -> Cells:
    """The `Cells` a NASNet space was built from."""
    return s.mutation.args[0]


SPACE = space()

# AmoebaNet-A (tensorflow/tpu models/official/amoeba_net/model_specs.py, `amoeba_net_a`), in this space's encoding;
# its output is this space's concatenation of the unused combinations (see the module docstring).
AMOEBANET_A = encode_genotype(
    cells_of(SPACE),
    normal=[(0, "avg_pool_3x3", 0, "max_pool_3x3"), (1, "sep_conv_3x3", 1, "identity"),
            (0, "identity", 1, "avg_pool_3x3"), (0, "sep_conv_3x3", 2, "sep_conv_5x5"),
            (5, "avg_pool_3x3", 0, "sep_conv_3x3")],
    reduction=[(1, "sep_conv_3x3", 0, "avg_pool_3x3"), (0, "max_pool_3x3", 2, "sep_conv_7x7"),
               (1, "max_pool_3x3", 0, "max_pool_3x3"), (4, "sep_conv_3x3", 0, "conv_1x7_7x1"),
               (1, "avg_pool_3x3", 0, "sep_conv_7x7")])
