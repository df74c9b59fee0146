"""A NEAT genome exported (`jaxnas.spaces.neat_export`): the source of a hand-made genome is what one would write,
its values are hand-computed ones, and on random genomes (hidden chains, disabled and parallel genes, dead ends,
recurrent loops) the exported Python equals the library's own decode + forward / step."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxnas.common.errors import ConfigError
from jaxnas.spaces.neat import Genome, NeatSpace, to_host
from jaxnas.spaces.neat_export import draw_network, to_function, to_python
from test_neat import genome as padded_genome


def make_genome(space: NeatSpace, hidden: list[int], biases: dict[int, float],
                conns: list[tuple[int, int, float, bool]], acts: dict[int, int] | None = None) -> Genome:
    """`test_neat.genome` with connections (in, out, w, enabled) numbered by innovation in the given order."""
    return padded_genome(space, [(k, *c) for k, c in enumerate(conns)], hidden, biases, acts)


def sig(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-4.9 * z))


def test_a_hand_made_genome_reads_as_written_and_computes_the_hand_values():
    space = NeatSpace(2, 1, max_nodes=6, max_conns=8)
    # x0 -> h3 -> y0, x1 -> y0, a disabled x0 -> y0, and h4 fed by x1 that reaches no output
    genome = make_genome(space, [3, 4], {2: -0.25, 3: 0.5, 4: 1.0},
                         [(0, 2, 9.0, False), (1, 2, -1.5, True), (0, 3, 2.0, True), (3, 2, 0.75, True),
                          (1, 4, 1.0, True)])
    source = to_python(genome, space)
    assert "    h3 = sigmoid(2.0 * x0 + 0.5)\n    y0 = sigmoid(-1.5 * x1 + 0.75 * h3 - 0.25)\n" in source
    assert "h4" not in source and "9.0" not in source and "def network(x0, x1):" in source
    f = to_function(genome, space)
    for x0, x1 in ((0.0, 0.0), (1.0, 0.0), (0.3, -2.0)):
        expected = sig(-1.5 * x1 + 0.75 * sig(2.0 * x0 + 0.5) - 0.25)
        assert f(x0, x1) == pytest.approx((expected,), rel=1e-12)
        assert float(space.apply(genome, jnp.array([[x0, x1]]))[0, 0]) == pytest.approx(expected, rel=1e-5)
    assert to_python(to_host(genome), space) == source  # the JSON form of results.json exports the same


def random_genome(rng: np.random.Generator, space: NeatSpace, num_hidden: int, num_conns: int) -> Genome:
    """Hidden ids not in evaluation order, outputs that feed hidden nodes, parallel and disabled genes; feed-forward
    spaces get edges along a random topological order, recurrent ones any edge (loops included)."""
    hidden = list(rng.choice(np.arange(space.num_io, space.num_io + 3 * num_hidden), num_hidden, replace=False))
    computed = list(range(space.num_inputs, space.num_io)) + hidden
    order = list(range(space.num_inputs)) + list(rng.permutation(computed))
    conns = []
    for _ in range(num_conns):
        if space.recurrent:
            a, o = rng.choice(order), rng.choice(computed)
        else:
            j = rng.integers(space.num_inputs, len(order))
            a, o = order[rng.integers(0, j)], order[j]
        conns.append((int(a), int(o), float(rng.normal(0, 1.5)), bool(rng.random() < 0.8)))
    conns.append(conns[0][:3] + (True,))  # a parallel gene
    biases = {int(n): float(rng.normal()) for n in computed}
    acts = {int(n): int(rng.integers(len(space.activations))) for n in computed} if space.activations else None
    return make_genome(space, [int(h) for h in hidden], biases, conns, acts)


@pytest.mark.parametrize("activation,output_activation", [("sigmoid", None), ("tanh", "identity"), ("relu", "sigmoid")])
def test_random_feed_forward_genomes_equal_the_library_forward(activation, output_activation):
    space = NeatSpace(3, 2, max_nodes=16, max_conns=40, activation=activation, output_activation=output_activation)
    check_random_feed_forward(space, np.random.default_rng(0), hidden=(0, 8), conns=(4, 30))


def check_random_feed_forward(space: NeatSpace, rng: np.random.Generator, hidden: tuple[int, int],
                              conns: tuple[int, int], genomes: int = 12) -> None:
    """Random genomes exported and run in Python equal the library's jitted forward on random inputs."""
    x = rng.normal(size=(6, space.num_inputs)).astype(np.float32)
    forward = jax.jit(space.apply)
    for _ in range(genomes):
        genome = random_genome(rng, space, num_hidden=int(rng.integers(*hidden)), num_conns=int(rng.integers(*conns)))
        f = to_function(genome, space)
        ours = np.array([f(*row) for row in x.astype(float)])
        np.testing.assert_allclose(ours, np.asarray(forward(genome, x)), rtol=2e-5, atol=2e-6)


def test_random_cppn_genomes_with_their_own_activations_equal_the_library_forward():
    space = NeatSpace(4, 1, max_nodes=16, max_conns=40, activation="tanh",
                      activations=("tanh", "sin", "gauss", "abs", "identity", "sigmoid", "signed_sigmoid",
                                   "clipped_linear"))
    check_random_feed_forward(space, np.random.default_rng(2), hidden=(1, 8), conns=(6, 30))
    one = make_genome(space, [5], {}, [(0, 5, 1.0, True), (5, 4, 1.0, True)], acts={5: 1, 4: 2})
    assert "h5 = sin(1.0 * x0 + 0.0)" in to_python(one, space) and "y0 = gauss(1.0 * h5" in to_python(one, space)
    assert to_function(one, space)(0.5, 0, 0, 0) == pytest.approx((math.exp(-math.sin(0.5) ** 2),))


def test_every_activation_has_its_python_source_and_a_cppn_node_needs_its_gene():
    from jaxnas.spaces.neat import ACTIVATIONS
    from jaxnas.spaces.neat_export import _PY_ACTIVATIONS

    assert set(_PY_ACTIVATIONS) == set(ACTIVATIONS)
    space = NeatSpace(1, 1, max_nodes=4, max_conns=4, activation="abs", activations=("abs", "sin"))
    genome = to_host(make_genome(space, [2], {}, [(0, 2, 1.0, True), (2, 1, -2.0, True)], {1: 0, 2: 1}))
    assert "y0 = absolute(-2.0 * h2" in to_python(genome, space)  # the builtin `abs` is not shadowed
    assert to_function(genome, space)(0.3) == pytest.approx((abs(-2.0 * math.sin(0.3)),))
    del genome["nodes"][2]["activation"]
    with pytest.raises(ConfigError, match=r"^genome: nodes \[2\] have no 'activation'"):
        to_python(genome, space)


@pytest.mark.parametrize("activations", [None, ("tanh", "sin", "gauss", "abs")])
def test_random_recurrent_genomes_step_like_the_library(activations):
    space = NeatSpace(2, 1, max_nodes=12, max_conns=30, recurrent=True, activation="tanh", activations=activations)
    rng = np.random.default_rng(1)
    step = jax.jit(space.step)
    for _ in range(8):
        genome = random_genome(rng, space, num_hidden=int(rng.integers(0, 6)), num_conns=int(rng.integers(3, 25)))
        f, net = to_function(genome, space), space.decode(genome)
        values, state = space.initial_values(1), {}
        for _t in range(5):
            x = rng.normal(size=(1, 2)).astype(np.float32)
            values, out = step(net, values, jnp.asarray(x))
            state, ours = f(tuple(float(v) for v in x[0]), state)
            np.testing.assert_allclose(ours, np.asarray(out)[0], rtol=2e-5, atol=2e-6)


def test_a_cycle_in_a_feed_forward_space_and_a_population_are_refused_by_name():
    space = NeatSpace(1, 1, max_nodes=4, max_conns=4)
    cyclic = make_genome(space, [2], {}, [(0, 2, 1.0, True), (2, 1, 1.0, True), (1, 2, 1.0, True)])
    with pytest.raises(ConfigError, match="^genome: .*cycle"):
        to_python(cyclic, space)
    population = jax.tree.map(lambda a: jnp.stack([a, a]), cyclic)
    with pytest.raises(ConfigError, match="^genome: expected one genome"):
        to_python(population, space)


def test_draw_network_labels_the_nodes_by_their_names():
    import matplotlib.pyplot as plt

    space = NeatSpace(2, 1, max_nodes=6, max_conns=8)
    genome = make_genome(space, [3], {}, [(0, 3, 1.0, True), (3, 2, -1.0, True), (1, 2, 0.5, False)])
    fig, ax = plt.subplots()
    draw_network(genome, space, ax)
    assert sorted(t.get_text() for t in ax.texts if t.get_text()) == ["h3", "x0", "x1", "y0"]
    plt.close(fig)
