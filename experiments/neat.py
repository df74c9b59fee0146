"""NEAT on a problem: evolve topology and weights, report the winner and a picture of its network.

    python -m experiments.neat --config experiments/configs/neat.py --config.problem=xor --workdir runs/neat_xor

Writes `results.json` (`solved`, `generations`, `best_fitness`, `evals_per_s`, the winner's `nodes`,
`hidden_nodes`, `connections`, and its genome), `history.jsonl` (one line per generation), `metrics.jsonl` (one
line per compiled chunk, written as it runs), `fitness.png`,
`network.png`, `winner.py` (the winner as plain Python, `jaxnas.spaces.neat_export`), `report.md`, and
`checkpoints/`: a killed run restarted with the same workdir resumes and
ends with the uninterrupted result.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import numpy as np
from ml_collections import config_dict

from experiments.cli import launch, prefixed
from experiments.configs import neat as neat_config
from experiments.validation import Bounds, check_bounds, check_choices
from jaxnas.common import distributed
from jaxnas.common.errors import check

# jax, matplotlib and the NEAT modules are imported where they are used: a refused setting exits before them.
if TYPE_CHECKING:
    import matplotlib.pyplot as plt

    from jaxnas.common.report import Report
    from jaxnas.search.neat import NeatRunner


# BOUNDS (every numeric setting and its cap) lives beside the defaults in experiments/configs/neat.py.
CHOICES = {"progress": (True, False), "neat.per_gene_mutation": (True, False), "neat.split_disabled": (True, False),
           "neat.conn_from_outputs": (True, False), "neat.structure_first": (True, False),
           "neat.keep_champion": (True, False), "neat.split_ids": ("shared", "unique")}


def validate(config: config_dict.ConfigDict) -> None:
    """Every setting, before any data is loaded or anything compiled; errors name the field as typed.

    The numbers first (no library imported), then the names the libraries define (problem, activation, the
    strategy's rules) and the devices there are."""
    check_bounds(config, {field: Bounds(*b) for field, b in neat_config.BOUNDS.items()})
    check_choices(config, CHOICES)
    import jax

    have = len(jax.local_devices())
    check(config.devices <= have, "devices", f"got {config.devices}; this machine has {have} device(s) "
          f"({jax.default_backend()}); allowed: 0 (all of them) to {have}")
    used, population = config.devices or have, config.neat.population_size
    check(population % used == 0, "devices", f"got {config.devices}: {used} device(s) do not divide "
          f"neat.population_size {population}; allowed: a divisor of it (or change neat.population_size)")
    from jaxnas.problems.neat_tasks import NEAT_PROBLEMS
    from jaxnas.spaces.neat import ACTIVATIONS
    from jaxnas.strategies.neat import COMPATIBILITY, PERTURBATIONS, SPAWN, SPECIATION

    check_choices(config, {"problem": tuple(NEAT_PROBLEMS), "activation": tuple(ACTIVATIONS),
                           "neat.compatibility": COMPATIBILITY, "neat.weight_perturbation": PERTURBATIONS,
                           "neat.speciation": SPECIATION, "neat.spawn": SPAWN})
    check(config.eval_batch <= population, "eval_batch",
          f"got {config.eval_batch}; allowed: 0 (all at once) to neat.population_size ({population})")


def build(config: config_dict.ConfigDict) -> tuple[Any, Any]:
    """The problem and the strategy a config describes (validated, errors name the field)."""
    validate(config)
    from jaxnas.problems import neat_tasks
    from jaxnas.strategies.neat import Neat

    problem = neat_tasks.make_problem(config.problem, double_pole_steps=config.double_pole_steps, seed=config.seed,
                                         digits_target=config.digits_target)
    io = problem.num_inputs + problem.num_outputs
    max_nodes = config.max_nodes or io + 16
    max_conns = config.max_conns or problem.num_inputs * problem.num_outputs + 48
    space = problem.space(max_nodes, max_conns, config.activation)  # errors name max_nodes / max_conns
    neat = prefixed("neat", lambda: Neat(space, **config.neat.to_dict()))
    return problem, neat


def plot_history(hist: dict[str, np.ndarray], threshold: float) -> plt.Figure:
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.5))
    g = hist["generation"]
    a.plot(g, hist["best_fitness"], label="best of generation")
    a.plot(g, hist["mean_fitness"], label="population mean")
    if np.isfinite(threshold):
        a.axhline(threshold, color="k", ls="--", lw=0.8, label="solved threshold")
    a.set_xlabel("generation")
    a.set_ylabel("fitness")
    a.legend(fontsize=8)
    a.grid(alpha=0.3)
    b.plot(g, hist["species"], label="species")
    b.plot(g, hist["mean_nodes"], label="mean nodes")
    b.plot(g, hist["mean_connections"], label="mean enabled connections")
    b.set_xlabel("generation")
    b.legend(fontsize=8)
    b.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def over_seeds(runner: NeatRunner, config: config_dict.ConfigDict) -> dict[str, Any]:
    """Solve rate and generations over `config.seeds` seeds, all vmapped in one program.

    Solved runs are frozen but still computed until the last one finishes: cheap for XOR, slow for problems
    whose evaluation grows with the solution (a balanced pole is simulated for all its steps). With several
    processes (`jaxnas.common.distributed`) each runs its share of the seeds and all of them gather the results
    (a seed's run does not depend on the others); `wall_s` is the slowest process's."""
    seeds = np.arange(config.seed, config.seed + config.seeds)
    mine = distributed.share(len(seeds))
    out = runner.run_seeds(seeds[mine].tolist(), config.generations)
    rows = distributed.gather_rows({"solved_at": np.asarray(out["carry"].solved_at),
                                    "wall_s": np.full(len(mine), out["wall_s"])}, len(seeds))
    solved_at = [int(g) for g in rows["solved_at"]]
    gens = [g + 1 for g in solved_at if g >= 0]
    return {"seeds": len(seeds), "solved": len(gens), "median_generations": float(np.median(gens)) if gens else None,
            "solved_at_generation": solved_at, "wall_s": float(np.max(rows["wall_s"]))}


def run(config: config_dict.ConfigDict, workdir: str, report: Report | None = None) -> dict[str, Any]:
    problem, neat = build(config)
    import jax
    import matplotlib.pyplot as plt

    from jaxnas.common.metrics import JsonlWriter, device_summary, write_json
    from jaxnas.common.report import Report
    from jaxnas.search.neat import NeatRunner
    from jaxnas.spaces.neat import to_host
    from jaxnas.spaces.neat_export import draw_network, to_python

    space = neat.space
    devices = jax.local_devices()[:config.devices or None]
    runner = NeatRunner(neat, problem, chunk=config.chunk, eval_batch=config.eval_batch or None, devices=devices)
    os.makedirs(workdir, exist_ok=True)
    settings = {"problem": config.problem, "neat": config.neat.to_dict(), "max_nodes": space.max_nodes,
                "max_conns": space.max_conns, "double_pole_steps": config.double_pole_steps}
    # the runner records the seed, the cap and the whole strategy (activation included); these decide the problem
    out = runner.run(config.seed, config.generations, checkpoint_dir=os.path.join(workdir, "checkpoints"),
                     progress=config.progress, settings={**settings, "digits_target": config.digits_target},
                     metrics_path=os.path.join(workdir, "metrics.jsonl"))
    carry, hist = out["carry"], out["history"]
    # a problem solved by testing the champion reports the genome that passed (or the last one tested)
    best = carry.state.best if problem.champion_test is None else carry.champion
    genome = to_host(best)
    if space.activations is not None:  # the names a CPPN winner's "activation" indices refer to
        genome["activations"] = list(space.activations)
    details = problem.details(space, best, hist) if problem.details is not None else {}
    solved_at = int(carry.solved_at)
    solved = problem.solved_when(details) if problem.solved_when is not None else solved_at >= 0
    hidden = sum(1 for n in genome["nodes"] if n["id"] >= space.num_io)
    history_path = os.path.join(workdir, "history.jsonl")
    if os.path.exists(history_path):  # a rerun rewrites it (appending would repeat every generation)
        os.remove(history_path)
    with JsonlWriter(history_path) as w:
        for i in range(len(hist["generation"])):
            w.write({k: v[i].item() for k, v in hist.items()})
    results = {
        "problem": problem.name, "description": problem.description, "solved": bool(solved),
        "generations": int(carry.generation), "solved_at_generation": solved_at if solved_at >= 0 else None,
        "best_fitness": float(carry.state.pop_best), "fitness_threshold": problem.fitness_threshold,
        "evals_per_s": float(out["evals_per_s"]), "compile_s": out["compile_s"],
        "evaluations": int(carry.generation) * neat.population_size,
        "wall_s": out["wall_s"], "resumed_from_generation": out["resumed_from_generation"],
        "nodes": len(genome["nodes"]), "hidden_nodes": hidden,
        "connections": sum(c["enabled"] for c in genome["connections"]), "connection_genes": len(genome["connections"]),
        "species_final": int(hist["species"][-1]) if len(hist["species"]) else 0, **details,
        "winner": genome, "settings": settings, "device": device_summary(),
    }
    if config.seeds > 1 and problem.stops_early:  # without a stopping rule every seed runs to the cap
        results["over_seeds"] = over_seeds(runner, config)
    write_json(os.path.join(workdir, "results.json"), results)
    source = to_python(genome, space)
    with open(os.path.join(workdir, "winner.py"), "w") as f:
        f.write(source)
    own = report is None
    report = report or Report(workdir, "NEAT")
    report.heading(f"NEAT on {problem.name}: {problem.description}")
    verdict = (f"solved in generation {solved_at} ({results['generations']} generations evaluated)" if solved_at >= 0
               else f"{'solved' if solved else 'not solved'} after {results['generations']} generations")
    report.text(f"Population {neat.population_size}, {verdict}; best fitness {results['best_fitness']:.4f}. "
                f"Winner: {results['nodes']} nodes ({hidden} hidden), {results['connections']} enabled connections. "
                f"{results['evals_per_s']:,.0f} genome evaluations/s including reproduction, after "
                f"{results['compile_s']:.1f} s of compilation ({results['device']}).")
    if "over_seeds" in results:
        o = results["over_seeds"]
        report.text(f"Over seeds {config.seed}..{config.seed + config.seeds - 1} (run vmapped in one program, "
                    f"{o['wall_s']:.0f} s): {o['solved']} of {o['seeds']} solved within {config.generations} "
                    f"generations, median {o['median_generations']} generations (counted as evaluated).")
    if details:
        report.text("Winner details: " + ", ".join(f"{k} = {v}" for k, v in details.items()))
    rel = lambda name: os.path.relpath(os.path.join(workdir, name), report.workdir)  # noqa: E731
    report.figure(plot_history(hist, problem.fitness_threshold), rel("fitness.png"),
                  "Fitness, species and genome size by generation.")
    fig, ax = plt.subplots(figsize=(6, 4))
    draw_network(genome, space, ax)
    report.figure(fig, rel("network.png"), "The best genome's network." if problem.champion_test is None else
                  "The champion's network (the genome that passed the champion test, or the last one tested).")
    for fig, name, caption in problem.pictures(space, best) if problem.pictures is not None else ():
        report.figure(fig, rel(name), caption)
    lines = source.strip().splitlines()
    shown = "\n".join(lines if len(lines) <= 40 else lines[:40] + ["    ..."])
    report.text(f"The same network as plain Python (`{rel('winner.py')}`, needs only `math`):\n\n```python\n"
                f"{shown}\n```")
    if own:
        report.write()
    return {k: v for k, v in results.items() if k not in ("winner", "settings")}


if __name__ == "__main__":
    launch(run, os.path.join(os.path.dirname(__file__), "configs", "neat.py"))
