"""Strategies in isolation: ask/tell semantics checked against hand-computed expectations."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxnas.common.errors import ConfigError
from jaxnas.spaces import nb201
from jaxnas.strategies import STRATEGIES, Reinforce, aging_evolution, tournament

SPACE = nb201.SPACE
# every test here also checks key hygiene; small programs: compiled without XLA optimisations
pytestmark = pytest.mark.usefixtures("key_reuse_check", "fast_compile")


def _tell_sequence(strategy, archs, fitness):
    state = strategy.init(jax.random.key(0))
    for a, f in zip(archs, fitness):
        state, _ = strategy.tell(state, a[None], jnp.array([f]))
    return state


@pytest.mark.parametrize("name", STRATEGIES.names())
def test_ask_shapes_and_scan_vmap(name):
    strategy = STRATEGIES.get(name)(SPACE)

    def run(key):
        k_init, k_loop = jax.random.split(key)
        state = strategy.init(k_init)

        def body(state, step):
            archs, state = strategy.ask(jax.random.fold_in(k_loop, step), state)
            state, _ = strategy.tell(state, archs, jnp.sum(archs == 3, axis=-1).astype(jnp.float32))
            return state, archs

        return jax.lax.scan(body, state, jnp.arange(15))[1]

    archs = jax.jit(jax.vmap(run))(jax.random.split(jax.random.key(0), 4))  # (runs, steps, B, L)
    assert archs.shape == (4, 15, 1, 6) and archs.dtype == jnp.int32
    assert int(archs.min()) >= 0 and int(archs.max()) < 5
    assert not np.array_equal(archs[0], archs[1])  # different seeds, different searches


def test_jitted_ask_and_tell_are_made_once_per_strategy():
    """Equal strategies share one jitted ask/tell (a second search in one process compiles nothing), and the jitted
    methods give what the plain ones give."""
    from jaxnas.strategies.base import jitted

    first, again = tournament(SPACE, population_size=6), tournament(SPACE, population_size=6)
    assert jitted(first) is jitted(again) and jitted(first) is not jitted(tournament(SPACE, population_size=7))
    ask, tell = jitted(first)
    state = first.init(jax.random.key(0))
    archs, asked = ask(jax.random.key(1), state)
    plain_archs, plain_asked = first.ask(jax.random.key(1), state)
    np.testing.assert_array_equal(archs, plain_archs)
    fitness = jnp.array([3.0])
    told, _ = tell(asked, archs, fitness)
    plain_told, _ = first.tell(plain_asked, plain_archs, fitness)
    jax.tree.map(np.testing.assert_array_equal, told, plain_told)


def test_aging_removes_the_oldest():
    strat = aging_evolution(SPACE, population_size=4, sample_size=2)
    archs = np.asarray(SPACE.decode(jnp.arange(7) * 101))  # 7 distinct architectures
    fitness = np.array([99.0, 1, 2, 3, 4, 5, 6])  # the first is the fittest, and still it must age out
    state = _tell_sequence(strat, archs, fitness)
    kept = {tuple(a) for a in np.asarray(state.archs)}
    assert kept == {tuple(a) for a in archs[3:]}
    assert sorted(np.asarray(state.born).tolist()) == [3, 4, 5, 6]
    assert int(state.count) == 7


@pytest.mark.parametrize("population, batch", [(10, 3), (16, 8)])
def test_batched_aging_removes_the_batch_oldest_at_each_tell(population, batch):
    """With B <= P/2, each tell adds B children and removes exactly the B oldest members (by birth
    number), never a newer one; so every member survives at least two tells (aging, not generational
    replacement). P=16, B=8 is `nas_search`'s default; P=10, B=3 a batch that does not divide P."""
    strat = aging_evolution(SPACE, population_size=population, sample_size=2, batch_size=batch)
    state = strat.init(jax.random.key(0))
    ask, tell = jax.jit(strat.ask), jax.jit(strat.tell)
    tells_survived = {}  # birth number -> tells after which it was still in the population
    for step in range(8):
        archs, state_after_ask = ask(jax.random.fold_in(jax.random.key(1), step), state)
        before = np.asarray(state.born)
        fitness = jax.random.uniform(jax.random.fold_in(jax.random.key(2), step), (batch,))
        state, _ = tell(state_after_ask, archs, fitness)
        after = np.asarray(state.born)
        count = int(state.count)
        old, new = set(before[before >= 0].tolist()), set(after[after >= 0].tolist())
        assert new == set(range(max(0, count - population), count))  # the P most recent evaluations
        removed = sorted(old - new)
        assert removed == sorted(old)[:len(removed)]  # who left were the oldest
        assert len(removed) == max(0, count - population) - max(0, count - batch - population)
        for b in new:
            tells_survived[b] = tells_survived.get(b, 0) + 1  # tells after which b is still a member
        order = np.argsort(np.where(after >= count - batch, after, count))[:batch]  # slots of this tell's children
        np.testing.assert_array_equal(np.asarray(state.archs)[order], np.asarray(archs))
    gone = range(int(state.count) - population)
    assert len(gone) >= 2 * batch and min(tells_survived[b] for b in gone) >= 2  # nobody left at the next tell


@pytest.mark.parametrize("population, batch", [(8, 5), (8, 8), (10, 6), (1, 1)])
def test_batched_aging_refuses_more_than_half_the_population(population, batch):
    with pytest.raises(ConfigError, match=rf"^batch_size: got {batch}; aging evolution needs batch_size <= "
                                          rf"population_size / 2 \({population // 2} for population_size {population}\)"):
        aging_evolution(SPACE, population_size=population, sample_size=1, batch_size=batch)
    tournament(SPACE, population_size=population, sample_size=1, batch_size=batch)  # no aging: no limit


def test_tournament_without_aging_keeps_everyone():
    strat = tournament(SPACE, population_size=4, sample_size=2, capacity=16)
    archs = np.asarray(SPACE.decode(jnp.arange(7) * 101))
    state = _tell_sequence(strat, archs, np.arange(7.0))
    np.testing.assert_array_equal(np.asarray(state.archs)[:7], archs)
    assert np.isinf(np.asarray(state.fitness)[7:]).all()


def test_fill_phase_is_random_then_children_are_mutants():
    strat = aging_evolution(SPACE, population_size=3, sample_size=3)
    state = strat.init(jax.random.key(0))
    archs = np.asarray(SPACE.decode(jnp.array([0, 5000, 10000])))
    for a, f in zip(archs, [1.0, 2.0, 3.0]):
        state, _ = strat.tell(state, a[None], jnp.array([f]))
    for i in range(50):
        child, _ = strat.ask(jax.random.key(i), state)
        dist = (np.asarray(child)[0] != archs).sum(1)
        assert dist.min() == 1  # a mutant of some member


def test_tournament_samples_with_replacement():
    """P=10, S=3: the single best wins iff it is drawn at least once: 1-(9/10)^3 = 0.271 with replacement
    (it would be 3/10 = 0.3 without)."""
    strat = aging_evolution(SPACE, population_size=10, sample_size=3)
    archs = np.asarray(SPACE.decode(jnp.arange(10)))
    state = _tell_sequence(strat, archs, np.arange(10.0))
    winners = jax.vmap(strat._tournament, in_axes=(0, None))(jax.random.split(jax.random.key(0), 40_000), state)
    freq = float(np.mean(np.asarray(winners) == 9))
    assert abs(freq - 0.271) < 0.012, freq


def test_liu_fraction_tournament_grows_with_population():
    strat = tournament(SPACE, population_size=10, sample_size=1, capacity=200, sample_fraction=0.05)
    assert strat.max_sample == 10
    state = _tell_sequence(strat, np.asarray(SPACE.decode(jnp.arange(200))), np.arange(200.0))
    # tournament size ceil(0.05 * 200) = 10 over 200 members: the best wins with prob 1-(199/200)^10 = 0.0489
    winners = jax.vmap(strat._tournament, in_axes=(0, None))(jax.random.split(jax.random.key(1), 40_000), state)
    assert abs(float(np.mean(np.asarray(winners) == 199)) - 0.0489) < 0.006


def test_nan_fitness_ranks_last():
    """A failed (NaN) member wins only when all 3 draws are it: (1/3)^3 = 0.037. Were NaN ranked first
    (as a bare argmax does), it would win 1-(2/3)^3 = 0.70 of tournaments."""
    strat = aging_evolution(SPACE, population_size=3, sample_size=3)
    archs = np.asarray(SPACE.decode(jnp.array([1, 2, 3])))
    state = _tell_sequence(strat, archs, [np.nan, 1.0, 0.5])
    winners = jax.vmap(strat._tournament, in_axes=(0, None))(jax.random.split(jax.random.key(0), 20_000), state)
    assert abs(float(np.mean(np.asarray(winners) == 0)) - 1 / 27) < 0.01


def test_reinforce_learns_the_rewarded_op():
    """Toy reward: 100 when edge 0 carries nor_conv_3x3, else 0; p(op 3 on edge 0) must rise from ~0.2."""
    strat = Reinforce(SPACE, learning_rate=0.01)
    target = jnp.array([[3, 0, 0, 0, 0, 0]])

    def prob_edge0(state):  # marginal of the first token: independent of the rest of the sequence
        logits = strat.controller.apply(state.params, target)[0, 0]
        return jax.nn.softmax(logits)[3]

    def body(state, step):
        archs, state = strat.ask(jax.random.fold_in(jax.random.key(1), step), state)
        state, metrics = strat.tell(state, archs, jnp.where(archs[:, 0] == 3, 1.0, 0.0))
        return state, metrics["entropy"]

    state0 = strat.init(jax.random.key(0))
    state, entropy = jax.jit(lambda s: jax.lax.scan(body, s, jnp.arange(300)))(state0)
    p0, p1 = float(prob_edge0(state0)), float(prob_edge0(state))
    assert abs(p0 - 0.2) < 0.05 and p1 > 0.8, (p0, p1)
    assert float(entropy[-1]) < float(entropy[0])


def test_reinforce_ignores_nan_rewards():
    strat = Reinforce(SPACE)
    state = strat.init(jax.random.key(0))
    arch = jnp.zeros((1, 6), jnp.int32)
    state, _ = strat.tell(state, arch, jnp.array([0.5]))
    after, _ = strat.tell(state, arch, jnp.array([jnp.nan]))
    assert float(after.baseline) == float(state.baseline) == pytest.approx(0.5)
    assert all(bool(jnp.isfinite(x).all()) for x in jax.tree.leaves(after.params))


@pytest.mark.parametrize("kwargs, field", [
    (dict(population_size=5, sample_size=6), "sample_size"),
    (dict(population_size=0), "population_size"),
    (dict(sample_size=-1), "sample_size"),
])
def test_bad_evolution_settings_name_the_field(kwargs, field):
    with pytest.raises(ConfigError, match=f"^{field}:"):
        aging_evolution(SPACE, **kwargs)


def test_bad_reinforce_settings_name_the_field():
    with pytest.raises(ConfigError, match="^learning_rate:"):
        Reinforce(SPACE, learning_rate=0.0)
    with pytest.raises(ConfigError, match="^baseline_decay:"):
        Reinforce(SPACE, baseline_decay=1.5)
