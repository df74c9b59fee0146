"""NEAT: genome encoding, operators against hand-computed cases and plain references, runs and resume."""

from __future__ import annotations

import dataclasses
import os
import math
import shutil

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxnas.common.errors import ConfigError
from jaxnas.problems import pole_balancing as pb
from jaxnas.problems.neat_tasks import make_problem
from jaxnas.search.neat import NeatRunner
from jaxnas.spaces.neat import EMPTY, Genome, NeatSpace, to_host
from jaxnas.strategies import neat_ops as ops
from jaxnas.strategies.neat import Neat

pytestmark = pytest.mark.usefixtures("fast_compile")  # exact checks and tiny runs: compile-bound (conftest)


def genome(space: NeatSpace, conns: list[tuple[int, int, int, float, bool]], hidden: list[int] = (),
           biases: dict[int, float] | None = None, acts: dict[int, int] | None = None) -> Genome:
    """A genome from (innovation, in, out, weight, enabled) tuples and hidden node ids; in a CPPN space each
    node's activation index from `acts` (default 0)."""
    ids = list(range(space.num_io)) + sorted(hidden)
    node_id = np.full(space.max_nodes, EMPTY, np.int32)
    node_id[:len(ids)] = ids
    bias = np.zeros(space.max_nodes, np.float32)
    for i, b in (biases or {}).items():
        bias[ids.index(i)] = b
    node_act = None
    if space.activations is not None:
        node_act = np.zeros(space.max_nodes, np.int32)
        for i, a in (acts or {}).items():
            node_act[ids.index(i)] = a
        node_act = jnp.asarray(node_act)
    conns = sorted(conns)
    pad = space.max_conns - len(conns)
    col = lambda j, fill, dt: np.array([c[j] for c in conns] + [fill] * pad, dt)  # noqa: E731
    return Genome(node_id=jnp.asarray(node_id), node_bias=jnp.asarray(bias), conn_in=jnp.asarray(col(1, EMPTY, np.int32)),
                  conn_out=jnp.asarray(col(2, EMPTY, np.int32)), conn_weight=jnp.asarray(col(3, 0.0, np.float32)),
                  conn_enabled=jnp.asarray(col(4, False, bool)), conn_innov=jnp.asarray(col(0, EMPTY, np.int32)),
                  node_act=node_act)


def stack(*gs: Genome) -> Genome:
    return jax.tree.map(lambda *x: jnp.stack(x), *gs)


def reference_forward(g: dict, space: NeatSpace, x: np.ndarray, act) -> np.ndarray:
    """Plain per-genome evaluation: repeatedly evaluate any node whose enabled inputs are all known."""
    values = {i: x[i] for i in range(space.num_inputs)}
    nodes = [n for n in g["nodes"] if n["id"] >= space.num_inputs]
    incoming = {n["id"]: [c for c in g["connections"] if c["enabled"] and c["out"] == n["id"]] for n in nodes}
    while len(values) < space.num_inputs + len(nodes):
        for n in nodes:
            if n["id"] not in values and all(c["in"] in values for c in incoming[n["id"]]):
                values[n["id"]] = act(n["bias"] + sum(c["weight"] * values[c["in"]] for c in incoming[n["id"]]))
    return np.array([values[i] for i in range(space.num_inputs, space.num_io)])


SPACE = NeatSpace(2, 1, max_nodes=8, max_conns=12)


def test_compatibility_distance_equals_hand_computed_case():
    g = genome(SPACE, [(0, 0, 2, 1.0, True), (1, 1, 2, -1.0, True), (2, 0, 2, 0.5, False), (5, 1, 2, 2.0, True),
                       (6, 0, 2, 0.0, True)])
    h = genome(SPACE, [(0, 0, 2, 0.5, True), (1, 1, 2, 1.0, False), (3, 0, 2, 0.0, True), (4, 1, 2, 0.0, True)])
    # matching 0, 1: W = (0.5 + 2.0) / 2; excess: 5, 6 (beyond h's largest, 4); disjoint: 2 (g), 3, 4 (h)
    w = (0.5 + 2.0) / 2
    d = ops.compatibility(g, h, 1.0, 1.0, 0.4, 20)  # both under 20 genes: N = 1
    np.testing.assert_allclose(d, 2 + 3 + 0.4 * w, rtol=1e-6)
    np.testing.assert_allclose(ops.compatibility(g, h, 2.0, 1.0, 0.4, 1), (2 * 2 + 3) / 5 + 0.4 * w, rtol=1e-6)
    np.testing.assert_allclose(ops.compatibility(h, g, 1.0, 1.0, 0.4, 20), d, rtol=1e-6)  # symmetric
    assert float(ops.compatibility(g, g, 1.0, 1.0, 0.4, 20)) == 0.0



def test_neat_python_distance_matches_connections_by_their_key():
    """neat-python's `DefaultGenome.distance` keys connection genes by (in, out): 1->2, deleted and added again
    under a new innovation (2 in h), still matches g's 1->2 (innovation 1)."""
    g = genome(SPACE, [(0, 0, 2, 1.0, True), (1, 1, 2, -1.0, True), (5, 0, 3, 0.5, False), (6, 3, 2, 2.0, True)],
               hidden=[3])
    h = genome(SPACE, [(0, 0, 2, 0.5, True), (2, 1, 2, 1.0, False), (7, 0, 4, 0.0, True)], hidden=[4])
    # connections: matching 0->2 (|dw| 0.5) and 1->2 (|dw| 2.0, enable bits differ: + 1), unmatched 0->3, 3->2,
    # 0->4: (0.5 * 3.5 + 1 * 3) / 4; nodes (output 2 matching with equal biases, hidden 3 and 4 unmatched): 2 / 2
    want = (0.5 * 3.5 + 3) / 4 + 2 / 2
    np.testing.assert_allclose(ops.compatibility_neat_python(g, h, 1.0, 0.5, 2), want, rtol=1e-6)
    np.testing.assert_allclose(ops.compatibility_neat_python(h, g, 1.0, 0.5, 2), want, rtol=1e-6)
    assert float(ops.compatibility_neat_python(g, g, 1.0, 0.5, 2)) == 0.0


def test_crossover_takes_disjoint_and_excess_genes_from_the_fitter_parent():
    fitter = genome(SPACE, [(0, 0, 2, 1.0, True), (1, 1, 2, 1.0, False), (2, 0, 3, 1.0, True), (5, 3, 2, 1.0, True)],
                    hidden=[3])
    other = genome(SPACE, [(0, 0, 2, -1.0, True), (1, 1, 2, -1.0, True), (3, 1, 3, -1.0, True), (4, 0, 2, -1.0, True),
                           (7, 1, 2, -1.0, True)], hidden=[3])
    keys = jax.random.split(jax.random.key(0), 400)
    kids = jax.vmap(ops.crossover, in_axes=(0, None, None, None))(keys, fitter, other, 0.75)
    np.testing.assert_array_equal(kids.conn_innov, np.broadcast_to(fitter.conn_innov, kids.conn_innov.shape))
    w = np.asarray(kids.conn_weight)
    assert set(np.unique(w[:, 0])) == {-1.0, 1.0} and set(np.unique(w[:, 1])) == {-1.0, 1.0}  # matching: either
    np.testing.assert_array_equal(w[:, 2:4], 1.0)  # disjoint (2) and excess (5): the fitter parent's
    assert np.asarray(kids.conn_enabled[:, 0]).all()


def test_crossover_disables_matching_genes_at_the_reference_rate_and_never_re_enables_unmatched_ones():
    """NEAT C++ `mate_multipoint` / neat-python 2.0: the 75% rule applies to matching genes (which otherwise keep
    the enable bit of the parent they are drawn from); unmatched genes are copied from the fitter parent as
    they are, so a disabled one stays disabled."""
    fitter = genome(SPACE, [(0, 0, 2, 1.0, True), (1, 1, 2, 1.0, False), (2, 0, 3, 1.0, False), (4, 3, 2, 1.0, True),
                            (5, 0, 2, 1.0, False), (6, 1, 3, 1.0, False)], hidden=[3])
    other = genome(SPACE, [(0, 0, 2, -1.0, True), (1, 1, 2, -1.0, True), (3, 1, 3, -1.0, False),
                           (4, 3, 2, -1.0, False), (5, 0, 2, -1.0, False)], hidden=[3])
    n = 4000
    kids = jax.vmap(ops.crossover, in_axes=(0, None, None, None))(jax.random.split(jax.random.key(3), n), fitter,
                                                                  other, 0.75)
    on, w = np.asarray(kids.conn_enabled), np.asarray(kids.conn_weight)
    slot = {int(i): k for k, i in enumerate(np.asarray(fitter.conn_innov)) if i != EMPTY}
    assert not on[:, slot[2]].any() and not on[:, slot[6]].any()  # disjoint (2) and excess (6) disabled: stay so
    assert on[:, slot[0]].all() and not on[:, slot[5]].any()  # matching, enabled in both / disabled in both
    for innov, enabled_weight in ((1, -1.0), (4, 1.0)):  # matching, disabled in one parent only
        k = slot[innov]
        assert abs((1 - on[:, k].mean()) - (0.75 + 0.25 / 2)) < 0.03  # sd of the estimate: 0.005
        np.testing.assert_array_equal(w[on[:, k], k], enabled_weight)  # enabled only if drawn from the enabled parent
    # with the rate at 0 a matching gene is exactly the chosen parent's, weight and enable bit together
    kids0 = jax.vmap(ops.crossover, in_axes=(0, None, None, None))(jax.random.split(jax.random.key(4), 200), fitter,
                                                                   other, 0.0)
    k = slot[1]
    np.testing.assert_array_equal(np.asarray(kids0.conn_enabled[:, k]), np.asarray(kids0.conn_weight[:, k]) == -1.0)


@pytest.mark.parametrize("kind", ["uniform", "gaussian"])
def test_weight_perturbation_is_uniform_within_the_power_or_gaussian(kind):
    """Every weight and bias is perturbed (rate 1, no replacement): the steps are U(-0.5, 0.5) (the paper's uniform
    perturbation) or N(0, 0.5); a Kolmogorov-Smirnov distance against the claimed law, and the other law's
    signature (a Gaussian step leaves [-0.5, 0.5] a third of the time)."""
    neat = Neat(SPACE, population_size=2, weight_perturbation=kind, weight_mutate_rate=1.0, weight_replace_rate=0.0,
                bias_mutate_rate=1.0, bias_replace_rate=0.0, node_add_rate=0.0, conn_add_rate=0.0)
    p = 3000
    pop = jax.tree.map(lambda x: jnp.broadcast_to(x, (p,) + x.shape),
                       genome(SPACE, [(0, 0, 2, 0.0, True), (1, 1, 2, 0.0, True)]))
    kids, _ = jax.jit(jax.vmap(neat._mutate))(neat.mutation_draws(jax.random.key(5), p), pop)
    steps = np.sort(np.concatenate([np.asarray(kids.conn_weight[:, :2]).ravel(),
                                    np.asarray(kids.node_bias[:, 2])]))  # 9,000 steps
    if kind == "uniform":
        assert np.abs(steps).max() <= 0.5
        cdf = np.clip(steps / 1.0 + 0.5, 0, 1)
    else:
        assert 0.25 < np.mean(np.abs(steps) > 0.5) < 0.4  # P(|N(0, 0.5)| > 0.5) = 0.317
        cdf = 0.5 * (1 + np.vectorize(math.erf)(steps / (0.5 * math.sqrt(2))))
    ecdf = np.arange(1, steps.size + 1) / steps.size
    assert np.max(np.abs(ecdf - cdf)) < 0.02  # KS: 1.36 / sqrt(9000) = 0.014 at the 5% level
    with pytest.raises(ConfigError, match="weight_perturbation"):
        Neat(SPACE, weight_perturbation="cauchy")


def test_innovation_numbers_are_shared_within_a_generation():
    space = NeatSpace(2, 1, max_nodes=6, max_conns=8)
    base = genome(space, [(0, 0, 2, 0.7, True), (1, 1, 2, -0.3, False)])  # one enabled gene: every split is the same
    pop = stack(*[base] * 6)
    keys = jax.random.split(jax.random.key(1), 6)
    kids, prop = jax.vmap(lambda k, g: ops.structural(k, g, space, 1.0, 0.0, 1.0))(keys, pop)
    kids, next_node, next_innov = ops.assign_innovations(kids, prop, jnp.int32(3), jnp.int32(2))
    assert int(next_node) == 4 and int(next_innov) == 4  # one new node, two new innovations for six genomes
    np.testing.assert_array_equal(kids.node_id[:, 3], 3)
    for i in range(6):
        h = to_host(jax.tree.map(lambda x: x[i], kids))
        assert {(c["innovation"], c["in"], c["out"]) for c in h["connections"]} == {(0, 0, 2), (1, 1, 2), (2, 0, 3),
                                                                                    (3, 3, 2)}
    # the same new connection in two genomes shares one innovation; a different one gets the next number
    a = genome(space, [(0, 0, 2, 0.1, True), (1, 1, 2, 0.1, True)], hidden=[3])
    proposal = tuple(jnp.asarray(v, jnp.int32) for v in
                     ([EMPTY] * 3, [0] * 3, [0] * 3, [0, 1, 0], [3, 3, 3], [4] * 3, [2] * 3, [3] * 3, [2] * 3))
    out, _, nxt = ops.assign_innovations(stack(a, a, a), proposal, jnp.int32(4), jnp.int32(10))
    np.testing.assert_array_equal(out.conn_innov[:, 2], [10, 11, 10])
    assert int(nxt) == 12


def test_unique_split_ids_give_every_split_its_own_node_and_innovations():
    """neat-python (`get_new_node_key`): every add-node makes a new node, even where other genomes split the same
    connection in the same generation; additions of the same a->b still share an innovation."""
    space = NeatSpace(2, 1, max_nodes=6, max_conns=8)
    base = genome(space, [(0, 0, 2, 0.7, True), (1, 1, 2, -0.3, False)])
    keys = jax.random.split(jax.random.key(1), 4)
    kids, prop = jax.vmap(lambda k, g: ops.structural(k, g, space, 1.0, 0.0, 1.0))(keys, stack(*[base] * 4))
    kids, next_node, next_innov = ops.assign_innovations(kids, prop, jnp.int32(3), jnp.int32(2), unique_splits=True)
    assert int(next_node) == 7 and int(next_innov) == 10
    np.testing.assert_array_equal(kids.node_id[:, 3], [3, 4, 5, 6])
    for i in range(4):
        h = to_host(jax.tree.map(lambda x: x[i], kids))
        assert {(c["innovation"], c["in"], c["out"]) for c in h["connections"]} == {
            (0, 0, 2), (1, 1, 2), (2 + 2 * i, 0, 3 + i), (3 + 2 * i, 3 + i, 2)}


def test_neat_python_order_mutates_in_sequence():
    """`structure_first` (neat-python's `DefaultGenome.mutate`): add node, delete node, add connection, delete
    connection, each on the genome the previous step left. A node added then deleted leaves its split disabled; a
    new connection may use the node added just before (never in the paper's order); identical splits share one
    node with `split_ids="shared"` and get one each with "unique"."""
    from jaxnas.strategies.neat_python_mutation import mutate_in_sequence

    space = NeatSpace(2, 1, max_nodes=6, max_conns=8)
    base = genome(space, [(0, 0, 2, 0.7, True), (1, 1, 2, -0.3, True)])
    p = 64
    pop = stack(*[base] * p)
    no_elite = jnp.zeros(p, bool)

    def run(**kw):
        neat = Neat(space, population_size=p, structure_first=True, **kw)
        return mutate_in_sequence(neat, neat.mutation_draws(jax.random.key(2), p), pop, no_elite, jnp.int32(3),
                                  jnp.int32(2))

    kids, next_node, next_innov = run(node_add_rate=1.0, node_delete_rate=1.0, conn_add_rate=0.0, split_ids="unique")
    assert int(next_node) == 3 + p and int(next_innov) == 2 + 2 * p  # a node each, then deleted again
    for i in range(p):
        h = to_host(jax.tree.map(lambda x: x[i], kids))
        assert [n["id"] for n in h["nodes"]] == [0, 1, 2] and len(h["connections"]) == 2
        assert sorted(c["enabled"] for c in h["connections"]) == [False, True]
    kids, next_node, _ = run(node_add_rate=1.0, conn_add_rate=1.0, split_ids="unique")
    touching = 0
    for i in range(p):
        h = to_host(jax.tree.map(lambda x: x[i], kids))
        new_node = max(n["id"] for n in h["nodes"])
        assert new_node == 3 + i  # one node per split, in population order
        innovs = [c["innovation"] for c in h["connections"]]
        assert innovs == sorted(innovs) and len({(c["in"], c["out"]) for c in h["connections"]}) == len(innovs)
        added = [c for c in h["connections"] if c["innovation"] >= 2 + 2 * p]
        touching += any(new_node in (c["in"], c["out"]) for c in added)
    assert touching > 0
    kids, next_node, _ = run(node_add_rate=1.0, conn_add_rate=0.0, split_ids="shared")
    assert int(next_node) == 5  # two distinct splits (0->2 and 1->2) among 64 genomes: two nodes
    assert set(np.asarray(kids.node_id[:, 3]).tolist()) == {3, 4}


def test_add_node_preserves_the_output_at_the_split():
    space = NeatSpace(3, 2, max_nodes=10, max_conns=12, activation="identity")
    g = genome(space, [(0, 0, 3, 0.8, True), (1, 1, 3, -1.2, True), (2, 2, 4, 0.4, True), (3, 0, 4, 2.0, True)],
               biases={3: 0.3, 4: -0.1})
    x = jax.random.normal(jax.random.key(2), (16, 3))
    before = space.apply(g, x)
    for seed in range(4):
        kid, prop = ops.structural(jax.random.key(seed), g, space, 1.0, 0.0, 1.0)
        kid, _, _ = ops.assign_innovations(stack(kid), tuple(p[None] for p in prop), jnp.int32(5), jnp.int32(4))
        kid = jax.tree.map(lambda v: v[0], kid)
        assert int(jnp.sum(kid.node_valid)) == 6 and int(jnp.sum(kid.conn_enabled & kid.conn_valid)) == 5
        np.testing.assert_allclose(space.apply(kid, x), before, rtol=1e-5, atol=1e-6)
        split = to_host(kid)["connections"]
        new_in = [c for c in split if c["out"] == 5][0]
        assert new_in["weight"] == 1.0


def test_neat_python_structural_variants_split_disabled_genes_and_never_start_at_an_output():
    """neat-python's add node picks any connection (a disabled one too); its add connection never starts at an
    output. The paper's rules (the defaults) split enabled connections only and may start anywhere."""
    space = NeatSpace(2, 1, max_nodes=6, max_conns=8)
    only_disabled = genome(space, [(0, 0, 2, 0.5, False), (1, 1, 2, -0.5, False)])
    u = jax.random.uniform(jax.random.key(0), (64, 5)).at[:, 0].set(0.0)  # add node always on
    z = jnp.zeros(64)
    node_on = lambda **kw: jax.vmap(lambda u, z: ops.structural_with(  # noqa: E731
        u, z, only_disabled, space, 1.0, 0.0, 1.0, **kw)[1][0])(u, z)
    assert bool(jnp.all(node_on() == EMPTY)) and bool(jnp.all(node_on(split_disabled=True) != EMPTY))
    hidden = genome(space, [(0, 0, 3, 0.5, True), (1, 1, 2, 0.5, True)], hidden=[3])  # 3 a dead end: 2 -> 3 no cycle
    u = jax.random.uniform(jax.random.key(1), (256, 5)).at[:, 0].set(1.0).at[:, 2].set(0.0)  # add connection on
    sources = lambda **kw: np.asarray(jax.vmap(lambda u, z: ops.structural_with(  # noqa: E731
        u, jnp.zeros(()), hidden, space, 0.0, 1.0, 1.0, **kw)[1][3])(u, jnp.zeros(256)))
    paper, neat_python = sources(), sources(from_outputs=False)
    assert (paper == 2).any() and not (neat_python == 2).any() and (neat_python != EMPTY).any()


@pytest.fixture(scope="module")
def evolved():
    """A population after a few generations of heavy structural mutation (hidden nodes, disabled genes)."""
    problem = make_problem("xor")
    neat = Neat(problem.space(10, 16), population_size=16, node_add_rate=0.5, conn_add_rate=0.5,
                node_delete_rate=0.1, conn_delete_rate=0.1, enable_mutate_rate=0.1)
    runner = NeatRunner(neat, problem, chunk=3)
    return neat, runner


def test_padded_evaluation_equals_a_plain_per_genome_reference(evolved):
    neat, runner = evolved
    carry, _ = runner._chunk(jax.random.key(3), runner.init(jax.random.key(3)), jnp.int32(3))
    pop = carry.state.genomes
    assert int(jnp.max(jnp.sum(pop.node_valid, -1))) > neat.space.num_io  # hidden nodes exist
    x = np.asarray(jax.random.uniform(jax.random.key(4), (5, 2)))
    out = np.asarray(jax.vmap(lambda g: neat.space.apply(g, jnp.asarray(x)))(pop))  # (P, 5, 1)
    sig = lambda v: 1 / (1 + np.exp(-4.9 * v))  # noqa: E731
    for i in range(neat.population_size):
        g = to_host(jax.tree.map(lambda v: v[i], pop))
        ref = np.stack([reference_forward(g, neat.space, xi, sig) for xi in x])
        np.testing.assert_allclose(out[i], ref, rtol=1e-5, atol=1e-6)


def test_reachability_equals_a_plain_search(evolved):
    """`ops.reaches` (add-connection's cycle test) against a breadth-first search over every connection gene,
    enabled or not, from every node slot of every evolved genome."""
    neat, runner = evolved
    carry, _ = runner._chunk(jax.random.key(5), runner.init(jax.random.key(5)), jnp.int32(3))
    pop, n = carry.state.genomes, neat.space.max_nodes
    got = np.asarray(jax.vmap(lambda g: jax.vmap(lambda s: ops.reaches(g, neat.space, s))(jnp.arange(n)))(pop))
    deep = 0
    for i in range(neat.population_size):
        g = jax.tree.map(lambda v: np.asarray(v[i]), pop)
        slot = {int(node): k for k, node in enumerate(g.node_id) if node != EMPTY}
        edges = [(slot[int(a)], slot[int(b)]) for a, b, innov in zip(g.conn_in, g.conn_out, g.conn_innov)
                 if innov != EMPTY]
        for start in range(n):
            seen, frontier = {start}, [start]
            while frontier:
                frontier = [b for a, b in edges if a in frontier and b not in seen]
                seen.update(frontier)
            deep += len(seen) > 2
            np.testing.assert_array_equal(got[i, start], np.isin(np.arange(n), sorted(seen)), err_msg=f"{i}/{start}")
    assert deep > 0  # some node reaches beyond its direct successor


def test_speciation_on_a_size_tier_equals_speciation_on_the_whole_capacity(evolved):
    neat, runner = evolved
    neat = dataclasses.replace(neat, compatibility_threshold=0.5)  # many species: a non-trivial partition
    assert neat.size_tiers() == ((8, 8), (16, 10))
    state = runner._chunk(jax.random.key(5), runner.init(jax.random.key(5)), jnp.int32(1))[0].state
    pop = state.genomes
    assert int(jnp.max(jnp.sum(pop.conn_valid, -1))) <= 8 and int(jnp.max(jnp.sum(pop.node_valid, -1))) <= 8
    assert int(neat.size_tier(pop, state.rep, state.alive)) == 0
    small = jax.jit(lambda s, g: neat._assign_species(s, g, (8, 8)))(state, pop)
    whole = jax.jit(lambda s, g: neat._assign_species(s, g, (16, 10)))(state, pop)
    chex.assert_trees_all_equal(small, whole)
    assert len(np.unique(np.asarray(small[0]))) >= 3
    # one genome with nine connection genes (or a live representative with nine nodes) needs the whole capacity
    space = neat.space
    big = genome(space, [(k, k % 2, 2, 0.5, True) for k in range(9)])
    grown = jax.tree.map(lambda x, b: x.at[0].set(b), pop, big)
    assert int(neat.size_tier(grown, state.rep, state.alive)) == 1
    wide = genome(space, [(0, 0, 2, 0.5, True)], hidden=list(range(3, 9)))
    rep = jax.tree.map(lambda x, b: x.at[0].set(b), state.rep, wide)
    assert int(neat.size_tier(pop, rep, state.alive.at[0].set(True))) == 1
    assert int(neat.size_tier(pop, rep, state.alive.at[0].set(False))) == 0  # dead slots do not count


def test_speciation_follows_the_sequential_first_compatible_rule(evolved):
    neat, runner = evolved
    carry, _ = runner._chunk(jax.random.key(5), runner.init(jax.random.key(5)), jnp.int32(3))
    state = carry.state
    # re-speciate the population against the existing representatives with a tighter threshold, so that some
    # genomes join an older species first and others found new ones; then check against the sequential loop
    neat = dataclasses.replace(neat, compatibility_threshold=1.0)
    new_state, _ = jax.jit(neat._speciate)(state, state.genomes)
    species = np.asarray(new_state.species)
    reps = [(int(o), jax.tree.map(lambda v: v[s], state.rep), s) for s, (o, a) in
            enumerate(zip(np.asarray(state.sp_order), np.asarray(state.alive))) if a]
    reps.sort(key=lambda r: r[0])
    leaders: list[tuple[Genome, int]] = [(r, s) for _, r, s in reps]
    expected = []
    for i in range(neat.population_size):
        g = jax.tree.map(lambda v: v[i], state.genomes)
        for rep, slot in leaders:
            if float(neat.distance(g, rep)) < neat.compatibility_threshold:
                expected.append(slot)
                break
        else:
            slot = len(leaders)
            leaders.append((g, -1 - slot))
            expected.append(-1 - slot)
    assert min(expected) < 0 and max(expected) >= 0  # both branches of the rule are exercised
    # new species get free slots: compare the partition, old species by slot
    mapping = {}
    for e, s in zip(expected, species):
        assert mapping.setdefault(e, s) == s
        if e >= 0:
            assert e == s
    assert len(set(mapping.values())) == len(mapping)


def test_a_moving_threshold_steers_towards_the_target_number_of_species(evolved):
    """`target_species` (the authors' HyperNEAT code, SpeciesSizeTarget / CompatibilityModifier): speciation uses
    the state's threshold, which then moves one `threshold_step` towards the target (more species: up, fewer: down,
    never below the step); without a target the setting is used and the state's value never moves."""
    neat, runner = evolved
    state = runner._chunk(jax.random.key(5), runner.init(jax.random.key(5)), jnp.int32(3))[0].state
    assert float(state.threshold) == neat.compatibility_threshold  # no target: unchanged through 3 generations
    fixed = dataclasses.replace(neat, compatibility_threshold=1.0)
    ref, _ = jax.jit(fixed._speciate)(state, state.genomes)
    n = int(jnp.sum(ref.alive))
    assert n >= 3 and float(ref.threshold) == float(state.threshold)
    for target, start, want in ((2, 1.0, 1.25), (n, 1.0, 1.0), (50, 1.0, 0.75), (50, 0.25, 0.25), (50, 0.4, 0.25)):
        steer = dataclasses.replace(neat, compatibility_threshold=7.0, target_species=target, threshold_step=0.25)
        new, _ = jax.jit(steer._speciate)(state.replace(threshold=jnp.float32(start)), state.genomes)
        if start == 1.0:  # the state's threshold, not the setting, decided the partition
            np.testing.assert_array_equal(np.asarray(new.species), np.asarray(ref.species))
        assert float(new.threshold) == pytest.approx(want), (target, start)


def test_closest_speciation_follows_neat_python(evolved):
    """`speciation="closest"` against a transcription of neat-python 2.0's `DefaultSpeciesSet.speciate`: each old
    species, oldest first, takes the unplaced genome closest to its representative; the others, in order, join the
    closest representative within the threshold (existing species, then species founded before them) or found one."""
    neat, runner = evolved
    carry, _ = runner._chunk(jax.random.key(5), runner.init(jax.random.key(5)), jnp.int32(3))
    state = carry.state
    neat = dataclasses.replace(neat, compatibility_threshold=1.0, speciation="closest")
    species = np.asarray(jax.jit(neat._speciate)(state, state.genomes)[0].species)
    genomes = [jax.tree.map(lambda v, i=i: v[i], state.genomes) for i in range(neat.population_size)]
    dist = lambda a, b: float(neat.distance(b, a))  # noqa: E731  (neat-python: distance(representative, genome))
    old = sorted((int(o), s) for s, (o, a) in enumerate(zip(np.asarray(state.sp_order), np.asarray(state.alive))) if a)
    unplaced, reps, expected = list(range(neat.population_size)), {}, {}
    for _, slot in old:
        rep = jax.tree.map(lambda v: v[slot], state.rep)
        i = min(unplaced, key=lambda j: dist(rep, genomes[j]))  # ties: the first, as Python's min
        reps[slot], expected[i] = i, slot
        unplaced.remove(i)
    for i in unplaced:
        near = [(dist(genomes[r], genomes[i]), sid) for sid, r in reps.items()]
        near = [c for c in near if c[0] < neat.compatibility_threshold]
        sid = min(near, key=lambda c: c[0])[1] if near else -1 - i
        if not near:
            reps[sid] = i
        expected[i] = sid
    expected = [expected[i] for i in range(neat.population_size)]
    assert min(expected) < 0 and max(expected) >= 0 and len(set(expected)) >= 3
    mapping = {}  # new species get free slots: the partition must match, old species by slot
    for e, s in zip(expected, species):
        assert mapping.setdefault(e, s) == s
        assert e < 0 or e == s
    assert len(set(mapping.values())) == len(mapping)


def _neat_python_spawn(adjusted, previous, pop_size, minimum):
    """neat-python 2.0's `compute_spawn` then `_adjust_spawn_exact`, transcribed (species in its order)."""
    total = sum(adjusted)
    spawn = []
    for af, ps in zip(adjusted, previous):
        s = max(minimum, af / total * pop_size) if total > 0 else minimum
        d = (s - ps) * 0.5
        c = int(round(d))
        spawn.append(ps + (c if abs(c) > 0 else (1 if d > 0 else -1 if d < 0 else 0)))
    norm = pop_size / sum(spawn)
    spawn = [max(minimum, int(round(n * norm))) for n in spawn]
    diff = pop_size - sum(spawn)
    order = sorted(range(len(spawn)), key=lambda k: spawn[k], reverse=diff < 0)
    for k in range(len(order) if diff < 0 else abs(diff)):  # one pass when shrinking: neat-python then raises
        j = order[k % len(order)]
        if diff > 0:
            spawn[j], diff = spawn[j] + 1, diff - 1
        elif diff < 0 and spawn[j] > minimum:
            spawn[j], diff = spawn[j] - 1, diff + 1
    assert diff == 0, "neat-python raises here (more species than the population holds at their minimum)"
    return spawn


@pytest.mark.parametrize("seed", [6, 7])
def test_neat_python_spawn_equals_its_reference(evolved, seed):
    """`spawn="neat-python"`: the species' offspring against the transcription above, on evolved populations
    spread over several species (stagnation off, so every live species is eligible)."""
    neat, runner = evolved
    neat = dataclasses.replace(neat, spawn="neat-python", elitism=2, min_species_size=1, compatibility_threshold=1.0,
                               max_stagnation=100, population_size=48)
    runner = NeatRunner(neat, runner.problem, chunk=3)
    carry, _ = runner._chunk(jax.random.key(seed), runner.init(jax.random.key(seed)), jnp.int32(3))
    st = carry.state
    off = np.asarray(jax.jit(neat.offspring)(st))
    f, sp = np.asarray(st.fitness, np.float64), np.asarray(st.species)
    live = [s for s in range(neat.max_species) if (sp == s).any()]
    assert len(live) >= 3 and off.sum() == neat.population_size
    live.sort(key=lambda s: f[sp == s].max())  # neat-python's order: ascending species fitness
    lo, hi = f.min(), f.max()
    adjusted = [(f[sp == s].mean() - lo) / max(1.0, hi - lo) for s in live]
    expected = _neat_python_spawn(adjusted, [int((sp == s).sum()) for s in live], neat.population_size, 2)
    assert [int(off[s]) for s in live] == expected
    assert all(off[s] == 0 for s in range(neat.max_species) if s not in live)


def test_offspring_add_up_and_follow_adjusted_fitness(evolved):
    neat, runner = evolved
    carry, _ = runner._chunk(jax.random.key(6), runner.init(jax.random.key(6)), jnp.int32(3))
    st = carry.state
    off = np.asarray(neat.offspring(st))
    assert off.sum() == neat.population_size and (off >= 0).all()
    assert (off[~np.asarray(st.alive)] == 0).all()
    f, sp = np.asarray(st.fitness), np.asarray(st.species)
    share = np.array([f[sp == s].mean() if (sp == s).any() else 0 for s in range(neat.max_species)])
    quota = neat.population_size * share / share.sum()
    assert np.all(np.abs(off - quota) < 1.0 + 1e-6)


def test_same_seed_same_run_different_seeds_differ_and_resume_equals_uninterrupted(evolved, tmp_path):
    neat, runner = evolved
    a = runner.run(0, 6)
    b = runner.run(0, 6)
    c = runner.run(1, 6)
    chex.assert_trees_all_equal(a["carry"], b["carry"])
    assert not np.array_equal(np.asarray(a["carry"].state.genomes.conn_weight),
                              np.asarray(c["carry"].state.genomes.conn_weight))
    ckpt = str(tmp_path / "ckpt")
    runner.run(0, 6, checkpoint_dir=ckpt)
    shutil.rmtree(os.path.join(ckpt, "6"))  # as if killed after generation 3's checkpoint
    resumed = runner.run(0, 6, checkpoint_dir=ckpt)
    assert resumed["resumed_from_generation"] == 3
    chex.assert_trees_all_equal(resumed["carry"], a["carry"])
    np.testing.assert_array_equal(resumed["history"]["best_fitness"], a["history"]["best_fitness"])


def test_seeds_vmapped_in_one_program_equal_separate_runs(evolved):
    """`run_seeds` batches runs along a named axis, so speciation takes one size tier for the batch (the largest
    any run needs): each run must still end exactly as when run alone."""
    neat, runner = evolved
    batched = runner.run_seeds([0, 1, 7], 4)["carry"]
    tiers = set()
    for i, seed in enumerate((0, 1, 7)):  # after 4 generations seed 7 needs the second tier, 0 and 1 the first
        alone = runner.run(seed, 4)["carry"]
        chex.assert_trees_all_equal(jax.tree.map(lambda v: v[i], batched), alone)
        tiers.add(int(neat.size_tier(alone.state.genomes, alone.state.rep, alone.state.alive)))
    assert tiers == {0, 1}  # the runs needed different tiers by the end: the batch took the larger for all
    with pytest.raises(ConfigError, match="batch_axis"):
        dataclasses.replace(neat, batch_axis=3)


def test_settings_errors_name_the_field():
    with pytest.raises(ConfigError, match="node_add_rate"):
        Neat(SPACE, node_add_rate=1.5)
    with pytest.raises(ConfigError, match="compatibility"):
        Neat(SPACE, compatibility="euclid")
    with pytest.raises(ConfigError, match="max_conns"):
        NeatSpace(4, 3, max_nodes=10, max_conns=6)


def test_nan_fitness_is_counted_as_failed_and_never_selected(evolved):
    neat, runner = evolved
    genomes, state = jax.jit(neat.ask)(jax.random.key(8), runner.init(jax.random.key(7)).state)
    fitness = jnp.arange(neat.population_size, dtype=jnp.float32).at[-1].set(jnp.nan)
    state, metrics = jax.jit(neat.tell)(state, genomes, fitness)
    assert int(metrics["failed"]) == 1 and float(metrics["best_fitness"]) == neat.population_size - 2
    chex.assert_trees_all_equal(state.best, jax.tree.map(lambda v: v[-2], genomes))
    assert int(neat.offspring(state).sum()) == neat.population_size


def test_evaluation_sharded_over_eight_devices_equals_one_device(evolved):
    neat, runner = evolved
    assert jax.device_count() == 8 and neat.population_size % 8 == 0
    sharded = NeatRunner(neat, runner.problem, chunk=3, devices=jax.devices())
    key = jax.random.key(11)
    one, _ = runner._chunk(key, runner.init(key), jnp.int32(3))
    eight, _ = sharded._chunk(key, sharded.init(key), jnp.int32(3))
    chex.assert_trees_all_equal(one, eight)
    with pytest.raises(ConfigError, match="devices"):
        NeatRunner(neat, runner.problem, devices=jax.devices()[:3])


def test_evolved_genomes_keep_their_invariants(evolved):
    """Sorted ids and innovations, EMPTY padding last, connections between existing nodes, no duplicate or
    cyclic connection genes, after generations of additions and deletions that fill the genomes."""
    problem = evolved[1].problem
    neat = Neat(problem.space(6, 7), population_size=16, node_add_rate=0.9, conn_add_rate=0.9, node_delete_rate=0.1,
                conn_delete_rate=0.1, enable_mutate_rate=0.2)
    runner = NeatRunner(neat, problem, chunk=8)
    carry, _ = runner._chunk(jax.random.key(9), runner.init(jax.random.key(9)), jnp.int32(8))
    pop = jax.tree.map(np.asarray, carry.state.genomes)
    assert (pop.conn_innov != EMPTY).sum(-1).max() == neat.space.max_conns  # some genome is full
    for i in range(neat.population_size):
        ids, innov = pop.node_id[i], pop.conn_innov[i]
        for arr in (ids, innov):
            n = int((arr != EMPTY).sum())
            assert np.all(arr[n:] == EMPTY) and np.all(np.diff(arr[:n]) > 0)  # ascending, padding last
        conns = [(a, b) for a, b, k in zip(pop.conn_in[i], pop.conn_out[i], innov) if k != EMPTY]
        assert len(set(conns)) == len(conns)
        assert all(a in set(ids) and b in set(ids) and b >= neat.space.num_inputs for a, b in conns)
        order = {a: 0 for a in ids if a != EMPTY}  # longest-path depth over all genes: finite only if acyclic
        for _ in range(len(order)):
            for a, b in conns:
                order[b] = max(order[b], order[a] + 1)
        assert max(order.values()) < len(order)


def test_keep_champion_copies_the_champion_of_a_species_too_small_for_elitism(evolved):
    """`keep_champion` (the authors' HyperNEAT code, ForceCopyGenerationChampion): the generation's best genome is
    copied unchanged even when its species is below `elitism_min_species_size`; without it, it is bred from."""
    neat, runner = evolved
    st = runner.init(jax.random.key(11)).state
    st, _ = jax.jit(dataclasses.replace(neat, compatibility_threshold=0.5)._speciate)(st, st.genomes)
    counts = np.bincount(np.asarray(st.species), minlength=neat.max_species)
    small = int(np.flatnonzero((counts > 0) & (counts < neat.elitism_min_species_size))[0])
    champion = int(np.flatnonzero(np.asarray(st.species) == small)[0])
    st = st.replace(fitness=jnp.full(neat.population_size, 0.1).at[champion].set(1.0), told=jnp.array(True))
    offspring = np.asarray(neat.offspring(st))
    assert offspring[small] > 0
    first_child = int(np.cumsum(offspring)[small] - offspring[small])
    same = lambda a, b: all(bool(jnp.array_equal(x, y)) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))  # noqa: E731
    want = jax.tree.map(lambda v: v[champion], st.genomes)
    for keep in (True, False):
        nxt = jax.jit(dataclasses.replace(neat, keep_champion=keep)._next_generation)(jax.random.key(3), st)
        assert same(jax.tree.map(lambda v: v[first_child], nxt.genomes), want) == keep


def test_offspring_when_no_species_may_breed(evolved):
    neat, runner = evolved
    st = runner.init(jax.random.key(10)).state
    st = st.replace(fitness=jnp.linspace(0, 1, neat.population_size), sp_since=jnp.full_like(st.sp_since, 99))
    strict = dataclasses.replace(neat, species_elitism=0)
    off = np.asarray(strict.offspring(st))
    assert off.sum() == neat.population_size and (off > 0).sum() == 1  # the best species breeds alone
    assert np.asarray(st.alive)[np.argmax(off)]


# ---- recurrent networks and the double pole without velocities ----

def has_cycle(g: dict) -> bool:
    """Whether the genome's connection genes (enabled or not) contain a directed cycle (self-loops included)."""
    succ: dict[int, list[int]] = {}
    for c in g["connections"]:
        succ.setdefault(c["in"], []).append(c["out"])
    state: dict[int, int] = {}  # 1: on the current path, 2: done

    def visit(v: int) -> bool:
        state[v] = 1
        for w in succ.get(v, []):
            if state.get(w) == 1 or (w not in state and visit(w)):
                return True
        state[v] = 2
        return False

    return any(v not in state and visit(v) for v in list(succ))


def reference_step(g: dict, space: NeatSpace, prev: dict[int, float], x: np.ndarray, act) -> dict[int, float]:
    """Plain synchronous update: every non-input node from the previous step's activations and this step's inputs."""
    prev = {**prev, **{i: float(x[i]) for i in range(space.num_inputs)}}
    new = {i: float(x[i]) for i in range(space.num_inputs)}
    for n in g["nodes"]:
        if n["id"] >= space.num_inputs:
            total = n["bias"] + sum(c["weight"] * prev.get(c["in"], 0.0) for c in g["connections"]
                                    if c["enabled"] and c["out"] == n["id"])
            new[n["id"]] = act(total)
    return new


@pytest.fixture(scope="module")
def recurrent_population():
    """Recurrent genomes after a few generations of heavy structural mutation (loops, self-loops, hidden nodes)."""
    problem = make_problem("double_pole_nv")
    neat = Neat(problem.space(10, 24), population_size=32, node_add_rate=0.5, conn_add_rate=0.9,
                enable_mutate_rate=0.1)
    runner = NeatRunner(neat, problem, chunk=4)
    carry, _ = runner._chunk(jax.random.key(8), runner.init(jax.random.key(8)), jnp.int32(4))
    return neat, carry.state.genomes


def test_recurrent_step_equals_a_plain_synchronous_reference(recurrent_population):
    neat, pop = recurrent_population
    space = neat.space
    hosts = [to_host(jax.tree.map(lambda v: v[i], pop)) for i in range(neat.population_size)]
    assert any(has_cycle(g) for g in hosts)  # recurrent spaces add loops ...
    assert any(c["in"] == c["out"] for g in hosts for c in g["connections"])  # ... and self-loops
    nets = jax.vmap(space.decode)(pop)
    xs = np.asarray(jax.random.uniform(jax.random.key(9), (6, 3), minval=-1, maxval=1))
    values = jnp.zeros((neat.population_size, 1, space.max_nodes))
    step = jax.jit(jax.vmap(space.step, in_axes=(0, 0, None)))
    sig = lambda v: 1 / (1 + np.exp(-4.9 * v))  # noqa: E731
    ref = [{} for _ in hosts]
    for x in xs:
        values, out = step(nets, values, jnp.asarray(x)[None])
        for i, g in enumerate(hosts):
            ref[i] = reference_step(g, space, ref[i], x, sig)
            np.testing.assert_allclose(out[i, 0, 0], ref[i][space.num_inputs], rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="recurrent"):
        space.forward(jax.tree.map(lambda v: v[0], nets), jnp.zeros((1, 3)))


def test_feed_forward_spaces_never_add_a_cycle():
    """The same heavy mutation as `recurrent_population` (which does produce loops) in a feed-forward space."""
    problem = dataclasses.replace(make_problem("double_pole_nv"), recurrent=False, fitness=lambda sp, g: jnp.float32(1.0),
                                  champion_test=None)
    neat = Neat(problem.space(10, 24), population_size=32, node_add_rate=0.5, conn_add_rate=0.9,
                enable_mutate_rate=0.1)
    runner = NeatRunner(neat, problem, chunk=4)
    pop = runner._chunk(jax.random.key(8), runner.init(jax.random.key(8)), jnp.int32(4))[0].state.genomes
    hosts = [to_host(jax.tree.map(lambda v: v[i], pop)) for i in range(neat.population_size)]
    assert sum(len(g["connections"]) for g in hosts) > 2 * 3 * neat.population_size  # connections were added
    assert not any(has_cycle(g) for g in hosts)


# The winner of `experiments.neat --config experiments/configs/neat.py:dpnv` (seed 0): one recurrent output neuron.
DPNV_WINNER = [(0, 0, 3, -1.5362343788146973, True), (1, 1, 3, -4.8755598068237305, True),
               (2, 2, 3, 3.7430100440979004, True), (114, 3, 3, -1.1229989528656006, True)]


def dpnv_reference(conns, bias: float, steps: int = 1000) -> tuple[int, float]:
    """Balanced steps and the jiggle over the last 100 of them, from a plain loop (the module's physics step)."""
    step = jax.jit(pb.double_pole_step)
    state, out_prev, jiggles = np.asarray(pb.double_pole_initial_state()), 0.0, []
    for _ in range(steps):
        obs = state[[0, 2, 4]] / np.array([4.8, 0.52, 0.52])
        total = bias + sum(w * (out_prev if a == 3 else obs[a]) for _, a, _, w, e in conns if e)
        out_prev = 1 / (1 + np.exp(-4.9 * total))
        state = np.asarray(step(jnp.asarray(state, jnp.float32), jnp.float32(10 * (2 * out_prev - 1))))
        if abs(state[0]) > 2.4 or abs(state[2]) > math.radians(36) or abs(state[4]) > math.radians(36):
            break
        jiggles.append(np.abs(state[:4]).sum())
    return len(jiggles), float(np.sum(jiggles[-100:]))


@pytest.mark.slow
def test_double_pole_nv_fitness_and_champion_test_against_references():
    problem = make_problem("double_pole_nv")
    space = problem.space(8, 8)
    for conns in (DPNV_WINNER, DPNV_WINNER[:3]):
        bias = 0.6503546237945557
        g = genome(space, conns, biases={3: bias})
        balanced, jiggle = dpnv_reference(conns, bias)
        want = 0.1 * balanced / 1000 + (0.9 * 0.75 / jiggle if balanced > 100 else 0.0)
        assert float(problem.fitness(space, g)) == pytest.approx(want, rel=1e-3)
        if conns is DPNV_WINNER:
            assert balanced == 1000
            solved, info = jax.jit(problem.champion_test, static_argnums=0)(space, g)
            assert int(info["champion_steps"]) == pb.DOUBLE_POLE_STEPS and int(info["generalization"]) >= 200
            assert bool(solved)
        else:
            assert 1 < balanced < 100  # without its self-loop the neuron cannot balance: a short episode


def test_a_champion_test_decides_when_a_run_is_solved():
    """Problems like the double pole without velocities are solved when the generation's best genome passes a
    test, not at a fitness threshold (here one that every genome passes, and one that none does)."""
    calls = []

    def champion_test(space, g):
        calls.append(1)  # traced once per compilation
        size = jnp.sum(g.conn_valid)
        return size >= 0, {"size": size}

    problem = dataclasses.replace(make_problem("xor"), fitness_threshold=-1.0, champion_test=champion_test)
    neat = Neat(problem.space(8, 12), population_size=24)
    runner = NeatRunner(neat, problem, chunk=3)
    out = runner.run(0, 6)
    assert int(out["carry"].solved_at) == 0 and int(out["carry"].generation) == 1  # the threshold is ignored
    assert calls and out["history"]["size"].tolist() == [2]
    best = int(jnp.argmax(out["carry"].state.fitness))
    chex.assert_trees_all_equal(out["carry"].champion, jax.tree.map(lambda v: v[best], out["carry"].state.genomes))
    never = dataclasses.replace(problem, champion_test=lambda sp, g: (jnp.bool_(False), {}))
    out = NeatRunner(neat, never, chunk=3).run(0, 6)
    assert int(out["carry"].solved_at) == -1 and int(out["carry"].generation) == 6
