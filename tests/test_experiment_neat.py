"""The NEAT entry point on the tiny config: results.json fields, the report's pictures, a restart that
reuses the finished run, and config mistakes that name the field."""

import json
import os

import pytest

from experiments import neat
from experiments.configs import neat as neat_config
from jaxnas.common.errors import ConfigError
from test_loop import refused_before_restore, truncate_newest

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
    scope = {}  # the winner as plain Python computes the outputs the library reported (rounded to 4 places there)
    exec(open(tmp_path / "winner.py").read(), scope)
    exported = [scope["network"](a, b)[0] for a, b in ((0, 0), (0, 1), (1, 0), (1, 1))]
    assert exported == pytest.approx(results["outputs"], abs=6e-5)
    assert "def network(x0, x1):" in open(tmp_path / "report.md").read()
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

    assert list(NEAT_PROBLEMS) == ["xor", "cartpole", "double_pole", "double_pole_nv", "digits", "boxes"]
    stops = {name: make_problem(name).stops_early for name in NEAT_PROBLEMS}
    assert stops == {"xor": True, "cartpole": True, "double_pole": True, "double_pole_nv": True, "digits": False,
                     "boxes": True}
    digits = make_problem("digits", digits_target=0.5)
    assert digits.solved_when({"train_accuracy": 0.5}) and not digits.solved_when({"train_accuracy": 0.49})
    with pytest.raises(ConfigError, match=r"^problem: unknown problem 'sudoku'; allowed: xor, cartpole"):
        make_problem("sudoku")



@pytest.mark.slow
def test_rerun_refuses_other_settings_before_any_restore_and_falls_back_past_a_damaged_checkpoint(
        tmp_path, monkeypatch, capsys):
    """Through the one loop: another activation is refused in one line naming it, before any array is read; a
    truncated newest checkpoint is skipped for the one before it, and the run ends where the first one did."""

    config = neat_config.get_config("small")
    config.generations, config.chunk = 4, 1  # a checkpoint per generation (the last two kept)
    first = neat.run(config, str(tmp_path))
    lines = [json.loads(line) for line in open(tmp_path / "metrics.jsonl")]
    assert [m["generation"] for m in lines] == list(range(1, first["generations"] + 1))
    other = neat_config.get_config("small")
    other.generations, other.chunk, other.activation = 4, 1, "tanh"
    message = refused_before_restore(monkeypatch, lambda: neat.run(other, str(tmp_path)))
    assert "strategy.space.activation (saved 'sigmoid', now 'tanh')" in message
    assert "max_generations" not in message
    left = truncate_newest(tmp_path / "checkpoints")
    if not left:  # solved in the first generation: nothing to fall back to
        pytest.skip("one checkpoint only")
    capsys.readouterr()
    again = neat.run(config, str(tmp_path))
    assert f"resuming from step {left[-1]}" in capsys.readouterr().out
    assert again["resumed_from_generation"] == left[-1]
    assert again["best_fitness"] == first["best_fitness"] and again["generations"] == first["generations"]
    lines = [json.loads(line) for line in open(tmp_path / "metrics.jsonl")]
    assert [m["generation"] for m in lines] == list(range(1, first["generations"] + 1))  # no duplicates


def test_config_reads_the_strategy_defaults_from_the_source_without_importing_jax():
    """configs/neat.py reads Neat's defaults from its source (loading the config stays free of jax): the same
    values, types and order as the dataclass fields."""
    import dataclasses

    from jaxnas.strategies.neat import Neat

    expected = {f.name: f.default for f in dataclasses.fields(Neat) if f.name not in ("space", "batch_axis")}
    got = neat_config.strategy_defaults()
    assert list(got) == list(expected) and got == expected
    assert all(type(got[k]) is type(v) for k, v in expected.items())


def test_devices_beyond_the_machine_are_refused_naming_how_many_there_are(tmp_path):
    """Issue 20: --config.devices=3 on a one-device machine silently ran on one device."""
    import jax

    config = neat_config.get_config("small")
    config.devices = len(jax.local_devices()) + 2
    with pytest.raises(ConfigError, match=rf"^devices: got {config.devices}; this machine has "
                                          rf"{len(jax.local_devices())} device\(s\)"):
        neat.run(config, str(tmp_path / "run"))
    assert not (tmp_path / "run").exists()
