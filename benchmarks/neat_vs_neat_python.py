"""NEAT side by side with neat-python 2.0 on XOR, in one run: solve rate and generations over two seed sets, and
whole-generation throughput (evaluation + speciation + reproduction) timed the same way on both sides.

    .venv/bin/python -m pip install -e ".[bench]"   # neat-python 2.0.0, a benchmark-only dependency
    .venv/bin/python benchmarks/neat_vs_neat_python.py [--seeds 20] [--seed-sets 0,20] [--pops 150,1000,10000]

The published figures come from two invocations (quality, then timing on the final code):
    .venv/bin/python benchmarks/neat_vs_neat_python.py --pops '' --out results/neat_xor_quality.json
    .venv/bin/python benchmarks/neat_vs_neat_python.py --seed-sets '' --out results/neat_vs_neat_python_timing.json

Quality. Ours runs with the paper's defaults and with neat-python's XOR example settings
(`experiments/configs/neat.py:NEAT_PYTHON_XOR`: its distance, per-gene mutation, structural rates with deletions,
elitism 2, survival 0.2, stagnation 20, and its own speciation, offspring counts and mutation order), each with
Gaussian and with uniform weight perturbation
(`Neat.weight_perturbation`), on seeds 0-19 and 20-39 (`--seed-sets`); neat-python on the same seed numbers (its
own generator: the same number is not the same run). The 20 seeds of ours run vmapped in one program.
Generations are counted as neat-python's `Population.run` does: generations evaluated, the solving one included.

Choosing the perturbation default (rule fixed before the runs): on seeds 0-19 with the paper's defaults, keep the
paper's uniform perturbation unless the Gaussian one solves at least 3 more of the 20 seeds; seeds 20-39 are
reported only, never used to choose. `decision` in the output applies that rule to the first seed set.

Timing, symmetric (issue 18): for each population, both sides run the same `--timing-generations` G generations
untimed first (ours: compiled once before that, the compile time reported separately; neat-python: the same
warm-up), then `--rounds` rounds of G generations each, continuing the same run, the two sides alternating
(ABBA order) so that load from other processes falls on both; each side's figure is the median round, and the
ratio is neat-python's median over ours from this same run. Ours uses neat-python's XOR settings. The 1-minute
load average is recorded before and after each population.

Writes results/neat_vs_neat_python.json (`--out` to change) with `jaxnas.common.provenance.record_result`.
`--skip-neat-python` times ours alone (no ratio is then written: ratios come only from one run).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shlex
import statistics
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from experiments.configs.neat import NEAT_PYTHON_ACTIVATION, NEAT_PYTHON_XOR  # noqa: E402
from jaxnas.common.provenance import record_result  # noqa: E402
from jaxnas.problems.neat_tasks import make_problem  # noqa: E402
from jaxnas.search.neat import NeatRunner  # noqa: E402
from jaxnas.strategies.neat import Neat  # noqa: E402

MAX_NODES, MAX_CONNS = 16, 32  # XOR genomes: room for 13 hidden nodes and 30 connection genes
SETTINGS = {"paper_defaults": {}, "neat_python_settings": NEAT_PYTHON_XOR}
ACTIVATION = {"paper_defaults": "sigmoid", "neat_python_settings": NEAT_PYTHON_ACTIVATION}
MIN_EXTRA_SOLVED = 3  # the decision rule above


def ours(settings: dict, pop: int, activation: str = "sigmoid") -> Neat:
    return Neat(make_problem("xor").space(MAX_NODES, MAX_CONNS, activation), population_size=pop, **settings)


def summarize(gens: list[int | None], wall_s: float) -> dict:
    """Solve count and generations (evaluated, solving one included) from per-seed results (None: unsolved)."""
    found = [g for g in gens if g is not None]
    return {"seeds": len(gens), "solved": len(found),
            "median_generations": statistics.median(found) if found else None,
            "mean_generations": statistics.fmean(found) if found else None,
            "per_seed_generations": [-1 if g is None else g for g in gens], "wall_s": wall_s}


def quality_ours(runner: NeatRunner, seeds: list[int], max_generations: int) -> dict:
    t0 = time.perf_counter()
    out = runner.run_seeds(seeds, max_generations)
    wall = time.perf_counter() - t0  # compilation included on the runner's first seed set
    return summarize([int(g) + 1 if g >= 0 else None for g in np.asarray(out["carry"].solved_at)], wall)


def quality_neat_python(ref, seeds: list[int], max_generations: int) -> dict:
    t0 = time.perf_counter()
    runs = [ref.run_xor(seed, 150, max_generations) for seed in seeds]
    return summarize([r["generations"] if r["solved"] else None for r in runs], time.perf_counter() - t0)


def decide(paper: dict, first_set: str) -> dict:
    """The perturbation default by the rule in the module docstring, from the first seed set only."""
    g, u = paper["gaussian"][first_set]["solved"], paper["uniform"][first_set]["solved"]
    choice = "gaussian" if g >= u + MIN_EXTRA_SOLVED else "uniform"
    return {"seed_set": first_set, "gaussian_solved": g, "uniform_solved": u, "choice": choice,
            "rule": f"uniform (the paper's) unless Gaussian solves >= {MIN_EXTRA_SOLVED} more seeds"}


class OursTimer:
    """Our side of the timing: compiled once, then warm-up and rounds of `generations` generations."""

    def __init__(self, pop: int, generations: int):
        problem = dataclasses.replace(make_problem("xor"), fitness_threshold=float("inf"))  # never stops early
        self.runner = NeatRunner(ours(NEAT_PYTHON_XOR, pop, NEAT_PYTHON_ACTIVATION), problem, chunk=generations)
        self.key, self.generations, self.cap = jax.random.key(0), generations, jnp.int32(10**6)
        self.carry = self.runner.init(self.key)
        jax.block_until_ready(self.carry)
        t0 = time.perf_counter()
        self.fn = self.runner._chunk.lower(self.key, self.carry, self.cap).compile()
        self.compile_s = time.perf_counter() - t0

    def chunk(self) -> float:
        """Runs `generations` more generations; seconds per generation."""
        t0 = time.perf_counter()
        self.carry, _ = self.fn(self.key, self.carry, self.cap)
        jax.block_until_ready(self.carry)
        return (time.perf_counter() - t0) / self.generations


class NeatPythonTimer:
    """neat-python's side, the same protocol (its `Population.run` continues from where the last call stopped)."""

    def __init__(self, ref, pop: int, generations: int):
        self.population = ref._population(ref.make_config(pop, fitness_threshold=10.0), 0)  # 10: never reached
        self.evaluator, self.generations = ref._Evaluator(), generations

    def chunk(self) -> float:
        t0 = time.perf_counter()
        self.population.run(self.evaluator, self.generations)
        return (time.perf_counter() - t0) / self.generations


def timing(ref, pop: int, generations: int, rounds: int) -> dict:
    """Both sides at population `pop`, alternating ABBA; medians of the rounds and their ratio."""
    load_before = os.getloadavg()[0]
    mine = OursTimer(pop, generations)
    sides = {"ours": mine} | ({"neat_python": NeatPythonTimer(ref, pop, generations)} if ref else {})
    for side in sides.values():  # warm-up: the first `generations` generations, untimed on both sides
        side.chunk()
    times: dict[str, list[float]] = {name: [] for name in sides}
    for r in range(rounds):
        for name in (list(sides) if r % 2 == 0 else list(sides)[::-1]):
            times[name].append(sides[name].chunk())
    out = {"population": pop, "generations_per_round": generations, "rounds": rounds,
           "timed_generations": f"{generations + 1}-{generations * (rounds + 1)} (generation 1 = the initial one)",
           "ours_compile_s": mine.compile_s, "loadavg_1m_before": load_before}
    for name, ts in times.items():
        med = statistics.median(ts)
        out[name] = {"s_per_generation_median": med, "evals_per_s_median": pop / med, "rounds_s_per_generation": ts}
    if ref:
        out["ratio_neat_python_over_ours"] = out["neat_python"]["s_per_generation_median"] / out["ours"][
            "s_per_generation_median"]
    out["loadavg_1m_after"] = os.getloadavg()[0]
    print("timing", pop, {k: v for k, v in out.items() if k not in ("ours", "neat_python")},
          {k: out[k]["s_per_generation_median"] for k in times}, flush=True)
    return out


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=20, help="seeds per set")
    ap.add_argument("--seed-sets", default="0,20", help="first seed of each set ('' skips the quality runs)")
    ap.add_argument("--max-generations", type=int, default=300)
    ap.add_argument("--pops", default="150,1000,10000", help="timing populations ('' skips the timing)")
    ap.add_argument("--timing-generations", type=int, default=5, help="generations per round (and warm-up)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--skip-neat-python", action="store_true")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                                  "results", "neat_vs_neat_python.json"))
    args = ap.parse_args(argv)
    ref = None
    if not args.skip_neat_python:
        import neat_python_reference as ref  # noqa: PLC0415 (needs neat-python; only then)
    starts = [int(s) for s in args.seed_sets.split(",") if s.strip()]
    sets = {f"seeds_{s}_{s + args.seeds - 1}": list(range(s, s + args.seeds)) for s in starts}
    pops = [int(p) for p in args.pops.split(",") if p.strip()]
    t_start = time.perf_counter()
    figures: dict = {"ours": {}, "neat_python": {}}
    for name, settings in SETTINGS.items():  # one compiled runner per setting, reused for every seed set
        for kind in ("gaussian", "uniform"):
            runner = NeatRunner(ours({**settings, "weight_perturbation": kind}, 150, ACTIVATION[name]),
                                make_problem("xor"), chunk=25)
            for set_name, seeds in sets.items():
                cell = quality_ours(runner, seeds, args.max_generations)
                figures["ours"].setdefault(name, {}).setdefault(kind, {})[set_name] = cell
                print(set_name, name, kind, {k: v for k, v in cell.items() if k != "per_seed_generations"}, flush=True)
    for set_name, seeds in sets.items():
        if ref:
            figures["neat_python"][set_name] = quality_neat_python(ref, seeds, args.max_generations)
            print(set_name, "neat-python", figures["neat_python"][set_name], flush=True)
    if sets:
        figures["decision"] = decide(figures["ours"]["paper_defaults"], next(iter(sets)))
        print("decision", figures["decision"], flush=True)
    figures["timing"] = [timing(ref, pop, args.timing_generations, args.rounds) for pop in pops]
    figures = {k: v for k, v in figures.items() if v not in ({}, [])}  # e.g. a timing-only run has no quality
    print(json.dumps(figures, default=float), flush=True)  # the figures survive even if recording fails
    out_dir, name = os.path.split(os.path.abspath(args.out))
    command = "python benchmarks/neat_vs_neat_python.py " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
    settings = {"max_nodes": MAX_NODES, "max_conns": MAX_CONNS, "population_quality": 150,
                "max_generations": args.max_generations, "paper_defaults": {}, "neat_python_settings": NEAT_PYTHON_XOR,
                "activations": ACTIVATION, "timing": {"settings": "neat_python_settings", "pops": pops, "generations_per_round":
                           args.timing_generations, "rounds": args.rounds, "seed": 0},
                "neat_python_xor_settings": ref.XOR_SETTINGS if ref else None}
    path = record_result(name.removesuffix(".json"), command=command.strip(), settings=settings, figures=figures,
                         seeds=sorted(s for seeds in sets.values() for s in seeds),
                         wall_s=time.perf_counter() - t_start, out_dir=out_dir)
    print("wrote", path)
    return figures


if __name__ == "__main__":
    main()
