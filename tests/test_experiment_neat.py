"""The NEAT entry point on the tiny config: results.json fields, the report's pictures, a restart that
reuses the finished run, and config mistakes that name the field."""

import json
import os

import pytest

from experiments import neat
from experiments.configs import neat as neat_config
from jaxnas.common.errors import ConfigError

pytestmark = pytest.mark.usefixtures("fast_compile")  # exact checks and tiny runs: compile-bound (conftest)


@pytest.mark.slow
def test_small_xor_run_writes_results_and_restarts(tmp_path):
    config = neat_config.get_config("small")
    config.seeds = 2
    summary = neat.run(config, str(tmp_path))
    results = json.load(open(tmp_path / "results.json"))
    for key in ("solved", "generations", "best_fitness", "evals_per_s", "nodes", "connections"):
        assert key in results, key
    assert isinstance(results["solved"], bool) and 1 <= results["generations"] <= 6
    assert results["solved"] == (results["best_fitness"] >= 3.9)
    assert results["nodes"] >= 3 and results["connections"] == sum(c["enabled"] for c in results["winner"]["connections"])
    assert len(results["outputs"]) == 4 and summary["best_fitness"] == results["best_fitness"]
    seeds = results["over_seeds"]  # seeds 0 and 1 vmapped: seed 0's entry is the single run's outcome
    single = results["solved_at_generation"]
    assert seeds["seeds"] == 2 and seeds["solved_at_generation"][0] == (-1 if single is None else single)
    for png in ("fitness.png", "network.png"):
        assert os.path.getsize(tmp_path / png) > 500
    lines = open(tmp_path / "history.jsonl").read().splitlines()
    assert len(lines) == results["generations"]
    again = neat.run(config, str(tmp_path))  # finished: restored, not rerun
    assert again["resumed_from_generation"] == results["generations"] and again["best_fitness"] == results["best_fitness"]


@pytest.mark.parametrize("field,value,match", [("problem", "sudoku", "problem"),
                                               ("max_nodes", 2, "max_nodes"),
                                               ("neat.population_size", 0, "neat.population_size")])
def test_config_mistakes_name_the_field(tmp_path, field, value, match):
    config = neat_config.get_config("small")
    config.unlock()
    parent, _, leaf = field.rpartition(".")
    (config[parent] if parent else config)[leaf] = value
    with pytest.raises(ConfigError, match=match):
        neat.run(config, str(tmp_path))


@pytest.mark.slow
def test_small_double_pole_without_velocities_run(tmp_path):
    config = neat_config.get_config("small")
    config.problem = "double_pole_nv"
    config.double_pole_steps = 300  # the champion's long test (100,000 in the real protocol)
    summary = neat.run(config, str(tmp_path))
    results = json.load(open(tmp_path / "results.json"))
    assert results["problem"] == "double_pole_nv" and str(results["fitness_threshold"]) == "inf"  # JSON: "inf"
    assert 0 <= results["long_test_steps"] <= 300 and 0 <= results["generalization"] <= 625
    assert results["solved"] == (results["long_test_steps"] >= 299 and results["generalization"] >= 200)
    assert results["settings"]["double_pole_steps"] == 300 and summary["generalization"] == results["generalization"]
    history = [json.loads(line) for line in open(tmp_path / "history.jsonl")]
    assert all("champion_steps" in h and "generalization" in h for h in history)
    assert os.path.getsize(tmp_path / "network.png") > 500


def test_every_problem_is_in_the_registry_with_its_own_rules():
    """The entry point holds no per-problem code: each problem says how it is solved and what to report."""
    from jaxnas.problems.neat_tasks import NEAT_PROBLEMS, make_problem

    assert list(NEAT_PROBLEMS) == ["xor", "cartpole", "double_pole", "double_pole_nv", "digits"]
    stops = {name: make_problem(name).stops_early for name in NEAT_PROBLEMS}
    assert stops == {"xor": True, "cartpole": True, "double_pole": True, "double_pole_nv": True, "digits": False}
    digits = make_problem("digits", digits_target=0.5)
    assert digits.solved_when({"train_accuracy": 0.5}) and not digits.solved_when({"train_accuracy": 0.49})
    with pytest.raises(ConfigError, match=r"^problem: unknown problem 'sudoku'; allowed: xor, cartpole"):
        make_problem("sudoku")
