"""Config -> objects, shared by the entry points (library functions never take a ConfigDict)."""

from __future__ import annotations

from ml_collections import config_dict

from experiments.cli import prefixed
from experiments.validation import parse_epsilon_schedule
from jaxnas.common.errors import check, check_positive
from jaxnas.problems import BENCHMARKS, Table, TabularBenchmark
from jaxnas.spaces.base import CategoricalSpace
from jaxnas.strategies import STRATEGIES


def build_strategy(config: config_dict.ConfigDict, name: str, space: CategoricalSpace, batch_size: int = 1):
    """The strategy `name` with its settings from `config.<name>`; errors name `<name>.<field>`."""
    factory = STRATEGIES.get(name, field="strategy")
    if name == "random":
        return factory(space, batch_size=batch_size)
    c = config[name]
    if name == "aging_evolution":
        return prefixed(name, lambda: factory(space, c.population_size, c.sample_size, batch_size=batch_size))
    if name == "tournament":
        check(0 <= c.sample_fraction <= 1, "tournament.sample_fraction", f"got {c.sample_fraction}; allowed: in [0, 1]")
        return prefixed(name, lambda: factory(space, c.population_size, c.sample_size,
                                              sample_fraction=c.sample_fraction or None, batch_size=batch_size))
    if name == "qlearning":
        # the table protocol sets total_models; a trained search (configs/nas_search.py) spans its evaluations
        total = c.total_models if "total_models" in c else config.evaluations
        return prefixed(name, lambda: factory(
            space, total_models=total, batch_size=batch_size,
            epsilon_schedule=parse_epsilon_schedule(c.epsilon_schedule), learning_rate=c.learning_rate,
            discount=c.discount, initial_q=c.initial_q, replay_samples=c.replay_samples, max_resamples=c.max_resamples))
    return prefixed(name, lambda: factory(
        space, learning_rate=c.learning_rate, hidden_size=c.hidden_size, num_layers=c.num_layers,
        baseline_decay=c.baseline_decay, entropy_weight=c.entropy_weight,
        temperature=c.temperature or None, tanh_constant=c.tanh_constant or None, batch_size=batch_size))


def build_benchmark(config: config_dict.ConfigDict) -> tuple[TabularBenchmark, Table, float]:
    """The benchmark `config.benchmark`, its table and the search budget (in the table's cost unit).

    NAS-Bench-201 reads the top-level `table_path` and `budget_s`; every other benchmark has a config section
    of its name holding `path`, `budget` and its loader's options (the loader's errors name `<benchmark>.<field>`).
    """
    bench = BENCHMARKS.get(config.benchmark, field="benchmark")
    if bench.name == "nb201":
        check_positive("budget_s", config.budget_s)
        return bench, bench.load(config.table_path or None), float(config.budget_s)
    section = config[bench.name]
    check_positive(f"{bench.name}.budget", section.budget)
    options = {k: v for k, v in section.items() if k not in ("path", "budget")}
    return bench, bench.load(section.path or None, **options), float(section.budget)  # its errors name the section
