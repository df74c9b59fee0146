"""NEAT side by side with neat-python 2.0 on XOR: solve rate and generations over seeds, and whole-generation
throughput (evaluation + speciation + reproduction) at several population sizes, measured in one run.

    .venv/bin/python -m pip install -e ".[bench]"   # neat-python 2.0.0, a benchmark-only dependency
    .venv/bin/python benchmarks/neat_vs_neat_python.py [--seeds 20] [--pops 150,1000,10000]

Ours runs with neat-python's XOR example settings (`experiments/configs/neat.py:NEAT_PYTHON_XOR`: its
distance, per-gene mutation, structural rates with deletions, elitism 2, survival 0.2, stagnation 20), and
also with the paper's defaults. The 20 seeds of ours run vmapped in one program. Generations are counted
as neat-python's `Population.run` does: the number of generations evaluated, the solving one included.
Writes benchmarks/results/neat_vs_neat_python.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import statistics
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from experiments.configs.neat import NEAT_PYTHON_XOR  # noqa: E402
from jaxnas.evaluation.neat_problems import make_problem  # noqa: E402
from jaxnas.neat_search import NeatRunner  # noqa: E402
from jaxnas.strategies.neat import Neat  # noqa: E402

MAX_NODES, MAX_CONNS = 16, 32  # XOR genomes: room for 13 hidden nodes and 30 connection genes


def ours(settings: dict, pop: int) -> Neat:
    return Neat(make_problem("xor").space(MAX_NODES, MAX_CONNS), population_size=pop, **settings)


def quality(settings: dict, seeds: int, max_generations: int) -> dict:
    runner = NeatRunner(ours(settings, 150), make_problem("xor"), chunk=25)
    out = runner.run_seeds(list(range(seeds)), max_generations)
    solved_at = np.asarray(out["carry"].solved_at)
    gens = [int(g) + 1 for g in solved_at if g >= 0]
    return {"solved": len(gens), "seeds": seeds, "median_generations": statistics.median(gens) if gens else None,
            "mean_generations": statistics.fmean(gens) if gens else None, "per_seed": [int(g) for g in solved_at],
            "wall_s_all_seeds": out["wall_s"]}


def throughput(settings: dict, pop: int, generations: int) -> dict:
    """Seconds per whole generation, timed over `generations` generations after one compiling chunk."""
    problem = dataclasses.replace(make_problem("xor"), fitness_threshold=float("inf"))  # never stops early
    runner = NeatRunner(ours(settings, pop), problem, chunk=generations)
    key = jax.random.key(0)
    carry = runner.init(key)
    t0 = time.perf_counter()
    carry, _ = runner._chunk(key, carry, jnp.int32(10**6))
    jax.block_until_ready(carry)
    compile_s = time.perf_counter() - t0
    rounds = []
    for _ in range(2):
        t0 = time.perf_counter()
        carry, _ = runner._chunk(key, carry, jnp.int32(10**6))
        jax.block_until_ready(carry)
        rounds.append((time.perf_counter() - t0) / generations)
    s = min(rounds)
    return {"s_per_generation": s, "evals_per_s": pop / s, "first_chunk_s_with_compile": compile_s,
            "rounds_s_per_generation": rounds}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--max-generations", type=int, default=300)
    ap.add_argument("--pops", default="150,1000,10000")
    ap.add_argument("--timing-generations", type=int, default=5)
    ap.add_argument("--skip-neat-python", action="store_true")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "results",
                                                  "neat_vs_neat_python.json"))
    args = ap.parse_args()
    pops = [int(p) for p in args.pops.split(",")]
    out = {"machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
           "device": str(jax.devices()[0].platform), "ours": {}, "neat_python": {}}
    for name, settings in (("neat_python_settings", NEAT_PYTHON_XOR), ("paper_defaults", {})):
        out["ours"][name] = {"xor": quality(settings, args.seeds, args.max_generations)}
        print(name, out["ours"][name]["xor"], flush=True)
    out["ours"]["neat_python_settings"]["timing"] = {}
    for pop in pops:
        t = throughput(NEAT_PYTHON_XOR, pop, args.timing_generations)
        out["ours"]["neat_python_settings"]["timing"][pop] = t
        print("ours", pop, t, flush=True)
    if not args.skip_neat_python:
        import neat_python_reference as ref

        runs = [ref.run_xor(seed, 150, args.max_generations) for seed in range(args.seeds)]
        gens = [r["generations"] for r in runs if r["solved"]]
        out["neat_python"]["xor"] = {"solved": len(gens), "seeds": args.seeds,
                                     "median_generations": statistics.median(gens) if gens else None,
                                     "mean_generations": statistics.fmean(gens) if gens else None,
                                     "per_seed": [r["generations"] if r["solved"] else -1 for r in runs]}
        print("neat-python", out["neat_python"]["xor"], flush=True)
        out["neat_python"]["timing"] = {}
        for pop in pops:
            t = ref.time_generations(pop, args.timing_generations)
            out["neat_python"]["timing"][pop] = t
            print("neat-python", pop, t, flush=True)
        out["speedup"] = {pop: out["ours"]["neat_python_settings"]["timing"][pop]["evals_per_s"]
                          / out["neat_python"]["timing"][pop]["evals_per_s"] for pop in pops}
        print("speed-up (evaluations/s, ours / neat-python):", out["speedup"])
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(out, f, indent=2, default=float)


if __name__ == "__main__":
    main()
