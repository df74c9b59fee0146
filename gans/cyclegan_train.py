"""CycleGAN training: a generator step then a discriminator step, image history pools, linear lr decay.

Zhu, Park, Isola & Efros, ICCV 2017, with the official code's defaults (`models/cycle_gan_model.py`,
`options/train_options.py`): least-squares adversarial loss, cycle-consistency L1 with lambda 10 in both
directions, identity loss 0.5 x lambda, the discriminator loss halved, a history pool of 50 fakes per
domain for the discriminators, Adam(2e-4, beta1 0.5, beta2 0.999) with one optimiser over both
generators and one over both discriminators, learning rate constant for the first half of training and
then decayed linearly toward zero (official: 100 + 100 epochs; here in steps, `decay_start` the constant
share). Both generators step first against the current discriminators; the discriminators then step on
the generators' fakes of that same forward pass (drawn through the pools), as in the official
`optimize_parameters`.

One jitted step: the generator losses and gradients are computed with `shard_map` over the batch (mean
losses `pmean`-ed across devices, so the global-batch mean is exact), the pools are queried on the whole
batch outside the sharded part (replicated, so the pool's random choices do not depend on the device
count), then the discriminator step is sharded the same way. 8 devices give the 1-device result.
A step with a non-finite loss or gradient is not applied and training stops naming it (`jaxnas.common.loop`).
Data order: each domain is reshuffled per epoch by a pure function of (seed, domain, epoch); a batch of A
and a batch of B are drawn independently (unpaired).

Batch size 1 is the paper's and the default; larger batches shard over devices (each image is normalised
on its own by instance norm, so the model does not change with the batch size, only the number of updates).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable
from typing import Any

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh, PartitionSpec as P

from gans.cyclegan import CycleGANConfig, PatchDiscriminator, ResnetGenerator, init_cyclegan
from gans.losses import ADVERSARIAL_LOSSES, adversarial_g_loss, cycle_loss, discriminator_loss, identity_loss
from gans.pool import pool_init, pool_query
from jaxnas.common import distributed
from jaxnas.common.checkpoint import fingerprint
from jaxnas.common.errors import check, check_choice, check_positive, check_range
from jaxnas.common.loop import all_finite, run_loop
from jaxnas.common.tree import tree_where


@dataclasses.dataclass(frozen=True)
class CycleGANSettings:
    """Training settings; the defaults are the official ones except `steps` and `batch_size`."""

    steps: int = 4000
    batch_size: int = 1
    lr: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    decay_start: float = 0.5  # share of the steps at constant lr (official 100 of 200 epochs), then linear decay
    adversarial_loss: str = "lsgan"  # "lsgan" | "minimax" | "nonsaturating"
    cycle_lambda: float = 10.0
    identity: float = 0.5  # weight of the identity loss relative to cycle_lambda; 0 switches it off
    pool_size: int = 50
    checkpoint_every: int = 500
    seed: int = 0

    def validate(self) -> None:
        for name in ("steps", "batch_size", "checkpoint_every"):
            check_positive(f"train.{name}", getattr(self, name), integer=True)
        check_range("train.lr", self.lr, 0.0, 1.0)
        check_range("train.beta1", self.beta1, 0.0, 1.0)
        check_range("train.beta2", self.beta2, 0.0, 1.0)
        check_range("train.decay_start", self.decay_start, 0.0, 1.0)
        check_choice("train.adversarial_loss", self.adversarial_loss, ADVERSARIAL_LOSSES)
        check_range("train.cycle_lambda", self.cycle_lambda, 0.0, 1e6)
        check_range("train.identity", self.identity, 0.0, 1e6)
        check(isinstance(self.pool_size, int) and self.pool_size >= 0, "train.pool_size",
              f"got {self.pool_size!r}; allowed: an integer >= 0 (0: no pool)")

    def learning_rate(self) -> optax.Schedule:
        """Constant for `decay_start * steps` steps, then linear to 0 (reached one step after the last)."""
        constant = int(round(self.decay_start * self.steps))
        return optax.join_schedules(
            [optax.constant_schedule(self.lr), optax.linear_schedule(self.lr, 0.0, self.steps - constant + 1)],
            [constant])


@flax.struct.dataclass
class CycleState:
    step: jax.Array
    params: Any  # {"g_ab", "g_ba", "d_a", "d_b"}
    g_opt: Any
    d_opt: Any
    pool_a: Any  # history of fakes in domain A (for D_A)
    pool_b: Any


class CycleGANTrainer:
    """Trains G: A -> B and F: B -> A on unpaired images (N, R, R, C) in [0, 1] (networks see [-1, 1])."""

    def __init__(self, config: CycleGANConfig, settings: CycleGANSettings, domain_a: np.ndarray, domain_b: np.ndarray,
                 devices: list[jax.Device] | None = None):
        """`devices`: the data-parallel devices (default: the first gcd(batch_size, device count) of them; with
        several processes all their devices, and the batch a multiple of their number)."""
        config.validate()
        settings.validate()
        r = config.resolution
        for field, x, c in (("data.a", domain_a, config.channels_a), ("data.b", domain_b, config.channels_b)):
            check(x.ndim == 4 and x.shape[1:] == (r, r, c), field, f"images must be (N, {r}, {r}, {c}); got {x.shape}")
            check(len(x) >= settings.batch_size, "train.batch_size",
                  f"got {settings.batch_size}; {field} has only {len(x)} images")
        if settings.identity > 0:
            check(config.channels_a == config.channels_b, "train.identity",
                  f"the identity loss needs channels_a == channels_b (got {config.channels_a}, {config.channels_b}); "
                  "set train.identity=0")
        self.config, self.settings = config, settings
        self.domains = [np.ascontiguousarray(x * 2.0 - 1.0, np.float32) for x in (domain_a, domain_b)]
        # Default: as many devices as divide the batch (the paper's batch of 1 runs on one device).
        if devices is None and jax.process_count() > 1:  # every process's devices take part
            check(settings.batch_size % jax.device_count() == 0, "train.batch_size",
                  f"got {settings.batch_size}; allowed with {jax.process_count()} processes: a multiple of the number "
                  f"of devices ({jax.device_count()})")
        self.devices = list(devices or jax.devices()[:math.gcd(settings.batch_size, jax.device_count())])
        check(settings.batch_size % len(self.devices) == 0, "train.batch_size",
              f"got {settings.batch_size}; allowed: a multiple of the number of devices ({len(self.devices)})")
        self.mesh = Mesh(np.array(self.devices), ("data",))
        self.g_ab = ResnetGenerator(config, config.channels_a, config.channels_b)
        self.g_ba = ResnetGenerator(config, config.channels_b, config.channels_a)
        self.d_a = PatchDiscriminator(config, config.channels_a)
        self.d_b = PatchDiscriminator(config, config.channels_b)
        lr = settings.learning_rate()
        self.g_tx = optax.adam(lr, b1=settings.beta1, b2=settings.beta2)
        self.d_tx = optax.adam(lr, b1=settings.beta1, b2=settings.beta2)
        self._step = self._build_step()
        self._compiled = False  # whether this trainer has run (and so compiled) its step

    def init_state(self, key: jax.Array) -> CycleState:
        params = init_cyclegan(self.config, key)
        gens = {k: params[k] for k in ("g_ab", "g_ba")}
        discs = {k: params[k] for k in ("d_a", "d_b")}
        r, cfg = self.config.resolution, self.config
        size = self.settings.pool_size
        return CycleState(jnp.zeros([], jnp.int32), params, self.g_tx.init(gens), self.d_tx.init(discs),
                          pool_init(size, (r, r, cfg.channels_a)), pool_init(size, (r, r, cfg.channels_b)))

    def _build_step(self) -> Callable:
        s = self.settings
        kind, lam, idt_weight = s.adversarial_loss, s.cycle_lambda, s.identity
        g_ab, g_ba, d_a, d_b = self.g_ab, self.g_ba, self.d_a, self.d_b

        def apply(module, params, x):
            return module.apply({"params": params}, x)

        def g_local(params, a, b):
            def loss_fn(gens):
                fake_b = apply(g_ab, gens["g_ab"], a)
                fake_a = apply(g_ba, gens["g_ba"], b)
                adv = (adversarial_g_loss(kind, apply(d_b, params["d_b"], fake_b))
                       + adversarial_g_loss(kind, apply(d_a, params["d_a"], fake_a)))
                cyc = cycle_loss(a, apply(g_ba, gens["g_ba"], fake_b), b, apply(g_ab, gens["g_ab"], fake_a), lam)
                idt = (identity_loss(a, apply(g_ba, gens["g_ba"], a), b, apply(g_ab, gens["g_ab"], b), lam, idt_weight)
                       if idt_weight > 0 else jnp.zeros([]))
                return adv + cyc + idt, (fake_a, fake_b, adv, cyc, idt)

            gens = {"g_ab": params["g_ab"], "g_ba": params["g_ba"]}
            (total, (fake_a, fake_b, adv, cyc, idt)), grads = jax.value_and_grad(loss_fn, has_aux=True)(gens)
            grads, total, adv, cyc, idt = jax.lax.pmean((grads, total, adv, cyc, idt), "data")
            return grads, {"g_loss": total, "g_adv": adv, "cycle": cyc, "identity": idt}, fake_a, fake_b

        def d_local(discs, a, b, fake_a, fake_b):
            def loss_fn(ds):
                la = discriminator_loss(kind, apply(d_a, ds["d_a"], a), apply(d_a, ds["d_a"], fake_a))
                lb = discriminator_loss(kind, apply(d_b, ds["d_b"], b), apply(d_b, ds["d_b"], fake_b))
                return la + lb, (la, lb)

            (_, (la, lb)), grads = jax.value_and_grad(loss_fn, has_aux=True)(discs)
            grads, la, lb = jax.lax.pmean((grads, la, lb), "data")
            return grads, {"d_a": la, "d_b": lb}

        g_sharded = jax.shard_map(g_local, mesh=self.mesh, in_specs=(P(), P("data"), P("data")),
                                  out_specs=(P(), P(), P("data"), P("data")), check_vma=False)
        d_sharded = jax.shard_map(d_local, mesh=self.mesh, in_specs=(P(), P("data"), P("data"), P("data"), P("data")),
                                  out_specs=(P(), P()), check_vma=False)

        def step(state: CycleState, a: jax.Array, b: jax.Array, key: jax.Array):
            ka, kb = jax.random.split(jax.random.fold_in(key, state.step))
            params = state.params
            g_grads, g_metrics, fake_a, fake_b = g_sharded(params, a, b)
            gens = {"g_ab": params["g_ab"], "g_ba": params["g_ba"]}
            updates, g_opt = self.g_tx.update(g_grads, state.g_opt, gens)
            gens = optax.apply_updates(gens, updates)
            pool_a, pool_fake_a = pool_query(state.pool_a, jax.lax.stop_gradient(fake_a), ka)
            pool_b, pool_fake_b = pool_query(state.pool_b, jax.lax.stop_gradient(fake_b), kb)
            discs = {"d_a": params["d_a"], "d_b": params["d_b"]}
            d_grads, d_metrics = d_sharded(discs, a, b, pool_fake_a, pool_fake_b)
            updates, d_opt = self.d_tx.update(d_grads, state.d_opt, discs)
            discs = optax.apply_updates(discs, updates)
            metrics = {**g_metrics, **d_metrics}
            finite = all_finite(metrics, g_grads, d_grads)
            new = CycleState(state.step + 1, {**gens, **discs}, g_opt, d_opt, pool_a, pool_b)
            return tree_where(finite, new, state), {**metrics, "finite": finite}

        return jax.jit(step, donate_argnums=(0,))

    def batch(self, step: int) -> tuple[np.ndarray, np.ndarray]:
        """The (A, B) batch of `step`: each domain reshuffled per epoch by (seed, domain, epoch), independently."""
        out = []
        bs = self.settings.batch_size
        for d, images in enumerate(self.domains):
            per_epoch = len(images) // bs
            epoch, pos = divmod(step, per_epoch)
            perm = np.random.default_rng([self.settings.seed, d, epoch]).permutation(len(images))
            out.append(images[perm[pos * bs:(pos + 1) * bs]])
        return out[0], out[1]

    def train(self, key: jax.Array, *, workdir: str | None = None, stop_at: int | None = None,
              progress: bool = False, state: CycleState | None = None,
              callback: Callable[[int, CycleState], dict[str, Any] | None] | None = None,
              metrics_path: str | None = None, settings: dict[str, Any] | None = None,
              ) -> tuple[CycleState, list[dict[str, float]]]:
        """Runs (or resumes from the checkpoints in `workdir`) to `settings.steps` (or `stop_at`) through
        `jaxnas.common.loop.run_loop`; as `StyleGANTrainer.train` (the checkpoints record the model, the
        settings, the key, both domains' content and the caller's `settings`); each record says whether its step
        compiled (`compiles`: the first step of each run), for `jaxnas.common.loop.steady_rate`."""
        s = self.settings
        state = state if state is not None else self.init_state(jax.random.fold_in(key, 10**6))
        recorded = {"model": self.config, "train": s, "key": np.asarray(jax.random.key_data(key)).tolist(),
                    "images": fingerprint(*self.domains), **(settings or {})}
        replicate = functools.partial(distributed.place, mesh=self.mesh, spec=P())
        state, placed_key = replicate(state), replicate(key)

        def step(i: int, st: CycleState) -> tuple[CycleState, dict[str, Any]]:
            compiles, self._compiled = not self._compiled, True  # the first call of each run compiles
            new, metrics = self._step(st, *distributed.place(self.batch(i), self.mesh, P("data")), placed_key)
            return new, {**metrics, "compiles": compiles}

        out = run_loop(step, state, end=min(stop_at or s.steps, s.steps),
                       settings=recorded, checkpoint_dir=workdir, metrics_path=metrics_path,
                       checkpoint_every=s.checkpoint_every, start=int(state.step),
                       place=replicate, callback=callback,
                       progress=progress, desc="CycleGAN", label="CycleGAN training", hint="lower train.lr")
        return out.state, out.history

    def translate(self, params: Any, images: np.ndarray, direction: str, batch_size: int = 64) -> np.ndarray:
        """G(images) for direction "ab" or F(images) for "ba"; images and result in [0, 1], (N, R, R, C)."""
        check_choice("direction", direction, ("ab", "ba"))
        gen = distributed.local(params["g_" + direction])  # each process translates on its own devices
        return translate_in_batches(self._translator(direction), gen, images, batch_size)

    @functools.cache
    def _translator(self, direction: str) -> Callable:
        module = self.g_ab if direction == "ab" else self.g_ba
        return jax.jit(lambda p, x: module.apply({"params": p}, x))


def translate_in_batches(fn: Callable, gen_params: Any, images: np.ndarray, batch_size: int) -> np.ndarray:
    """`fn(gen_params, x)` (a jitted generator on [-1, 1] images) over `images` in [0, 1], `batch_size` at a time
    (the last batch zero-padded, so one program serves every call); the result in [0, 1]."""
    out = []
    for start in range(0, len(images), batch_size):
        chunk = np.asarray(images[start:start + batch_size], np.float32) * 2.0 - 1.0
        pad = batch_size - len(chunk)
        if pad:
            chunk = np.concatenate([chunk, np.zeros((pad, *chunk.shape[1:]), np.float32)])
        out.append(np.asarray(fn(gen_params, chunk))[: batch_size - pad])
    if not out:
        return np.zeros((0, *np.shape(images)[1:]), np.float32)
    return np.clip((np.concatenate(out) + 1.0) / 2.0, 0.0, 1.0)
