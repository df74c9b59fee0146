"""MetaQNN's Q-learning agent (Baker, Gupta, Naik & Raskar, "Designing Neural Network Architectures using
Reinforcement Learning", ICLR 2017, Sec. 3-4; published code: bowenbaker/metaqnn, `libs/grammar/q_learner.py`,
`q_server.py`, `models/cifar10/state_space_parameters.py`).

The agent walks the space position by position: in state s (the space's `AgentStates`: on NAS-Bench-201 and
NAS-Bench-Macro the exact prefix tree, i.e. (position, choices so far); on the MetaQNN space the published
(depth, previous layer, size bin) state) it takes an epsilon-greedy action among the ids the space allows there.
Every trained model enters a replay memory; after each one, `replay_samples` trajectories are drawn from the memory
and each is applied backwards, last transition first, with

    Q(s, a) <- Q(s, a) + alpha * (r + gamma * max_a' Q(s', a') - Q(s, a)),

where r is the model's reward at its terminal transition and 0 before it, and the max (over the ids allowed at
s') is 0 after the terminal transition. A space whose chains end early (`AgentStates.decisions`) has
trajectories of `decisions(arch)` transitions; the forced padding after the end is neither acted on nor updated.

Defaults and where they come from:

* alpha `learning_rate` 0.01, gamma `discount` 1.0, Q initialised to `initial_q` 0.5 (`init_utility`):
  the published `state_space_parameters.py` (the paper: alpha 0.01, Q "initialised to 0.5").
* `replay_samples` 128 trajectories per model, drawn uniformly with replacement from the memory list: the
  published `replay_number = 128` (the paper's text says 100).
* epsilon schedule, unique models trained at each epsilon: (1.0, 1500), then 0.9, 0.8, 0.7 for 100 each, then
  0.6 ... 0.1 for 150 each (2,700 models; published `epsilon_schedule`, the paper's Table 2). By default it is
  scaled to `total_models`: count_i = c_i * total_models / 2700, rounded by largest remainder (ties: the earlier
  phase) so that the counts sum to `total_models` exactly; at small budgets a phase whose share rounds to 0 is
  skipped (total_models = 5: 3 models at 1.0, 1 at 0.6, 1 at 0.5). Past the table's end the last epsilon is kept.
  `total_models` defaults to 100, what a 12,000 s NAS-Bench-201 search trains (the other strategies' defaults are
  their NAS-Bench-201 settings too): 56 models at 1.0, 4 each at 0.9-0.7, 6 at 0.6 and 0.5, 5 each at 0.4-0.1.
  `total_models=2700` with the default schedule is the paper's schedule exactly.
* a sampled model that is already in the memory is not trained again (published `q_server.py`): it is appended
  to the memory again (here: its multiplicity + 1, so replay draws it proportionally more often), one replay
  round runs, and a new model is sampled. Only unique models advance the epsilon schedule.
* epsilon-greedy: with probability epsilon a uniformly random allowed id, else the argmax of Q over the allowed
  ids, exact ties broken uniformly (published `_transition_q_learning`).
* reward: the validation accuracy as a fraction, the fitness itself (every accuracy of the library is a
  fraction; the published reward is the accuracy fraction, `accuracy_best_val`). A NaN fitness (a diverged model) is
  rewarded 0, the worst accuracy: a NaN is never learned.

Deviations, each deliberate:

* resampling is capped: after `max_resamples` repeats in one `ask` the next sample is returned even if it was
  trained (the published server recurses until a new model comes up, which never ends on an exhausted space).
  A returned repeat is evaluated again and told: its multiplicity grows, its first stored reward is kept.
  The default, 100, is ours: in 200 searches of 100 models on each table (dev seed 0) no ask reached it. Under
  `vmap` every resampling loop runs as long as the longest one among the vmapped searches, which makes
  resampling the costly part of a table run.
* `tell` takes no PRNG key (ask/tell protocol), so the replay rounds it owes (one per model) run at the start of
  the next `ask`, with that ask's key. For `batch_size=1` this is the published order (incorporate, replay,
  sample the next model); with a batch, all of its models enter the memory before their rounds run.
* a batch (batch_size > 1) is sampled as the published server serves parallel workers: a sample equal to an
  earlier one of the same batch (a model "being trained on another machine") is resampled, and counts as one
  more sample of that model: one more multiplicity and one more replay round when it is told.
* the memory holds `capacity` rows (default 2 * total_models: the budget plus a margin as large as the budget,
  for table searches whose time budget buys more models than planned); when full, a new model overwrites the
  oldest row (and a later sample of the forgotten model counts as new). The published memory is unbounded.
* Q is float32 (the published code: Python floats).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import ClassVar

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from jaxnas.common.errors import ConfigError, check, check_positive, check_range
from jaxnas.spaces.base import AgentStates, CategoricalSpace
from jaxnas.strategies.base import sanitize_fitness

# (epsilon, unique models trained at it): the published `epsilon_schedule`, 2,700 models in all.
PAPER_SCHEDULE: tuple[tuple[float, int], ...] = (
    (1.0, 1500), (0.9, 100), (0.8, 100), (0.7, 100), (0.6, 150), (0.5, 150), (0.4, 150), (0.3, 150), (0.2, 150),
    (0.1, 150))
NAN_REWARD = 0.0  # the reward of a model whose fitness is NaN (or infinite)

Schedule = tuple[tuple[float, int], ...]


def scaled_schedule(total_models: int, base: Schedule = PAPER_SCHEDULE) -> Schedule:
    """`base` with its counts scaled to sum to `total_models` (largest remainder; ties: the earlier phase)."""
    whole = sum(c for _, c in base)
    exact = [c * total_models for _, c in base]  # numerators over `whole`: integer arithmetic, no float ties
    counts = [e // whole for e in exact]
    order = sorted(range(len(base)), key=lambda i: (-(exact[i] % whole), i))
    for i in order[:total_models - sum(counts)]:
        counts[i] += 1
    return tuple((float(e), n) for (e, _), n in zip(base, counts))


@struct.dataclass
class QLearningState:
    q: jax.Array  # (S, C) float32: Q(state, action)
    archs: jax.Array  # (N, L) int32: the replay memory, one row per unique model told
    reward: jax.Array  # (N,) float32: each row's reward (its first evaluation)
    multiplicity: jax.Array  # (N,) int32: how often each row's model was sampled; 0: an empty row
    stored: jax.Array  # () int32: rows written; the next new model goes to row stored % N
    unique: jax.Array  # () int32: unique models told, the epsilon schedule's clock
    owed: jax.Array  # () int32: replay rounds told and not yet run (the next ask runs them)
    pending: jax.Array  # (B,) int32: extra samples of each model of the last ask's batch (in-batch repeats)
    replays: jax.Array  # () int32: trajectories replayed so far
    resamples: jax.Array  # () int32: repeats that ask sampled and resampled so far
    repeats_returned: jax.Array  # () int32: asks that returned a repeat (max_resamples reached)


@dataclasses.dataclass(frozen=True)
class QLearning:
    """MetaQNN's epsilon-greedy Q-learning with experience replay; see the module docstring for the defaults."""

    space: CategoricalSpace
    total_models: int = 100
    batch_size: int = 1
    epsilon_schedule: Schedule | None = None  # None: PAPER_SCHEDULE scaled to total_models
    learning_rate: float = 0.01
    discount: float = 1.0
    initial_q: float = 0.5
    replay_samples: int = 128
    max_resamples: int = 100
    capacity: int | None = None  # replay memory rows; None: 2 * total_models
    # runs a table search vmaps together (`BudgetedSearch`): a round's 768 sequential Q updates cost about the same
    # for 20 runs as for 100 (per-op overhead), which outweighs the longer resampling loops of a wider block
    # (of blocks of 20, 100 and 250 tried on 500 NAS-Bench-201 searches, 2-core CPU, 100 was the fastest)
    block_runs: ClassVar[int] = 100

    def __post_init__(self):
        check_positive("total_models", self.total_models, integer=True)
        check_positive("batch_size", self.batch_size, integer=True)
        lr = self.learning_rate
        check(isinstance(lr, (int, float)) and not isinstance(lr, bool) and 0 < lr <= 1, "learning_rate",
              f"got {lr!r}; allowed: a number in (0, 1]")
        check_range("discount", self.discount, 0.0, 1.0)
        check(isinstance(self.initial_q, (int, float)) and math.isfinite(self.initial_q), "initial_q",
              f"got {self.initial_q!r}; allowed: a finite number")
        for field in ("replay_samples", "max_resamples"):
            value = getattr(self, field)
            check(isinstance(value, int) and not isinstance(value, bool) and value >= 0, field,
                  f"got {value!r}; allowed: an integer >= 0")
        if self.capacity is not None:
            check_positive("capacity", self.capacity, integer=True)
        if self.epsilon_schedule is not None:
            object.__setattr__(self, "epsilon_schedule", _checked_schedule(self.epsilon_schedule, self.total_models))
        self.agent  # noqa: B018  (a space too big for the prefix tree is refused here, naming agent_states)

    # --- settings derived once ------------------------------------------------------------------------------------
    @functools.cached_property
    def agent(self) -> AgentStates:
        return self.space.states()

    @property
    def schedule(self) -> Schedule:
        """The (epsilon, unique models) table in use."""
        return self.epsilon_schedule if self.epsilon_schedule is not None else scaled_schedule(self.total_models)

    @property
    def slots(self) -> int:
        return self.capacity if self.capacity is not None else 2 * self.total_models

    def epsilon(self, unique: jax.Array) -> jax.Array:
        """() float32: the epsilon after `unique` unique models (the last one past the table's end)."""
        eps = jnp.asarray([e for e, _ in self.schedule], jnp.float32)
        ends = jnp.asarray(np.cumsum([c for _, c in self.schedule]), jnp.int32)
        return eps[jnp.minimum(jnp.searchsorted(ends, unique, side="right"), len(self.schedule) - 1)]

    # --- ask / tell ------------------------------------------------------------------------------------------------
    def init(self, key: jax.Array) -> QLearningState:
        del key  # Q starts at initial_q everywhere, the memory empty
        zero = jnp.zeros((), jnp.int32)
        return QLearningState(
            q=jnp.full((self.agent.num_states, self.space.num_choices), self.initial_q, jnp.float32),
            archs=jnp.zeros((self.slots, self.space.num_positions), jnp.int32),
            reward=jnp.zeros((self.slots,), jnp.float32), multiplicity=jnp.zeros((self.slots,), jnp.int32),
            stored=zero, unique=zero, owed=zero, pending=jnp.zeros((self.batch_size,), jnp.int32), replays=zero,
            resamples=zero, repeats_returned=zero)

    def ask(self, key: jax.Array, state: QLearningState) -> tuple[jax.Array, QLearningState]:
        k_owed, k_batch = jax.random.split(key)
        owed = lambda i, s: self._round(jax.random.fold_in(k_owed, i), s, jnp.array(True))  # noqa: E731
        # zeros made from the state (`x * 0`), so that under shard_map they vary over devices as the state does
        # (loop carries must keep their type)
        state = jax.lax.fori_loop(0, state.owed, owed, state)
        state = state.replace(owed=state.owed * 0, pending=state.pending * 0)
        eps = self.epsilon(state.unique)

        def slot(b, carry):
            state, batch = carry
            arch, state = self._draw(jax.random.fold_in(k_batch, b), state, eps, batch, b)
            return state, batch.at[b].set(arch)

        empty = jnp.zeros((self.batch_size, self.space.num_positions), jnp.int32) + state.stored * 0  # (B, L)
        state, archs = jax.lax.fori_loop(0, self.batch_size, slot, (state, empty))
        return archs, state

    def tell(self, state: QLearningState, archs: jax.Array,
             fitness: jax.Array) -> tuple[QLearningState, dict[str, jax.Array]]:
        if archs.shape[0] != self.batch_size:
            raise ValueError(f"tell: got {archs.shape[0]} architectures; expected batch_size={self.batch_size}")
        fitness = sanitize_fitness(fitness)  # NaN -> -inf
        reward = jnp.where(jnp.isfinite(fitness), fitness, NAN_REWARD)  # (B,)

        def one(b, s):
            arch = archs[b].astype(jnp.int32)
            row = _find(s.archs, s.multiplicity > 0, arch)
            new = row < 0
            at = jnp.where(new, s.stored % self.slots, row)
            times = 1 + s.pending[b]
            return s.replace(
                archs=s.archs.at[at].set(arch),
                reward=s.reward.at[at].set(jnp.where(new, reward[b], s.reward[at])),
                multiplicity=s.multiplicity.at[at].set(jnp.where(new, 0, s.multiplicity[at]) + times),
                stored=s.stored + new, unique=s.unique + new, owed=s.owed + times)

        state = jax.lax.fori_loop(0, self.batch_size, one, state)
        state = state.replace(pending=state.pending * 0)
        return state, {"epsilon": self.epsilon(state.unique), "unique_models": state.unique,
                       "resamples": state.resamples, "repeats_returned": state.repeats_returned}

    # --- the agent -------------------------------------------------------------------------------------------------
    def _sample(self, key: jax.Array, q: jax.Array, eps: jax.Array) -> jax.Array:
        """(L,) int32: one epsilon-greedy walk through the positions."""
        arch = jnp.zeros((self.space.num_positions,), jnp.int32)
        for p, k in enumerate(jax.random.split(key, self.space.num_positions)):
            k_coin, k_random, k_greedy = jax.random.split(k, 3)
            mask = self.space.position_mask(arch, p)  # (C,)
            values = q[self.agent.index(arch, p)]  # (C,)
            best = jnp.max(jnp.where(mask, values, -jnp.inf))
            greedy = _pick(k_greedy, mask & (values == best))  # exact ties: uniform
            explore = jax.random.uniform(k_coin) < eps
            arch = arch.at[p].set(jnp.where(explore, _pick(k_random, mask), greedy))
        return arch

    def _draw(self, key, state, eps, batch, b):
        """One model for batch slot `b`: resampled while it is in the memory or earlier in `batch`, each memory
        repeat incorporated (multiplicity + 1, one replay round), at most `max_resamples` times."""
        in_batch = jnp.arange(self.batch_size) < b

        def sample(attempt, q):
            arch = self._sample(jax.random.fold_in(key, 2 * attempt), q, eps)  # replay keys: odd numbers
            return arch, _find(state.archs, state.multiplicity > 0, arch), _find(batch, in_batch, arch)

        def again(c):
            _, attempt, arch, row, twin = c
            return ((row >= 0) | (twin >= 0)) & (attempt < self.max_resamples)

        def resample(c):
            s, attempt, arch, row, twin = c
            repeat = row >= 0
            s = s.replace(multiplicity=s.multiplicity.at[jnp.maximum(row, 0)].add(repeat.astype(jnp.int32)),
                          pending=s.pending.at[jnp.maximum(twin, 0)].add((~repeat & (twin >= 0)).astype(jnp.int32)),
                          resamples=s.resamples + 1)
            s = self._round(jax.random.fold_in(key, 2 * attempt + 1), s, repeat)
            return (s, attempt + 1, *sample(attempt + 1, s.q))

        first = (state, jnp.zeros((), jnp.int32), *sample(0, state.q))
        state, _, arch, row, twin = jax.lax.while_loop(again, resample, first)
        return arch, state.replace(repeats_returned=state.repeats_returned + ((row >= 0) | (twin >= 0)))

    def _round(self, key: jax.Array, state: QLearningState, active: jax.Array) -> QLearningState:
        """One replay round: `replay_samples` models drawn with replacement in proportion to their multiplicity
        (the published list with duplicates), each trajectory updated backwards; no change unless `active`."""
        if self.replay_samples == 0:
            return state
        ends = jnp.cumsum(state.multiplicity)  # (N,)
        draws = jax.random.randint(key, (self.replay_samples,), 0, jnp.maximum(ends[-1], 1))
        rows = jnp.searchsorted(ends, draws, side="right")  # (R,): empty rows are never drawn
        paths = self._trajectories(state.archs[rows])  # everything but Q, for all R at once: out of the loop
        rewards = state.reward[rows]  # (R,)
        q = jax.lax.fori_loop(0, self.replay_samples, lambda i, q: self._apply(
            q, jax.tree.map(lambda x: x[i], paths), rewards[i], active), state.q)
        return state.replace(q=q, replays=state.replays + jnp.where(active, self.replay_samples, 0))

    def _trajectories(self, archs: jax.Array) -> tuple[jax.Array, ...]:
        """For archs (..., L): actions (..., L), states (..., L), the ids allowed after each position
        (..., L, C; the last row unused) and the position of the terminal transition (...)."""
        length = self.space.num_positions
        states = jnp.stack([self.agent.index(archs, p) for p in range(length)], axis=-1)
        allowed = jnp.stack([self.space.position_mask(archs, min(p + 1, length - 1)) for p in range(length)], axis=-2)
        last = (self.agent.decisions(archs) - 1 if self.agent.decisions is not None
                else jnp.full(archs.shape[:-1], length - 1, jnp.int32))
        return archs, states, allowed, last

    def _apply(self, q: jax.Array, path: tuple[jax.Array, ...], reward: jax.Array, active: jax.Array) -> jax.Array:
        arch, states, allowed, last = path
        length = self.space.num_positions
        for p in reversed(range(length)):
            terminal = p == last
            if p + 1 < length:
                best_next = jnp.max(jnp.where(allowed[p], q[states[p + 1]], -jnp.inf))
                target = jnp.where(terminal, reward, self.discount * best_next)
            else:
                target = reward
            old = q[states[p], arch[p]]
            new = old + self.learning_rate * (target - old)
            q = q.at[states[p], arch[p]].set(jnp.where(active & (p <= last), new, old))
        return q

    def update(self, q: jax.Array, arch: jax.Array, reward: jax.Array) -> jax.Array:
        """Q after one trajectory `arch` (L,) with terminal `reward`: its transitions updated last first, the
        terminal one towards the reward, each earlier one towards discount * max Q over the next allowed ids."""
        return self._apply(q, self._trajectories(jnp.asarray(arch, jnp.int32)), jnp.asarray(reward, jnp.float32),
                           jnp.array(True))


def _checked_schedule(schedule, total_models: int) -> Schedule:
    allowed = "allowed: (epsilon in [0, 1], count an integer >= 0) pairs"
    try:
        pairs = tuple((e, c) for e, c in schedule)
    except (TypeError, ValueError):
        raise ConfigError("epsilon_schedule", f"got {schedule!r}; {allowed}") from None
    check(len(pairs) > 0, "epsilon_schedule", f"got {schedule!r}; {allowed}, at least one")
    for e, c in pairs:
        check(isinstance(e, (int, float)) and not isinstance(e, bool) and 0 <= e <= 1, "epsilon_schedule",
              f"got epsilon {e!r}; allowed: a number in [0, 1]")
        check(isinstance(c, (int, np.integer)) and not isinstance(c, bool) and c >= 0, "epsilon_schedule",
              f"got count {c!r}; allowed: an integer >= 0")
    total = sum(int(c) for _, c in pairs)
    check(total == total_models, "epsilon_schedule",
          f"got counts summing to {total}; allowed: counts summing to total_models ({total_models})")
    return tuple((float(e), int(c)) for e, c in pairs)


def _find(rows: jax.Array, filled: jax.Array, arch: jax.Array) -> jax.Array:
    """() int32: the first filled row of `rows` (N, L) equal to `arch` (L,) in every entry, else -1."""
    hit = jnp.all(rows == arch, axis=-1) & filled
    return jnp.where(hit.any(), jnp.argmax(hit), -1).astype(jnp.int32)


def _pick(key: jax.Array, mask: jax.Array) -> jax.Array:
    """() int32: an index drawn uniformly among the True entries of `mask`."""
    return jax.random.categorical(key, jnp.where(mask, 0.0, -jnp.inf)).astype(jnp.int32)
