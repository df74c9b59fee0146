"""The general space: per-position option counts and a validity rule, and every strategy working through it.

The toy space has 4 positions with 2, 3, 4 and 3 options, and a rule in the style of MetaQNN's transitions:
the id at position 2 may not exceed the id at position 1. Its valid architectures are enumerated by hand
(2 * (1 + 2 + 3) * 3 = 36 of 2 * 3 * 4 * 3 = 72 codes), so every claim below is checked exhaustively.
"""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxnas.common.errors import ConfigError
from jaxnas.spaces import nb201
from jaxnas.spaces.base import CategoricalSpace
from jaxnas.strategies import STRATEGIES, Reinforce

COUNTS = (2, 3, 4, 3)


def _rule(arch, position):
    if position != 2:
        return jnp.ones(arch.shape[:-1] + (4,), bool)
    return jnp.arange(4) <= arch[..., 1:2]


TOY = CategoricalSpace(name="toy", num_positions=4, num_choices=4, choices=COUNTS, rule=_rule)
COUNTS_ONLY = CategoricalSpace(name="counts", num_positions=4, num_choices=4, choices=COUNTS)
VALID = {a for a in itertools.product(*map(range, COUNTS)) if a[2] <= a[1]}


def test_validity_and_numbering_by_enumeration():
    assert len(VALID) == 36 and TOY.size == 72 and not TOY.uniform and nb201.SPACE.uniform
    codes = jnp.arange(TOY.size)
    archs = np.asarray(TOY.decode(codes))
    assert sorted(map(tuple, archs)) == sorted(itertools.product(*map(range, COUNTS)))  # a bijection
    np.testing.assert_array_equal(TOY.encode(jnp.asarray(archs)), codes)
    valid = np.asarray(TOY.is_valid(jnp.asarray(archs)))
    assert {tuple(a) for a, v in zip(archs, valid) if v} == VALID
    assert not bool(TOY.is_valid(jnp.array([0, 0, 0, 3])))  # position 3 has only 3 options
    assert not bool(TOY.is_valid(jnp.array([2, 0, 0, 0])))


@pytest.mark.parametrize("space", [TOY, COUNTS_ONLY], ids=["rule", "counts"])
def test_sample_and_mutate_stay_valid_and_reach_everything(space):
    valid = VALID if space is TOY else set(itertools.product(*map(range, COUNTS)))
    archs = np.asarray(space.sample(jax.random.key(0), (4000,)))
    seen = set(map(tuple, archs))
    assert seen == valid  # never invalid, and every valid architecture is drawn
    children = np.asarray(jax.jit(space.mutate)(jax.random.key(1), jnp.asarray(archs)))
    assert set(map(tuple, children)) <= valid
    changed = (children != archs).sum(-1)
    assert changed.min() >= 1  # every architecture here has a position with another allowed id
    if space is COUNTS_ONLY:
        assert changed.max() == 1  # without a rule nothing needs repairing: exactly one position changes
        # the changed position is uniform over the 4 positions (each has an alternative)
        pos_counts = np.bincount(np.argmax(children != archs, -1), minlength=4)
        assert pos_counts.min() > 800


def test_mutate_repairs_later_positions_broken_by_the_rule():
    arch = jnp.array([0, 2, 2, 0])  # lowering position 1 breaks position 2 (must stay <= position 1)
    children = np.asarray(jax.vmap(TOY.mutate, (0, None))(jax.random.split(jax.random.key(3), 2000), arch))
    assert set(map(tuple, children)) <= VALID
    lowered = children[children[:, 1] < 2]
    assert len(lowered) and (lowered[:, 2] <= lowered[:, 1]).all()


def test_reinforce_never_samples_a_masked_choice_and_its_distribution_sums_to_one():
    strat = Reinforce(TOY, batch_size=64, learning_rate=0.05)
    state = strat.init(jax.random.key(0))
    archs = jnp.asarray(sorted(VALID))
    total = float(jnp.exp(strat.log_prob(state, archs)).sum())
    assert abs(total - 1.0) < 1e-5  # the controller's distribution lives on the valid architectures only
    ask, tell = jax.jit(strat.ask), jax.jit(strat.tell)
    # reward pushes toward high ids everywhere, the direction the rule and the counts cut off
    for step in range(30):
        sampled, state = ask(jax.random.fold_in(jax.random.key(1), step), state)
        assert set(map(tuple, np.asarray(sampled))) <= VALID
        state, metrics = tell(state, sampled, jnp.sum(sampled, -1).astype(jnp.float32))
        assert np.isfinite(float(metrics["loss"])) and np.isfinite(float(metrics["entropy"]))
    assert abs(float(jnp.exp(strat.log_prob(state, archs)).sum()) - 1.0) < 1e-5
    # the head matrix holds one column per option of each position (2 + 3 + 4 + 3), not L x num_choices
    assert state.params["params"]["heads"]["kernel"].shape == (35, sum(COUNTS))


@pytest.mark.parametrize("name", STRATEGIES.names())
def test_every_strategy_finds_the_best_valid_architecture(name):
    """Fitness = sum of ids / 100 (an accuracy-sized fraction): the best valid architecture is (1, 2, 2, 2);
    (1, 2, 3, 2) is out of range."""
    strategy = STRATEGIES.get(name)(TOY)

    def run(key):
        state = strategy.init(key)

        def body(state, step):
            archs, state = strategy.ask(jax.random.fold_in(key, step), state)
            state, _ = strategy.tell(state, archs, jnp.sum(archs, -1).astype(jnp.float32) / 100)
            return state, archs

        return jax.lax.scan(body, state, jnp.arange(200))[1]

    archs = np.asarray(jax.jit(run)(jax.random.key(5))).reshape(-1, 4)
    assert set(map(tuple, archs)) <= VALID
    assert (1, 2, 2, 2) in set(map(tuple, archs))


def test_bad_spaces_are_refused():
    with pytest.raises(ConfigError, match="choices"):
        CategoricalSpace(name="bad", num_positions=3, num_choices=4, choices=(2, 3))
    with pytest.raises(ConfigError, match="choices"):
        CategoricalSpace(name="bad", num_positions=2, num_choices=4, choices=(2, 5))
