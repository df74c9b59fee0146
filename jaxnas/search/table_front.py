"""Multi-objective search on a table: accuracy against FLOPs on NAS-Bench-Macro, scored by hypervolume.

An exact, fast check of the multi-objective machinery of issue 25 (searching a detector's input size and depth
against compute): the same search families run on NAS-Bench-Macro (`jaxnas.problems.macro_table`), where every
network's accuracy and FLOPs are known, so a search's front can be scored against the table's true front.

Protocol. Each run makes `budget` table evaluations, one architecture at a time. The search sees the accuracy of
one training (`search_run`) and the FLOPs, scalarised by MnasNet's reward acc * (FLOPs / T)^w
(`jaxnas.search.pareto.mnas_reward`, Tan et al. 2019, Eq. 2, soft constraint alpha = beta = w). Under the soft
constraint the target T only rescales the reward (it is the table's median FLOPs); w sets the trade-off, and one w
picks one point of the front (w = -0.07, the paper's value, picks a 27-MFLOPs network at 89.6%). So that a run
traces a front, w sweeps geometrically from `w_start` to `w_end` over the run's evaluations: evaluation t of B
uses |w_t| = |w_start| * (|w_end| / |w_start|)^(t / (B - 1)). The run's front is the Pareto front (searched
accuracy, FLOPs) of everything it evaluated; its score is the hypervolume of those networks at their *reported*
accuracy (the mean of the other two trainings) divided by that of the table's own front at the reported accuracy,
both against one reference point, (the table's worst reported accuracy, its largest FLOPs).

Methods (all in ask/tell form, one `lax.scan` over evaluations, vmapped over runs, blocks of runs in `lax.map`):

* `reinforce`: the LSTM controller of `jaxnas.strategies.reinforce` at its published defaults, rewarded with the
  current w's reward.
* `evolution`: aging evolution (`jaxnas.strategies.evolution`, P = 10, S = 3). Before each tournament the
  population's fitness is re-scored with the current w; its members' accuracy and FLOPs were measured when they were
  evaluated, so re-scoring reads no new evaluation.
* `gradient`: gradient ascent on the logits theta (L, C) of a factorised categorical distribution p_theta over the
  layers' choices. The table has no gradient, so accuracy enters through a surrogate fitted on this run's own
  evaluations only (the budget is respected): ridge regression of log(1 - acc) on the one-hot choices (additive in
  log error; on the whole table this form explains 86% of the variance, additive accuracy 69%), and FLOPs by ridge
  regression on the same features (FLOPs are exactly additive on NAS-Bench-Macro). The relaxed objective is the
  reward at the surrogates' exact expectations under p_theta, log E[acc] + w log(E[FLOPs] / T), where
  E[1 - exp(b + sum_l u_l(a_l))] = 1 - exp(b) prod_l sum_c p_lc exp(u_lc) (acc a fraction) and E[FLOPs] = c + sum_lc p_lc v_lc:
  the expected-cost relaxation of FBNet (Wu et al., CVPR 2019) and ProxylessNAS (Cai et al., ICLR 2019), with the
  fitted surrogate in place of a supernet's loss. Each evaluation is one architecture sampled from p_theta (a
  discretised architecture: it costs one evaluation, repeats included); after it, the surrogates are refitted and
  theta takes `steps` Adam steps. The first `warmup` evaluations are uniform (theta = 0).
* `random`: uniform sampling, the baseline.

Deviation from MnasNet: its controller searches one target per run; the w sweep inside a run is ours, so that one run
yields a front. Tuning (100 runs of 100 evaluations, search_run 0, seeds 100 and 101, never reported; median
hypervolume ratio): the sweep -0.03 -> -0.5 (it spans the w at which the best network changes, from 92.1% at 40
MFLOPs to 70.3% at 12 on training 0) had the best mean of the three methods' medians over both seeds (0.957;
-0.5 -> -0.03: 0.956, level on seed 100 and 0.004 behind on seed 101; on seed 100, -0.01 -> -1: 0.954, -1 -> -0.01:
0.950; REINFORCE alone preferred the reversed sweeps, 0.96 against 0.94). The gradient method,
5 Adam steps per evaluation: learning rate 0.005 (at the chosen sweep 0.979; 0.003: 0.978, 0.01: 0.968; at the sweep
-0.01 -> -1, 0.03: 0.949, and 0.1 or 0.3 at one step: 0.89, 0.80, p_theta collapsing so that 100 evaluations held
only 25-50 distinct networks); ridge 1 and warmup 10 (at learning rate 0.01: ridge 0.1 0.975, 10 0.929; warmup 5
0.970, 20 0.976, 10 0.972). REINFORCE and aging evolution keep their published defaults.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct

from jaxnas.common.errors import check, check_choice, check_positive
from jaxnas.problems.tabular import Table
from jaxnas.search.pareto import hypervolume_2d, mnas_reward_jax, pareto_mask
from jaxnas.spaces.base import CategoricalSpace
from jaxnas.strategies.evolution import aging_evolution
from jaxnas.strategies.random import RandomSearch
from jaxnas.strategies.reinforce import Reinforce

METHODS = ("reinforce", "evolution", "gradient", "random")


@dataclasses.dataclass(frozen=True, eq=False)  # holds arrays: compared and hashed by identity
class FrontProblem:
    """A table seen as two objectives: `search_acc` (what the search sees), `report_acc` (what is scored), `cost`."""

    space: CategoricalSpace
    search_acc: np.ndarray  # (N,) float32, a fraction, indexed by `space.encode`
    report_acc: np.ndarray  # (N,)
    cost: np.ndarray  # (N,) MFLOPs

    @classmethod
    def from_table(cls, table: Table, cost: str = "flops", scale: float = 1e-6) -> FrontProblem:
        check_choice("cost", cost, sorted(table.extras))
        return cls(table.space, np.asarray(table.valid, np.float32), np.asarray(table.test, np.float32),
                   np.asarray(table.extras[cost], np.float64) * scale)

    @property
    def reference(self) -> tuple[float, float]:
        """The fixed hypervolume reference point: (worst reported accuracy, largest cost) of the table."""
        return float(self.report_acc.min()), float(self.cost.max())

    @property
    def target(self) -> float:
        """MnasNet's target T: the table's median cost (under the soft constraint it only rescales the reward)."""
        return float(np.median(self.cost))

    def known_front(self, reported: bool = True) -> np.ndarray:
        """Codes of the table's front (distinct points, each once), sorted by cost."""
        acc = self.report_acc if reported else self.search_acc
        codes = np.flatnonzero(pareto_mask(acc, self.cost))
        return codes[np.argsort(self.cost[codes])]


@dataclasses.dataclass(frozen=True)
class WeightSweep:
    """MnasNet's w for each evaluation: geometric from `w_start` to `w_end` (both < 0) over `budget` evaluations."""

    w_start: float = -0.03
    w_end: float = -0.5

    def __post_init__(self):
        for name in ("w_start", "w_end"):
            value = getattr(self, name)
            check(isinstance(value, (int, float)) and not isinstance(value, bool) and np.isfinite(value) and value < 0,
                  name, f"got {value!r}; allowed: a finite number < 0")

    def at(self, t: jax.Array, budget: int) -> jax.Array:
        frac = t / max(budget - 1, 1)
        return -jnp.exp((1 - frac) * np.log(-self.w_start) + frac * np.log(-self.w_end))


@struct.dataclass
class GradientState:
    theta: jax.Array  # (L, C) logits of p_theta
    opt_state: optax.OptState
    archs: jax.Array  # (B, L) int32 evaluated so far (rows >= count unused)
    log_err: jax.Array  # (B,) log(1 - searched accuracy)
    cost: jax.Array  # (B,)
    count: jax.Array  # () int32


@dataclasses.dataclass(frozen=True)
class GradientFront:
    """Gradient ascent on a factorised categorical relaxation (module docstring); `budget` sizes the history."""

    space: CategoricalSpace
    budget: int
    learning_rate: float = 0.005
    steps: int = 5
    warmup: int = 10
    ridge: float = 1.0
    target: float = 1.0
    batch_size: int = 1

    def __post_init__(self):
        check_positive("budget", self.budget, integer=True)
        check_positive("gradient.learning_rate", self.learning_rate)
        check_positive("gradient.steps", self.steps, integer=True)
        check_positive("gradient.ridge", self.ridge)
        check(isinstance(self.warmup, int) and 0 <= self.warmup, "gradient.warmup",
              f"got {self.warmup!r}; allowed: an integer >= 0")

    def init(self, key: jax.Array) -> GradientState:
        del key
        theta = jnp.zeros((self.space.num_positions, self.space.num_choices), jnp.float32)
        b, length = self.budget, self.space.num_positions
        return GradientState(theta, optax.adam(self.learning_rate).init(theta), jnp.zeros((b, length), jnp.int32),
                             jnp.zeros((b,), jnp.float32), jnp.zeros((b,), jnp.float32), jnp.zeros((), jnp.int32))

    def ask(self, key: jax.Array, state: GradientState) -> tuple[jax.Array, GradientState]:
        shape = (self.batch_size, self.space.num_positions)
        return jax.random.categorical(key, state.theta, shape=shape).astype(jnp.int32), state  # (1, L)

    def _fit(self, x: jax.Array, y: jax.Array, used: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Ridge regression y ~ b + sum_l u[l, a_l] on the used rows: (b (), u (L, C))."""
        n_feat = x.shape[1]
        design = jnp.concatenate([jnp.ones((x.shape[0], 1)), x], axis=1) * used[:, None]  # (B, 1 + L*C)
        y_mean = jnp.sum(y * used) / jnp.maximum(jnp.sum(used), 1)  # centred: the intercept stays unpenalised
        penalty = self.ridge * jnp.diag(jnp.concatenate([jnp.zeros(1), jnp.ones(n_feat)]))
        gram = design.T @ design + penalty + 1e-6 * jnp.eye(n_feat + 1)
        beta = jnp.linalg.solve(gram, design.T @ ((y - y_mean) * used))
        return beta[0] + y_mean, beta[1:].reshape(self.space.num_positions, self.space.num_choices)

    def relaxed(self, theta: jax.Array, acc_fit, cost_fit, w: jax.Array) -> jax.Array:
        """log E[acc] + w log(E[cost] / T) under p_theta, both expectations of the surrogates exact."""
        logp = jax.nn.log_softmax(theta)  # (L, C)
        log_e_err = acc_fit[0] + jnp.sum(jax.nn.logsumexp(logp + acc_fit[1], axis=-1))
        e_acc = 1.0 - jnp.exp(log_e_err)
        e_cost = cost_fit[0] + jnp.sum(jnp.exp(logp) * cost_fit[1])
        return jnp.log(jnp.maximum(e_acc, 1e-4)) + w * jnp.log(jnp.maximum(e_cost, 1e-3) / self.target)

    def tell(self, state: GradientState, archs: jax.Array, acc: jax.Array, cost: jax.Array,
             w: jax.Array) -> GradientState:
        rows = state.count + jnp.arange(archs.shape[0])
        new = state.replace(archs=state.archs.at[rows].set(archs),
                            log_err=state.log_err.at[rows].set(jnp.log(jnp.maximum(1.0 - acc, 1e-5))),
                            cost=state.cost.at[rows].set(cost), count=state.count + archs.shape[0])
        used = (jnp.arange(self.budget) < new.count).astype(jnp.float32)
        x = jax.nn.one_hot(new.archs, self.space.num_choices).reshape(self.budget, -1)  # (B, L*C)
        acc_fit, cost_fit = self._fit(x, new.log_err, used), self._fit(x, new.cost, used)
        opt = optax.adam(self.learning_rate)

        def ascend(carry, _):
            theta, opt_state = carry
            grad = jax.grad(lambda th: -self.relaxed(th, acc_fit, cost_fit, w))(theta)
            updates, opt_state = opt.update(grad, opt_state, theta)
            return (optax.apply_updates(theta, updates), opt_state), None

        (theta, opt_state), _ = jax.lax.scan(ascend, (new.theta, new.opt_state), None, length=self.steps)
        started = new.count >= self.warmup
        return new.replace(theta=jnp.where(started, theta, new.theta),
                           opt_state=jax.tree.map(lambda a, b: jnp.where(started, a, b), opt_state, new.opt_state))


def make_strategy(method: str, space: CategoricalSpace, budget: int, target: float,
                  gradient: dict[str, Any] | None = None) -> Any:
    """The ask/tell object of `method` (`METHODS`), at its defaults; `gradient` overrides GradientFront's."""
    check_choice("method", method, METHODS)
    if method == "reinforce":
        return Reinforce(space)
    if method == "evolution":
        return aging_evolution(space)
    if method == "random":
        return RandomSearch(space)
    allowed = ("learning_rate", "steps", "warmup", "ridge")
    for name in gradient or {}:
        check(name in allowed, "gradient", f"got setting {name!r}; allowed: {', '.join(allowed)}")
    return GradientFront(space, budget, target=target, **(gradient or {}))


@dataclasses.dataclass
class FrontRuns:
    """What `run_front_search` returns: the codes each run evaluated, in order, and the wall time."""

    method: str
    codes: np.ndarray  # (R, B) int32
    wall_s: float


def run_front_search(method: str, problem: FrontProblem, runs: int = 500, budget: int = 100, seed: int = 0,
                     sweep: WeightSweep = WeightSweep(), gradient: dict[str, Any] | None = None,
                     block_runs: int = 20) -> FrontRuns:
    """`runs` independent searches of `budget` evaluations each; run r's key is split from fold_in(seed, method)."""
    check_choice("method", method, METHODS)
    check_positive("runs", runs, integer=True)
    check_positive("budget", budget, integer=True)
    check(budget >= 2, "budget", f"got {budget}; allowed: >= 2 (a sweep of w needs two evaluations)")
    check_positive("block_runs", block_runs, integer=True)
    check(isinstance(sweep, WeightSweep), "sweep", f"got {type(sweep).__name__}; allowed: a WeightSweep")
    start = time.perf_counter()
    make_strategy(method, problem.space, budget, problem.target, gradient)  # validates the settings here, eagerly
    block = min(block_runs, runs)
    padded = -(-runs // block) * block
    keys = jax.random.split(jax.random.fold_in(jax.random.key(seed), METHODS.index(method)), padded)
    fn = _compiled(method, problem.space, budget, problem.target, sweep, tuple(sorted((gradient or {}).items())),
                   block)
    codes = np.asarray(fn(keys, jnp.asarray(problem.search_acc, jnp.float32), jnp.asarray(problem.cost, jnp.float32)))
    return FrontRuns(method, codes[:runs].astype(np.int32), time.perf_counter() - start)


@functools.lru_cache(maxsize=16)
def _compiled(method: str, space: CategoricalSpace, budget: int, target: float, sweep: WeightSweep,
              gradient: tuple, block: int):
    """jit(keys (R, ), search_acc (N,), cost (N,)) -> codes (R, B): every run's evaluated codes, in order."""
    strategy = make_strategy(method, space, budget, target, dict(gradient))

    def one_run(key, search_acc, cost):
        def reward(archs, w):
            code = space.encode(archs)
            return mnas_reward_jax(search_acc[code], cost[code], target, w)

        def step(state, t):
            w = sweep.at(t, budget)
            if method == "evolution":  # re-score the population under the current w (no new evaluation)
                state = state.replace(fitness=jnp.where(state.born >= 0, reward(state.archs, w), -jnp.inf))
            archs, state = strategy.ask(jax.random.fold_in(key, t + 1), state)  # (1, L)
            code = space.encode(archs)  # (1,)
            if method == "gradient":
                state = strategy.tell(state, archs, search_acc[code], cost[code], w)
            else:
                state, _ = strategy.tell(state, archs, reward(archs, w))
            return state, code[0]

        state = strategy.init(jax.random.fold_in(key, 0))
        return jax.lax.scan(step, state, jnp.arange(budget))[1]  # (B,)

    @jax.jit
    def all_runs(keys, search_acc, cost):
        blocks = keys.reshape(keys.shape[0] // block, block)
        codes = jax.lax.map(lambda k: jax.vmap(one_run, in_axes=(0, None, None))(k, search_acc, cost), blocks)
        return codes.reshape(keys.shape[0], budget)

    return all_runs


def run_front(problem: FrontProblem, codes: np.ndarray) -> np.ndarray:
    """Distinct codes of one run's front: Pareto front (searched accuracy, cost) of the codes it evaluated."""
    seen = np.unique(codes)
    return seen[pareto_mask(problem.search_acc[seen], problem.cost[seen])]


def score_runs(problem: FrontProblem, codes: np.ndarray) -> dict[str, np.ndarray]:
    """Per run (rows of `codes` (R, B)): `hv_ratio` (the front chosen on searched accuracy, scored at reported
    accuracy, over the known front's hypervolume), `hv_ratio_searched` (both at searched accuracy) and `found`
    (R, K): whether the run evaluated a network at each of the K known front points (equivalent networks count)."""
    ref = problem.reference
    ref_searched = (float(problem.search_acc.min()), ref[1])
    known = problem.known_front()
    hv_known = hypervolume_2d(problem.report_acc[known], problem.cost[known], ref)
    k_s = problem.known_front(reported=False)
    hv_known_s = hypervolume_2d(problem.search_acc[k_s], problem.cost[k_s], ref_searched)
    point = np.full(len(problem.cost), -1)  # which known point each code sits at, -1 for none
    for k, code in enumerate(known):
        point[(problem.report_acc == problem.report_acc[code]) & (problem.cost == problem.cost[code])] = k
    ratio, ratio_s = np.zeros(len(codes)), np.zeros(len(codes))
    found = np.zeros((len(codes), len(known)), bool)
    for r, row in enumerate(codes):
        front = run_front(problem, row)
        ratio[r] = hypervolume_2d(problem.report_acc[front], problem.cost[front], ref) / hv_known
        ratio_s[r] = hypervolume_2d(problem.search_acc[front], problem.cost[front], ref_searched) / hv_known_s
        hit = point[row]
        found[r, hit[hit >= 0]] = True
    return {"hv_ratio": ratio, "hv_ratio_searched": ratio_s, "found": found}
