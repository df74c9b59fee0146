"""Benchmark: CycleGAN training iterations per second at 32x32, batch 1 and batch 16 (issue 6).

    .venv/bin/python benchmarks/cyclegan_train.py [--steps 20] [--rounds 3] [--batches 1,16] [--configs cpu,paper]

Whole iterations of `gans.cyclegan_train.CycleGANTrainer` (both generators' step with LSGAN + cycle + identity
losses, the two history pools, both discriminators' step; synchronised by reading the losses, as the trainer
does) on random RGB images, so every part of a real iteration is included but no data loading or evaluation.
Per (config, batch): one warm-up iteration (compiles; its time reported separately), then --rounds timed runs
of --steps iterations. Configs (32x32, 3 -> 3 channels):
  * `cpu`:   ngf 16, ndf 16, 3 residual blocks, 2-layer PatchGAN (experiments/configs/cyclegan.py)
  * `paper`: ngf 64, ndf 64, 6 residual blocks (the paper's 128px generator), 2-layer PatchGAN (3 layers leave
    a 2x2 score map at 32x32)
The trainer uses gcd(batch, devices) devices. Imports only jax/flax/optax/orbax/numpy and the package, so
it runs unchanged on the GPU machine. Writes benchmarks/results/cyclegan_train.json.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics

import jax
import numpy as np

from gans.cyclegan import CycleGANConfig
from gans.cyclegan_train import CycleGANSettings, CycleGANTrainer
from gan_timing import time_training  # benchmarks/ (the script's folder is on sys.path)
from jaxnas.common.metrics import device_summary, write_json

HERE = os.path.dirname(os.path.abspath(__file__))
CONFIGS = {"cpu": dict(ngf=16, ndf=16, n_res_blocks=3), "paper": dict(ngf=64, ndf=64, n_res_blocks=6)}


def bench(name: str, batch: int, steps: int, rounds: int) -> dict:
    cfg = CycleGANConfig(resolution=32, channels_a=3, channels_b=3, disc_layers=2, **CONFIGS[name])
    settings = CycleGANSettings(steps=1 + steps * rounds, batch_size=batch, checkpoint_every=10**9)
    rng = np.random.default_rng(0)
    a, b = (rng.uniform(size=(max(4 * batch, 64), 32, 32, 3)).astype(np.float32) for _ in range(2))
    trainer = CycleGANTrainer(cfg, settings, a, b)
    key = jax.random.key(0)
    state, compile_s, times = time_training(trainer, key, 1, steps, rounds)
    per_s = [steps / t for t in times]
    out = {"batch": batch, **CONFIGS[name], "devices": len(trainer.devices), "compile_and_1_step_s": round(compile_s, 2),
           "round_s": [round(t, 3) for t in times], "iterations_per_s_median": round(statistics.median(per_s), 2),
           "iterations_per_s_best": round(max(per_s), 2), "images_per_s_median": round(batch * statistics.median(per_s), 1)}
    print(f"{name:6s} batch {batch:3d}: {out['iterations_per_s_median']} it/s ({out['images_per_s_median']} images/s per "
          f"domain; median of {rounds}), first step incl. compile {compile_s:.1f} s", flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batches", default="1,16")
    parser.add_argument("--configs", default="cpu,paper", help=f"comma-separated subset of {sorted(CONFIGS)}")
    parser.add_argument("--out", default=os.path.join(HERE, "results", "cyclegan_train.json"))
    args = parser.parse_args()
    names = [n for n in args.configs.split(",") if n]
    unknown = sorted(set(names) - set(CONFIGS))
    if unknown:
        parser.error(f"--configs: unknown {unknown}; allowed: {sorted(CONFIGS)}")
    batches = [int(b) for b in args.batches.split(",") if b]
    results = {"device": device_summary(), "machine": platform.processor() or platform.machine(),
               "cpu_count": os.cpu_count(), "jax": jax.__version__, "resolution": 32, "steps_per_round": args.steps,
               "runs": {f"{n}/batch{b}": bench(n, b, args.steps, args.rounds) for n in names for b in batches}}
    write_json(args.out, results)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
