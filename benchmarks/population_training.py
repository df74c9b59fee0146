"""Benchmark: candidate-steps per second of the population engine versus one candidate at a time.

    .venv/bin/python benchmarks/population_training.py [--steps 50] [--sizes 1,2,4,8] [--cells 1]

Reference shapes (issue 3): random NAS-Bench-201 architectures, C=16 channels, 16x16 inputs, batch 64,
SGD. "sequential" trains the candidates one after another with the engine at chunk size 1 (the same
compiled program reused, as a per-candidate loop would); "engine" trains all P in one compiled call.
Compile time is excluded (one warm-up call each); each figure is the median of `--repeats` calls.
Imports only jax/flax/optax/numpy at run time (runs on the GPU machine as is). Record results in RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time

import jax
import numpy as np

from jaxnas.data.images import ImageDataset  # TFDS is imported lazily, never here
from jaxnas.evaluation.nb201_network import NB201Network
from jaxnas.evaluation.population import PopulationTrainer, TrainSettings
from jaxnas.spaces import nb201


def synthetic(hw: int, n: int = 512) -> ImageDataset:
    """Random images and labels with the reference shapes (speed does not depend on content)."""
    rng = np.random.default_rng(0)
    x = rng.random((n, hw, hw, 3), dtype=np.float32)
    y = rng.integers(0, 10, n).astype(np.int32)
    return ImageDataset("synthetic", 10, x, y, x[:64], y[:64], x[:64], y[:64])


def timed(trainer: PopulationTrainer, archs: np.ndarray, repeats: int) -> float:
    trainer.score(archs[: trainer.chunk_size])  # compile
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        trainer.score(archs)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--sizes", default="1,2,4,8")
    parser.add_argument("--channels", type=int, default=16)
    parser.add_argument("--cells", type=int, default=1, help="cells per stage (3 stages)")
    parser.add_argument("--hw", type=int, default=16)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results", "population_training.json"))
    args = parser.parse_args()
    data = synthetic(args.hw)
    settings = TrainSettings(steps=args.steps, batch_size=args.batch, learning_rate=0.05)
    net = NB201Network(args.channels, args.cells, 10)
    one = jax.local_devices()[:1]
    rows = []
    for p in map(int, args.sizes.split(",")):
        archs = np.asarray(nb201.SPACE.sample(jax.random.key(p), (p,)))
        seq = timed(PopulationTrainer(net, data, settings, chunk_size=1, devices=one), archs, args.repeats)
        eng = timed(PopulationTrainer(net, data, settings, chunk_size=p, devices=one), archs, args.repeats)
        row = {"population": p, "sequential_cand_steps_per_s": p * args.steps / seq,
               "engine_cand_steps_per_s": p * args.steps / eng, "speedup": seq / eng}
        rows.append(row)
        print(json.dumps(row), flush=True)
    meta = {"device": f"{jax.devices()[0].platform}:{jax.devices()[0].device_kind}", "machine": platform.machine(),
            "cores": os.cpu_count(), "date": time.strftime("%Y-%m-%d"), **vars(args)}
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump({"meta": meta, "rows": rows}, f, indent=2)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
