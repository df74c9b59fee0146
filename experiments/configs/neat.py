"""NEAT (Stanley & Miikkulainen 2002) on XOR, pole balancing or digits, a whole generation per compiled step.

Command:
  python -m experiments.neat --config experiments/configs/neat.py --config.problem=xor --workdir runs/neat_xor
  python -m experiments.neat --config experiments/configs/neat.py --config.problem=cartpole --workdir runs/neat_cp
  python -m experiments.neat --config experiments/configs/neat.py --config.problem=double_pole --workdir runs/neat_dp
  python -m experiments.neat --config experiments/configs/neat.py:neat_python --workdir runs/neat_xor_np
  python -m experiments.neat --config experiments/configs/neat.py:dpnv --workdir runs/neat_dpnv
  python -m experiments.neat --config experiments/configs/neat.py:hyperneat --workdir runs/hyperneat_boxes
Variants: `:neat_python` (neat-python's XOR example settings, as in benchmarks/neat_vs_neat_python.py),
`:dpnv` (the double pole without velocities with the paper's settings for it: population 1,000, c3 = 3.0,
delta_t = 4.0, add-connection 0.3; recurrent networks), `:hyperneat` (HyperNEAT on the boxes task with the
authors' released settings: population 300, 300 generations, mutation power 2.5), `:demo` (`make demo`: XOR, the
double pole, the double pole without velocities, and a short HyperNEAT run, about three minutes), `:small` (tests).

Defaults are the paper's (`jaxnas.strategies.neat`): population 150, delta_t 3.0, c1 = c2 = 1, c3 = 0.4,
add-node 0.03, add-connection 0.05, and so on; any of them can be changed with `--config.neat.<name>=...`.
`max_nodes`/`max_conns` 0 pick room for 16 hidden nodes and 48 connections beyond the initial ones.

Measured (2-core CPU, paper defaults, after the crossover fix and with uniform perturbation; each figure is in
results/neat_<name>.json, written by the command with `--publish neat_<name>`): XOR seed 0 is solved in
generation 65 (2 hidden nodes, 6 enabled connections); `--config.seeds=20` (seeds 0-19 vmapped): 18 of 20,
median 112.5 generations (`neat_xor`). Cart-pole (500 steps from five starts) is solved in generation 0: a random
linear network already balances it (`neat_cartpole`). The double pole with velocities (100,000 steps) in
generation 12, 1,950 evaluations, 2 hidden nodes (`neat_double_pole`). Digits at 4x4 reach 58.8% validation
accuracy in 300 generations (`neat_digits`; not solved: the target is 90% training accuracy): with the paper's
small structural rates NEAT stays near a linear network there, so it shows the supervised interface rather than
a good classifier. The double pole without velocities (`:dpnv`, `--config.seed=S`, `neat_dpnv_seedS`): 7 of seeds
0-9 solved within 150 generations (2, 5 and 9 not), median 16 generations evaluated (14,100 evaluations on
average; the paper: 33,184), the winners passing 241-294 of the 625 generalization starts (mean 269; the paper: 286).
"""

import ast
import os

from ml_collections import config_dict

# Settings of `Neat` that are not hyperparameters: the genome shape comes from the problem and the capacities
# above, `batch_axis` from the runner.
_NOT_SETTINGS = ("space", "batch_axis")


_RATES = ("crossover_rate", "interspecies_rate", "disabled_gene_rate", "weight_mutate_rate", "weight_replace_rate",
          "bias_mutate_rate", "bias_replace_rate", "enable_mutate_rate", "node_add_rate", "conn_add_rate",
          "node_delete_rate", "conn_delete_rate", "activation_mutate_rate")
# Every numeric setting as (kind, low, high[, low excluded]), as the user types it. experiments.neat refuses a
# value outside (NaN and infinity included) in one line naming the field, before any data is loaded or anything
# compiled; the caps keep a typo from planning an unbounded run (generations, population, seeds, genome capacity,
# episode length). Also: devices at most those there are and dividing the population, eval_batch at most the
# population, max_nodes / max_conns (when not 0) at least what the problem's inputs and outputs need.
BOUNDS = {
    "seed": (int, 0, 2**31 - 1), "seeds": (int, 1, 100), "generations": (int, 1, 100_000), "max_nodes": (int, 0, 1024),
    "max_conns": (int, 0, 16_384), "chunk": (int, 1, 1000), "eval_batch": (int, 0, 100_000), "devices": (int, 0, 4096),
    "double_pole_steps": (int, 1, 1_000_000), "digits_target": (float, 0.0, 1.0, True),
    "neat.population_size": (int, 1, 10_000), "neat.max_species": (int, 1, 4096),
    "neat.normalize_min_genes": (int, 1, 100_000), "neat.survival_threshold": (float, 0.0, 1.0, True),
    **{f"neat.{f}": (int, 0, 1_000_000) for f in ("elitism", "elitism_min_species_size", "max_stagnation",
                                                   "species_elitism", "population_stagnation", "min_species_size",
                                                   "min_parents", "target_species")},
    **{f"neat.{f}": (float, 0.0, 1e6, True) for f in ("compatibility_threshold", "weight_mutate_power",
                                                       "weight_init_std", "weight_clamp", "bias_mutate_power",
                                                       "bias_init_std", "threshold_step")},
    **{f"neat.{f}": (float, 0.0, 1e6) for f in ("excess_coefficient", "disjoint_coefficient", "weight_coefficient")},
    **{f"neat.{f}": (float, 0.0, 1.0) for f in _RATES},
}
_STRATEGY = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "jaxnas", "strategies", "neat.py")


def strategy_defaults() -> dict:
    """`Neat`'s own defaults (the paper's), so the config never restates them.

    Read from the class's source (its defaults are literals; tests/test_experiment_neat.py checks they equal the
    dataclass fields), not by importing it: jax takes about 1.7 s to import, and every command, a refused one too,
    loads this config first."""
    with open(_STRATEGY, encoding="utf-8") as f:
        cls = next(n for n in ast.parse(f.read()).body if isinstance(n, ast.ClassDef) and n.name == "Neat")
    return {n.target.id: ast.literal_eval(n.value) for n in cls.body
            if isinstance(n, ast.AnnAssign) and n.value is not None and n.target.id not in _NOT_SETTINGS}


def get_config(variant: str | None = None) -> config_dict.ConfigDict:
    c = config_dict.ConfigDict()
    # Caps (BOUNDS above) keep a typo from planning an unbounded run; the refusal names the field.
    c.problem = "xor"  # xor | cartpole | double_pole | double_pole_nv | digits | boxes (HyperNEAT)
    c.seed = 0  # 0 .. 2**31 - 1
    c.seeds = 1  # > 1: also run seeds seed .. seed+seeds-1 vmapped in one program and report the solve rate (<= 100)
    c.generations = 300  # at most (1 .. 100,000); a run stops at the first generation that reaches the threshold
    c.max_nodes = 0  # 0: inputs + outputs + 16; else at least inputs + outputs, at most 1,024
    c.max_conns = 0  # 0: inputs * outputs + 48; else at least inputs * outputs, at most 16,384
    # sigmoid | tanh | relu | identity | sin | gauss | abs (in a CPPN problem, new nodes draw their own)
    c.activation = "sigmoid"
    c.chunk = 10  # generations per compiled call (1 .. 1,000); checkpoints between calls
    c.eval_batch = 0  # genomes evaluated at once per device (0: all of them; at most neat.population_size)
    c.devices = 1  # devices the evaluation is sharded over (0: all local devices; at most those there are; must
    # divide the population)
    c.double_pole_steps = 100_000  # double_pole: the episode; double_pole_nv: the champion's long test (<= 1e6)
    c.digits_target = 0.9  # digits counts as solved at this training accuracy, in (0, 1]
    c.progress = True
    # neat.*: population_size 1 .. 10,000, max_species 1 .. 4,096, rates in [0, 1], powers, stds, the clamp and
    # the threshold in (0, 1e6], coefficients in [0, 1e6], counts (elitism, stagnation) in [0, 1e6]
    c.neat = config_dict.ConfigDict(strategy_defaults())  # the paper's, from jaxnas.strategies.neat.Neat
    if variant == "neat_python":
        c.neat.update(NEAT_PYTHON_XOR)
        c.activation = NEAT_PYTHON_ACTIVATION
    elif variant == "demo":
        c.generations = 150
        c.seeds = 10  # the demo's XOR section; its double-pole section sets 1 (vmapped seeds wait for the slowest)
    elif variant == "dpnv":
        c.problem = "double_pole_nv"
        c.generations = 150
        c.chunk = 5
        c.neat.update(DPNV)
    elif variant == "hyperneat":  # the boxes task with the authors' released settings (FindClusterExperiment.dat)
        c.problem = "boxes"
        c.generations = 300
        c.neat.population_size = 300
        c.neat.weight_mutate_power = 2.5  # MutationPower, uniform steps
        c.neat.bias_mutate_power = 2.5
        c.neat.weight_clamp = 5.0  # the authors' link weights stay in [-5, 5]
        c.neat.weight_init_std = c.neat.bias_init_std = 3.0**0.5  # theirs U(-3, 3): the same spread
        # their distance 2 disjoint + 2 excess + 1 mean weight difference (no normalisation), threshold 6 moved
        # by 0.3 each generation towards 8 species (SpeciesSizeTarget); dropoff age 15; no population-wide rule
        c.neat.excess_coefficient = c.neat.disjoint_coefficient = 2.0
        c.neat.weight_coefficient = 1.0
        c.neat.compatibility_threshold = 6.0
        c.neat.target_species = 8
        c.neat.threshold_step = 0.3
        c.neat.population_stagnation = 0
        c.neat.keep_champion = True  # ForceCopyGenerationChampion
        c.neat.elitism_min_species_size = 5  # SmallestSpeciesSizeWithElitism
    elif variant == "small":
        c.generations = 6
        c.chunk = 3
        c.neat.population_size = 24
        c.max_nodes = 8
        c.max_conns = 12
        c.progress = False
    elif variant not in (None, ""):
        raise ValueError(f"config variant: got {variant!r}; allowed: neat_python, dpnv, hyperneat, demo, small")
    return c


# neat-python 2.0's XOR example (`examples/xor/config-feedforward`) in our settings' terms: its distance
# (node + connection parts, each normalised by the larger genome), its per-gene mutation rule with Gaussian
# steps, structural rates with deletions, two elites per species whatever its size, crossover for every child, no
# interspecies mating, stagnation after 20 generations with the two best species protected, its
# enable-bit mutation (rate 0.01 to a random value, i.e. a flip with probability 0.005), its speciation (the closest
# compatible species, each species' representative the new genome closest to its old one), its offspring counts
# (min_species_size 1, its default, so at least max(1, elitism) = 2 per species, half-way smoothing) and at least
# two parents per species; its mutation order (structure, then every gene's weight and bias); add node may split a
# disabled connection, add connection never starts at an output.
NEAT_PYTHON_XOR = {
    "compatibility": "neat-python", "compatibility_threshold": 3.0, "disjoint_coefficient": 1.0,
    "weight_coefficient": 0.5, "per_gene_mutation": True, "weight_perturbation": "gaussian",
    "weight_mutate_rate": 0.8, "weight_replace_rate": 0.1, "weight_mutate_power": 0.5, "bias_mutate_rate": 0.7, "bias_replace_rate": 0.1, "bias_mutate_power": 0.5,
    "enable_mutate_rate": 0.005, "node_add_rate": 0.2, "node_delete_rate": 0.2, "conn_add_rate": 0.5,
    "conn_delete_rate": 0.5, "elitism": 2, "elitism_min_species_size": 0, "survival_threshold": 0.2,
    "crossover_rate": 1.0, "interspecies_rate": 0.0, "max_stagnation": 20, "species_elitism": 2,
    "population_stagnation": 0, "speciation": "closest", "spawn": "neat-python", "min_species_size": 1,
    "min_parents": 2, "structure_first": True, "split_disabled": True, "conn_from_outputs": False,
    "split_ids": "unique",
}
NEAT_PYTHON_ACTIVATION = "sigmoid5"  # its sigmoid, 1 / (1 + exp(-5 x)) (the paper's slope is 4.9)


# The paper's settings for the double pole without velocities (Sec. 4.1): a population of 1,000, a larger weight
# coefficient (c3 = 3.0) and threshold (delta_t = 4.0) for finer species distinctions in the larger population,
# and add-connection 0.3. (Written from our reading of Sec. 4.1 without the text at hand: check them against it.) The paper caps nothing; `max_species` is ours: 512 slots hold the 80-360 species these
# settings keep (64 or 256 would overflow, sending genomes to their nearest species instead of founding new ones).
DPNV = {"population_size": 1000, "weight_coefficient": 3.0, "compatibility_threshold": 4.0, "conn_add_rate": 0.3,
        "max_species": 512}
