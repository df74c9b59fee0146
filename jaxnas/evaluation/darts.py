"""DARTS's bi-level search (Liu, Simonyan & Yang, "DARTS: Differentiable Architecture Search", ICLR 2019) on the
NAS-Bench-201 supernet or on DARTS's own cell (`space`, `jaxnas.evaluation.darts_spaces`), as pure jittable
functions that `vmap` over seeds.

The training split is cut in half: the weights w train on the first half, the architecture alpha (NAS-Bench-201:
(6, 5)) on the second. Each step first moves alpha by Adam along the gradient of the validation loss, then w by SGD
along the training loss at the new alpha (the order of the official code, `quark0/darts` `train_search.py`).
`order=1` uses grad_alpha L_val(w, alpha); `order=2` the one-step unrolled gradient (paper, Eq. 7-8):

    w' = w - xi * (mu * m + grad_w L_train(w, alpha) + lambda * w)        (the next SGD step, unclipped, as
    g  = grad_alpha L_val(w', alpha) - xi * H v,   v = grad_w' L_val(w', alpha),   H = grad^2_{alpha, w} L_train

with xi the current weight learning rate and m the momentum buffer (the official `_compute_unrolled_model`).
H v is either the paper's central difference (grad_alpha L_train(w +- eps v, alpha), eps = 0.01 / ||v||,
`hvp="finite"`) or exact forward-over-reverse differentiation (`jax.jvp` of grad_alpha L_train in w, `"exact"`). On
a smooth network the two agree (tests: 5e-5 of the largest entry); on the ReLU supernet they are different
estimators: autodiff takes ReLU'' = 0, while the difference quotient steps over activations that change sign and
picks up the jumps of grad_alpha, a noisy term that does not vanish as eps -> 0 (measured on the digits, C=8, batch
64, a random v at init: cosines -0.17 / -0.43 / -0.17 between them for radius 0.1 / 0.01 / 0.001, while exact equals
reverse-over-reverse to 2e-7; with ReLU replaced by a softplus the quotient agrees to 4e-4 at radius 0.01). The
derived architecture is the argmax of alpha on every edge on NAS-Bench-201, the paper's top-2 rule on DARTS's cell.
RobustDARTS's (Zela et al., ICLR 2020) dominant eigenvalue of grad^2_alpha L_val comes from power iteration with
exact Hessian-vector products.

Defaults (`DartsSettings`) are the paper's / `quark0/darts`: SGD lr 0.025 cosine to 0.001, momentum 0.9, weight
decay 3e-4, gradient-norm clip 5; Adam lr 3e-4, betas (0.5, 0.999), L2 weight decay 1e-3 (PyTorch's coupled
`weight_decay`); alpha = 1e-3 * N(0, 1); batch 64; NAS-Bench-201's network C=16, N=5.

Deliberate deviations:
* NAS-Bench-201's own DARTS config (`configs/nas-benchmark/algos/DARTS.config`) uses weight decay 5e-4 and
  Nesterov momentum; we keep the DARTS paper's 3e-4 and plain momentum (the unrolled step assumes plain momentum,
  as both official codes do even under Nesterov).
* The cosine schedule is per epoch, lr(e) = min + (max - min)(1 + cos(pi e / E)) / 2 for e = 0..E-1
  (quark0 steps its scheduler before each epoch, so its epoch e uses lr(e + 1); NAS-Bench-201 anneals per step).
* Running batch-norm statistics move only in the weight step. In PyTorch every train-mode forward moves them
  (the alpha step's and the finite-difference HVP's too). The search normalises by batch statistics either
  way; only the evaluation-mode validation record sees the difference.
* Batches: each half is reshuffled every epoch and the two are zipped, steps = min(half sizes) // batch
  (quark0 draws a fresh random validation batch each step).
* A step with a non-finite loss or gradient changes nothing but the step and skip counters (PyTorch would
  train on it).
* The eigenvalue is computed at the end of each epoch on one validation batch, in train mode (batch statistics).
* Step order is quark0's (alpha, then w) for both orders; NAS-Bench-201's first-order DARTS-V1 updates w first.

Remedies (`method`: darts_minus, gdas, beta; RobustDARTS's early stopping) are described, with their sources and
deviations, in `jaxnas.evaluation.darts_objective`, where they change the objective.

Seeds vmapped together equal separate runs up to float rounding, which training amplifies over epochs (on the
digits, 6e-6 in alpha after one epoch, 1.4e-3 after 10: results/darts_speed.json): a search is reproduced bitwise by
the same seeds vmapped together.

Not from the paper: PRNG keys are arguments, not state (DESIGN.md); an epoch draws from fold_in(key, epoch), so a
resumed search repeats an uninterrupted one. `model` may be any Linen module called as (x, op weights of alpha's
shape, train) (the tests use a smooth stand-in); the running statistics live in its `batch_stats` collection, if
any.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import flax.linen as nn
import flax.struct as struct
import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxnas.common.errors import check, check_choice, check_positive
from jaxnas.evaluation.darts_objective import (HVP_MODES, Hyper, Mix, alpha_hvp, beta_regulariser, cosine_lr,
                                               dominant_eigenvalue, evaluate, grad_alpha, loss_fn, mixed_hvp,
                                               model_inputs, op_weights, plain_mix, schedule, step_mix)
from jaxnas.evaluation.darts_spaces import SPACES, supernet_space

METHODS = ("darts", "darts_minus", "gdas", "beta")
Batch = tuple[jax.Array, jax.Array]  # images (B, H, W, C), labels (B,)


@dataclasses.dataclass(frozen=True)
class DartsSettings:
    """DARTS's hyperparameters (paper defaults) and the supernet's size; validated at construction."""

    space: str = "nb201"  # the supernet (`jaxnas.evaluation.darts_spaces`): "nb201" or "nasnet" (DARTS's cell)
    method: str = "darts"  # "darts", "darts_minus", "gdas" or "beta" (see `METHODS`)
    order: int = 1  # 1: first-order DARTS; 2: the unrolled (second-order) alpha gradient
    hvp: str = "finite"  # second order: "finite" (the paper's central difference) or "exact" (forward-over-reverse)
    hvp_radius: float = 0.01  # finite HVP: eps = hvp_radius / ||v||
    channels: int = 16
    cells_per_stage: int = 5
    stages: int = 3  # stacks of cells, a reduction between two (NAS-Bench-201's network: 3 only)
    steps: int = 4  # DARTS's cell: intermediate nodes per cell (its code's `steps`; NAS-Bench-201's cell: fixed)
    batch_size: int = 64
    w_lr: float = 0.025
    w_lr_min: float = 0.001
    w_momentum: float = 0.9
    w_weight_decay: float = 3e-4
    w_grad_clip: float = 5.0
    a_lr: float = 3e-4
    a_betas: tuple[float, float] = (0.5, 0.999)
    a_eps: float = 1e-8
    a_weight_decay: float = 1e-3
    alpha_init_scale: float = 1e-3
    eigen: bool = False  # record the dominant Hessian eigenvalue every epoch (costs 2 * power_iterations HVPs)
    power_iterations: int = 20
    aux_skip: float = 1.0  # DARTS-: the auxiliary skip's weight at epoch 0, decayed linearly to 0
    tau: tuple[float, float] = (10.0, 0.1)  # GDAS: Gumbel-softmax temperature, first and last epoch (linear)
    beta_lambda: float = 50.0  # beta-DARTS: the regulariser's weight at the end (linear from 0)
    gdas_estimator: str = "code"  # GDAS: the unsampled ops' gradient, "code" (its official code) or "paper"

    def __post_init__(self) -> None:
        check_choice("darts.space", self.space, tuple(SPACES))
        check_choice("darts.method", self.method, METHODS)
        check_choice("darts.order", self.order, (1, 2))
        check_choice("darts.gdas_estimator", self.gdas_estimator, ("code", "paper"))
        check(not (self.method == "gdas" and self.order == 2), "darts.order",
              "GDAS is first order (its straight-through sample has no unrolled step); allowed: 1")
        check_choice("darts.hvp", self.hvp, HVP_MODES)
        check(self.space != "nb201" or self.stages == 3, "darts.stages",
              f"got {self.stages}; allowed on nb201: 3 (its network has three stages)")
        for name in ("channels", "cells_per_stage", "stages", "steps", "batch_size", "power_iterations"):
            check_positive(f"darts.{name}", getattr(self, name), integer=True)
        supernet_space(self.space, self.steps)  # a fixed cell (nb201) refuses another number of steps
        for name in ("hvp_radius", "w_lr", "a_lr", "a_eps"):
            check_positive(f"darts.{name}", getattr(self, name))
        check(0 <= self.aux_skip <= 10, "darts.aux_skip", f"must lie in [0, 10], got {self.aux_skip}")
        check(0 <= self.beta_lambda <= 1e4, "darts.beta_lambda", f"must lie in [0, 1e4], got {self.beta_lambda}")
        check(len(self.tau) == 2 and 0 < self.tau[1] <= self.tau[0] <= 100, "darts.tau",
              f"(first, last) with 0 < last <= first <= 100, got {self.tau}")
        check(0 <= self.w_lr_min <= self.w_lr, "darts.w_lr_min", f"must lie in [0, w_lr={self.w_lr}]")
        check(len(self.a_betas) == 2 and all(0 <= b < 1 for b in self.a_betas), "darts.a_betas",
              f"two numbers in [0, 1), got {self.a_betas}")


@struct.dataclass
class DartsState:
    """One search's state. PRNG keys are arguments (DESIGN.md), not state."""

    params: Any
    batch_stats: Any
    alpha: jax.Array  # the space's alpha_shape: (6, 5) on NAS-Bench-201, (2, 14, 8) on DARTS's 4-node cell
    w_opt: Any  # optax state of `weight_transform` (its last element holds the momentum buffer)
    a_opt: Any
    step: jax.Array  # int32, steps taken (skipped ones included)
    epoch: jax.Array  # int32, epochs completed
    skipped: jax.Array  # int32, steps skipped for a non-finite loss or gradient


@struct.dataclass
class SplitData:
    """The training split cut in half: w trains on (xw, yw), alpha on (xa, ya); images (N, H, W, C)."""

    xw: jax.Array
    yw: jax.Array
    xa: jax.Array
    ya: jax.Array


@struct.dataclass
class StepMetrics:
    train_loss: jax.Array
    train_acc: jax.Array
    arch_loss: jax.Array
    ok: jax.Array  # bool: the step was applied


@struct.dataclass
class EpochRecord:
    """What a search records at the end of each epoch."""

    arch: jax.Array  # int32, the derived architecture (NAS-Bench-201: (6,), the argmax of alpha per edge)
    probs: jax.Array  # softmax(alpha)
    eigenvalue: jax.Array  # dominant eigenvalue of grad^2_alpha L_val (NaN unless settings.eigen)
    train_loss: jax.Array  # mean over the epoch's applied steps (train mode)
    train_acc: jax.Array  # a fraction, same steps
    valid_loss: jax.Array  # the whole alpha half in evaluation mode (running statistics); GDAS: at argmax alpha
    valid_acc: jax.Array  # a fraction
    skipped: jax.Array  # steps skipped this epoch
    lr: jax.Array  # the epoch's weight learning rate


def split_half(x: Any, y: Any) -> SplitData:
    """The first half of (x, y) for the weights, the rest for alpha (quark0's `train_portion=0.5`)."""
    n = len(x) // 2
    return SplitData(jnp.asarray(x[:n]), jnp.asarray(y[:n]), jnp.asarray(x[n:]), jnp.asarray(y[n:]))


def make_model(settings: DartsSettings, num_classes: int) -> nn.Module:
    """The supernet of `settings`' space and size."""
    space = supernet_space(settings.space, settings.steps)
    return space.build(settings.channels, settings.cells_per_stage, settings.stages, num_classes)


def weight_transform(s: DartsSettings) -> optax.GradientTransformation:
    """PyTorch SGD with momentum and coupled weight decay after norm clipping, without the learning rate."""
    return optax.chain(optax.clip_by_global_norm(s.w_grad_clip), optax.add_decayed_weights(s.w_weight_decay),
                       optax.trace(decay=s.w_momentum))


def alpha_transform(s: DartsSettings) -> optax.GradientTransformation:
    """PyTorch Adam with L2 `weight_decay` added to the gradient (not AdamW)."""
    return optax.chain(optax.add_decayed_weights(s.a_weight_decay),
                       optax.scale_by_adam(b1=s.a_betas[0], b2=s.a_betas[1], eps=s.a_eps), optax.scale(-s.a_lr))


def init_state(settings: DartsSettings, model: nn.Module, key: jax.Array, sample_x: jax.Array) -> DartsState:
    """Fresh weights, alpha = alpha_init_scale * N(0, 1), both optimisers' states; sample_x (B, H, W, C) for shapes."""
    k_net, k_alpha = jax.random.split(key)
    shape = supernet_space(settings.space, settings.steps).alpha_shape
    alpha = settings.alpha_init_scale * jax.random.normal(k_alpha, shape)
    variables = model.init(k_net, sample_x, jax.nn.softmax(alpha, -1), False)
    params = variables["params"]
    zero = jnp.zeros((), jnp.int32)
    return DartsState(params, variables.get("batch_stats", {}), alpha, weight_transform(settings).init(params),
                      alpha_transform(settings).init(alpha), zero, zero, zero)


def unrolled_weights(settings: DartsSettings, model: nn.Module, state: DartsState, alpha: jax.Array, batch_w: Batch,
                     lr: jax.Array | float, mix: Mix | None = None) -> Any:
    """w' = w - lr * (momentum * buffer + grad_w L_train(w, alpha) + weight_decay * w): the virtual SGD step."""
    g = jax.grad(lambda p: loss_fn(model, p, state.batch_stats, alpha, *batch_w, mix)[0])(state.params)
    buf = state.w_opt[-1].trace
    return jax.tree.map(lambda p, m, d: p - lr * (settings.w_momentum * m + d + settings.w_weight_decay * p),
                        state.params, buf, g)


def unrolled_objective(settings: DartsSettings, model: nn.Module, state: DartsState, alpha: jax.Array, batch_w: Batch,
                       batch_a: Batch, lr: jax.Array | float, mix: Mix | None = None) -> jax.Array:
    """L_val(w'(alpha), alpha): the function whose gradient the second-order step approximates (for checks)."""
    return loss_fn(model, unrolled_weights(settings, model, state, alpha, batch_w, lr, mix), state.batch_stats, alpha,
                   *batch_a, mix)[0]


def alpha_gradient(settings: DartsSettings, model: nn.Module, state: DartsState, batch_w: Batch, batch_a: Batch,
                   lr: jax.Array | float, mix: Mix | None = None, reg: jax.Array | float = 0.0
                   ) -> tuple[jax.Array, jax.Array]:
    """DARTS's architecture gradient of order `settings.order` at `mix`, plus `reg` times beta-DARTS's regulariser's
    gradient: (g of alpha's shape, validation loss without the regulariser)."""
    reg_grad = reg * jax.grad(beta_regulariser)(state.alpha)
    if settings.order == 1:
        loss, g = jax.value_and_grad(lambda a: loss_fn(model, state.params, state.batch_stats, a, *batch_a, mix)[0])(
            state.alpha)
        return g + reg_grad, loss
    w2 = unrolled_weights(settings, model, state, state.alpha, batch_w, lr, mix)
    loss, (g_w, g_a) = jax.value_and_grad(
        lambda p, a: loss_fn(model, p, state.batch_stats, a, *batch_a, mix)[0], argnums=(0, 1))(w2, state.alpha)
    hv = mixed_hvp(settings.hvp, model, state.params, state.batch_stats, state.alpha, *batch_w, g_w,
                   settings.hvp_radius, mix)
    return g_a - lr * hv + reg_grad, loss


def _all_finite(*trees) -> jax.Array:
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(leaf)) for t in trees for leaf in jax.tree.leaves(t)]))


def search_step(settings: DartsSettings, model: nn.Module, state: DartsState, batch_w: Batch, batch_a: Batch,
                hyper: Hyper, key: jax.Array) -> tuple[DartsState, StepMetrics]:
    """One step: alpha by Adam on batch_a, then w by SGD on batch_w at the new alpha, each at the method's op
    weights (`hyper`: the epoch's schedule values, learning rate included; `key`: GDAS's two Gumbel samples).

    A non-finite loss or gradient leaves every array of the state as it was, except `step` and `skipped`."""
    lr = hyper.lr
    k_a, k_w = jax.random.split(key)
    g_a, a_loss = alpha_gradient(settings, model, state, batch_w, batch_a, lr, step_mix(settings, hyper, k_a),
                                 hyper.reg)
    upd, a_opt = alpha_transform(settings).update(g_a, state.a_opt, state.alpha)
    alpha = optax.apply_updates(state.alpha, upd)
    (w_loss, (logits, stats)), g_w = jax.value_and_grad(loss_fn, argnums=1, has_aux=True)(
        model, state.params, state.batch_stats, alpha, *batch_w, step_mix(settings, hyper, k_w))
    upd, w_opt = weight_transform(settings).update(g_w, state.w_opt, state.params)
    params = jax.tree.map(lambda p, u: p - lr * u, state.params, upd)
    ok = _all_finite(a_loss, w_loss, g_a, g_w)
    new = state.replace(params=params, batch_stats=stats, alpha=alpha, w_opt=w_opt, a_opt=a_opt)
    kept = jax.tree.map(lambda n, o: jnp.where(ok, n, o), new, state)
    kept = kept.replace(step=state.step + 1, skipped=state.skipped + (~ok).astype(jnp.int32))
    acc = jnp.mean(jnp.argmax(logits, -1) == batch_w[1])
    return kept, StepMetrics(w_loss, acc, a_loss, ok)


def run_epoch(settings: DartsSettings, model: nn.Module, state: DartsState, data: SplitData, key: jax.Array,
              epochs: int) -> tuple[DartsState, EpochRecord]:
    """One epoch of `epochs` (the learning rate's horizon); randomness from `fold_in(key, state.epoch)`, so a
    resumed search repeats an uninterrupted one."""
    bs = settings.batch_size
    steps = min(data.xw.shape[0], data.xa.shape[0]) // bs
    k_w, k_a, k_e, k_s = jax.random.split(jax.random.fold_in(key, state.epoch), 4)
    iw = jax.random.permutation(k_w, data.xw.shape[0])[:steps * bs].reshape(steps, bs)
    ia = jax.random.permutation(k_a, data.xa.shape[0])[:steps * bs].reshape(steps, bs)
    hyper = schedule(settings, state.epoch, epochs)
    skipped0 = state.skipped

    def body(st, idx):
        i, j, k = idx
        return search_step(settings, model, st, (data.xw[i], data.yw[i]), (data.xa[j], data.ya[j]), hyper, k)

    state, m = jax.lax.scan(body, state, (iw, ia, jax.random.split(k_s, steps)))
    n_ok = jnp.maximum(jnp.sum(m.ok), 1)
    train_loss = jnp.sum(jnp.where(m.ok, m.train_loss, 0.0)) / n_ok
    train_acc = jnp.sum(jnp.where(m.ok, m.train_acc, 0.0)) / n_ok
    # evaluated as trained: DARTS's relaxation, GDAS's derived cell (one-hot argmax: it never trains the mixture)
    space = supernet_space(settings.space, settings.steps)
    relaxed = Mix(hyper.aux, jnp.zeros(space.alpha_shape), jnp.ones(()), False, skip=space.skip)
    valid_loss, valid_acc = evaluate(model, state.params, state.batch_stats, state.alpha, data.xa, data.ya, bs,
                                     relaxed.replace(hard=settings.method == "gdas"))
    if settings.eigen:
        eig, _ = dominant_eigenvalue(model, state.params, state.batch_stats, state.alpha, data.xa[ia[0]],
                                     data.ya[ia[0]], k_e, settings.power_iterations, relaxed)
    else:
        eig = jnp.full((), jnp.nan)
    record = EpochRecord(space.derive(state.alpha), jax.nn.softmax(state.alpha, -1), eig, train_loss, train_acc,
                         valid_loss, valid_acc, state.skipped - skipped0, hyper.lr)
    return state.replace(epoch=state.epoch + 1), record


def check_data(settings: DartsSettings, x: Any, y: Any) -> None:
    """Refuses data the search cannot use, naming the field."""
    shape, div = np.shape(x), 2 ** (settings.stages - 1)
    check(len(shape) == 4 and shape[1] % div == 0 and shape[2] % div == 0, "darts.x",
          f"images (N, H, W, C) with H and W divisible by {div}, got shape {shape}")
    check(np.shape(y) == shape[:1], "darts.y", f"one label per image, expected shape {shape[:1]}, got {np.shape(y)}")
    check(shape[0] // 2 >= settings.batch_size, "darts.batch_size",
          f"{settings.batch_size} is more than half of the {shape[0]} training images (one half trains alpha)")


def seed_keys(seed: jax.Array) -> tuple[jax.Array, jax.Array]:
    """A search's two keys (initialisation, epochs), both from `jax.random.key(seed)`."""
    k_init, k_run = jax.random.split(jax.random.key(seed))
    return k_init, k_run


def init_one(settings: DartsSettings, model: nn.Module, seed: jax.Array, data: SplitData) -> DartsState:
    """A search's initial state."""
    return init_state(settings, model, seed_keys(seed)[0], data.xw[:settings.batch_size])


def epoch_one(settings: DartsSettings, model: nn.Module, state: DartsState, seed: jax.Array, data: SplitData,
              epochs: int) -> tuple[DartsState, EpochRecord]:
    """The search's next epoch (`state.epoch`), its keys derived from `seed` (nothing random is stored)."""
    return run_epoch(settings, model, state, data, seed_keys(seed)[1], epochs)


def search_one(settings: DartsSettings, model: nn.Module, seed: jax.Array, data: SplitData, epochs: int
               ) -> tuple[DartsState, EpochRecord]:
    """One whole search from `jax.random.key(seed)`: init, then `epochs` epochs in one `lax.scan` (records
    (epochs, ...)). Pure and jittable; `make_search` vmaps it over seeds."""
    state = init_one(settings, model, seed, data)
    return jax.lax.scan(lambda st, _: epoch_one(settings, model, st, seed, data, epochs), state, None, length=epochs)


def make_search(settings: DartsSettings, num_classes: int, epochs: int):
    """A jitted `run(seeds (S,) int, data: SplitData) -> (DartsState, EpochRecord)` of `epochs` epochs, every leaf
    with a leading seed axis (records (S, epochs, ...)): `search_one` vmapped over seeds."""
    check_positive("darts.epochs", epochs, integer=True)
    model = make_model(settings, num_classes)
    return jax.jit(jax.vmap(lambda seed, data: search_one(settings, model, seed, data, epochs), in_axes=(0, None)))


@functools.lru_cache(maxsize=8)
def make_epochwise(settings: DartsSettings, num_classes: int, epochs: int):
    """`make_search` cut at epochs, for a host loop that checkpoints between them: jitted `init(seeds, data) ->
    states` and `epoch(states, seeds, data) -> (states, records)`, vmapped over seeds (records (S, ...)). Running
    `epoch` `epochs` times equals `make_search`'s run. Cached: the same settings reuse the compiled programs."""
    check_positive("darts.epochs", epochs, integer=True)
    model = make_model(settings, num_classes)
    init = jax.jit(jax.vmap(lambda seed, data: init_one(settings, model, seed, data), in_axes=(0, None)))
    epoch = jax.jit(jax.vmap(lambda st, seed, data: epoch_one(settings, model, st, seed, data, epochs),
                             in_axes=(0, 0, None)))
    return init, epoch


def search(settings: DartsSettings, x: Any, y: Any, seeds: Any, epochs: int, num_classes: int | None = None
           ) -> tuple[DartsState, EpochRecord]:
    """DARTS on (x, y) (the training split; halved by `split_half`) for every seed at once (`vmap`)."""
    check_data(settings, x, y)
    seeds = np.asarray(seeds)
    check(seeds.ndim == 1 and seeds.size > 0 and np.issubdtype(seeds.dtype, np.integer), "darts.seeds",
          f"a non-empty 1-D array of integers, got {seeds!r}")
    num_classes = int(np.max(y)) + 1 if num_classes is None else num_classes
    return make_search(settings, num_classes, epochs)(jnp.asarray(seeds, jnp.int32), split_half(x, y))


__all__ = ["DartsSettings", "DartsState", "SplitData", "EpochRecord", "Hyper", "Mix", "METHODS", "HVP_MODES",
           "split_half", "make_model", "init_state", "cosine_lr", "schedule", "step_mix", "op_weights", "model_inputs",
           "plain_mix", "loss_fn", "grad_alpha", "mixed_hvp", "alpha_hvp", "dominant_eigenvalue", "evaluate",
           "beta_regulariser", "unrolled_weights", "unrolled_objective", "alpha_gradient", "search_step", "run_epoch",
           "check_data", "seed_keys", "init_one", "epoch_one", "search_one", "make_search", "make_epochwise", "search"]
