"""The objective DARTS differentiates (Liu, Simonyan & Yang, ICLR 2019): how alpha becomes the supernet's op
weights (DARTS's softmax, DARTS-'s auxiliary skip, GDAS's straight-through Gumbel sample), the supernet's loss at
them, its Hessian-vector products in (alpha, w) and in alpha alone, power iteration for the dominant eigenvalue
(RobustDARTS), the evaluation-mode accuracy, and beta-DARTS's regulariser. Pure functions of a Linen `model`
called as (x, op weights of alpha's shape (..., ops), train); `jaxnas.evaluation.darts` runs the search with them
(its docstring lists the DARTS defaults and deviations).

Remedies (`method`), each on the same supernet, data split and optimisers:
* `darts_minus` (Chu et al., "DARTS-: Robustly Stepping out of Performance Collapse Without Indicators", ICLR
  2021): an auxiliary skip connection beta * x on every edge, beta decayed linearly from `aux_skip` = 1 to 0 over the
  search (`beta = 1 - epoch / epochs`); it equals adding beta to the `skip_connect` weight, so it is applied there.
* `gdas` (Dong & Yang, "Searching for A Robust Neural Architecture in Four GPU Hours", CVPR 2019): every forward
  pass (the alpha step's and the weight step's, separately) samples one op per edge by Gumbel-max, forward weights
  one-hot, gradient of softmax((log_softmax(alpha) + g) / tau) (straight through); tau linear from 10 to 0.1 over the
  epochs. Two estimators of the unsampled ops' gradient (`gdas_estimator`): "code" (default), GDAS's official code,
  where only the sampled op's output is computed and each unsampled weight enters the edge's output as itself (value
  0), so its gradient is the sum of the output's gradient, the same for every unsampled op, `none` included; and
  "paper", dL/dw_o = <dL/dout, op_o(x)> of the relaxed sum, which gives `none` (output 0) no gradient while every
  other unsampled op gets one (measured on the digits: cells of all-parameter-free edges, benchmarks/RESULTS.md).
  Here every op runs either way (one-hot weights zero the unsampled outputs); GDAS's validation record is taken
  at argmax(alpha).
* `beta` (Ye et al., "beta-DARTS: Beta-Decay Regularization for Differentiable Architecture Search", CVPR 2022): the
  alpha loss adds lambda * mean_e logsumexp(alpha_e), lambda linear from 0 to `beta_lambda` = 50 (its code:
  50 * epoch / 100 over 100 epochs; here over `epochs`).
* RobustDARTS's early stopping (Zela et al., ICLR 2020) runs plain DARTS with `eigen=True` and is applied to the
  recorded eigenvalues afterwards (`jaxnas.evaluation.robust_darts`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import flax.linen as nn
import flax.struct as struct
import jax
import jax.numpy as jnp
import optax

from jaxnas.common.errors import check_choice

if TYPE_CHECKING:
    from jaxnas.evaluation.darts import DartsSettings

HVP_MODES = ("finite", "exact")


@struct.dataclass
class Mix:
    """How alpha becomes the supernet's op weights (alpha's shape) in one forward pass."""

    aux: jax.Array  # DARTS-: weight of the auxiliary skip connection added on every edge (0 for the others)
    gumbel: jax.Array  # GDAS: Gumbel noise (alpha's shape), used when `hard`
    tau: jax.Array  # GDAS: temperature
    hard: bool = struct.field(pytree_node=False, default=False)
    # GDAS's gradient for the unsampled ops: "code" (its official code: each gets the sum of the edge output's
    # gradient, as if it added its weight, 0, to the output) or "paper" (dL/dw_o = <dL/dout, op_o(x)>)
    estimator: str = struct.field(pytree_node=False, default="code")
    # DARTS-: the column of `skip_connect`, where `aux` is added (None: no auxiliary skip, `aux` unused)
    skip: int | None = struct.field(pytree_node=False, default=None)


def model_inputs(alpha: jax.Array, mix: Mix | None = None) -> tuple[jax.Array, jax.Array | None]:
    """(op weights, edge bias or None) for the supernet. GDAS with its code's estimator: the op weights times the
    sampled one-hot (so only the sampled op's output carries them) and, per edge, the unsampled weights' sum (value
    0) added to the edge's output; the values are those of `op_weights`."""
    w, m = _weights_and_sample(alpha, mix)
    if m is None or mix.estimator != "code":
        return w, None
    return w * m, jnp.sum(w * (1 - m), -1)


def apply_supernet(model: nn.Module, variables: dict[str, Any], x: jax.Array, alpha: jax.Array, mix: Mix | None,
                   train: bool, **kwargs: Any) -> Any:
    """`model.apply` at the op weights (and edge bias, where the mix has one) of `mix`."""
    w, bias = model_inputs(alpha, mix)
    if bias is None:
        return model.apply(variables, x, w, train, **kwargs)
    return model.apply(variables, x, w, train, bias, **kwargs)


def plain_mix(shape: tuple[int, ...]) -> Mix:
    """softmax(alpha), nothing added: DARTS's relaxation (alpha of `shape`)."""
    return Mix(jnp.zeros(()), jnp.zeros(shape), jnp.ones(()), False)


def _weights_and_sample(alpha: jax.Array, mix: Mix | None) -> tuple[jax.Array, jax.Array | None]:
    """`op_weights` and, for a hard mix, the sampled one-hot (no gradient; None otherwise)."""
    mix = plain_mix(alpha.shape) if mix is None else mix
    m = None
    if mix.hard:
        p = jax.nn.softmax((jax.nn.log_softmax(alpha, -1) + mix.gumbel) / mix.tau, -1)
        m = jax.nn.one_hot(jnp.argmax(p, -1), alpha.shape[-1], dtype=p.dtype)
        w = m + p - jax.lax.stop_gradient(p)
    else:
        w = jax.nn.softmax(alpha, -1)
    if mix.skip is not None:
        w = w + mix.aux * jax.nn.one_hot(mix.skip, alpha.shape[-1], dtype=w.dtype)
    return w, m


def op_weights(alpha: jax.Array, mix: Mix | None = None) -> jax.Array:
    """The op weights of `mix`: softmax(alpha) (+ aux on `skip_connect`, DARTS-), or GDAS's straight-through sample
    one_hot(argmax p) + p - stop_gradient(p) with p = softmax((log_softmax(alpha) + gumbel) / tau): one-hot
    values, the gradient of the Gumbel softmax."""
    return _weights_and_sample(alpha, mix)[0]


def beta_regulariser(alpha: jax.Array) -> jax.Array:
    """beta-DARTS's Beta-Decay loss: the mean over edges of logsumexp(alpha_e) (its `mlc_loss`)."""
    return jnp.mean(jax.nn.logsumexp(alpha, axis=-1))


def loss_fn(model: nn.Module, params: Any, batch_stats: Any, alpha: jax.Array, x: jax.Array, y: jax.Array,
            mix: Mix | None = None) -> tuple[jax.Array, tuple[jax.Array, Any]]:
    """Train-mode (batch statistics) cross-entropy of the supernet at `op_weights(alpha, mix)` (softmax(alpha) by
    default): (loss, (logits, stats))."""
    logits, upd = apply_supernet(model, {"params": params, "batch_stats": batch_stats}, x, alpha, mix, True,
                                 mutable=["batch_stats"])
    return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean(), (logits, upd.get("batch_stats", {}))


def grad_alpha(model, params, batch_stats, alpha, x, y, mix=None):
    return jax.grad(lambda a: loss_fn(model, params, batch_stats, a, x, y, mix)[0])(alpha)


def mixed_hvp(mode: str, model: nn.Module, params: Any, batch_stats: Any, alpha: jax.Array, x: jax.Array,
              y: jax.Array, v: Any, radius: float = 0.01, mix: Mix | None = None) -> jax.Array:
    """grad^2_{alpha, w} L(w, alpha) v on (x, y), alpha's shape: exact (`jax.jvp` of grad_alpha in w) or the paper's
    central difference with eps = radius / ||v||."""
    check_choice("darts.hvp", mode, HVP_MODES)
    if mode == "exact":  # the inner gradient is taken in (w, alpha) so that every op using w is reverse-traced
        # (JAX refuses forward mode through a custom_vjp op, e.g. the stem's conv, that sees only the jvp tracer);
        # the unused w-gradient is dead code that XLA removes
        def grads(p):
            return jax.grad(lambda p_, a: loss_fn(model, p_, batch_stats, a, x, y, mix)[0], argnums=(0, 1))(p, alpha)[1]

        return jax.jvp(grads, (params,), (v,))[1]
    eps = radius / optax.tree.norm(v)
    shifted = [jax.tree.map(lambda p, d: p + sign * eps * d, params, v) for sign in (1.0, -1.0)]
    g_plus, g_minus = (grad_alpha(model, p, batch_stats, alpha, x, y, mix) for p in shifted)
    return (g_plus - g_minus) / (2 * eps)


def evaluate(model: nn.Module, params: Any, batch_stats: Any, alpha: jax.Array, x: jax.Array, y: jax.Array,
             batch_size: int, mix: Mix | None = None) -> tuple[jax.Array, jax.Array]:
    """Evaluation-mode (running statistics) mean loss and accuracy (a fraction) of the supernet at
    `op_weights(alpha, mix)`
    (softmax(alpha) by default) on (x, y)."""
    n = x.shape[0]
    nb = -(-n // batch_size)
    pad = nb * batch_size - n
    xs = jnp.pad(x, ((0, pad),) + ((0, 0),) * (x.ndim - 1)).reshape((nb, batch_size) + x.shape[1:])
    ys = jnp.pad(y, (0, pad)).reshape(nb, batch_size)
    mask = (jnp.arange(nb * batch_size) < n).reshape(nb, batch_size)
    weights = op_weights(alpha, mix)

    def one(args):
        xb, yb, mb = args
        logits = model.apply({"params": params, "batch_stats": batch_stats}, xb, weights, False)
        loss = optax.softmax_cross_entropy_with_integer_labels(logits, yb)
        return jnp.sum(loss * mb), jnp.sum((jnp.argmax(logits, -1) == yb) * mb)

    losses, hits = jax.lax.map(one, (xs, ys, mask))
    return losses.sum() / n, hits.sum() / n


def alpha_hvp(model: nn.Module, params: Any, batch_stats: Any, alpha: jax.Array, x: jax.Array, y: jax.Array,
              u: jax.Array, mix: Mix | None = None) -> jax.Array:
    """grad^2_alpha L(w, alpha) u on (x, y), exact (forward over reverse), alpha's shape."""
    return jax.jvp(lambda a: grad_alpha(model, params, batch_stats, a, x, y, mix), (alpha,), (u,))[1]


def dominant_eigenvalue(model: nn.Module, params: Any, batch_stats: Any, alpha: jax.Array, x: jax.Array,
                        y: jax.Array, key: jax.Array, iterations: int, mix: Mix | None = None
                        ) -> tuple[jax.Array, jax.Array]:
    """Power iteration on grad^2_alpha L(w, alpha) (train mode): (eigenvalue of largest magnitude, unit vector)."""
    u0 = jax.random.normal(key, alpha.shape)

    def body(_, u):
        hu = alpha_hvp(model, params, batch_stats, alpha, x, y, u, mix)
        return hu / jnp.linalg.norm(hu)

    u = jax.lax.fori_loop(0, iterations, body, u0 / jnp.linalg.norm(u0))
    return jnp.vdot(u, alpha_hvp(model, params, batch_stats, alpha, x, y, u, mix)), u


def cosine_lr(settings: DartsSettings, epoch: jax.Array, epochs: int) -> jax.Array:
    """The weights' learning rate in epoch `epoch` of `epochs`."""
    hi, lo = settings.w_lr, settings.w_lr_min
    return lo + (hi - lo) * 0.5 * (1 + jnp.cos(jnp.pi * epoch / epochs))


@struct.dataclass
class Hyper:
    """One epoch's schedule values: the weights' learning rate, DARTS-'s aux weight, GDAS's tau, beta-DARTS's
    lambda."""

    lr: jax.Array
    aux: jax.Array
    tau: jax.Array
    reg: jax.Array


def schedule(settings: DartsSettings, epoch: jax.Array, epochs: int) -> Hyper:
    """The values of epoch `epoch` (0-based) of `epochs`: cosine lr; DARTS- aux = aux_skip * (1 - e / E);
    GDAS tau linear from tau[0] (e = 0) to tau[1] (e = E - 1); beta-DARTS lambda = beta_lambda * e / E (its code:
    50 * epoch / 100). Remedies other than `settings.method`'s are 0 (tau: 1, unused)."""
    e = jnp.asarray(epoch, jnp.float32)
    m = settings.method
    aux = settings.aux_skip * (1.0 - e / epochs) if m == "darts_minus" else jnp.zeros(())
    t0, t1 = settings.tau
    tau = t0 - (t0 - t1) * e / max(epochs - 1, 1) if m == "gdas" else jnp.ones(())
    reg = settings.beta_lambda * e / epochs if m == "beta" else jnp.zeros(())
    return Hyper(cosine_lr(settings, epoch, epochs), jnp.asarray(aux, jnp.float32), jnp.asarray(tau, jnp.float32),
                 jnp.asarray(reg, jnp.float32))


def step_mix(settings: DartsSettings, hyper: Hyper, key: jax.Array) -> Mix:
    """The mix of one forward pass: a fresh Gumbel sample for GDAS (one per forward pass, as its code)."""
    from jaxnas.evaluation.darts_spaces import supernet_space

    space = supernet_space(settings.space, settings.steps)
    shape = space.alpha_shape
    gumbel = jax.random.gumbel(key, shape) if settings.method == "gdas" else jnp.zeros(shape)
    return Mix(hyper.aux, gumbel, hyper.tau, settings.method == "gdas", settings.gdas_estimator, space.skip)
