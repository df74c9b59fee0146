"""Hierarchical NAS's space of motifs of motifs (Liu, Simonyan, Vinyals, Fernando & Kavukcuoglu, "Hierarchical
Representations for Efficient Architecture Search", ICLR 2018, arXiv 1711.00436, Sec. 2-3 and 4.1).

Three levels. Level 1: the primitives (Sec. 2.3: "1x1 convolution of C channels, 3x3 depthwise convolution, 3x3
separable convolution of C channels, 3x3 max-pooling, 3x3 average-pooling, identity"). Level 2: `motifs` (M2 = 6)
DAGs of `motif_nodes` (|G(2)| = 4) nodes whose every edge i -> j (i < j) holds a primitive or `none`. Level 3: the
cell, one DAG of `cell_nodes` (|G(3)| = 5) nodes whose every edge holds a level-2 motif or `none` (Sec. 4.1: "three
levels (L = 3), with M1 = 6, M2 = 6, M3 = 1"; Sec. 2.3 adds a `none` op, "no edge", to the operations of every
level; there is no identity at level 3). A node merges its incoming edges by depthwise concatenation (Sec. 2.1);
how the network keeps shapes fixed is in `jaxnas.models.hierarchical`.

Encoding: one int32 vector, the motifs' edges (motif 1's first) then the cell's edges. Edges of a G-node graph are
numbered by successor then predecessor: (0,1), (0,2), (1,2), (0,3), (1,3), (2,3), ... so edge (i, j) is
j (j - 1) / 2 + i. A motif edge holds 0 (none) or 1 + the primitive's index in `primitives`; a cell edge holds 0
(none) or the motif's number 1..M. `choices` gives each position its count (1 + primitives, 1 + M).

Mutation (Sec. 3.1, the space's `mutation`, jittable, vectorised over leading batch dimensions): sample a
non-primitive level l >= 2 uniformly, a motif in it uniformly (level 3 has one), a successor node i uniformly among
the nodes that have predecessors, a predecessor j < i uniformly, and replace the op on edge j -> i by a different
level-(l-1) op chosen uniformly; `none` being one of them, a mutation adds, alters or removes an edge.

Initial population (Sec. 3.2): the trivial genotype, every motif a chain of identity mappings (edges (i, i+1)
identity, the others none; the cell's chain edges hold motif 1, itself an identity), diversified by a large number
of random mutations (the paper: 1,000 each, for a population of 200). `initial_population(key, size, mutations)`;
to scale, keep the mutations (integer operations: 1,000 for 200 genotypes take ~70 ms jitted, ~0.7 s eagerly, on
the 2-core CPU) and lower the size to the evaluations the budget allows. Tournament selection over 5% of the
population is `jaxnas.strategies.evolution.tournament(..., sample_fraction=0.05)`; `initial_sampler` gives a
strategy this initial distribution in the form of `CategoricalSpace.sample`.

Defaults and their sources: primitives, M = 6 motifs, 4 motif nodes, 5 cell nodes: Sec. 2.3 and 4.1 (quoted in
negrinho/deep_architect's notes; the same numbers in NASLib's `hierarchical/graph.py` and NNI's example). The
1,000 initial mutations: Sec. 3.2. Deviation: the paper does not say whether a mutation may redraw the op already
there; here it never does (every mutation changes the genotype), as in the NAS-Bench-201 mutation of this project.
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

PRIMITIVES = ("conv1x1", "dwconv3x3", "sepconv3x3", "maxpool3x3", "avgpool3x3", "identity")
NONE = 0
DEFAULT_INIT_MUTATIONS = 1000  # Sec. 3.2


def edges(nodes: int) -> list[tuple[int, int]]:
    """The (predecessor, successor) pairs of a `nodes`-node DAG, numbered by successor then predecessor."""
    return [(i, j) for j in range(1, nodes) for i in range(j)]


def edge_index(i: int, j: int) -> int:
    """Number of edge i -> j (i < j) in `edges`."""
    return j * (j - 1) // 2 + i


@dataclasses.dataclass(frozen=True)
class Hierarchy:
    """The settings of one hierarchical space, and where each edge sits in the genotype."""

    motifs: int = 6
    motif_nodes: int = 4
    cell_nodes: int = 5
    primitives: tuple[str, ...] = PRIMITIVES

    def __post_init__(self):
        check(isinstance(self.motifs, int) and not isinstance(self.motifs, bool) and self.motifs >= 1, "motifs",
              f"got {self.motifs!r}; allowed: an integer >= 1")
        for field in ("motif_nodes", "cell_nodes"):
            v = getattr(self, field)
            check(isinstance(v, int) and not isinstance(v, bool) and v >= 2, field,
                  f"got {v!r}; allowed: an integer >= 2 (a graph needs an edge)")
        check(len(self.primitives) >= 1 and all(p in PRIMITIVES for p in self.primitives)
              and len(set(self.primitives)) == len(self.primitives) and "identity" in self.primitives, "primitives",
              f"got {self.primitives!r}; allowed: distinct names among {', '.join(PRIMITIVES)}, including identity "
              "(the initial genotype is a chain of identities)")

    @property
    def motif_edges(self) -> int:
        return self.motif_nodes * (self.motif_nodes - 1) // 2

    @property
    def cell_edges(self) -> int:
        return self.cell_nodes * (self.cell_nodes - 1) // 2

    @property
    def cell_offset(self) -> int:
        """Position of the cell's first edge."""
        return self.motifs * self.motif_edges

    @property
    def length(self) -> int:
        return self.cell_offset + self.cell_edges

    @property
    def choices(self) -> tuple[int, ...]:
        return (1 + len(self.primitives),) * self.cell_offset + (1 + self.motifs,) * self.cell_edges

    def op_name(self, op: int) -> str:
        """A motif edge's op id -> its name."""
        return "none" if op == NONE else self.primitives[op - 1]

    def split(self, arch: Any) -> tuple[np.ndarray, np.ndarray]:
        """A concrete genotype -> (motif ops (M, motif_edges), cell ops (cell_edges,)) as numpy."""
        a = np.asarray(arch).reshape(-1)
        return a[:self.cell_offset].reshape(self.motifs, self.motif_edges), a[self.cell_offset:]

    def trivial(self) -> np.ndarray:
        """The trivial genotype of Sec. 3.2: every motif a chain of identity mappings, the cell a chain of motif 1."""
        arch = np.zeros(self.length, np.int32)
        ident = 1 + self.primitives.index("identity")
        for m in range(self.motifs):
            for j in range(1, self.motif_nodes):
                arch[m * self.motif_edges + edge_index(j - 1, j)] = ident
        for j in range(1, self.cell_nodes):
            arch[self.cell_offset + edge_index(j - 1, j)] = 1
        return arch


def mutate(hier: Hierarchy, key: jax.Array, arch: jax.Array) -> jax.Array:
    """Sec. 3.1's mutation of every genotype in `arch` (..., L): one edge of one motif gets a different op."""
    arch = jnp.asarray(arch, jnp.int32)
    batch = arch.shape[:-1]
    k_level, k_motif, k_succ, k_pred, k_op = jax.random.split(key, 5)
    cell = jax.random.bernoulli(k_level, 0.5, batch)  # levels 2 and 3, uniformly
    motif = jax.random.randint(k_motif, batch, 0, hier.motifs)
    nodes = jnp.where(cell, hier.cell_nodes, hier.motif_nodes)
    succ = jax.random.randint(k_succ, batch, 1, nodes)  # a node with predecessors
    pred = jax.random.randint(k_pred, batch, 0, succ)
    e = succ * (succ - 1) // 2 + pred
    pos = jnp.where(cell, hier.cell_offset + e, motif * hier.motif_edges + e)  # (...)
    options = jnp.where(cell, 1 + hier.motifs, 1 + len(hier.primitives))
    offset = jax.random.randint(k_op, batch, 1, options)  # adding 1..n-1 mod n: uniform over the other ops
    old = jnp.take_along_axis(arch, pos[..., None], -1)[..., 0]
    hit = jnp.arange(hier.length) == pos[..., None]
    return jnp.where(hit, ((old + offset) % options)[..., None], arch).astype(jnp.int32)


def initial_population(key: jax.Array, size: int, mutations: int = DEFAULT_INIT_MUTATIONS,
                       space: CategoricalSpace | Hierarchy | None = None) -> jax.Array:
    """(size, L) genotypes: the trivial genotype, each copy mutated `mutations` times independently (Sec. 3.2).

    Jittable (`size` static, `mutations` may be traced). The paper: size 200, 1,000 mutations. `space`: a
    hierarchical space or its settings (default: the paper's)."""
    hier = space if isinstance(space, Hierarchy) else settings_of(space if space is not None else SPACE)
    start = jnp.broadcast_to(jnp.asarray(hier.trivial()), (size, hier.length))
    return jax.lax.fori_loop(0, mutations, lambda t, a: mutate(hier, jax.random.fold_in(key, t), a), start)


def initial_sampler(space: CategoricalSpace | Hierarchy, mutations: int = DEFAULT_INIT_MUTATIONS):
    """`sample(key, shape) -> (*shape, L)`: `initial_population` in the form of `CategoricalSpace.sample`, for a
    strategy that starts from the paper's initial distribution instead of the uniform one."""
    def sample(key: jax.Array, shape: tuple[int, ...] = ()) -> jax.Array:
        n = int(np.prod(shape, dtype=np.int64))
        return initial_population(key, n, mutations, space).reshape(tuple(shape) + (-1,))
    return sample


def describe(hier: Hierarchy, arch: Any) -> str:
    """`m1(0>1:identity 1>2:sepconv3x3) m2(-) ... cell(0>1:m1 1>2:m2)`; none edges are left out."""
    motif_ops, cell_ops = hier.split(arch)

    def graph(ops, nodes, name):
        parts = [f"{i}>{j}:{name(int(op))}" for (i, j), op in zip(edges(nodes), ops) if op != NONE]
        return "(" + (" ".join(parts) or "-") + ")"

    motifs = [f"m{m + 1}" + graph(ops, hier.motif_nodes, hier.op_name) for m, ops in enumerate(motif_ops)]
    return " ".join(motifs) + " cell" + graph(cell_ops, hier.cell_nodes, lambda op: f"m{op}")


def network(hier: Hierarchy, num_classes: int = 10, **options: Any) -> Any:
    """The candidate network of this space (`jaxnas.models.hierarchical.HierarchicalNetwork`)."""
    from jaxnas.models.hierarchical import HierarchicalNetwork  # the network imports this module: import late

    return HierarchicalNetwork(hier=hier, num_classes=num_classes, **options)


@functools.lru_cache(maxsize=64)
def _space(hier: Hierarchy, init_mutations: int) -> CategoricalSpace:
    return CategoricalSpace(
        name="hierarchical", num_positions=hier.length, num_choices=max(hier.choices), choices=hier.choices,
        printer=functools.partial(describe, hier), network=functools.partial(network, hier), factory=space,
        mutation=functools.partial(mutate, hier), initial=initial_sampler(hier, init_mutations))


def space(motifs: int = 6, motif_nodes: int = 4, cell_nodes: int = 5, primitives: Sequence[str] = PRIMITIVES,
          init_mutations: int = DEFAULT_INIT_MUTATIONS, image_size: int | None = None) -> CategoricalSpace:
    """The hierarchical space for these settings (the same settings give the same object). Its starting distribution
    (`initial_sample`: evolution's first population, random search, the random baseline) is the trivial genotype
    mutated `init_mutations` times (Sec. 3.2: 1,000; 0 starts every search from the trivial genotype itself).
    `image_size` is accepted for the entry points' `factory(image_size=..., ...)` call and does not change the space."""
    del image_size
    check(not isinstance(primitives, str), "primitives", f"got {primitives!r}; allowed: a sequence of names")
    check(isinstance(init_mutations, int) and not isinstance(init_mutations, bool) and 0 <= init_mutations <= 100_000,
          "init_mutations", f"got {init_mutations!r}; allowed: an integer in [0, 100000] (the paper: 1000)")
    return _space(Hierarchy(motifs, motif_nodes, cell_nodes, tuple(primitives)), init_mutations)


def settings_of(s: CategoricalSpace) -> Hierarchy:
    """The `Hierarchy` a hierarchical space was built from."""
    return s.mutation.args[0]


SPACE = space()
