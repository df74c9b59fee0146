"""Problems for NEAT: each scores one genome; `evaluate` vmaps (and chunks) over a population.

* `xor`: neat-python's XOR benchmark, fitness 4 - sum of squared errors over the four cases, solved at 3.9.
* `cartpole`: single-pole balancing (gym's CartPole dynamics, `pole_balancing`), bang-bang force; fitness
  is the mean fraction of 500 steps balanced from five fixed random starts; solved when all five reach 500
  (gym's episode length for CartPole-v1).
* `double_pole`: double-pole balancing with velocities (Wieland 1991; the NEAT paper's Sec. 5.1 task),
  continuous force; fitness is the fraction of `max_steps` (100,000 by default, as in the paper) balanced.
* `double_pole_nv`: double-pole balancing without velocities (the paper's Sec. 5.2 task, DPNV), recurrent
  networks seeing x, theta1 and theta2 only. Fitness is Gruau et al.'s (1996) over 1,000 steps
  (`pole_balancing.gruau_fitness`); each generation's best genome (the champion) is then run for
  `double_pole_steps` (100,000) steps and, if it balances them, on the 625 generalization starts: the
  problem is solved when it balances 200 of them for 1,000 steps (the NEAT C++ `pole2_epoch` protocol).
  Deviation: the C++ code tests the champion of one not yet tested species per generation, cycling through
  the species; here the generation's best genome is tested every generation.
* `digits`: the embedded sklearn digits average-pooled to 4x4 (16 inputs), 10 outputs read as logits
  (identity output activation); fitness exp(-cross-entropy) on the training split (the geometric mean of
  the probability given to the right class). It has no fitness threshold (runs use all their generations);
  `experiments.neat` counts it as solved at a training accuracy of `digits_target` (90%) and reports
  validation and test accuracy (`digits_accuracy`).
* `boxes`: HyperNEAT's visual discrimination task (`jaxnas.problems.hyperneat`): the genome is a CPPN with
  per-node activations whose outputs are the weights of an 11x11 -> 11x11 substrate.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxnas.common.registry import Registry
from jaxnas.problems import pole_balancing as pb
from jaxnas.spaces.neat import Genome, NeatSpace

XOR_INPUTS = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], np.float32)
XOR_TARGETS = np.array([0, 1, 1, 0], np.float32)


@dataclasses.dataclass(frozen=True, eq=False)
class NeatProblem:
    """A task: network shape, a fitness for one genome (higher is better), and the solved threshold."""

    name: str
    num_inputs: int
    num_outputs: int
    fitness_threshold: float
    fitness: Callable[[NeatSpace, Genome], jax.Array]
    output_activation: str | None = None
    description: str = ""
    recurrent: bool = False  # the problem needs recurrent networks (`NeatSpace.recurrent`)
    # champion_test(space, genome) -> (solved, metrics): decides "solved" instead of the fitness threshold
    champion_test: Callable[[NeatSpace, Genome], tuple[jax.Array, dict[str, jax.Array]]] | None = None
    # details(space, winner, history) -> the winner's problem-specific measurements, for results and reports
    details: Callable[[NeatSpace, Genome, dict[str, np.ndarray]], dict[str, Any]] | None = None
    # solved_when(details) -> bool: "solved" for a problem without a stopping rule (digits: a training accuracy)
    solved_when: Callable[[dict[str, Any]], bool] | None = None
    activations: tuple[str, ...] | None = None  # a CPPN's per-node functions (HyperNEAT, `NeatSpace.activations`)
    # pictures(space, winner) -> [(matplotlib figure, file name, caption)]: what the report adds for this problem
    pictures: Callable[[NeatSpace, Genome], list[tuple[Any, str, str]]] | None = None

    @property
    def stops_early(self) -> bool:
        """Whether a run can end before its last generation (a fitness threshold or a champion test)."""
        return math.isfinite(self.fitness_threshold) or self.champion_test is not None

    def space(self, max_nodes: int, max_conns: int, activation: str = "sigmoid") -> NeatSpace:
        """The genome shape for this problem with the given capacities."""
        return NeatSpace(self.num_inputs, self.num_outputs, max_nodes=max_nodes, max_conns=max_conns,
                         activation=activation, output_activation=self.output_activation,
                         recurrent=self.recurrent, activations=self.activations)

    def evaluate(self, space: NeatSpace, genomes: Genome, batch_size: int | None = None) -> jax.Array:
        """(P,) fitness of a population; `batch_size` genomes at a time bounds the memory."""
        one = lambda g: self.fitness(space, g)  # noqa: E731
        if batch_size is None or batch_size >= genomes.node_id.shape[0]:
            return jax.vmap(one)(genomes)
        return jax.lax.map(one, genomes, batch_size=batch_size)


def xor_fitness(space: NeatSpace, genome: Genome) -> jax.Array:
    out = space.apply(genome, jnp.asarray(XOR_INPUTS))[:, 0]  # (4,)
    return 4.0 - jnp.sum((out - XOR_TARGETS) ** 2)


def _policy(space: NeatSpace):
    return lambda net, obs: space.forward(net, obs[None, :])[0, 0]


CARTPOLE_STARTS = 5


def cartpole_starts() -> jax.Array:
    """(5, 4) fixed random starts drawn like gym's reset (uniform in +-0.05), the same for every genome."""
    keys = jax.random.split(jax.random.key(2002), CARTPOLE_STARTS)
    return jax.vmap(pb.single_pole_initial_state)(keys)


def cartpole_steps(space: NeatSpace, genome: Genome, max_steps: int = pb.SINGLE_POLE_STEPS) -> jax.Array:
    """(5,) steps balanced from each fixed start."""
    net = space.decode(genome)
    return jax.vmap(lambda s: pb.single_pole_balance_steps(_policy(space), net, s, max_steps))(cartpole_starts())


def cartpole_fitness(space: NeatSpace, genome: Genome) -> jax.Array:
    return jnp.mean(cartpole_steps(space, genome)) / pb.SINGLE_POLE_STEPS


def double_pole_fitness(space: NeatSpace, genome: Genome, max_steps: int = pb.DOUBLE_POLE_STEPS) -> jax.Array:
    net = space.decode(genome)
    return pb.double_pole_balance_steps(_policy(space), net, max_steps) / max_steps


def double_pole_nv_episode(space: NeatSpace, net, initial_state: jax.Array, max_steps: int,
                           jiggle: bool = False) -> dict[str, jax.Array]:
    """One episode of a recurrent network (flushed: zero activations) on the double pole without velocities;
    `pole_balancing.run_episode`'s output, with the last 100 jiggle values if `jiggle`."""
    def policy(net, obs, values):
        values, out = space.step(net, values, obs[None, :])
        return out[0, 0], values

    return pb.run_episode(policy, net, pb.double_pole_step, pb.double_pole_failed, pb.double_pole_nv_observation,
                          initial_state, max_steps, action_fn=pb.continuous_force, policy_carry=space.initial_values(1),
                          trace_fn=pb.double_pole_jiggle if jiggle else None,
                          trace_len=pb.DOUBLE_POLE_NV_JIGGLE_STEPS if jiggle else 0)


def double_pole_nv_fitness(space: NeatSpace, genome: Genome) -> jax.Array:
    ep = double_pole_nv_episode(space, space.decode(genome), pb.double_pole_initial_state(), pb.DOUBLE_POLE_NV_STEPS,
                                jiggle=True)
    return pb.gruau_fitness(ep["balanced"], jnp.sum(ep["trace"]))


def double_pole_nv_champion(space: NeatSpace, genome: Genome, long_steps: int = pb.DOUBLE_POLE_STEPS
                            ) -> tuple[jax.Array, dict[str, jax.Array]]:
    """The C++ `pole2_epoch` test: balance `long_steps` (100,000) from the standard start (the C++ code accepts
    99,999), then at least 200 of the 625 generalization starts for 1,000 steps (999 balanced accepted)."""
    net = space.decode(genome)
    steps = double_pole_nv_episode(space, net, pb.double_pole_initial_state(), long_steps)["steps"]
    long_ok = steps >= long_steps - 1

    def generalize(_):
        run = lambda s: double_pole_nv_episode(space, net, s, pb.DOUBLE_POLE_NV_GENERALIZATION_STEPS)  # noqa: E731
        balanced = jax.vmap(run)(pb.double_pole_nv_generalization_starts())["balanced"]
        return jnp.sum(balanced >= pb.DOUBLE_POLE_NV_GENERALIZATION_STEPS - 1).astype(jnp.int32)

    score = jax.lax.cond(long_ok, generalize, lambda _: jnp.int32(0), None)
    solved = long_ok & (score >= pb.DOUBLE_POLE_NV_GENERALIZATION_NEEDED)
    return solved, {"champion_steps": steps, "generalization": score}


def digits_data(seed: int = 0) -> dict[str, np.ndarray]:
    """The embedded digits at 4x4 (16 features in [0, 1]) with stratified train / valid / test splits."""
    from jaxnas.data import load_images

    data = load_images("digits", size=4, seed=seed)
    flat = lambda x: x.reshape(x.shape[0], -1).astype(np.float32)  # noqa: E731
    return {"train_x": flat(data.train_x), "train_y": data.train_y, "valid_x": flat(data.valid_x),
            "valid_y": data.valid_y, "test_x": flat(data.test_x), "test_y": data.test_y}


def digits_accuracy(space: NeatSpace, genome: Genome, x: jax.Array, y: jax.Array) -> jax.Array:
    return jnp.mean(jnp.argmax(space.apply(genome, x), -1) == y)


@dataclasses.dataclass(frozen=True)
class ProblemOptions:
    """The settings some problems take (each factory reads the ones it needs)."""

    double_pole_steps: int = pb.DOUBLE_POLE_STEPS  # the long balance of the double-pole problems
    seed: int = 0  # the digits' split
    digits_target: float = 0.9  # the training accuracy at which digits counts as solved


NEAT_PROBLEMS: Registry[Callable[[ProblemOptions], NeatProblem]] = Registry("problem")


@NEAT_PROBLEMS.register("xor")
def _xor(o: ProblemOptions) -> NeatProblem:
    def details(space, genome, history):
        out = space.apply(genome, jnp.asarray(XOR_INPUTS))[:, 0]
        return {"outputs": np.round(np.asarray(out), 4).tolist()}

    return NeatProblem("xor", 2, 1, 3.9, xor_fitness, description="XOR; fitness 4 - SSE, solved at 3.9",
                       details=details)


@NEAT_PROBLEMS.register("cartpole")
def _cartpole(o: ProblemOptions) -> NeatProblem:
    return NeatProblem("cartpole", 4, 1, 1.0, cartpole_fitness,
                       description=f"single pole, {pb.SINGLE_POLE_STEPS} steps from {CARTPOLE_STARTS} starts",
                       details=lambda sp, g, h: {"steps_per_start": np.asarray(cartpole_steps(sp, g)).tolist()})


@NEAT_PROBLEMS.register("double_pole")
def _double_pole(o: ProblemOptions) -> NeatProblem:
    fitness = lambda sp, g: double_pole_fitness(sp, g, o.double_pole_steps)  # noqa: E731
    return NeatProblem("double_pole", 6, 1, 1.0, fitness,
                       description=f"double pole with velocities, {o.double_pole_steps:,} steps",
                       details=lambda sp, g, h: {"steps": int(round(float(fitness(sp, g)) * o.double_pole_steps))})


@NEAT_PROBLEMS.register("double_pole_nv")
def _double_pole_nv(o: ProblemOptions) -> NeatProblem:
    def details(space, genome, history):  # the winner is the last champion tested: its test is in the history
        return {"long_test_steps": int(history["champion_steps"][-1]), "generalization": int(history["generalization"][-1]),
                "generalization_needed": pb.DOUBLE_POLE_NV_GENERALIZATION_NEEDED}

    return NeatProblem("double_pole_nv", 3, 1, float("inf"), double_pole_nv_fitness, recurrent=True,
                       champion_test=lambda sp, g: double_pole_nv_champion(sp, g, o.double_pole_steps),
                       description=f"double pole without velocities (recurrent), Gruau fitness; solved when "
                                   f"the champion balances {o.double_pole_steps:,} steps and 200 of 625 "
                                   "generalization starts", details=details)


@NEAT_PROBLEMS.register("digits")
def _digits(o: ProblemOptions) -> NeatProblem:
    data = digits_data(o.seed)
    x, y = jnp.asarray(data["train_x"]), jnp.asarray(data["train_y"])

    def fitness(space: NeatSpace, genome: Genome) -> jax.Array:
        logp = jax.nn.log_softmax(space.apply(genome, x), -1)  # (B, 10)
        return jnp.exp(jnp.mean(jnp.take_along_axis(logp, y[:, None], 1)))

    def details(space, genome, history):
        return {f"{s}_accuracy": float(digits_accuracy(space, genome, jnp.asarray(data[f"{s}_x"]),
                                                       jnp.asarray(data[f"{s}_y"]))) for s in ("train", "valid", "test")}

    problem = NeatProblem("digits", 16, 10, fitness_threshold=float("inf"), fitness=fitness,
                          output_activation="identity",
                          description="sklearn digits at 4x4, 10 logits; fitness exp(-cross-entropy)", details=details,
                          solved_when=lambda d: d["train_accuracy"] >= o.digits_target)
    object.__setattr__(problem, "data", data)
    return problem


def _boxes_pictures(space: NeatSpace, genome: Genome) -> list[tuple[Any, str, str]]:
    from jaxnas.problems.hyperneat_pictures import pictures  # matplotlib only when a report is drawn

    return pictures(space, genome)


@NEAT_PROBLEMS.register("boxes")
def _boxes(o: ProblemOptions) -> NeatProblem:
    from jaxnas.problems import hyperneat as hn

    return NeatProblem("boxes", 4, 1, hn.SOLVED_FITNESS, hn.boxes_fitness,
                       output_activation="signed_sigmoid",
                       activations=hn.CPPN, details=lambda sp, g, h: hn.boxes_details(sp, g), pictures=_boxes_pictures,
                       description="HyperNEAT's visual discrimination: a CPPN draws the 121x121 weights of an 11x11 "
                                   "substrate that must find the large of two boxes; solved at 95% of the best "
                                   "trial score (fitness 2,147.5 of 2,260)")


def make_problem(name: str, *, double_pole_steps: int = pb.DOUBLE_POLE_STEPS, seed: int = 0,
                 digits_target: float = 0.9) -> NeatProblem:
    """The named problem of `NEAT_PROBLEMS` (`xor`, `cartpole`, `double_pole`, `double_pole_nv`, `digits`, `boxes`)."""
    return NEAT_PROBLEMS.get(name, field="problem")(ProblemOptions(double_pole_steps, seed, digits_target))


PROBLEMS = tuple(NEAT_PROBLEMS)  # the names (older code imports them from here)
