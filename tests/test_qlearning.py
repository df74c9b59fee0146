"""MetaQNN's Q-learning (jaxnas/strategies/qlearning.py): the update against hand-computed numbers, the epsilon
schedule, replay counts, masking, greedy ties, repeats, determinism, NaN rewards and refused settings."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from test_space_protocol import TOY, VALID

from experiments import nb201 as nb201_entry
from experiments.builders import build_strategy
from experiments.validation import parse_epsilon_schedule
from experiments.configs import nas_search as nas_search_config
from experiments.configs import nb201 as nb201_config
from jaxnas.common.errors import ConfigError
from jaxnas.spaces import nb201
from jaxnas.spaces.base import AgentStates, CategoricalSpace, prefix_states
from jaxnas.strategies import STRATEGIES, QLearning
from jaxnas.strategies.qlearning import PAPER_SCHEDULE, scaled_schedule

pytestmark = pytest.mark.usefixtures("key_reuse_check", "fast_compile")

TINY = CategoricalSpace(name="tiny", num_positions=3, num_choices=2)  # prefix states: root 0, (a0) 1-2, (a0 a1) 3-6


def _chain_rule(arch, position):  # ids: 0 END, 1, 2; after END only END; the last position only END
    if position == 0:
        return jnp.ones(arch.shape[:-1] + (3,), bool)
    ended = jnp.any(arch[..., :position] == 0, axis=-1, keepdims=True) | (position == 2)
    return jnp.where(ended, jnp.arange(3) == 0, True)


_CHAIN = CategoricalSpace(name="chain", num_positions=3, num_choices=3, rule=_chain_rule)
_PREFIX = prefix_states(_CHAIN)  # before p=1: 1 + a0; before p=2: 4 + 3 a0 + a1
CHAIN = CategoricalSpace(name="chain", num_positions=3, num_choices=3, rule=_chain_rule, agent_states=AgentStates(
    _PREFIX.num_states, _PREFIX.index, lambda a: (jnp.argmax(a == 0, axis=-1) + 1).astype(jnp.int32)))


def _full(values):
    return np.asarray(values, np.float32)


def test_update_is_the_formula_applied_last_transition_first():
    """alpha 0.5, gamma 0.9, Q0 0.5. Trajectory (1, 0, 1), reward 0.8, states 0 -> 2 -> 5:
    Q[5,1] = 0.5 + 0.5 (0.8 - 0.5) = 0.65 (terminal: no max);
    Q[2,0] = 0.5 + 0.5 (0.9 max(Q[5]) - 0.5) = 0.5 + 0.5 (0.585 - 0.5) = 0.5425;
    Q[0,1] = 0.5 + 0.5 (0.9 * 0.5425 - 0.5) = 0.494125.
    Forwards (first transition first) Q[0,1] and Q[2,0] would both be 0.475: the order is checked.
    Then (1, 0, 0), reward 0.2: Q[5,0] = 0.35; Q[2,0] = 0.5425 + 0.5 (0.9 * 0.65 - 0.5425) = 0.56375 (the max is
    the other action's 0.65); Q[0,1] = 0.494125 + 0.5 (0.9 * 0.56375 - 0.494125) = 0.50075."""
    s = QLearning(TINY, total_models=4, learning_rate=0.5, discount=0.9, initial_q=0.5)
    q0 = s.init(jax.random.key(0)).q
    q1 = np.asarray(s.update(q0, jnp.array([1, 0, 1]), 0.8))
    expected = np.full((7, 2), 0.5, np.float32)
    expected[5, 1], expected[2, 0], expected[0, 1] = 0.65, 0.5425, 0.494125
    np.testing.assert_allclose(q1, expected, rtol=1e-6)
    assert abs(q1[0, 1] - 0.475) > 0.01 and abs(q1[2, 0] - 0.475) > 0.01
    q2 = np.asarray(s.update(jnp.asarray(q1), jnp.array([1, 0, 0]), 0.2))
    expected[5, 0], expected[2, 0], expected[0, 1] = 0.35, 0.56375, 0.50075
    np.testing.assert_allclose(q2, expected, rtol=1e-6)


def test_update_of_a_chain_that_ends_early_and_the_masked_max():
    """alpha 0.5, gamma 0.9. (2, END, END), reward 0.6: the terminal transition is END at position 1 (state 3),
    Q[3,0] = 0.55; Q[0,2] = 0.5 + 0.5 (0.9 * 0.55 - 0.5) = 0.4975; the padding (state 10) is not touched.
    (0, END, END), reward 0.3: one transition, Q[0,0] = 0.4.
    (1, 1, END), reward 0.6, with Q[8] = (0.2, 0.9, 0.9) before: ids 1 and 2 are not allowed at the last
    position, so Q[8,0] = 0.2 + 0.5 (0.6 - 0.2) = 0.4 and Q[2,1] = 0.5 + 0.5 (0.9 * 0.4 - 0.5) = 0.43
    (0.655 if the max read the forbidden 0.9s); Q[0,1] = 0.5 + 0.5 (0.9 * max(Q[2]) - 0.5) = 0.475."""
    s = QLearning(CHAIN, total_models=4, learning_rate=0.5, discount=0.9)
    q0 = s.init(jax.random.key(0)).q
    assert q0.shape == (13, 3)
    q = np.asarray(s.update(q0, jnp.array([2, 0, 0]), 0.6))
    expected = np.full((13, 3), 0.5, np.float32)
    expected[3, 0], expected[0, 2] = 0.55, 0.4975
    np.testing.assert_allclose(q, expected, rtol=1e-6)
    q = np.asarray(s.update(q0, jnp.array([0, 0, 0]), 0.3))
    expected = np.full((13, 3), 0.5, np.float32)
    expected[0, 0] = 0.4
    np.testing.assert_allclose(q, expected, rtol=1e-6)
    q_start = q0.at[8].set(jnp.array([0.2, 0.9, 0.9]))
    q = np.asarray(s.update(q_start, jnp.array([1, 1, 0]), 0.6))
    expected = np.asarray(q_start).copy()
    expected[8, 0], expected[2, 1], expected[0, 1] = 0.4, 0.43, 0.475
    np.testing.assert_allclose(q, expected, rtol=1e-6)


def test_epsilon_schedule_scaling_and_a_custom_table():
    assert scaled_schedule(2700) == PAPER_SCHEDULE
    assert scaled_schedule(100) == ((1.0, 56), (0.9, 4), (0.8, 4), (0.7, 4), (0.6, 6), (0.5, 6), (0.4, 5), (0.3, 5),
                                    (0.2, 5), (0.1, 5))
    assert [c for _, c in scaled_schedule(5)] == [3, 0, 0, 0, 1, 1, 0, 0, 0, 0]  # zero-count phases are skipped
    assert all(sum(c for _, c in scaled_schedule(t)) == t for t in range(1, 400))
    default = QLearning(TINY)
    assert default.total_models == 100 and default.schedule == scaled_schedule(100)
    eps = [float(default.epsilon(jnp.int32(u))) for u in (0, 55, 56, 60, 64, 68, 99, 100, 500)]
    np.testing.assert_allclose(eps, [1.0, 1.0, 0.9, 0.8, 0.7, 0.6, 0.1, 0.1, 0.1], rtol=1e-6)  # 56 + 4 + 4 + 4
    custom = QLearning(TINY, total_models=5, epsilon_schedule=[[1.0, 2], [0.3, 0], [0.5, 3]])
    assert custom.epsilon_schedule == ((1.0, 2), (0.3, 0), (0.5, 3))  # a list (a config's) becomes a tuple
    np.testing.assert_allclose([float(custom.epsilon(jnp.int32(u))) for u in range(8)], [1, 1] + [0.5] * 6)
    assert parse_epsilon_schedule("1.0:2, 0.3:0,0.5:3") == custom.epsilon_schedule
    assert parse_epsilon_schedule(" ") is None
    # the clock is the number of unique models told
    s = QLearning(TINY, total_models=3, epsilon_schedule=((1.0, 1), (0.25, 2)))
    state = s.init(jax.random.key(0))
    seen = []
    for arch in ([0, 0, 0], [0, 0, 0], [1, 1, 1]):
        state, m = s.tell(state, jnp.array([arch]), jnp.array([0.5]))
        seen.append((int(m["unique_models"]), float(m["epsilon"])))
    assert seen == [(1, 0.25), (1, 0.25), (2, 0.25)]


@pytest.fixture(scope="module")
def nb201_q():
    s = QLearning(nb201.SPACE, total_models=100)
    return s, jax.jit(s.ask), jax.jit(s.tell)


def test_one_replay_round_of_128_per_told_model(nb201_q):
    """One model in memory: every replay draws it, so after k updates its terminal Q is
    r + (0.5 - r) 0.99^k; with r = 0.9 and k = 128 (one round), 0.9 - 0.4 * 0.99^128 = 0.78948."""
    s, ask, tell = nb201_q
    state = s.init(jax.random.key(0))
    arch = jnp.array([[3, 1, 4, 0, 2, 3]])
    state, _ = tell(state, arch, jnp.array([0.9]))
    assert int(state.owed) == 1 and int(state.replays) == 0  # tell has no key: the next ask runs the round
    archs, state = ask(jax.random.key(1), state)
    assert int(state.resamples) == 0 and int(state.replays) == 128 and int(state.owed) == 0
    terminal = (s.agent.index(arch[0], 5), 3)
    np.testing.assert_allclose(float(state.q[terminal]), 0.9 - 0.4 * 0.99 ** 128, rtol=1e-5)
    state, _ = tell(state, archs, jnp.array([0.8]))
    _, state = ask(jax.random.key(2), state)
    assert int(state.replays) == 128 * (2 + int(state.resamples))
    assert int(state.multiplicity.sum()) == 2 + int(state.resamples)


def test_a_repeat_is_incorporated_and_resampled_up_to_max_resamples():
    """Greedy (epsilon 0) with Q favouring the remembered model's path: every sample is that model. Each repeat
    adds one to its multiplicity and runs one round; after max_resamples = 3 the fourth sample is returned."""
    s = QLearning(TINY, total_models=4, epsilon_schedule=((0.0, 4),), replay_samples=5, max_resamples=3)
    state = s.init(jax.random.key(0))
    arch = jnp.array([[1, 0, 1]])
    state, _ = s.tell(state, arch, jnp.array([0.99]))
    path = [(0, 1), (2, 0), (5, 1)]  # (state, action) along (1, 0, 1)
    state = state.replace(q=state.q.at[tuple(zip(*path))].set(0.99))
    out, state = jax.jit(s.ask)(jax.random.key(1), state)
    np.testing.assert_array_equal(out, arch)
    assert int(state.resamples) == 3 and int(state.repeats_returned) == 1
    assert int(state.multiplicity[0]) == 4 and int(state.replays) == 5 * (1 + 3)
    state, m = s.tell(state, out, jnp.array([0.99]))
    assert int(state.multiplicity[0]) == 5 and int(m["unique_models"]) == 1 and int(state.stored) == 1


def _valid_state_masks(space):
    """(num_states, C) bool: the allowed ids of every state a valid architecture passes through."""
    agent = space.states()
    table = np.zeros((agent.num_states, space.num_choices), bool)
    for arch in VALID:
        a = jnp.asarray(arch)
        for p in range(space.num_positions):
            table[int(agent.index(a, p))] = np.asarray(space.position_mask(a, p))
    return table


def test_no_invalid_action_at_any_state_whatever_q_says():
    """The toy space's rule (id at 2 <= id at 1) and counts (2, 3, 4, 3): Q is highest on every forbidden id of
    every state, yet greedy (epsilon 0), mixed (0.5) and random (1) walks only ever take allowed ids; the random
    Q tables make them reach all 36 valid architectures, i.e. every state."""
    masks = _valid_state_masks(TOY)
    assert masks.any(-1).sum() == 1 + 2 + 6 + 12  # every state of the prefix tree that a valid prefix reaches
    s = QLearning(TOY, total_models=3, epsilon_schedule=((0.0, 1), (0.5, 1), (1.0, 1)))
    base = s.init(jax.random.key(0))

    def one(key, unique):
        k_q, k_ask = jax.random.split(key)
        q = jnp.where(masks, jax.random.uniform(k_q, masks.shape), 10.0)
        return s.ask(k_ask, base.replace(q=q, unique=unique))[0][0]

    keys = jax.random.split(jax.random.key(1), 3 * 1500)
    archs = np.asarray(jax.jit(jax.vmap(one))(keys, jnp.repeat(jnp.arange(3), 1500)))
    for phase in range(3):
        got = set(map(tuple, archs[phase * 1500:(phase + 1) * 1500]))
        assert got == VALID, (phase, got - VALID, len(got))


def test_greedy_takes_the_argmax_and_breaks_ties_uniformly():
    one = CategoricalSpace(name="one", num_positions=1, num_choices=4)
    s = QLearning(one, total_models=2, epsilon_schedule=((0.0, 1), (1.0, 1)))
    base = s.init(jax.random.key(0))
    draw = jax.jit(jax.vmap(lambda k, q, u: s.ask(k, base.replace(q=q[None], unique=u))[0][0, 0], (0, None, None)))
    keys = jax.random.split(jax.random.key(1), (3, 4000))
    assert set(np.asarray(draw(keys[0], jnp.array([0.2, 0.9, 0.3, 0.1]), 0)).tolist()) == {1}
    tied = np.asarray(draw(keys[1], jnp.array([0.2, 0.9, 0.9, 0.1]), 0))
    assert set(tied.tolist()) == {1, 2} and abs(np.mean(tied == 1) - 0.5) < 0.03  # sd 0.008
    uniform = np.bincount(np.asarray(draw(keys[2], jnp.array([0.2, 0.9, 0.9, 0.1]), 1)), minlength=4) / 4000
    assert np.abs(uniform - 0.25).max() < 0.03  # epsilon 1: uniform over the allowed ids, Q ignored


def test_no_repeat_while_unseen_models_remain_and_multiplicity_grows():
    """36 asks on the toy space's 36 valid architectures give each once; the 37th, with nothing left, returns a
    repeat after exactly max_resamples resamples, each of them counted in the memory's multiplicities."""
    s = QLearning(TOY, total_models=36, epsilon_schedule=((1.0, 36),), replay_samples=2, max_resamples=1000)

    def run(key):
        def body(state, i):
            archs, state = s.ask(jax.random.fold_in(key, i), state)
            state, _ = s.tell(state, archs, jnp.sum(archs, -1).astype(jnp.float32))
            return state, archs[0]

        state, archs = jax.lax.scan(body, s.init(key), jnp.arange(36))
        extra, after = s.ask(jax.random.fold_in(key, 36), state)
        return archs, state, extra[0], after

    archs, state, extra, after = jax.jit(run)(jax.random.key(3))
    assert set(map(tuple, np.asarray(archs))) == VALID and int(state.unique) == 36
    resampled = int(state.resamples)
    assert resampled > 0 and int(state.repeats_returned) == 0
    assert int(state.multiplicity.sum()) == 36 + resampled
    assert int(state.replays) == 2 * (35 + resampled)  # one round per told model (the last one's is owed) and repeat
    assert tuple(np.asarray(extra)) in VALID and int(after.repeats_returned) == 1
    assert int(after.resamples) == resampled + 1000 and int(after.multiplicity.sum()) == 36 + resampled + 1000


def test_a_batch_holds_no_twins_and_counts_them_at_tell():
    """Three ids, a batch of three: every batch is a permutation; a resampled twin is one more sample of the
    model in flight (multiplicity and a replay round owed when it is told), as the published server counts it."""
    three = CategoricalSpace(name="three", num_positions=1, num_choices=3)
    s = QLearning(three, total_models=3, batch_size=3, epsilon_schedule=((1.0, 3),))

    def one(key):
        archs, state = s.ask(key, s.init(key))
        told, _ = s.tell(state, archs, jnp.array([0.1, 0.2, 0.3]))
        return archs[:, 0], state, told

    archs, asked, told = jax.jit(jax.vmap(one))(jax.random.split(jax.random.key(0), 200))
    assert (np.sort(np.asarray(archs), -1) == [0, 1, 2]).all()
    pending = np.asarray(asked.pending)
    assert pending.sum() > 0 and (pending.sum(-1) == np.asarray(asked.resamples)).all()
    np.testing.assert_array_equal(np.asarray(told.multiplicity)[:, :3], 1 + pending)
    np.testing.assert_array_equal(np.asarray(told.owed), 3 + pending.sum(-1))
    assert (np.asarray(told.pending) == 0).all()


def test_same_seed_same_run_and_vmap_equals_one_by_one(nb201_q):
    s = QLearning(nb201.SPACE, total_models=30)  # 30 models: every phase of the scaled schedule is reached

    def run(seed):
        key = jax.random.key(seed)

        def body(state, i):
            archs, state = s.ask(jax.random.fold_in(key, i), state)
            state, _ = s.tell(state, archs, 0.6 + 0.1 * jnp.sum(archs == 3, -1).astype(jnp.float32))
            return state, archs[0]

        state, archs = jax.lax.scan(body, s.init(key), jnp.arange(30))
        return archs, state.q

    archs, q = jax.jit(jax.vmap(run))(jnp.arange(3))
    single = jax.jit(run)
    for r in range(3):
        a, qr = single(r)
        np.testing.assert_array_equal(a, archs[r])
        np.testing.assert_allclose(qr, q[r], rtol=1e-6)
    again, _ = single(0)
    np.testing.assert_array_equal(again, archs[0])
    assert not np.array_equal(archs[0], archs[1]) and not np.array_equal(archs[1], archs[2])
    assert len({tuple(a) for a in np.asarray(archs[0])}) == 30  # no repeat among 30 of 15,625


def test_nan_fitness_is_rewarded_zero_never_learned_as_nan(nb201_q):
    s, ask, tell = nb201_q
    state = s.init(jax.random.key(0))
    arch = jnp.array([[0, 1, 2, 3, 4, 0]])
    state, _ = tell(state, arch, jnp.array([jnp.nan]))
    assert float(state.reward[0]) == 0.0 and int(state.unique) == 1
    _, state = ask(jax.random.key(1), state)
    assert bool(jnp.isfinite(state.q).all())
    terminal = (s.agent.index(arch[0], 5), 0)
    np.testing.assert_allclose(float(state.q[terminal]), 0.5 * 0.99 ** 128, rtol=1e-5)


@pytest.mark.parametrize("kwargs, message", [
    (dict(epsilon_schedule=((1.0, 50),)), r"^epsilon_schedule: got counts summing to 50; allowed: counts summing to "
                                          r"total_models \(100\)$"),
    (dict(epsilon_schedule=((1.5, 100),)), r"^epsilon_schedule: got epsilon 1.5; allowed: a number in \[0, 1\]$"),
    (dict(epsilon_schedule=((0.5, -1), (1.0, 101))), r"^epsilon_schedule: got count -1; allowed: an integer >= 0$"),
    (dict(epsilon_schedule=()), r"^epsilon_schedule: got \(\); allowed"),
    (dict(learning_rate=0.0), r"^learning_rate: got 0.0; allowed: a number in \(0, 1\]$"),
    (dict(learning_rate=1.5), r"^learning_rate: got 1.5; allowed: a number in \(0, 1\]$"),
    (dict(discount=-0.1), r"^discount:"),
    (dict(total_models=0), r"^total_models: got 0; allowed: an integer > 0$"),
    (dict(replay_samples=-1), r"^replay_samples: got -1; allowed: an integer >= 0$"),
    (dict(initial_q=float("nan")), r"^initial_q: got nan; allowed: a finite number$"),
])
def test_bad_settings_name_the_field(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        QLearning(TINY, **kwargs)


@pytest.mark.parametrize("field, value, message", [
    ("epsilon_schedule", "1.0:60,0.1:30", r"^qlearning.epsilon_schedule: got counts summing to 90; allowed: counts "
                                          r"summing to total_models \(100\)$"),
    ("epsilon_schedule", "1.0-100", r"^qlearning.epsilon_schedule: got '1.0-100' \(entry '1.0-100'\); allowed: ''"),
    ("epsilon_schedule", "0.5:50,2:50", r"^qlearning.epsilon_schedule: got '0.5:50,2:50' \(entry '2:50'\); allowed: "
                                        r"'' .*, epsilon in \[0, 1\], count an integer >= 0, e.g. '1.0:60,0.5:20,0.1:20'$"),
    ("epsilon_schedule", "1.0:110,0.5:-10", r"^qlearning.epsilon_schedule: got .* \(entry '0.5:-10'\); allowed"),
    ("learning_rate", 0.0, r"^qlearning.learning_rate: got 0.0; allowed: a number in \(0, 1\]$"),
    ("discount", 1.5, r"^qlearning.discount: got 1.5; allowed: a number in \[0, 1\]$"),
    ("replay_samples", 100_001, r"^qlearning.replay_samples: got 100001; allowed: an integer in \[0, 100000\]$"),
    ("total_models", 0, r"^qlearning.total_models: got 0; allowed: an integer in \[1, 100000\]$"),
])
def test_table_entry_point_refuses_bad_qlearning_settings(field, value, message):
    config = nb201_config.get_config()
    config.strategy = "qlearning"
    config.qlearning[field] = value
    with pytest.raises(ConfigError, match=message):
        nb201_entry.validate(config)


def test_builders_give_the_configs_settings():
    config = nb201_config.get_config()
    config.qlearning.epsilon_schedule = "1.0:60,0.5:20,0.1:20"
    s = build_strategy(config, "qlearning", nb201.SPACE)
    assert s.total_models == 100 and s.schedule == ((1.0, 60), (0.5, 20), (0.1, 20)) and s.replay_samples == 128
    config.strategy = "all"
    assert "qlearning" in nb201_entry.validate(config) and nb201_entry.LABELS["qlearning"] == "Q-learning (MetaQNN)"
    trained = nas_search_config.get_config("small")
    s = build_strategy(trained, "qlearning", nb201.SPACE, batch_size=8)
    assert s.total_models == trained.evaluations and s.batch_size == 8 and s.schedule == scaled_schedule(16)
    assert STRATEGIES.get("qlearning") is QLearning

