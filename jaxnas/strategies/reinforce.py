"""REINFORCE with an LSTM controller (Zoph & Le, "Neural Architecture Search with Reinforcement
Learning", ICLR 2017).

The controller is an autoregressive LSTM: at each position it reads the embedding of the previous
token (a start token first), and a softmax classifier for that position emits the op. The policy
gradient is REINFORCE with a moving-average baseline,

    grad J = E[(R - b) * grad log p(arch)] + entropy_weight * grad H(p),

optimised with Adam. Defaults and where they come from:

* controller: 2-layer LSTM, 35 hidden units per layer, parameters initialised uniformly in
  [-0.08, 0.08], Adam -- Zoph & Le 2017, Sec. 4.1.
* reward = validation accuracy as a fraction in [0, 1] (Zoph & Le use the accuracy; the NAS-Bench-201
  code uses it in percent: with Adam only the ratio to the entropy term changes).
* baseline: exponential moving average of previous rewards (Zoph & Le), momentum 0.9 with bias
  correction as in the NAS-Bench-201 code (`ExponentialMovingAverage(0.9)`); the first sample gets
  advantage 0 because there is no previous reward to compare with.
* one architecture per update (`batch_size=1`), as in the NAS-Bench-201 REINFORCE runs.
* entropy bonus weight 1e-4 and the optional logit temperature / tanh constant come from ENAS
  (Pham et al. 2018); temperature and tanh are off by default (Zoph & Le use neither).
* learning rate 3e-3: Zoph & Le use 6e-4 over ~12,800 sampled architectures; the NAS-Bench-201
  authors swept {0.001 ... 0.5} for their ~100-evaluation searches. Our sweep on the table (500 runs,
  12,000 s, seeds 0-2; README) gave mean validation accuracy 91.03-91.05 at 6e-4/1e-3, 91.09-91.11 at
  3e-3, and worse at >= 0.01 (premature convergence: 90.99 at 0.01, 89.85 at 0.1).

Deviation: the NAS-Bench-201 baseline implementation used independent per-edge logits rather than an
LSTM; the LSTM here is the controller of Zoph & Le, as this project's course unit describes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct

from jaxnas.common.errors import check, check_positive, check_range
from jaxnas.spaces.base import CategoricalSpace
from jaxnas.strategies.base import sanitize_fitness


def _symmetric_uniform(scale: float) -> Callable[..., jax.Array]:
    def init(key, shape, dtype=jnp.float32):
        return jax.random.uniform(key, shape, dtype, -scale, scale)

    return init


# A masked (invalid) choice gets this logit: its probability underflows to exactly 0 in float32, and unlike -inf
# it keeps p * log p (the entropy) and its gradient finite.
MASKED_LOGIT = -1e9


class LSTMController(nn.Module):
    """Autoregressive controller: `step(carry, token, position) -> (carry, logits)`.

    One softmax head per position, sized to that position's options (`counts`; all `num_choices` when None);
    logits come back padded to `num_choices` with MASKED_LOGIT past a position's count.
    """

    num_positions: int
    num_choices: int
    hidden_size: int = 35
    num_layers: int = 2
    init_scale: float = 0.08
    counts: tuple[int, ...] | None = None

    def setup(self):
        init = _symmetric_uniform(self.init_scale)
        self.embed = nn.Embed(self.num_choices + 1, self.hidden_size, embedding_init=init)  # last id = start token
        # one fused matmul per layer and step: [x, h] (B, 2H) @ W (2H, 4H) -> gates i, f, g, o
        self.gates = [nn.Dense(4 * self.hidden_size, kernel_init=init, bias_init=init, name=f"lstm_{i}")
                      for i in range(self.num_layers)]
        # one softmax classifier per position, stored as one matrix (H, sum of the positions' counts)
        counts = self.counts or (self.num_choices,) * self.num_positions
        self.heads = nn.Dense(sum(counts), kernel_init=init, bias_init=init)
        offsets = np.cumsum((0,) + tuple(counts))[:-1]
        choice = np.arange(self.num_choices)
        # column of the head matrix for (position, choice), clipped past the count (those are masked below)
        self._columns = offsets[:, None] + np.minimum(choice[None, :], np.asarray(counts)[:, None] - 1)  # (L, C)
        self._in_head = choice[None, :] < np.asarray(counts)[:, None]  # (L, C)

    def initial_carry(self, batch: int):
        zeros = jnp.zeros((batch, self.hidden_size), jnp.float32)
        return tuple((zeros, zeros) for _ in range(self.num_layers))

    def step(self, carry, token: jax.Array, position: int):
        h = self.embed(token)  # (B, H)
        new_carry = []
        for dense, (c, h_prev) in zip(self.gates, carry):
            i, f, g, o = jnp.split(dense(jnp.concatenate([h, h_prev], axis=-1)), 4, axis=-1)
            c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
            h = jax.nn.sigmoid(o) * jnp.tanh(c)
            new_carry.append((c, h))
        if self.counts is None:  # the uniform case: the head matrix is (H, L*C), one C-block per position
            logits = self.heads(h).reshape(h.shape[0], self.num_positions, self.num_choices)[:, position]  # (B, C)
        else:
            logits = jnp.where(self._in_head[position], self.heads(h)[:, self._columns[position]], MASKED_LOGIT)
        return tuple(new_carry), logits

    def __call__(self, tokens: jax.Array) -> jax.Array:
        """Teacher-forced logits (B, L, C) for given architectures `tokens` (B, L)."""
        batch = tokens.shape[0]
        carry = self.initial_carry(batch)
        prev = jnp.full((batch,), self.num_choices, jnp.int32)
        out = []
        for pos in range(self.num_positions):
            carry, logits = self.step(carry, prev, pos)
            out.append(logits)
            prev = tokens[:, pos]
        return jnp.stack(out, axis=1)


@struct.dataclass
class ReinforceState:
    params: dict
    opt_state: optax.OptState
    baseline_num: jax.Array  # () EMA numerator
    baseline_den: jax.Array  # () EMA bias-correction denominator (0 before the first reward)
    count: jax.Array  # () int32 updates made

    @property
    def baseline(self) -> jax.Array:
        return jnp.where(self.baseline_den > 0, self.baseline_num / jnp.maximum(self.baseline_den, 1e-12), 0.0)


@dataclasses.dataclass(frozen=True)
class Reinforce:
    """REINFORCE over an LSTM controller; see the module docstring for the defaults' sources."""

    space: CategoricalSpace
    learning_rate: float = 3e-3
    hidden_size: int = 35
    num_layers: int = 2
    init_scale: float = 0.08
    baseline_decay: float = 0.9
    entropy_weight: float = 1e-4
    reward_scale: float = 1.0  # reward = fitness * reward_scale (the fitness: an accuracy as a fraction)
    temperature: float | None = None
    tanh_constant: float | None = None
    batch_size: int = 1

    def __post_init__(self):
        check_positive("learning_rate", self.learning_rate)
        check_positive("hidden_size", self.hidden_size, integer=True)
        check_positive("num_layers", self.num_layers, integer=True)
        check_positive("batch_size", self.batch_size, integer=True)
        check_range("baseline_decay", self.baseline_decay, 0.0, 1.0)
        check(self.entropy_weight >= 0, "entropy_weight", f"got {self.entropy_weight}; allowed: >= 0")
        if self.temperature is not None:
            check_positive("temperature", self.temperature)
        if self.tanh_constant is not None:
            check_positive("tanh_constant", self.tanh_constant)

    @property
    def controller(self) -> LSTMController:
        counts = None if all(c == self.space.num_choices for c in self.space.counts) else self.space.counts
        return LSTMController(self.space.num_positions, self.space.num_choices, self.hidden_size, self.num_layers,
                              self.init_scale, counts)

    @property
    def optimizer(self) -> optax.GradientTransformation:
        return optax.adam(self.learning_rate)

    def _shape_logits(self, logits: jax.Array) -> jax.Array:
        if self.temperature is not None:
            logits = logits / self.temperature
        if self.tanh_constant is not None:
            logits = self.tanh_constant * jnp.tanh(logits)
        return logits

    def init(self, key: jax.Array) -> ReinforceState:
        params = self.controller.init(key, jnp.zeros((1, self.space.num_positions), jnp.int32))
        return ReinforceState(params=params, opt_state=self.optimizer.init(params), baseline_num=jnp.zeros(()),
                              baseline_den=jnp.zeros(()), count=jnp.zeros((), jnp.int32))

    def ask(self, key: jax.Array, state: ReinforceState) -> tuple[jax.Array, ReinforceState]:
        ctrl = self.controller
        carry = ctrl.initial_carry(self.batch_size)
        prev = jnp.full((self.batch_size,), self.space.num_choices, jnp.int32)
        tokens = []
        for pos, k in enumerate(jax.random.split(key, self.space.num_positions)):
            carry, logits = ctrl.apply(state.params, carry, prev, pos, method=LSTMController.step)
            logits = self._shape_logits(logits)
            if not self.space.uniform:  # the position's count and what the rule allows after the tokens so far
                prefix = jnp.stack(tokens + [prev] * (self.space.num_positions - pos), axis=1)  # (B, L); >= pos unread
                logits = jnp.where(self.space.position_mask(prefix, pos), logits, MASKED_LOGIT)
            prev = jax.random.categorical(k, logits).astype(jnp.int32)  # (B,)
            tokens.append(prev)
        return jnp.stack(tokens, axis=1), state

    def log_prob_and_entropy(self, params: dict, archs: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Sum over positions of log p(token) and of the per-position entropy, each shape (B,)."""
        logits = self._shape_logits(self.controller.apply(params, archs))  # (B, L, C)
        if not self.space.uniform:  # what `ask` sampled from: the count's and the rule's masks
            logits = jnp.where(self.space.masks(archs), logits, MASKED_LOGIT)
        logp_all = jax.nn.log_softmax(logits)  # (B, L, C)
        logp = jnp.take_along_axis(logp_all, archs[..., None], axis=-1)[..., 0].sum(-1)  # (B,)
        entropy = -(jnp.exp(logp_all) * logp_all).sum((-1, -2))  # (B,)
        return logp, entropy

    def log_prob(self, state: ReinforceState, archs: jax.Array) -> jax.Array:
        """log p(arch) under the current controller, shape (B,)."""
        return self.log_prob_and_entropy(state.params, archs)[0]

    def tell(self, state: ReinforceState, archs: jax.Array, fitness: jax.Array) -> tuple[ReinforceState, dict[str, jax.Array]]:
        fitness = sanitize_fitness(fitness)
        valid = jnp.isfinite(fitness)
        reward = jnp.where(valid, fitness * self.reward_scale, 0.0)  # (B,)
        advantage = jnp.where((state.baseline_den > 0) & valid, reward - state.baseline, 0.0)

        def loss_fn(params):
            logp, entropy = self.log_prob_and_entropy(params, archs)
            return -jnp.mean(advantage * logp) - self.entropy_weight * jnp.mean(entropy), jnp.mean(entropy)

        (loss, entropy), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
        updates, opt_state = self.optimizer.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        m = self.baseline_decay
        n_valid = jnp.sum(valid)
        mean_reward = jnp.sum(reward) / jnp.maximum(n_valid, 1)
        has_reward = n_valid > 0
        new = state.replace(
            params=params,
            opt_state=opt_state,
            baseline_num=jnp.where(has_reward, m * state.baseline_num + (1 - m) * mean_reward, state.baseline_num),
            baseline_den=jnp.where(has_reward, m * state.baseline_den + (1 - m), state.baseline_den),
            count=state.count + 1,
        )
        return new, {"loss": loss, "entropy": entropy, "baseline": new.baseline}
