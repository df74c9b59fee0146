"""The budgeted NAS-Bench-201 protocol: checked against a plain Python loop, for determinism, for
tracing once, across 8 devices, and for exact resumption from a checkpoint."""

import jax
import numpy as np
import pytest

from jaxnas.search import BudgetedSearch, best_so_far_curve
from jaxnas.spaces import nb201
from jaxnas.strategies import STRATEGIES, aging_evolution

BUDGET = 2_000.0
# every test here also checks key hygiene; small programs: compiled without XLA optimisations
pytestmark = pytest.mark.usefixtures("key_reuse_check", "fast_compile")


def reference_search(strategy, table, run_key, budget):
    """The paper's loop written plainly in Python, one evaluation at a time (same key schedule)."""
    state = strategy.init(jax.random.fold_in(run_key, 0))
    elapsed, best, evals = 0.0, (-np.inf, None, None), 0
    for step in range(10_000):
        archs, asked = strategy.ask(jax.random.fold_in(jax.random.fold_in(run_key, 1), step), state)
        ev = table.query(archs)
        valid, test, cost = float(ev.valid[0]), float(ev.test[0]), float(ev.cost[0])
        if np.float32(elapsed) + np.float32(cost) > budget:
            break  # the evaluation that would cross the budget is discarded and ends the search
        elapsed = float(np.float32(elapsed) + np.float32(cost))
        evals += 1
        state, _ = strategy.tell(asked, archs, ev.valid)
        if valid > best[0]:
            best = (valid, test, int(ev.index[0]))
    return best, evals, elapsed


def test_fake_devices_are_active():
    assert jax.device_count() == 8


@pytest.mark.parametrize("name", ["random", "aging_evolution"])
def test_matches_a_plain_python_loop(nb201_table, name):
    strategy = STRATEGIES.get(name)(nb201.SPACE)
    searcher = BudgetedSearch(strategy, nb201_table, BUDGET, chunk_steps=8)
    result = searcher.run(seed=3, runs=3, progress=False)
    keys = searcher.run_keys(3, 3)
    for r in range(3):
        (valid, test, index), evals, elapsed = reference_search(strategy, nb201_table, keys[r], BUDGET)
        assert result.num_evals[r] == evals
        assert result.best_index[r] == index
        np.testing.assert_allclose(result.best_valid[r], valid, rtol=1e-6)
        np.testing.assert_allclose(result.best_test[r], test, rtol=1e-6)
        np.testing.assert_allclose(result.elapsed[r], elapsed, rtol=1e-5)
        assert result.elapsed[r] <= BUDGET


@pytest.mark.parametrize("name", STRATEGIES.names())
def test_same_seed_same_result_different_seeds_differ(nb201_table, name):
    searcher = BudgetedSearch(STRATEGIES.get(name)(nb201.SPACE), nb201_table, BUDGET, chunk_steps=16)
    a = searcher.run(seed=0, runs=8, progress=False)
    b = searcher.run(seed=0, runs=8, progress=False)
    c = searcher.run(seed=1, runs=8, progress=False)
    np.testing.assert_array_equal(a.best_index, b.best_index)
    np.testing.assert_array_equal(a.history.best_valid, b.history.best_valid)
    assert not np.array_equal(a.history.elapsed, c.history.elapsed)
    assert len(set(a.best_index.tolist())) > 1  # the runs within one call are independent, not copies
    assert searcher.traces == 1  # three searches, several chunks each, one trace


def test_eight_devices_equal_one(nb201_table):
    strategy = aging_evolution(nb201.SPACE)
    many = BudgetedSearch(strategy, nb201_table, BUDGET, chunk_steps=16)
    one = BudgetedSearch(strategy, nb201_table, BUDGET, chunk_steps=16, devices=jax.local_devices()[:1])
    assert len(many.devices) == 8
    a, b = many.run(seed=5, runs=13, progress=False), one.run(seed=5, runs=13, progress=False)  # 13: padded to 16
    for field in ("best_valid", "best_test", "best_index", "num_evals", "elapsed"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field), err_msg=field)


def test_block_size_changes_nothing(nb201_table):
    """Blocks of one run skip their steps once that run is done; one block of all runs never skips until the last
    run ends: the results and every step's history are the same (Q-learning: the strategy with its own block size)."""
    strategy = STRATEGIES.get("qlearning")(nb201.SPACE)
    single, whole = (BudgetedSearch(strategy, nb201_table, BUDGET, chunk_steps=16, devices=jax.local_devices()[:1],
                                    block_runs=block).run(seed=4, runs=6, progress=False) for block in (1, None))
    assert len(set(single.num_evals.tolist())) > 1  # runs end at different steps: blocks of one skip steps
    for field in ("best_valid", "best_test", "best_index", "num_evals", "elapsed"):
        np.testing.assert_array_equal(getattr(whole, field), getattr(single, field), err_msg=field)
    for field in ("elapsed", "best_valid", "best_test", "counted"):
        np.testing.assert_array_equal(getattr(whole.history, field), getattr(single.history, field), err_msg=field)


def test_block_size_follows_the_strategy(nb201_table):
    assert BudgetedSearch(STRATEGIES.get("qlearning")(nb201.SPACE), nb201_table, BUDGET).block_runs == 100
    assert BudgetedSearch(STRATEGIES.get("reinforce")(nb201.SPACE), nb201_table, BUDGET).block_runs == 20
    unblocked = BudgetedSearch(STRATEGIES.get("reinforce")(nb201.SPACE), nb201_table, BUDGET, block_runs=None)
    assert unblocked.block_runs is None


def test_resume_ends_where_an_uninterrupted_search_ends(nb201_table, tmp_path):
    strategy = STRATEGIES.get("reinforce")(nb201.SPACE)
    full = BudgetedSearch(strategy, nb201_table, BUDGET, chunk_steps=4).run(seed=2, runs=8, progress=False)
    BudgetedSearch(strategy, nb201_table, BUDGET, chunk_steps=4).run(
        seed=2, runs=8, checkpoint_dir=str(tmp_path), progress=False, stop_after_chunks=2)  # "killed" here
    resumed = BudgetedSearch(strategy, nb201_table, BUDGET, chunk_steps=4).run(
        seed=2, runs=8, checkpoint_dir=str(tmp_path), progress=False)
    assert resumed.resumed_from_step == 2
    for field in ("best_valid", "best_test", "best_index", "num_evals", "elapsed"):
        np.testing.assert_array_equal(getattr(resumed, field), getattr(full, field), err_msg=field)
    np.testing.assert_array_equal(resumed.history.best_valid, full.history.best_valid)


def test_checkpoint_of_another_search_is_refused(nb201_table, tmp_path):
    strategy = STRATEGIES.get("random")(nb201.SPACE)
    BudgetedSearch(strategy, nb201_table, BUDGET, chunk_steps=4).run(
        seed=0, runs=8, checkpoint_dir=str(tmp_path), progress=False, stop_after_chunks=1)
    with pytest.raises(ValueError, match="another search"):
        BudgetedSearch(strategy, nb201_table, BUDGET, chunk_steps=4).run(
            seed=1, runs=8, checkpoint_dir=str(tmp_path), progress=False)


def test_best_so_far_curve_is_monotone_and_ends_at_the_answer(nb201_table):
    result = BudgetedSearch(STRATEGIES.get("random")(nb201.SPACE), nb201_table, BUDGET).run(0, 8, progress=False)
    grid, curves = best_so_far_curve(result.history, BUDGET)
    assert grid[0] == 0 and grid[-1] == BUDGET
    assert np.isnan(curves[:, 0]).all()  # nothing is known before the first evaluation completes
    finite = np.where(np.isnan(curves), 0.0, curves)
    assert (np.diff(finite, axis=1) >= 0).all()
    np.testing.assert_allclose(curves[:, -1], result.best_valid)
