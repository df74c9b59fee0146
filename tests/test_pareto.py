"""Pareto mask, exact 2-D hypervolume and MnasNet's reward against independent references and hand-computed values;
NAS-Bench-Macro's known front from the raw JSON; tiny multi-objective searches of each method on the table."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxnas.common.errors import ConfigError
from jaxnas.problems.macro_table import load_macro_table
from jaxnas.search.pareto import hypervolume_2d, mnas_reward, mnas_reward_jax, pareto_mask
from jaxnas.search.table_front import (METHODS, FrontProblem, GradientFront, WeightSweep, run_front_search,
                                       score_runs)

pytestmark = pytest.mark.usefixtures("fast_compile")  # exact checks and tiny runs: compile-bound (conftest)


def brute_force_mask(acc, cost):
    """O(n^2): i is kept iff nothing dominates it and no identical point comes before it."""
    n = len(acc)
    keep = np.ones(n, bool)
    for i, j in itertools.product(range(n), range(n)):
        dominates = acc[j] >= acc[i] and cost[j] <= cost[i] and (acc[j] > acc[i] or cost[j] < cost[i])
        duplicate_before = j < i and acc[j] == acc[i] and cost[j] == cost[i]
        if dominates or duplicate_before:
            keep[i] = False
    return keep


@pytest.mark.parametrize("seed", range(6))
def test_pareto_mask_matches_brute_force_with_ties(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 60))
    acc = rng.integers(0, 6, n).astype(float)  # few values: many ties and exact duplicates
    cost = rng.integers(0, 6, n).astype(float)
    np.testing.assert_array_equal(pareto_mask(acc, cost), brute_force_mask(acc, cost))


def test_pareto_mask_hand_case_and_empty():
    # (acc, cost): (1, 1) kept; (1, 1) again dropped (duplicate, later); (2, 1) dominates both (1, 1)s; (2, 3)
    # dominated by (2, 1) (same accuracy, dearer); (3, 5) kept; (0, 0) kept (cheapest)
    acc, cost = [1, 1, 2, 2, 3, 0], [1, 1, 1, 3, 5, 0]
    assert pareto_mask(acc, cost).tolist() == [False, False, True, False, True, True]
    assert pareto_mask([2, 2], [1, 1]).tolist() == [True, False]  # of duplicates, the first
    assert pareto_mask([], []).shape == (0,)


def test_hypervolume_hand_cases():
    ref = (0.0, 4.0)
    assert hypervolume_2d([3], [1], ref) == 9.0  # [0, 3] x [1, 4]: 3 * 3
    # (acc 2, cost 1) and (3, 2): cost 1-2 at acc 2 (1 * 2 = 2) + cost 2-4 at acc 3 (2 * 3 = 6) = 8;
    # as rectangles: 2 * 3 + 3 * 2 - overlap [0, 2] x [2, 4] (4) = 8
    assert hypervolume_2d([2, 3], [1, 2], ref) == 8.0
    assert hypervolume_2d([2, 3, 1, 3], [1, 2, 3, 2], ref) == 8.0  # a dominated point and a duplicate add nothing
    assert hypervolume_2d([5, 2, 3], [4, 1, 2], ref) == 8.0  # cost == cost_ref: on the boundary, zero width
    assert hypervolume_2d([0, 5], [1, 9], ref) == 0.0  # acc == acc_ref, cost beyond the reference
    assert hypervolume_2d([], [], ref) == 0.0
    # reference not at the origin: (acc 90, cost 10), (80, 5) against (70, 20): 5 * 10 + 10 * 20 = 250
    assert hypervolume_2d([90, 80], [10, 5], (70, 20)) == 250.0


def test_hypervolume_against_a_grid_count():
    # integer points and a reference on the lattice: counting unit cells whose centre is dominated is exact
    rng = np.random.default_rng(0)
    acc, cost = rng.integers(0, 30, 25), rng.integers(0, 30, 25)
    ref = (3, 27)
    a_c, c_c = np.meshgrid(np.arange(ref[0], 30) + 0.5, np.arange(0, ref[1]) + 0.5, indexing="ij")
    dominated = ((acc[None, None] > a_c[..., None]) & (cost[None, None] < c_c[..., None])).any(-1)
    assert hypervolume_2d(acc, cost, ref) == float(dominated.sum())
    # continuous points: a 2000 x 2000 grid of cell centres, within its discretisation error
    acc, cost = rng.uniform(0, 1, 40), rng.uniform(0, 1, 40)
    g = (np.arange(2000) + 0.5) / 2000
    dominated = np.zeros((2000, 2000), bool)
    for a, c in zip(acc, cost):
        dominated |= (g[:, None] < a) & (g[None, :] > c)
    assert hypervolume_2d(acc, cost, (0.0, 1.0)) == pytest.approx(dominated.mean(), abs=2e-3)


def test_mnas_reward_hand_values_and_jax_form():
    assert mnas_reward(80.0, 50.0, 50.0) == 80.0  # at the target the penalty is 1
    # twice the target, soft constraint: 80 * 2^-0.07 = 80 * exp(-0.07 * 0.693147) = 80 * 0.952638 = 76.2110
    assert mnas_reward(80.0, 100.0, 50.0) == pytest.approx(76.2110, abs=1e-4)
    # half the target: 80 * 0.5^-0.07 = 80 * 1.049717 = 83.9774 (cheaper networks are rewarded)
    assert mnas_reward(80.0, 25.0, 50.0) == pytest.approx(83.9774, abs=1e-4)
    # the hard constraint (alpha = 0, beta = -1): accuracy under the target, accuracy * T / cost above it
    np.testing.assert_allclose(mnas_reward([80, 80], [25, 100], 50.0, w=0.0, beta=-1.0), [80.0, 40.0])
    acc, cost = np.array([70.0, 90.0, 93.0]), np.array([10.0, 55.0, 100.0])
    np.testing.assert_allclose(jax.jit(mnas_reward_jax)(acc, cost, 55.0, -0.3), mnas_reward(acc, cost, 55.0, -0.3),
                               rtol=1e-6)


@pytest.mark.parametrize("call, field", [
    (lambda: pareto_mask([[1, 2]], [[1, 2]]), "acc"),
    (lambda: pareto_mask([1, 2], [1]), "cost"),
    (lambda: pareto_mask([1, np.nan], [1, 2]), "acc"),
    (lambda: pareto_mask(["a"], [1]), "acc"),
    (lambda: hypervolume_2d([1], [1], (0, 1, 2)), "reference"),
    (lambda: hypervolume_2d([1], [1], (0, np.inf)), "reference"),
    (lambda: hypervolume_2d([1], [1], ("a", 2)), "reference"),
    (lambda: mnas_reward(90, 10, 0), "target"),
    (lambda: mnas_reward(90, -1, 10), "cost"),
    (lambda: mnas_reward([90, 91], [1], 10), "cost"),
    (lambda: mnas_reward(90, 10, 10, w=np.nan), "w"),
    (lambda: WeightSweep(w_start=0.1), "w_start"),
    (lambda p: run_front_search("gradient", p, gradient={"lr": 0.1}), "gradient"),
    (lambda p: run_front_search("random", p, runs=0), "runs"),
    (lambda p: run_front_search("random", p, budget=1), "budget"),
    (lambda: run_front_search("annealing", None), "method"),
    (lambda: GradientFront(None, budget=10, learning_rate=-1.0), "gradient.learning_rate"),
])
def test_bad_input_names_the_argument(call, field, problem):
    with pytest.raises(ConfigError) as err:
        call() if call.__code__.co_argcount == 0 else call(problem)
    assert err.value.field == field and "\n" not in str(err.value)



def test_known_front_size_from_the_raw_json(macro_json):
    entries = list(macro_json.values())
    flops = np.array([e["flops"] for e in entries], float)
    mean_all = np.array([e["mean_acc"] for e in entries], float)
    reported = np.array([np.mean(e["test_acc"][1:]) for e in entries])  # search on training 0, report 1-2
    assert pareto_mask(mean_all, flops).sum() == 35  # the dataset README's 35-member front
    assert pareto_mask(reported, flops).sum() == 38


@pytest.fixture(scope="module")
def problem():
    return FrontProblem.from_table(load_macro_table(search_run=0))


def test_scores_of_known_sets(problem):
    known = problem.known_front()
    assert len(known) == 38 and np.all(np.diff(problem.cost[known]) > 0)
    every = np.arange(len(problem.cost))[None]
    s = score_runs(problem, np.concatenate([every, every[:, ::-1]]))  # the whole table: the whole front
    np.testing.assert_allclose(s["hv_ratio_searched"], 1.0)
    # chosen on training 0, the table's own front falls a little short at the reported accuracy (selection noise)
    assert np.all((0.99 < s["hv_ratio"]) & (s["hv_ratio"] < 1.0)) and s["hv_ratio"][0] == s["hv_ratio"][1]
    assert s["found"].all()
    worst = np.full((1, 5), int(np.argmin(problem.report_acc)))  # only the worst network: no area
    assert score_runs(problem, worst)["hv_ratio"][0] == 0.0


def test_gradient_relaxation_is_the_exact_expectation_of_the_surrogates(problem):
    g = GradientFront(problem.space, budget=8, target=problem.target)
    key = jax.random.key(3)
    theta = jax.random.normal(key, (8, 3))
    # log error of a fraction (b_acc = 0.5 - log 100: the percent version's 100 - exp(0.5 + ...))
    b_acc, u_acc = 0.5 - np.log(100.0), 0.3 * jax.random.normal(jax.random.fold_in(key, 1), (8, 3))
    b_cost, u_cost = 7.0, jax.random.uniform(jax.random.fold_in(key, 2), (8, 3), maxval=12.0)
    archs = problem.space.decode(jnp.arange(problem.space.size))  # (6561, 8): every network
    prob = jnp.prod(jnp.take_along_axis(jax.nn.softmax(theta), archs.T, axis=1), axis=0)  # (6561,) p_theta
    take = lambda u: jnp.take_along_axis(u, archs.T, axis=1).sum(0)  # noqa: E731
    e_acc = jnp.sum(prob * (1.0 - jnp.exp(b_acc + take(u_acc))))
    e_cost = jnp.sum(prob * (b_cost + take(u_cost)))
    expected = jnp.log(e_acc) - 0.2 * jnp.log(e_cost / problem.target)
    got = g.relaxed(theta, (b_acc, u_acc), (b_cost, u_cost), -0.2)
    np.testing.assert_allclose(got, expected, rtol=1e-5)


@pytest.mark.parametrize("method", METHODS)
def test_tiny_search_of_each_method(problem, method):
    kw = dict(runs=3, budget=14, block_runs=3, gradient={"warmup": 4})
    a = run_front_search(method, problem, seed=0, **kw)
    assert a.codes.shape == (3, 14) and a.codes.min() >= 0 and a.codes.max() < problem.space.size
    s = score_runs(problem, a.codes)
    assert np.all(s["hv_ratio"] > 0) and np.all(s["hv_ratio"] <= 1)
    np.testing.assert_array_equal(run_front_search(method, problem, seed=0, **kw).codes, a.codes)  # determinism
    assert not np.array_equal(run_front_search(method, problem, seed=1, **kw).codes, a.codes)
    assert len({tuple(r) for r in a.codes}) == 3  # the runs are not copies of one run
