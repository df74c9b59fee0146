"""A trained generator saved beside its run, loaded again without the trainer, the discriminator or the data.

    from gans.saved_generator import load_generator

    g = load_generator("runs/stylegan")        # a StyleGAN run's workdir
    images = g.sample(jax.random.key(0), 16, psi=0.7)          # (16, R, R, C) in [0, 1], truncation psi
    g = load_generator("runs/cyclegan")        # a CycleGAN run's workdir
    fake_b = g.translate(images_a, "ab")       # G: A -> B;  "ba" for F: B -> A; images in [0, 1]

`experiments.stylegan` and `experiments.cyclegan` save the final generator(s) (StyleGAN: the EMA weights and the
moving average of w; CycleGAN: G and F) as `generator.json` (kind, network settings) and `generator.msgpack`
(flax serialisation). A loaded generator's output equals the trainer's own `sample` / `translate` (tested).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import serialization

from jaxnas.common.errors import ConfigError, check_choice
from jaxnas.common.metrics import write_bytes, write_json

META, WEIGHTS = "generator.json", "generator.msgpack"


def _write(workdir: str, meta: dict[str, Any], tree: Any) -> None:
    write_bytes(os.path.join(workdir, WEIGHTS), serialization.to_bytes(jax.device_get(tree)))
    write_json(os.path.join(workdir, META), meta)  # last: a folder with generator.json is complete


def save_stylegan(workdir: str, config: Any, g_ema: Any, w_avg: Any, lod: float) -> None:
    """The EMA generator of a StyleGAN run, its w average and the level of detail training ended at."""
    _write(workdir, {"kind": "stylegan", "config": dataclasses.asdict(config), "lod": float(lod)},
           {"g_ema": g_ema, "w_avg": w_avg})


def save_cyclegan(workdir: str, config: Any, params: Any) -> None:
    """CycleGAN's two generators, G (A -> B) and F (B -> A)."""
    _write(workdir, {"kind": "cyclegan", "config": dataclasses.asdict(config)},
           {"g_ab": params["g_ab"], "g_ba": params["g_ba"]})


class StyleGANSampler:
    """Images from a saved StyleGAN generator (the EMA weights)."""

    def __init__(self, meta: dict[str, Any], raw: bytes):
        from gans.stylegan import Generator, StyleGANConfig

        self.config = StyleGANConfig(**meta["config"])
        self.lod = float(meta["lod"])
        self.gen = Generator(self.config)
        c = self.config
        template = jax.eval_shape(lambda: self.gen.init(jax.random.key(0), jnp.zeros((1, c.z_dim)), None, False))
        restored = serialization.from_bytes({"g_ema": template["params"], "w_avg": jnp.zeros((c.w_dim,))}, raw)
        self.params, self.w_avg = restored["g_ema"], jnp.asarray(restored["w_avg"])

    def sample(self, key: jax.Array, n: int, psi: float = 1.0, cutoff: int | None = None,
               mixing: float = 0.0) -> np.ndarray:
        """n images in [0, 1] (n, R, R, C); `psi` < 1 truncates towards the average w (up to layer `cutoff`),
        `mixing` is the probability of mixing two latents' styles."""
        from gans.stylegan_train import _latents

        lat = _latents(key, n, self.config, mixing)
        images, _ = self._generate(float(psi), cutoff)(self.params, lat, self.w_avg, jnp.asarray(self.lod, jnp.float32))
        return np.clip((np.asarray(images) + 1.0) / 2.0, 0.0, 1.0)

    @functools.cache
    def _generate(self, psi: float, cutoff: int | None) -> Any:
        from gans.stylegan_train import generate

        return jax.jit(lambda p, lat, w, lod: generate(self.gen, p, lat, w, psi, cutoff, lod))


class CycleGANTranslator:
    """Translations by a saved CycleGAN's generators."""

    def __init__(self, meta: dict[str, Any], raw: bytes):
        from gans.cyclegan import CycleGANConfig, ResnetGenerator

        self.config = c = CycleGANConfig(**meta["config"])
        self.nets = {"ab": ResnetGenerator(c, c.channels_a, c.channels_b),
                     "ba": ResnetGenerator(c, c.channels_b, c.channels_a)}
        shapes = {"ab": c.channels_a, "ba": c.channels_b}
        template = {f"g_{d}": jax.eval_shape(lambda d=d: self.nets[d].init(
            jax.random.key(0), jnp.zeros((1, c.resolution, c.resolution, shapes[d]))))["params"] for d in self.nets}
        self.params = serialization.from_bytes(template, raw)

    def translate(self, images: np.ndarray, direction: str, batch_size: int = 64) -> np.ndarray:
        """G(images) for "ab", F(images) for "ba"; images and result in [0, 1], (N, R, R, C)."""
        from gans.cyclegan_train import translate_in_batches

        check_choice("direction", direction, ("ab", "ba"))
        return translate_in_batches(self._translator(direction), self.params[f"g_{direction}"], images, batch_size)

    @functools.cache
    def _translator(self, direction: str) -> Any:
        net = self.nets[direction]
        return jax.jit(lambda p, x: net.apply({"params": p}, x))


KINDS = {"stylegan": StyleGANSampler, "cyclegan": CycleGANTranslator}


def load_generator(workdir: str) -> StyleGANSampler | CycleGANTranslator:
    """The generator a StyleGAN or CycleGAN run saved in `workdir` (its final weights)."""
    path = os.path.join(workdir, META)
    if not os.path.isfile(path):
        raise ConfigError("workdir", f"{workdir!r} has no {META}: a finished run of experiments.stylegan or "
                                     "experiments.cyclegan writes it (runs before this version did not)")
    with open(path) as f:
        meta = json.load(f)
    check_choice("kind", meta.get("kind"), tuple(KINDS))
    with open(os.path.join(workdir, WEIGHTS), "rb") as f:
        return KINDS[meta["kind"]](meta, f.read())
