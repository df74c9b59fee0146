"""Benchmark: StyleGAN training images per second at 32x32, batch 32 (issue 5).

    .venv/bin/python benchmarks/stylegan_train.py [--steps 32] [--rounds 3] [--configs cpu,wide]
        [--structure fixed|progressive|skip]

Whole training steps of `gans.stylegan_train.StyleGANTrainer` (D step + G step, lazy R1 every 16 D steps, EMA, w-average
tracking; one jitted sharded step per call, synchronised by reading its losses as the trainer does) on random
images, so the figure includes every part of a real step but no data loading or evaluation. Per network
config: two warm-up steps (they compile the with-R1 and without-R1 variants; compile time reported
separately), then --rounds timed runs of --steps steps each (a multiple of 16 keeps the R1 share exact).
Configs (1 channel, z/w 128, 8 mapping layers; 32x32 except `cpu16`):
  * `cpu`:  fmap_base 512, fmap_max 64 (the channel widths of experiments/configs/stylegan.py; 32 channels at 32x32)
  * `wide`: fmap_base 1024, fmap_max 128 (128 channels up to 16x16, 64 at 32x32)
  * `official`: fmap_base 8192, fmap_max 512 (the paper's widths; 512 channels; GPU-sized)
  * `cpu16`: the `cpu` widths at 16x16, the resolution experiments/configs/stylegan.py trains at
  * `halving16`: 16x16 with fmap_base 256, fmap_max 128 (128 / 64 / 32 channels at 4 / 8 / 16: the official
    profile's halving per resolution, scaled down)
--structure (default `fixed`, the experiment's): `progressive` adds a toRGB / fromRGB per resolution and the
lod fading (always computed, as the official 'linear' structure), `skip` StyleGAN2's summed toRGB outputs.
Imports only jax/flax/optax/orbax/numpy and the package, so it runs unchanged on the GPU machine.
Writes benchmarks/results/stylegan_train.json.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics

import jax
import numpy as np

from gans.stylegan_config import StyleGANConfig
from gans.stylegan_train import GANTrainSettings, StyleGANTrainer
from gan_timing import time_training  # benchmarks/ (the script's folder is on sys.path)
from jaxnas.common.metrics import device_summary, write_json

HERE = os.path.dirname(os.path.abspath(__file__))
CONFIGS = {"cpu": (512, 64, 32), "wide": (1024, 128, 32), "official": (8192, 512, 32),
           "cpu16": (512, 64, 16), "halving16": (256, 128, 16)}  # cpu16: the experiment's own 16x16 setting


def bench(name: str, steps: int, rounds: int, batch: int, structure: str = "fixed") -> dict:
    base, fmax, res = CONFIGS[name]
    cfg = StyleGANConfig(resolution=res, channels=1, z_dim=128, w_dim=128, fmap_base=base, fmap_max=fmax,
                         structure=structure)
    settings = GANTrainSettings(steps=2 + steps * rounds, batch_size=batch, checkpoint_every=10**9)
    images = np.random.default_rng(0).uniform(size=(max(4 * batch, 256), res, res, 1)).astype(np.float32)
    trainer = StyleGANTrainer(cfg, settings, images)
    key = jax.random.key(0)
    state, compile_s, times = time_training(trainer, key, 2, steps, rounds)
    g = sum(x.size for x in jax.tree.leaves(state.g_params))
    d = sum(x.size for x in jax.tree.leaves(state.d_params))
    per_s = [steps * batch / t for t in times]
    out = {"resolution": res, "structure": structure, "fmap_base": base, "fmap_max": fmax, "g_params": g, "d_params": d, "compile_and_2_steps_s": round(compile_s, 2),
           "round_s": [round(t, 3) for t in times], "images_per_s_median": round(statistics.median(per_s), 1),
           "images_per_s_best": round(max(per_s), 1)}
    print(f"{name:9s} G {g:,} / D {d:,} params: {out['images_per_s_median']} images/s (median of {rounds}; best "
          f"{out['images_per_s_best']}), first two steps incl. compile {compile_s:.1f} s", flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--configs", default="cpu,wide,cpu16", help=f"comma-separated subset of {sorted(CONFIGS)}")
    parser.add_argument("--structure", default="fixed", choices=["fixed", "progressive", "skip"])
    parser.add_argument("--out", default=os.path.join(HERE, "results", "stylegan_train.json"))
    args = parser.parse_args()
    names = [n for n in args.configs.split(",") if n]
    unknown = sorted(set(names) - set(CONFIGS))
    if unknown:
        parser.error(f"--configs: unknown {unknown}; allowed: {sorted(CONFIGS)}")
    results = {"device": device_summary(), "machine": platform.processor() or platform.machine(),
               "cpu_count": os.cpu_count(), "jax": jax.__version__, "batch": args.batch,
               "steps_per_round": args.steps, "configs": {n: bench(n, args.steps, args.rounds, args.batch, args.structure) for n in names}}
    write_json(args.out, results)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
