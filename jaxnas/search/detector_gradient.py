"""Gradient-based search of a detector's input resolution and depth: the resolution moved by gradient descent through
differentiable resizing, the depth relaxed as a softmax mixture of exits (DARTS-style; Liu, Simonyan & Yang,
"DARTS: Differentiable Architecture Search", ICLR 2019), with a compute penalty's gradient.

Resolution. Each image (native n x n) is resampled onto a fixed canvas of the largest searched resolution R
(`resample_matrix`): pixel i samples the image at (i + 0.5) / z - 0.5 with z = r / n, a linear kernel widened by
1 / z when shrinking (antialiasing), rows and columns past the content (i >= r) zero. For integer r this is exactly
`jax.image.resize(image, (r, r), "linear", antialias=True)` in the top-left r x r corner (tested), and the weights
are differentiable in r: the loss's derivative with respect to r is the derivative through the resampling grid's
scale. Objects therefore appear at the size a network of resolution r sees (boxes scaled by z; targets are
encoded on the canvas's output grid and carry no gradient), while the canvas keeps one static shape. The
resolution is parameterised as log r (Adam), clipped to the searched range.

Depth. A backbone of the largest searched depth D has an exit after every searched depth d (every exit is at the
output stride, as in `CenterNet`'s stride rule); the heads read sum_d softmax(beta)_d * features_d. The
discretised depth is argmax beta (DARTS's rule). The alternative the issue allows, depth searched in an outer loop,
is one run per depth with that single exit (`depths=(d,)`): gradient descent moves the resolution only, and the
caller keeps every depth's rounded result (`experiments.detection_search`'s default, `gradient.depth_search`). The
mixture's depth softmax barely moves in the detection search's 600 steps (0.12-0.22 for the largest of 7 weights in
every run measured), so its argmax is close to a draw; the outer loop spends 7 runs to give each depth its own
resolution.

Compute penalty. FLOPs(r, d) = F_d (r / r0)^2, with F_d XLA's count of the inference forward at the default
resolution r0 (`configuration_flops`; exactly quadratic in r for multiples of the stride); the architecture's
expected cost is E[F] = sum_d p_d FLOPs(r, d), and the architecture loss is the detection loss on a held-out batch
plus `penalty` x log(E[F] / F_target), the logarithm of MnasNet's factor (`penalty` = -w of mAP x (F / T)^w).
Sweeping `penalty` traces a front.

Optimisation (DARTS's first-order alternation): every step, one Adam step of (log r, beta) on a batch of the
architecture half of the training split, then one step of the network's weights (the detector's training settings)
on a batch of the other half. The result, rounded to the searched grid (resolution to the nearest searched size,
depth argmax), is then trained from scratch and scored like any configuration (`ConfigurationEvaluator`).

Deviations: DARTS relaxes ops, not depth or input size; the exits-mixture for depth follows the issue's suggestion
(a DARTS-style softmax over exits); the architecture optimiser for beta is DARTS's (Adam, lr 3e-4, betas (0.5,
0.999), weight decay 1e-3; the entry point's config uses lr 3e-3, as its search makes ~600 steps, not DARTS's
~20,000), log r has its own learning rate (`resolution_lr`). The padding outside the content is
part of the canvas the loss sees (easy negatives).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxnas.common.errors import check, check_positive
from jaxnas.evaluation.detection_training import DETECTION_TRAINING, DetectorSettings, configuration_flops
from jaxnas.evaluation.population import TrainSettings, batch_indices
from jaxnas.models.detector import HEATMAP_BIAS, _Head, layer_strides
from jaxnas.models.layers import BatchNorm, Conv
from jaxnas.problems.detection import detection_loss, encode_targets
from jaxnas.spaces.detector import DetectorChoices


def resample_matrix(out_size: int, in_size: int, zoom: jax.Array) -> jax.Array:
    """(out_size, in_size) linear resampling weights of a signal scaled by `zoom` (see the module docstring)."""
    i = jnp.arange(out_size, dtype=jnp.float32)[:, None]
    j = jnp.arange(in_size, dtype=jnp.float32)[None, :]
    src = (i + 0.5) / zoom - 0.5
    w = jnp.maximum(0.0, 1.0 - jnp.abs(src - j) / jnp.maximum(1.0 / zoom, 1.0))
    total = w.sum(1, keepdims=True)
    inside = (i + 0.5) / zoom <= in_size
    return jnp.where(inside & (total > 0), w / jnp.where(total > 0, total, 1.0), 0.0)


def resample(images: jax.Array, canvas: int, resolution: jax.Array) -> jax.Array:
    """Square images (B, n, n, C) shown at `resolution` px in the top-left of a `canvas` x `canvas` canvas."""
    a = resample_matrix(canvas, images.shape[1], resolution / images.shape[1])
    return jnp.einsum("ik,bklc,jl->bijc", a, images, a)


class ExitMixtureDetector(nn.Module):
    """`CenterNet` with an exit after every depth of `depths`; the heads read the `probs`-weighted sum of exits."""

    num_classes: int
    depths: tuple[int, ...]
    width: int = 16
    stride: int = 4
    head_width: int | None = None

    @nn.compact
    def __call__(self, x: jax.Array, probs: jax.Array, train: bool = False) -> dict[str, jax.Array]:
        mixed = 0.0
        for i, s in enumerate(layer_strides(max(self.depths), self.stride)):
            x = Conv(self.width, size=3, stride=s, name=f"conv{i}")(x)
            x = nn.relu(BatchNorm(name=f"bn{i}")(x, train))
            if i + 1 in self.depths:
                mixed = mixed + probs[self.depths.index(i + 1)] * x
        hidden = self.head_width or self.width
        return {"heatmap_logits": _Head(hidden, self.num_classes, HEATMAP_BIAS, name="heatmap")(mixed),
                "size": _Head(hidden, 2, name="size")(mixed), "offset": _Head(hidden, 2, name="offset")(mixed)}


@dataclasses.dataclass(frozen=True)
class GradientSettings:
    """The gradient search: `penalty` (the compute term's weight), the architecture learning rates, how the weights
    train (`training`, the detector's settings: its steps are the search's steps), the starting point."""

    penalty: float = 0.07
    arch_lr: float = 3e-4
    arch_weight_decay: float = 1e-3
    resolution_lr: float = 0.01
    training: TrainSettings = DETECTION_TRAINING
    start_resolution: int | None = None  # default: the choices' default configuration
    record_every: int = 10

    def __post_init__(self) -> None:
        check(self.penalty >= 0, "penalty", f"got {self.penalty}; allowed: >= 0")
        check_positive("arch_lr", self.arch_lr)
        check_positive("resolution_lr", self.resolution_lr)
        check(self.arch_weight_decay >= 0, "arch_weight_decay", f"got {self.arch_weight_decay}; allowed: >= 0")
        check_positive("record_every", self.record_every, integer=True)


def _split_halves(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    perm = np.random.default_rng([seed, 25]).permutation(n)
    return np.sort(perm[: n // 2]), np.sort(perm[n // 2:])


def gradient_search(dataset: Any, settings: GradientSettings = GradientSettings(),
                    choices: DetectorChoices = DetectorChoices(), detector: DetectorSettings = DetectorSettings(),
                    seed: int = 0, depths: tuple[int, ...] | None = None) -> dict[str, Any]:
    """Runs the search (see the module docstring) on `dataset`'s training split.

    `depths`: the exits the mixture weighs (default: every depth of `choices`). One depth is the outer loop's inner
    problem: a network of that depth whose input resolution alone is searched (its softmax is the constant 1).

    Returns a dict: `resolution` and `depth` (the discretised result, values of `choices`), `arch` (its index
    vector), `trajectory` (arrays `step`, `resolution` (continuous px), `depth_probs`, `expected_flops`, and `depths`),
    `final_resolution` (continuous px) and `final_probs`.
    """
    depths = choices.depths if depths is None else tuple(depths)
    check(len(depths) > 0 and len(set(depths)) == len(depths) and all(d in choices.depths for d in depths), "depths",
          f"got {depths}; allowed: distinct depths of the searched ones {choices.depths}")
    st, tr = settings, settings.training
    images, split = dataset.train.images, dataset.train
    n, size = images.shape[0], images.shape[1]
    check(images.shape[1] == images.shape[2], "images", f"got {images.shape[1:3]}; allowed: square images")
    w_rows, a_rows = _split_halves(n, seed)
    check(min(len(w_rows), len(a_rows)) >= tr.batch_size, "batch_size",
          f"got {tr.batch_size}; allowed: at most half the training split ({n // 2})")
    canvas, r_min = max(choices.resolutions), min(choices.resolutions)
    r0, d0 = choices.values(choices.default)
    channels = images.shape[-1]
    flops = {d: configuration_flops(dataset.num_classes, r0, d, detector, channels) for d in {*depths, d0}}
    target, f_ref = flops[d0], np.array([flops[d] for d in depths])
    start = float(st.start_resolution or r0)
    check(r_min <= start <= canvas, "start_resolution", f"got {start}; allowed: in [{r_min}, {canvas}]")

    model = ExitMixtureDetector(dataset.num_classes, depths, detector.width, detector.stride, detector.head_width)
    key = jax.random.key(seed)
    uniform = jnp.full((len(depths),), 1.0 / len(depths))
    variables = model.init(jax.random.fold_in(key, 0), jnp.zeros((1, canvas, canvas, channels)), uniform, train=True)
    weights_opt = tr.make_optimizer()
    arch_opt = optax.multi_transform(
        {"beta": optax.chain(optax.add_decayed_weights(st.arch_weight_decay), optax.adam(st.arch_lr, b1=0.5, b2=0.999)),
         "log_r": optax.adam(st.resolution_lr)}, {"beta": "beta", "log_r": "log_r"})
    arch = {"beta": jnp.zeros((len(depths),)), "log_r": jnp.log(jnp.float32(start))}
    data = {k: jnp.asarray(v) for k, v in (("x", images), ("boxes", split.boxes), ("labels", split.labels),
                                             ("valid", split.valid))}
    rows = {"w": jnp.asarray(w_rows), "a": jnp.asarray(a_rows)}
    log_lo, log_hi = math.log(r_min), math.log(canvas)

    def loss_fn(params, stats, arch, idx):
        r = jnp.exp(arch["log_r"])
        x = resample(data["x"][idx], canvas, r)
        boxes = jax.lax.stop_gradient(data["boxes"][idx] * (r / size))
        targets = encode_targets(boxes, data["labels"][idx], data["valid"][idx], canvas, detector.stride,
                                 dataset.num_classes)
        out, upd = model.apply({"params": params, "batch_stats": stats}, x, jax.nn.softmax(arch["beta"]), train=True,
                               mutable=["batch_stats"])
        return detection_loss(out, targets), upd["batch_stats"]

    def expected_flops(arch):
        r = jnp.exp(arch["log_r"])
        return jnp.sum(jax.nn.softmax(arch["beta"]) * jnp.asarray(f_ref) * (r / r0) ** 2)

    def step(carry, t):
        params, stats, w_state, arch, a_state = carry
        a_idx = rows["a"][batch_indices(jax.random.fold_in(key, 1), t, len(a_rows), tr.batch_size)]
        w_idx = rows["w"][batch_indices(jax.random.fold_in(key, 2), t, len(w_rows), tr.batch_size)]

        def arch_loss(a):
            det, _ = loss_fn(params, stats, a, a_idx)
            return det + st.penalty * jnp.log(expected_flops(a) / target)

        a_loss, a_grad = jax.value_and_grad(arch_loss)(arch)
        upd, new_a_state = arch_opt.update(a_grad, a_state, arch)
        new_arch = optax.apply_updates(arch, upd)
        new_arch = {**new_arch, "log_r": jnp.clip(new_arch["log_r"], log_lo, log_hi)}
        (w_loss, new_stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, stats, new_arch, w_idx)
        upd, new_w_state = weights_opt.update(grads, w_state, params)
        new_params = optax.apply_updates(params, upd)
        ok = jnp.isfinite(a_loss) & jnp.isfinite(w_loss)  # never train on a non-finite loss: keep the old state
        new = (new_params, new_stats, new_w_state, new_arch, new_a_state)
        carry = jax.tree.map(lambda a, b: jnp.where(ok, a, b), new, carry)
        rec = {"resolution": jnp.exp(carry[3]["log_r"]), "depth_probs": jax.nn.softmax(carry[3]["beta"]),
               "expected_flops": expected_flops(carry[3]), "weight_loss": w_loss, "arch_loss": a_loss, "finite": ok}
        return carry, rec

    init = (variables["params"], variables["batch_stats"], weights_opt.init(variables["params"]), arch,
            arch_opt.init(arch))
    (_, _, _, arch, _), recs = jax.jit(lambda c: jax.lax.scan(step, c, jnp.arange(tr.steps)))(init)
    recs = jax.tree.map(np.asarray, recs)
    check(bool(recs["finite"].any()), "training", "every step's loss was non-finite; nothing was learned")
    keep = np.arange(0, tr.steps, st.record_every)
    final_r = float(np.exp(arch["log_r"]))
    probs = np.asarray(jax.nn.softmax(arch["beta"]))
    res_index = int(np.argmin(np.abs(np.asarray(choices.resolutions) - final_r)))
    depth = depths[int(np.argmax(probs))]
    depth_index = choices.depths.index(depth)
    return {
        "resolution": choices.resolutions[res_index], "depth": depth,
        "arch": np.array([res_index, depth_index], np.int32), "final_resolution": final_r, "final_probs": probs,
        "nonfinite_steps": int((~recs["finite"]).sum()),
        "trajectory": {"step": keep, "resolution": recs["resolution"][keep], "depth_probs": recs["depth_probs"][keep],
                       "expected_flops": recs["expected_flops"][keep], "weight_loss": recs["weight_loss"][keep],
                       "depths": np.asarray(depths)},
    }
