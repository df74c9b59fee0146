"""neat-python 2.0.0 side of the XOR NEAT benchmark (reference implementation, pure Python, CPU).

    .venv/bin/python benchmarks/neat_python_reference.py [--seeds 20] [--pop 150]
        [--timing-pops 150,1000,10000] [--timing-generations 5]

Needs ``neat-python==2.0.0`` (pure Python, no dependencies; a reference-only package, never a
dependency of the library). Prints one JSON summary on stdout.

Settings (``XOR_SETTINGS``). Every value below is the one in neat-python's own XOR example,
``examples/xor/config-feedforward`` (pop_size 150, fitness_criterion max, fitness_threshold 3.9,
reset_on_extinction False; sigmoid/sum only with mutate rates 0; bias init N(0, 1) clamped to
[-30, 30], bias_mutate_power 0.5, **bias_mutate_rate 0.7** (not 0.8), bias_replace_rate 0.1;
compatibility coefficients disjoint 1.0 / weight 0.5; conn_add/delete 0.5/0.5; node_add/delete
0.2/0.2; enabled_default True, enabled_mutate_rate 0.01; feed_forward True; initial_connection
``full``; 2 inputs, 1 output, 0 hidden; response fixed at 1 (init_mean 1, stdev 0, all rates 0);
weight init N(0, 1) clamped to [-30, 30], weight_mutate_power 0.5, weight_mutate_rate 0.8,
weight_replace_rate 0.1; compatibility_threshold 3.0; species_fitness_func max, max_stagnation 20,
species_elitism 2; elitism 2, survival_threshold 0.2). ``initial_connection = full`` with no hidden
nodes connects every input directly to every output (``compute_full_connections``); ``full_direct``
would give the same genome here.

Keys that the example file does not list but 2.0.0 reads, written here explicitly with their 2.0.0
default values so the file is self-describing: ``no_fitness_termination = False`` ([NEAT]; 2.0.0's
``Config`` *requires* it to be present, the old example file fails to parse without it),
``single_structural_mutation = False``, ``structural_mutation_surer = default``,
``bias_init_type = weight_init_type = response_init_type = gaussian``, ``min_species_size = 1``.
Node ``time_constant`` keeps its built-in defaults (fixed at 1, unused by feed-forward nets).

Fitness is the example's: 4 - sum over the four XOR cases of (output - target)^2, so the maximum is
4.0 and the threshold 3.9 means a summed squared error below 0.1.

Generation counting (``run_xor``): neat-python's ``Population.run`` evaluates generation 0 (the
initial population), checks the threshold, then reproduces; ``p.generation`` is the 0-based index of
the generation being evaluated and is *not* incremented after the solving generation.
``generation_found`` is that index (0 = solved by the initial population); ``generations`` is the
number of generations evaluated, i.e. ``generation_found + 1`` when solved, or ``max_generations``
when not. ``evaluations`` counts every genome passed to the fitness function (elites are
re-evaluated each generation and counted).

Randomness: neat-python draws only from Python's global ``random`` module (``random.random``,
``gauss``, ``choice``, ``uniform``); ``random.seed(seed)`` plus ``Population(config, seed=seed)``
(which calls ``random.seed`` again) makes a run reproducible. Set iteration order matters in a few
places (innovation sets, graph layers) but involves only ints and int tuples, whose hashes are not
randomised. A fresh ``neat.Config`` is built per run because 2.0.0 keeps the global hidden-node id
counter (``node_indexer``) on the genome config.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import sys
import tempfile
import time

import neat

XOR_INPUTS: list[tuple[float, float]] = [(0.0, 0.0), (0.0, 1.0), (1.0, 0.0), (1.0, 1.0)]
XOR_OUTPUTS: list[tuple[float]] = [(0.0,), (1.0,), (1.0,), (0.0,)]

# Flat name -> value map; `_SECTIONS` says which config section each name belongs to.
XOR_SETTINGS: dict = {
    # [NEAT]
    "pop_size": 150,
    "fitness_criterion": "max",
    "fitness_threshold": 3.9,
    "reset_on_extinction": False,
    "no_fitness_termination": False,  # required by 2.0.0's Config; not in the old example file
    # [DefaultGenome]
    "num_inputs": 2,
    "num_outputs": 1,
    "num_hidden": 0,
    "initial_connection": "full",
    "feed_forward": True,
    "activation_default": "sigmoid",
    "activation_options": "sigmoid",
    "activation_mutate_rate": 0.0,
    "aggregation_default": "sum",
    "aggregation_options": "sum",
    "aggregation_mutate_rate": 0.0,
    "bias_init_type": "gaussian",  # 2.0.0 default, written explicitly
    "bias_init_mean": 0.0,
    "bias_init_stdev": 1.0,
    "bias_max_value": 30.0,
    "bias_min_value": -30.0,
    "bias_mutate_power": 0.5,
    "bias_mutate_rate": 0.7,  # the example's value (weights use 0.8)
    "bias_replace_rate": 0.1,
    "response_init_type": "gaussian",
    "response_init_mean": 1.0,
    "response_init_stdev": 0.0,
    "response_max_value": 30.0,
    "response_min_value": -30.0,
    "response_mutate_power": 0.0,
    "response_mutate_rate": 0.0,
    "response_replace_rate": 0.0,
    "weight_init_type": "gaussian",
    "weight_init_mean": 0.0,
    "weight_init_stdev": 1.0,
    "weight_max_value": 30.0,
    "weight_min_value": -30.0,
    "weight_mutate_power": 0.5,
    "weight_mutate_rate": 0.8,
    "weight_replace_rate": 0.1,
    "enabled_default": True,
    "enabled_mutate_rate": 0.01,
    "compatibility_disjoint_coefficient": 1.0,
    "compatibility_weight_coefficient": 0.5,
    "conn_add_prob": 0.5,
    "conn_delete_prob": 0.5,
    "node_add_prob": 0.2,
    "node_delete_prob": 0.2,
    "single_structural_mutation": False,  # 2.0.0 default, written explicitly
    "structural_mutation_surer": "default",  # 2.0.0 default, written explicitly
    # [DefaultSpeciesSet]
    "compatibility_threshold": 3.0,
    # [DefaultStagnation]
    "species_fitness_func": "max",
    "max_stagnation": 20,
    "species_elitism": 2,
    # [DefaultReproduction]
    "elitism": 2,
    "survival_threshold": 0.2,
    "min_species_size": 1,  # 2.0.0 default, written explicitly
}

_NEAT_KEYS = ("pop_size", "fitness_criterion", "fitness_threshold", "reset_on_extinction",
              "no_fitness_termination", "seed")
_SECTIONS = {
    "DefaultSpeciesSet": ("compatibility_threshold",),
    "DefaultStagnation": ("species_fitness_func", "max_stagnation", "species_elitism"),
    "DefaultReproduction": ("elitism", "survival_threshold", "min_species_size"),
}


def _section_of(name: str) -> str:
    if name in _NEAT_KEYS:
        return "NEAT"
    for section, names in _SECTIONS.items():
        if name in names:
            return section
    return "DefaultGenome"


def _fmt(value) -> str:
    if isinstance(value, bool):
        return "True" if value else "False"
    return str(value)


def config_text(pop_size: int = 150, **overrides) -> str:
    """A neat-python 2.0.0 config file (INI text) for XOR; ``overrides`` replace/add settings by name."""
    unknown = [k for k in overrides if k not in XOR_SETTINGS and k != "seed"]
    if unknown:
        raise KeyError(f"unknown neat-python setting(s): {unknown}")
    settings = dict(XOR_SETTINGS, pop_size=pop_size, **overrides)
    order = ["NEAT", "DefaultGenome", *_SECTIONS]
    lines: list[str] = []
    for section in order:
        lines.append(f"[{section}]")
        for name, value in settings.items():
            if _section_of(name) == section:
                lines.append(f"{name} = {_fmt(value)}")
        lines.append("")
    return "\n".join(lines)


def make_config(pop_size: int = 150, **overrides) -> neat.Config:
    """Write ``config_text(...)`` to a temporary file and load it as a ``neat.Config``."""
    fd, path = tempfile.mkstemp(prefix="neat-xor-", suffix=".cfg")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(config_text(pop_size, **overrides))
        return neat.Config(neat.DefaultGenome, neat.DefaultReproduction,
                           neat.DefaultSpeciesSet, neat.DefaultStagnation, path)
    finally:
        os.remove(path)


def xor_fitness(net) -> float:
    """4 - sum of squared errors over the four XOR cases (neat-python's example fitness)."""
    fitness = 4.0
    for xi, xo in zip(XOR_INPUTS, XOR_OUTPUTS):
        output = net.activate(xi)
        fitness -= (output[0] - xo[0]) ** 2
    return fitness


class _Evaluator:
    """Fitness function for ``Population.run`` that counts evaluations and the time spent in them."""

    def __init__(self) -> None:
        self.evaluations = 0
        self.eval_s = 0.0

    def __call__(self, genomes, config) -> None:
        t0 = time.perf_counter()
        for _, genome in genomes:
            genome.fitness = xor_fitness(neat.nn.FeedForwardNetwork.create(genome, config))
        self.evaluations += len(genomes)
        self.eval_s += time.perf_counter() - t0


def _population(config: neat.Config, seed: int) -> neat.Population:
    random.seed(seed)
    return neat.Population(config, seed=seed)  # no reporters added: quiet


def run_xor(seed: int, pop_size: int = 150, max_generations: int = 300) -> dict:
    """One neat-python XOR run; see the module docstring for how generations are counted.

    Winner size: ``nodes`` counts all node genes of the winner (output + hidden; inputs are pins,
    not genes), ``hidden_nodes`` the hidden ones; ``connections`` counts enabled connection genes,
    ``connections_all`` all connection genes (incl. disabled).
    """
    config = make_config(pop_size)
    evaluator = _Evaluator()
    t0 = time.perf_counter()
    p = _population(config, seed)
    extinct = False
    try:
        winner = p.run(evaluator, max_generations)
    except neat.CompleteExtinctionException:  # cannot happen with species_elitism 2; kept for safety
        winner, extinct = p.best_genome, True
    wall = time.perf_counter() - t0
    solved = winner is not None and winner.fitness >= config.fitness_threshold
    evaluated = evaluator.evaluations // pop_size
    n_nodes, n_enabled = winner.size()
    return {
        "seed": seed,
        "solved": bool(solved),
        "generation_found": p.generation if solved else None,
        "generations": evaluated,
        "evaluations": evaluator.evaluations,
        "wall_s": wall,
        "best_fitness": winner.fitness,
        "nodes": n_nodes,
        "hidden_nodes": n_nodes - config.genome_config.num_outputs,
        "connections": n_enabled,
        "connections_all": len(winner.connections),
        "extinct": extinct,
    }


def time_generations(pop_size: int, generations: int, seed: int = 0) -> dict:
    """Seconds per whole generation (evaluation + stagnation/reproduction + speciation).

    ``fitness_threshold`` is set to 10 (unreachable; the maximum is 4) so the run never stops early.
    Complete extinction cannot happen: species_elitism = 2 keeps the two best species alive, so
    ``reset_on_extinction`` does not matter. The initial population (creation + first speciation,
    inside ``Population.__init__``) is excluded. Genomes grow over a run, so later generations are
    somewhat slower than the first few.
    """
    config = make_config(pop_size, fitness_threshold=10.0)
    p = _population(config, seed)
    evaluator = _Evaluator()
    t0 = time.perf_counter()
    p.run(evaluator, generations)
    wall = time.perf_counter() - t0
    return {
        "pop_size": pop_size,
        "generations": generations,
        "wall_s": wall,
        "s_per_generation": wall / generations,
        "evals_per_s": evaluator.evaluations / wall,
        "eval_fraction": evaluator.eval_s / wall,
        "num_species_end": len(p.species.species),
    }


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=20, help="XOR runs with seeds 0..N-1")
    ap.add_argument("--pop", type=int, default=150)
    ap.add_argument("--max-generations", type=int, default=300)
    ap.add_argument("--timing-pops", default="150,1000,10000")
    ap.add_argument("--timing-generations", type=int, default=5)
    args = ap.parse_args(argv)

    runs = [run_xor(s, args.pop, args.max_generations) for s in range(args.seeds)]
    solved = [r for r in runs if r["solved"]]
    found = [r["generation_found"] for r in solved]
    total_evals = sum(r["evaluations"] for r in runs)
    total_wall = sum(r["wall_s"] for r in runs)
    xor = {
        "pop_size": args.pop,
        "max_generations": args.max_generations,
        "seeds": args.seeds,
        "solved": len(solved),
        "solve_rate": len(solved) / max(1, len(runs)),
        "generation_found_median": statistics.median(found) if found else None,
        "generation_found_mean": statistics.mean(found) if found else None,
        "generations_evaluated_median": statistics.median([r["generations"] for r in solved]) if solved else None,
        "generations_evaluated_mean": statistics.mean([r["generations"] for r in solved]) if solved else None,
        "evaluations_median": statistics.median([r["evaluations"] for r in solved]) if solved else None,
        "winner_hidden_nodes_median": statistics.median([r["hidden_nodes"] for r in solved]) if solved else None,
        "winner_connections_median": statistics.median([r["connections"] for r in solved]) if solved else None,
        "evals_per_s_overall": total_evals / total_wall if total_wall else None,
        "per_seed": runs,
    }
    pops = [int(x) for x in args.timing_pops.split(",") if x.strip()]
    timings = [time_generations(n, args.timing_generations) for n in pops]
    summary = {
        "library": f"neat-python {neat.__version__}",
        "python": sys.version.split()[0],
        "machine": platform.platform(),
        "xor": xor,
        "timing": timings,
    }
    print(json.dumps(summary, indent=2))
    return summary


if __name__ == "__main__":
    main()
