"""StyleGAN training: alternating D and G steps, lazy R1, style mixing, generator EMA, tracked w average.

Karras, Laine & Aila, CVPR 2019 (StyleGAN: non-saturating logistic loss with R1, gamma 10; style mixing
with probability 0.9; generator EMA with a half-life of 10k images; w average tracked with decay 0.995
for truncation) with the lazy regularisation of Karras et al., CVPR 2020 (R1 every 16 D steps, scaled by
16, Adam's lr and betas corrected by c = 16/17). Adam beta1 0, beta2 0.99, lr 0.002 (StyleGAN2's
setting, which goes with lazy regularisation; StyleGAN1 used 0.001 with progressive growing).

Progressive growing (when the model has ``structure="progressive"``) follows the official ``TrainingSchedule``:
training starts at ``lod_initial_resolution`` (official 8), each resolution is trained for
``lod_training_kimg`` thousand images and then faded into the next over ``lod_transition_kimg``
(official 600 + 600). The level of detail is a pure function of the step (`lod_at`), computed inside the
compiled step, so a resumed run follows the same schedule. Deviations: lod moves every step (official:
every tick), and the official per-resolution learning rates / minibatch sizes are not used (one lr and
batch throughout). As in the official loop, both Adam states restart whenever a fade starts or ends
(`lod_phase_starts`, ``reset_opt_for_new_lod``), and the style-mixing crossover stays among the style
inputs the current lod renders (`gans.stylegan.mixing_crossover`).

One jitted step does a D update then a G update on a global batch. Every random draw (latents, style-mixing
crossover, noise) is made per example from the step key *before* the batch is split over devices with
`shard_map`, and losses/gradients are summed across devices, so 8 devices give the 1-device result.
A step whose losses or gradients are not finite is not applied and training stops naming the step.
Checkpoints (orbax) hold the whole state; data order is a pure function of (seed, step).
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import math
from collections.abc import Callable
from typing import Any

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh, PartitionSpec as P

from gans.losses import d_logistic, g_nonsaturating, lazy_adam_hparams, r1_per_example
from gans.stylegan import (Discriminator, Generator, StyleGANConfig, broadcast_ws, mix_styles, mixing_crossover,
                           progressive_reals, truncate, update_w_avg)
from jaxnas.common import distributed
from jaxnas.common.checkpoint import fingerprint
from jaxnas.common.errors import check, check_positive, check_range
from jaxnas.common.loop import all_finite, run_loop
from jaxnas.common.tree import tree_where


@dataclasses.dataclass(frozen=True)
class GANTrainSettings:
    steps: int = 2000
    batch_size: int = 32
    lr: float = 0.002
    beta1: float = 0.0
    beta2: float = 0.99
    r1_gamma: float = 10.0
    r1_interval: int = 16
    style_mixing: float = 0.9
    ema_kimg: float = 10.0
    w_avg_decay: float = 0.995
    lod_initial_resolution: int = 8
    lod_training_kimg: float = 600.0
    lod_transition_kimg: float = 600.0
    reset_opt_for_new_lod: bool = True  # official: Adam's state restarts as each fade starts and ends
    checkpoint_every: int = 500
    seed: int = 0

    def validate(self) -> None:
        for name in ("steps", "batch_size", "r1_interval", "checkpoint_every"):
            check_positive(f"train.{name}", getattr(self, name), integer=True)
        check_range("train.lr", self.lr, 0.0, 1.0)
        check_range("train.beta1", self.beta1, 0.0, 1.0)
        check_range("train.beta2", self.beta2, 0.0, 1.0)
        check_range("train.r1_gamma", self.r1_gamma, 0.0, 1e6)
        check_range("train.style_mixing", self.style_mixing, 0.0, 1.0)
        check_range("train.w_avg_decay", self.w_avg_decay, 0.0, 1.0)
        r = self.lod_initial_resolution
        check(isinstance(r, int) and r >= 4 and (r & (r - 1)) == 0, "train.lod_initial_resolution",
              f"got {r!r}; allowed: a power of two >= 4")
        check_range("train.lod_training_kimg", self.lod_training_kimg, 0.0, 1e9)
        check_range("train.lod_transition_kimg", self.lod_transition_kimg, 0.0, 1e9)
        check(round(self.lod_training_kimg * 1000) + round(self.lod_transition_kimg * 1000) > 0,
              "train.lod_training_kimg", "lod_training_kimg + lod_transition_kimg must be at least one image")
        check(isinstance(self.reset_opt_for_new_lod, bool), "train.reset_opt_for_new_lod",
              f"got {self.reset_opt_for_new_lod!r}; allowed: true or false")


def lod_at(step: int | jax.Array, settings: GANTrainSettings, config: StyleGANConfig) -> jax.Array:
    """Level of detail at a training step (official ``TrainingSchedule``; 0 = full resolution).

    ``log2(R) - log2(lod_initial_resolution)`` at the start; each phase of ``lod_training_kimg`` stable
    plus ``lod_transition_kimg`` fading lowers it by one; never below 0. Always 0 without progressive growing.
    """
    if not config.progressive:
        return jnp.zeros([], jnp.float32)
    s = settings
    # Counted in whole images (int32), so phase boundaries land exactly on the step the official float64
    # schedule puts them.
    images = jnp.asarray(step, jnp.int32) * s.batch_size
    stable, fade = round(s.lod_training_kimg * 1000), round(s.lod_transition_kimg * 1000)
    idx = images // (stable + fade)
    into = images - idx * (stable + fade)
    start = config.log2_resolution - math.log2(min(s.lod_initial_resolution, config.resolution))
    lod = start - idx.astype(jnp.float32)
    if fade > 0:
        lod = lod - jnp.maximum(into - stable, 0).astype(jnp.float32) / fade
    return jnp.maximum(lod, 0.0)


def lod_phase_starts(step: int | jax.Array, settings: GANTrainSettings, config: StyleGANConfig) -> jax.Array:
    """Whether ``step`` starts a new phase of progressive growing: floor or ceil of the lod differ from
    the previous step's (a fade begins or ends). The official training loop resets both optimizers then
    (``reset_opt_for_new_lod``)."""
    lod, prev = lod_at(step, settings, config), lod_at(jnp.asarray(step) - 1, settings, config)
    changed = (jnp.floor(lod) != jnp.floor(prev)) | (jnp.ceil(lod) != jnp.ceil(prev))
    return (jnp.asarray(step) > 0) & changed


@flax.struct.dataclass
class GANState:
    step: jax.Array
    g_params: Any
    d_params: Any
    g_ema: Any
    w_avg: jax.Array  # (w_dim,)
    g_opt: Any
    d_opt: Any


def _latents(key: jax.Array, batch: int, cfg: StyleGANConfig, mixing: float,
             lod: float | jax.Array = 0.0) -> dict[str, jax.Array]:
    """Per-example randomness of one generator pass: two latents, a crossover layer among those the image
    at ``lod`` renders (`mixing_crossover`), a noise key each."""
    kz1, kz2, kmix, kcross, knoise = jax.random.split(key, 5)
    return {"z1": jax.random.normal(kz1, (batch, cfg.z_dim)), "z2": jax.random.normal(kz2, (batch, cfg.z_dim)),
            "crossover": mixing_crossover(kmix, kcross, batch, cfg.num_ws, mixing, lod),
            "noise": jax.random.split(knoise, batch)}


def generate(gen: Generator, g_params: Any, lat: dict[str, jax.Array], w_avg: jax.Array | None = None,
             psi: float = 1.0, cutoff: int | None = None,
             lod: float | jax.Array = 0.0) -> tuple[jax.Array, jax.Array]:
    """Images (B, R, R, C) at level of detail ``lod`` and the first latent's w (B, w_dim), with style
    mixing and optional truncation."""
    n = gen.config.num_ws
    w1 = gen.apply({"params": g_params}, lat["z1"], method=Generator.map)
    w2 = gen.apply({"params": g_params}, lat["z2"], method=Generator.map)
    ws = mix_styles(broadcast_ws(w1, n), broadcast_ws(w2, n), lat["crossover"])
    if w_avg is not None and psi != 1.0:
        ws = truncate(ws, w_avg, psi, cutoff)
    return gen.apply({"params": g_params}, ws, lat["noise"], True, lod, method=Generator.synthesize), w1


class StyleGANTrainer:
    """Trains a StyleGAN on images (N, R, R, C) in [0, 1] (mapped to [-1, 1] for the networks)."""

    def __init__(self, config: StyleGANConfig, settings: GANTrainSettings, images: np.ndarray,
                 devices: list[jax.Device] | None = None):
        config.validate()
        settings.validate()
        r = config.resolution
        check(images.ndim == 4 and images.shape[1:] == (r, r, config.channels), "data",
              f"images must be (N, {r}, {r}, {config.channels}); got {images.shape}")
        check(len(images) >= settings.batch_size, "train.batch_size",
              f"got {settings.batch_size}; the dataset has only {len(images)} images")
        self.config, self.settings = config, settings
        self.images = np.ascontiguousarray(images * 2.0 - 1.0, np.float32)
        self.devices = list(devices or jax.devices())  # several processes: all of theirs (the batch split over them)
        check(settings.batch_size % len(self.devices) == 0, "train.batch_size",
              f"got {settings.batch_size}; allowed: a multiple of the number of devices ({len(self.devices)})")
        self.mesh = Mesh(np.array(self.devices), ("data",))
        self.gen, self.disc = Generator(config), Discriminator(config)
        s = settings
        self.g_tx = optax.adam(s.lr, b1=s.beta1, b2=s.beta2, eps=1e-8)
        d_lr, d_b1, d_b2 = lazy_adam_hparams(s.lr, s.beta1, s.beta2, s.r1_interval if s.r1_gamma > 0 else 1)
        self.d_tx = optax.adam(d_lr, b1=d_b1, b2=d_b2, eps=1e-8)
        self.ema_beta = 0.5 ** (s.batch_size / (s.ema_kimg * 1000.0)) if s.ema_kimg > 0 else 0.0
        self._steps = {reg: self._build_step(reg) for reg in (False, True)}
        self._compiled: set[bool] = set()  # step variants this trainer has run (and so compiled)
        self.final_lod = float(self.lod(settings.steps))  # the level of detail training ends at (0 normally)
        if self.final_lod > 0:
            logging.warning("train.steps=%d ends at lod %.2f (below full resolution): lower train.lod_training_kimg"
                            " / lod_transition_kimg", settings.steps, self.final_lod)

    def lod(self, step: int | jax.Array) -> jax.Array:
        """Level of detail at `step` (see `lod_at`)."""
        return lod_at(step, self.settings, self.config)

    def init_state(self, key: jax.Array) -> GANState:
        kg, kd = jax.random.split(key)
        cfg = self.config
        g_params = self.gen.init(kg, jnp.zeros((1, cfg.z_dim)), None, False)["params"]
        d_params = self.disc.init(kd, jnp.zeros((1, cfg.resolution, cfg.resolution, cfg.channels)))["params"]
        return GANState(jnp.zeros([], jnp.int32), g_params, d_params, jax.tree.map(jnp.array, g_params),
                        jnp.zeros((cfg.w_dim,)), self.g_tx.init(g_params), self.d_tx.init(d_params))

    def _build_step(self, regularize: bool) -> Callable:
        s, gen, disc = self.settings, self.gen, self.disc
        interval = s.r1_interval
        batch = s.batch_size

        def local(state: GANState, real: jax.Array, lat_d: dict, lat_g: dict, lod: jax.Array):
            def d_apply(params, x):
                return disc.apply({"params": params}, x, lod)

            real = progressive_reals(real, lod) if self.config.progressive else real
            fake, _ = generate(gen, state.g_params, lat_d, lod=lod)
            fake = jax.lax.stop_gradient(fake)

            def d_loss_fn(d_params):
                loss = d_logistic(d_apply(d_params, real), d_apply(d_params, fake)).sum() / batch
                if regularize:
                    r1 = r1_per_example(lambda x: d_apply(d_params, x), real).sum() / batch
                    loss = loss + r1 * (s.r1_gamma * 0.5 * interval)
                    return loss, r1
                return loss, jnp.zeros([])

            (d_loss, r1), d_grads = jax.value_and_grad(d_loss_fn, has_aux=True)(state.d_params)
            d_grads, d_loss, r1 = jax.lax.psum((d_grads, d_loss, r1), "data")
            d_updates, d_opt = self.d_tx.update(d_grads, state.d_opt, state.d_params)
            d_params = optax.apply_updates(state.d_params, d_updates)

            def g_loss_fn(g_params):
                images, w = generate(gen, g_params, lat_g, lod=lod)
                return g_nonsaturating(d_apply(d_params, images)).sum() / batch, w

            (g_loss, w), g_grads = jax.value_and_grad(g_loss_fn, has_aux=True)(state.g_params)
            g_grads, g_loss = jax.lax.psum((g_grads, g_loss), "data")
            w_mean = jax.lax.psum(w.sum(0), "data") / batch
            g_updates, g_opt = self.g_tx.update(g_grads, state.g_opt, state.g_params)
            g_params = optax.apply_updates(state.g_params, g_updates)
            g_ema = jax.tree.map(lambda e, p: p + (e - p) * self.ema_beta, state.g_ema, g_params)
            finite = all_finite(d_loss, g_loss, d_grads, g_grads)
            new = GANState(state.step + 1, g_params, d_params, g_ema,
                           update_w_avg(state.w_avg, w_mean, s.w_avg_decay), g_opt, d_opt)
            new = tree_where(finite, new, state)
            return new, {"d_loss": d_loss, "g_loss": g_loss, "r1": r1, "finite": finite}

        sharded = jax.shard_map(local, mesh=self.mesh, in_specs=(P(), P("data"), P("data"), P("data"), P()),
                                out_specs=(P(), P()), check_vma=False)

        def step(state: GANState, real: jax.Array, key: jax.Array):
            kd, kg = jax.random.split(jax.random.fold_in(key, state.step))
            lod = self.lod(state.step)
            if self.config.progressive and s.reset_opt_for_new_lod:
                new_phase = lod_phase_starts(state.step, s, self.config)
                state = state.replace(g_opt=tree_where(new_phase, self.g_tx.init(state.g_params), state.g_opt),
                                      d_opt=tree_where(new_phase, self.d_tx.init(state.d_params), state.d_opt))
            lat_d = _latents(kd, batch, self.config, s.style_mixing, lod)
            lat_g = _latents(kg, batch, self.config, s.style_mixing, lod)
            return sharded(state, real, lat_d, lat_g, lod)

        return jax.jit(step, donate_argnums=(0,))

    def batch(self, step: int) -> np.ndarray:
        per_epoch = len(self.images) // self.settings.batch_size
        epoch, pos = divmod(step, per_epoch)
        perm = np.random.default_rng([self.settings.seed, epoch]).permutation(len(self.images))
        return self.images[perm[pos * self.settings.batch_size:(pos + 1) * self.settings.batch_size]]

    def train(self, key: jax.Array, *, workdir: str | None = None, stop_at: int | None = None,
              progress: bool = False, state: GANState | None = None,
              callback: Callable[[int, GANState], dict[str, Any] | None] | None = None,
              metrics_path: str | None = None, settings: dict[str, Any] | None = None,
              ) -> tuple[GANState, list[dict[str, float]]]:
        """Runs (or resumes from the checkpoints in `workdir`) to `settings.steps` (or `stop_at`) through
        `jaxnas.common.loop.run_loop`; returns the state and the per-step history.

        `callback(step, state)` runs after every step, before that step's checkpoint; what it returns is
        merged into the step's history entry, which the checkpoints keep, so measurements taken during
        training (e.g. FID every N steps) survive a restart without being recomputed from a later state.
        The checkpoints record the model, the training settings, the key, the training images' content and
        `settings` (the caller's, e.g. how it measures); a rerun with any of them changed is refused.
        `progress` shows a bar; `metrics_path` receives one JSON line per step. Each record says whether its
        step compiled (`compiles`: the first call of each step variant in this trainer, i.e. in each run, resumed
        ones included), so `steady_rate` can leave compilation out of a throughput.
        """
        s = self.settings
        state = state if state is not None else self.init_state(jax.random.fold_in(key, 10**6))
        recorded = {"model": self.config, "train": s, "key": np.asarray(jax.random.key_data(key)).tolist(),
                    "images": fingerprint(self.images), **(settings or {})}
        replicate = functools.partial(distributed.place, mesh=self.mesh, spec=P())
        state, placed_key = replicate(state), replicate(key)

        def step(i: int, st: GANState) -> tuple[GANState, dict[str, Any]]:
            regularize = s.r1_gamma > 0 and i % s.r1_interval == 0
            compiles = regularize not in self._compiled  # this call's seconds include compiling its variant
            self._compiled.add(regularize)
            real = distributed.place(self.batch(i), self.mesh, P("data"))
            new, metrics = self._steps[regularize](st, real, placed_key)
            return new, {**metrics, "compiles": compiles}

        out = run_loop(step, state, end=min(stop_at or s.steps, s.steps), settings=recorded, checkpoint_dir=workdir,
                       metrics_path=metrics_path, checkpoint_every=s.checkpoint_every, start=int(state.step),
                       place=replicate, callback=callback,
                       progress=progress, desc="StyleGAN", label="StyleGAN training",
                       hint="lower train.lr or raise train.r1_gamma")
        return out.state, out.history

    def sample(self, g_params: Any, key: jax.Array, n: int, w_avg: jax.Array | None = None, psi: float = 1.0,
               cutoff: int | None = None, mixing: float = 0.0, lod: float | jax.Array | None = None) -> np.ndarray:
        """n images in [0, 1] (N, R, R, C) from `g_params` (use the EMA weights for evaluation) at level of
        detail `lod` (None: the one training ends at, 0 normally; mid-training pass ``self.lod(step)``)."""
        lod = self.final_lod if lod is None else lod
        g_params, w_avg = distributed.local((g_params, w_avg))  # each process samples on its own devices
        lat = _latents(key, n, self.config, mixing)
        images, _ = self._generate(psi, cutoff)(g_params, lat, w_avg, jnp.asarray(lod, jnp.float32))
        return np.clip((np.asarray(images) + 1.0) / 2.0, 0.0, 1.0)

    @functools.cache
    def _generate(self, psi: float, cutoff: int | None) -> Callable:
        """One compiled generator per (psi, cutoff): evaluations during training reuse it, not recompile."""
        return jax.jit(lambda p, lat, w, lod: generate(self.gen, p, lat, w, psi, cutoff, lod))
