"""Benchmark: where a training step's time goes in the population engine (ms per candidate-step, one process).

    .venv/bin/python benchmarks/engine_breakdown.py --publish engine_breakdown_cpu
    .venv/bin/python benchmarks/engine_breakdown.py --host-devices 2 --rows map --publish engine_breakdown_cpu_2dev

The network and work of `benchmarks/population_training.py` (NAS-Bench-201, C=16, one cell per stage, 16x16
synthetic images, batch 64, `--steps` SGD steps per candidate), P = `--pop` candidates in one compiled call, split
over `--host-devices` XLA host devices. Rows (`--rows`), each timed `--repeats` times in rotated order after its
compile, median reported:

- `vmap`: all candidates at once, NB201's folded kernels (every edge a 3x3 convolution);
- `map`: one after another, each edge's chosen op only (the reference's random architectures);
- `map-bf16`: the same with bfloat16 products (float32 accumulation);
- `map-none`: every edge `none`: what the fixed skeleton (stem, reductions, BN, head, optimiser) costs;
- `map-conv3`: every edge `nor_conv_3x3`: the most expensive cell.
"""

from __future__ import annotations

import argparse
import shlex
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))
from population_training import reference_archs, synthetic  # noqa: E402  (sets --host-devices before jax starts)

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from jaxnas.common.provenance import record_result  # noqa: E402
from jaxnas.evaluation.population import PopulationTrainer, TrainSettings  # noqa: E402
from jaxnas.models.nb201 import CONV3, NONE, NB201Network  # noqa: E402

ROWS = ("vmap", "map", "map-bf16", "map-none", "map-conv3")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", default=",".join(ROWS))
    ap.add_argument("--pop", type=int, default=4)
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--host-devices", type=int, default=1, help="XLA host devices (set before JAX starts)")
    ap.add_argument("--publish", default=None)
    ap.add_argument("--out-dir", default=None)
    args = ap.parse_args()
    rows = [r for r in args.rows.split(",") if r]
    for r in rows:
        if r not in ROWS:
            raise SystemExit(f"error: --rows: got {r!r}; allowed: {', '.join(ROWS)}")
    t0, data = time.perf_counter(), synthetic(16)
    settings = TrainSettings(steps=args.steps, batch_size=64, learning_rate=0.05)
    devices = jax.local_devices()[: args.host_devices]
    fixed = {"map-none": NONE, "map-conv3": CONV3}
    trainers, compile_s = {}, {}
    for r in rows:
        net = NB201Network(16, 1, 10, dtype=jnp.bfloat16 if r == "map-bf16" else jnp.float32)
        archs = (np.full((args.pop, 6), fixed[r], np.int32) if r in fixed else reference_archs(args.pop, 1))
        trainer = PopulationTrainer(net, data, settings, chunk_size=args.pop, devices=devices,
                                    execution=r.split("-")[0])
        t = time.perf_counter()
        trainer.score(archs)
        compile_s[r] = time.perf_counter() - t
        trainers[r] = (trainer, archs)
    ms = {r: [] for r in rows}
    for k in range(args.repeats):
        for r in rows[k % len(rows):] + rows[: k % len(rows)]:
            trainer, archs = trainers[r]
            t = time.perf_counter()
            trainer.score(archs)
            ms[r].append(1e3 * (time.perf_counter() - t) / (args.pop * args.steps))
            print(f"repeat {k} {r}: {ms[r][-1]:.1f} ms per candidate-step", flush=True)
    figures = {"median_ms_per_candidate_step": {r: statistics.median(v) for r, v in ms.items()},
               "ms_each_repeat": ms, "first_call_s_with_compile": compile_s, "devices": len(devices)}
    print(figures["median_ms_per_candidate_step"], flush=True)
    if args.publish:
        command = " ".join(shlex.quote(a) for a in [".venv/bin/python", "benchmarks/engine_breakdown.py", *sys.argv[1:]])
        print("wrote", record_result(args.publish, command=command, settings=vars(args), figures=figures,
                                     wall_s=round(time.perf_counter() - t0, 1), out_dir=args.out_dir), flush=True)


if __name__ == "__main__":
    main()
