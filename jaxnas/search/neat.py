"""Running NEAT on a problem: compiled chunks of whole generations, checkpoints, runs vmapped over seeds.

One generation is `ask` (breed + speciate), the problem's vmapped evaluation, and `tell`; `chunk`
generations run in one `lax.scan`. A run stops at the first generation whose best genome reaches the
problem's threshold (its state is frozen from then on, so vmapped seeds can finish at different times)
or after `max_generations`. Generation keys are `fold_in(seed_key, generation)`, independent of the
chunking, and the host checkpoints between chunks (`jaxnas.common.loop.run_loop`): a killed run resumes to the
uninterrupted result.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from jax.sharding import Mesh, PartitionSpec

from jaxnas.common.errors import check, check_positive
from jaxnas.common.loop import run_loop
from jaxnas.problems.neat_tasks import NeatProblem
from jaxnas.common.tree import tree_where
from jaxnas.spaces.neat import Genome
from jaxnas.strategies.neat import Neat, NeatState

SEED_AXIS = "seeds"  # the vmap axis of `NeatRunner.run_seeds`


@struct.dataclass
class NeatCarry:
    state: NeatState
    generation: jax.Array  # () int32 generations evaluated
    solved_at: jax.Array  # () int32 index of the first generation that reached the threshold, -1 if none
    champion: Genome  # the best genome of the last generation evaluated (the winner once solved)


class NeatRunner:
    """Runs `neat` on `problem`.

    Args:
      neat: the strategy (its `space` must match the problem's inputs and outputs).
      problem: what to evaluate.
      chunk: generations per compiled call (checkpoints are written between calls).
      eval_batch: genomes evaluated together on each device (None: all of them); smaller bounds the memory.
      devices: devices to shard the evaluation over (`shard_map`, population axis); None: one device.
        Breeding and speciation stay replicated: they are cheap next to an expensive evaluation
        (pole balancing) and need the whole population.
    """

    def __init__(self, neat: Neat, problem: NeatProblem, chunk: int = 10, eval_batch: int | None = None,
                 devices: list[jax.Device] | None = None):
        check_positive("chunk", chunk, integer=True)
        if eval_batch is not None:
            check_positive("eval_batch", eval_batch, integer=True)
        self.neat, self.problem, self.chunk, self.eval_batch = neat, problem, chunk, eval_batch
        self.mesh = None
        if devices is not None and len(devices) > 1:
            check(neat.population_size % len(devices) == 0, "devices",
                  f"{len(devices)} devices do not divide population_size {neat.population_size}")
            self.mesh = Mesh(np.array(devices), ("pop",))
        self._chunk = jax.jit(self._run_chunk)
        self._compiled = None  # the ahead-of-time compiled chunk `run` uses (shapes are fixed per runner)
        # seeds batched with a named axis, so the strategy's run-time branches are taken once for the batch
        seeds_neat = dataclasses.replace(neat, batch_axis=SEED_AXIS)
        self._chunk_seeds = jax.jit(jax.vmap(functools.partial(self._run_chunk, neat=seeds_neat), in_axes=(0, 0, None),
                                             axis_name=SEED_AXIS))

    def init(self, key: jax.Array) -> NeatCarry:
        state = self.neat.init(jax.random.fold_in(key, 0))
        return NeatCarry(state, jnp.array(0, jnp.int32), jnp.array(-1, jnp.int32),
                         jax.tree.map(lambda x: x[0], state.genomes))

    def generation(self, key: jax.Array, carry: NeatCarry, max_generations: jax.Array,
                   neat: Neat | None = None) -> tuple[NeatCarry, dict]:
        """One generation (skipped once solved or at the cap); metrics of the evaluated population. `neat`:
        the strategy (default: the runner's; `run_seeds` passes it with its batch axis set)."""
        neat = neat or self.neat
        genomes, state = neat.ask(jax.random.fold_in(jax.random.fold_in(key, 1), carry.generation), carry.state)
        fitness = self.evaluate(genomes)
        state, metrics = neat.tell(state, genomes, fitness)
        active = (carry.solved_at < 0) & (carry.generation < max_generations)
        champion = jax.tree.map(lambda x: x[jnp.argmax(state.fitness)], genomes)
        if self.problem.champion_test is None:
            hit = metrics["best_fitness"] >= self.problem.fitness_threshold
        else:  # e.g. the double pole without velocities: a long run and a generalization test
            test = lambda g: self.problem.champion_test(neat.space, g)  # noqa: E731
            skip = lambda g: jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), jax.eval_shape(test, g))  # noqa: E731
            hit, tested = jax.lax.cond(active, test, skip, champion)  # a frozen (solved) run is not retested
            metrics = dict(metrics, **tested)
        new = NeatCarry(state, carry.generation + 1, jnp.where(hit, carry.generation, -1), champion)
        metrics = dict(metrics, active=active, generation=carry.generation)
        return tree_where(active, new, carry), metrics

    def evaluate(self, genomes) -> jax.Array:
        """(P,) fitness, sharded over the devices when there are several."""
        fn = lambda g: self.problem.evaluate(self.neat.space, g, self.eval_batch)  # noqa: E731
        if self.mesh is None:
            return fn(genomes)
        pop = PartitionSpec("pop")
        # check_vma off: the per-genome while loops start from constants, which the check would flag.
        return jax.shard_map(fn, mesh=self.mesh, in_specs=(pop,), out_specs=pop, check_vma=False)(genomes)

    def _run_chunk(self, key: jax.Array, carry: NeatCarry, max_generations: jax.Array,
                   neat: Neat | None = None) -> tuple[NeatCarry, dict]:
        return jax.lax.scan(lambda c, _: self.generation(key, c, max_generations, neat), carry, None, length=self.chunk)

    def run(self, seed: int, max_generations: int, checkpoint_dir: str | None = None, progress: bool = False,
            settings: dict[str, Any] | None = None, metrics_path: str | None = None) -> dict[str, Any]:
        """Runs one seed to the threshold or the cap through `jaxnas.common.loop.run_loop`, one chunk per call.
        Returns the final carry, the per-generation metrics (numpy arrays over evaluated generations), and timing.

        The checkpoints record the seed, the cap, the strategy (its space and activation included), the problem's
        name and `settings` (the caller's: whatever else decides the problem); `metrics_path` receives one JSON line
        per chunk (the last generation's best fitness, species and genome size).
        """
        key = jax.random.key(seed)
        carry = self.init(key)
        meta = {"seed": seed, "max_generations": max_generations, "strategy": self.neat,  # opened up to its fields
                "problem": self.problem.name, **(settings or {})}
        compiled = {"s": 0.0}

        def chunk(_: int, st: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
            if self._compiled is None:  # compiled ahead of time (once per runner), so throughput never includes it
                t0 = time.perf_counter()
                self._compiled = self._chunk.lower(key, st["carry"], jnp.int32(max_generations)).compile()
                compiled["s"] = time.perf_counter() - t0
            t0 = time.perf_counter()
            carry, metrics = self._compiled(key, st["carry"], jnp.int32(max_generations))
            metrics = jax.tree.map(np.asarray, metrics)
            seconds = time.perf_counter() - t0
            new = {k: v[metrics["active"]] for k, v in metrics.items()}
            last = {k: new[k][-1].item() for k in ("best_fitness", "species", "mean_nodes") if new[k].size}
            return ({"carry": carry, "history": _concat([st["history"], new])},
                    {"generations": int(metrics["active"].sum()), **last, "seconds": seconds})

        def postfix(r: dict[str, Any]) -> dict[str, str]:
            return {"best": f"{r['best_fitness']:.4f}", "species": r["species"]} if "best_fitness" in r else {}

        start = time.perf_counter()
        out = run_loop(chunk, {"carry": carry, "history": self._empty_history(0)}, end=max_generations, settings=meta,
                       checkpoint_dir=checkpoint_dir, metrics_path=metrics_path,
                       position=lambda st: int(st["carry"].generation), done=lambda st: int(st["carry"].solved_at) >= 0,
                       template=lambda s: {"carry": carry, "history": self._empty_history(s)}, postfix=postfix,
                       progress=progress, desc=f"NEAT {self.problem.name}", unit="generation")
        carry, hist = out.state["carry"], out.state["history"]
        chunks = out.new_history
        gens, secs = sum(r["generations"] for r in chunks), sum(r["seconds"] for r in chunks)
        return {"carry": carry, "history": hist, "wall_s": time.perf_counter() - start,
                "evals_per_s": gens * self.neat.population_size / secs if secs > 0 else float("nan"),
                "compile_s": compiled["s"], "resumed_from_generation": out.resumed_from}

    def run_seeds(self, seeds: list[int], max_generations: int) -> dict[str, Any]:
        """Independent runs vmapped over seeds in one program (no checkpoints). Per-seed generations used."""
        keys = jax.vmap(jax.random.key)(jnp.asarray(seeds))
        carry = jax.vmap(self.init)(keys)
        start = time.perf_counter()
        while bool(jnp.any((carry.generation < max_generations) & (carry.solved_at < 0))):
            carry, _ = self._chunk_seeds(keys, carry, jnp.int32(max_generations))
        jax.block_until_ready(carry)
        return {"carry": carry, "wall_s": time.perf_counter() - start}

    def _empty_history(self, n: int) -> dict[str, np.ndarray]:
        """A history-shaped template with `n` generations (to restore a checkpoint into)."""
        key = jax.random.key(0)  # shapes only: nothing is initialised or run
        _, metrics = jax.eval_shape(lambda k: self.generation(k, self.init(k), jnp.int32(1)), key)
        return {k: np.zeros((n,) + v.shape, v.dtype) for k, v in metrics.items()}


def _concat(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
