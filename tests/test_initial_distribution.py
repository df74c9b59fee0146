"""A space's starting distribution (`CategoricalSpace.initial`): what evolution's first population, random search
and the random baseline draw. Uniform by default; hierarchical NAS's is the trivial genotype diversified by random
mutations (Liu et al. 2018, Sec. 3.2)."""

import jax
import numpy as np
import pytest

from jaxnas.common.errors import ConfigError
from jaxnas.spaces import SPACES, hierarchical
from jaxnas.strategies.evolution import aging_evolution, tournament
from jaxnas.strategies.random import RandomSearch

SMALL = dict(motifs=2, motif_nodes=3, cell_nodes=3)


def test_default_initial_is_the_uniform_sample():
    space = SPACES.get("nb201")
    key = jax.random.key(3)
    np.testing.assert_array_equal(space.initial_sample(key, (5,)), space.sample(key, (5,)))


def test_hierarchical_initial_is_the_mutated_trivial_genotype():
    space = hierarchical.space(**SMALL, init_mutations=7)
    hier = hierarchical.settings_of(space)
    key = jax.random.key(0)
    got = np.asarray(space.initial_sample(key, (2, 3)))
    assert got.shape == (2, 3, hier.length)
    np.testing.assert_array_equal(got.reshape(6, -1), hierarchical.initial_population(key, 6, 7, hier))
    # no mutations: every draw is the trivial genotype (the chain of identities)
    trivial = hierarchical.space(**SMALL, init_mutations=0).initial_sample(key, (4,))
    np.testing.assert_array_equal(trivial, np.broadcast_to(hier.trivial(), (4, hier.length)))
    # a genotype 7 mutations away from the trivial one differs from it in at most 7 edges
    assert ((got.reshape(6, -1) != hier.trivial()).sum(-1) <= 7).all()


@pytest.mark.parametrize("make", [lambda s: aging_evolution(s, 4, 2, batch_size=2),
                                  lambda s: tournament(s, 4, 2, capacity=8, sample_fraction=0.05, batch_size=2),
                                  lambda s: RandomSearch(s, batch_size=2)])
def test_strategies_start_from_the_initial_distribution(make):
    """The first draws of evolution and every draw of random search come from `initial_sample`: with no initial
    mutations, they are all the trivial genotype (a uniform draw of 14 seven-way edges never is)."""
    space = hierarchical.space(**SMALL, init_mutations=0)
    trivial = hierarchical.settings_of(space).trivial()
    strategy = make(space)
    state = strategy.init(jax.random.key(0))
    archs, state = strategy.ask(jax.random.key(1), state)
    np.testing.assert_array_equal(archs, np.broadcast_to(trivial, archs.shape))
    uniform = make(hierarchical.space(**SMALL, init_mutations=1000))
    archs, _ = uniform.ask(jax.random.key(1), uniform.init(jax.random.key(0)))
    assert (np.asarray(archs) != trivial).any(-1).all()


@pytest.mark.parametrize("value", [-1, 1.5, True, 100_001])
def test_bad_init_mutations_names_the_field(value):
    with pytest.raises(ConfigError, match=r"^init_mutations: got .*; allowed: an integer in \[0, 100000\]"):
        hierarchical.space(init_mutations=value)
