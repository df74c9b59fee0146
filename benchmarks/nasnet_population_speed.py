"""Benchmark (issue 23, speed): NASNet-cell populations in one compiled program against the same candidates trained
one by one and against the masked supernet, in candidate-steps per second, compile excluded.

    .venv/bin/python benchmarks/nasnet_population_speed.py --publish nasnet_population_speed

The targets (issue 23) on the 2-core CPU: population training at least as fast per candidate as training the same
candidates one by one, and at least 2x the masked supernet (on a GPU, at P >= 64: at least 3x; not measured here).

Work, the same for every row: P = `--pop` architectures of the NASNet/AmoebaNet space (`jaxnas.spaces.nasnet`,
B = 5, the eight AmoebaNet ops) drawn uniformly with `jax.random.key(--arch-seed)` (with `--amoebanet`, AmoebaNet-A
replaces the first), the network of `jaxnas.models.nasnet` at the paper's CPU scale (F = `--channels` 8,
N = `--cells` 1, three stacks, stem multiplier 3) on `--hw` x `--hw` synthetic images (512 training, 64 validation;
`population_training.synthetic`), each candidate trained from fresh weights for `--steps` SGD steps of `--batch`
images by `PopulationTrainer.score` (seed 0, the same initial weights and batches in every row), then evaluated once
on the 64 validation images. Rows (`--rows`; all but `supernet-vmap` by default):

- `population`: the P candidates in one compiled call, one after another (`execution="map"`), each element running
  only its chosen op (`dispatch="switch"`): the engine's CPU path;
- `population-split`: the same, the P candidates split over `--host-devices` XLA host devices (one candidate stream
  per core; the engine's `devices=`), still one compiled call;
- `one-by-one`: the same network and program, one candidate per compiled call (`chunk_size=1`), P calls;
- `supernet-map`: the masked supernet (`jaxnas.models.nasnet_supernet`): every op computed at every element slot,
  a one-hot of the op id keeps one (the four separable convolutions as four ops; in a reduction cell every op at
  both strides), the P candidates one after another in one compiled call;
- `supernet-vmap`: the same masked supernet with the P candidates vmapped: the "easy design" of a population in
  one program (every candidate runs the same instructions);
- `select-vmap`: the population network in its own vectorised form (`dispatch="select"`, the engine's
  `execution="vmap"`): one-hot too, but the four separable convolutions share one tap loop (the largest chosen
  kernel in the batch), so it is a cheaper, optimised relative of the supernet, not the supernet itself.

Why a separate supernet module rather than `dispatch="select"`: see `jaxnas.models.nasnet_supernet` (it equals the
network's function for the same variables, tests/test_nasnet_supernet.py). The supernet figure the targets use is the
faster of `supernet-map` and `supernet-vmap` (the strongest baseline).

Timing: every row is compiled and run once first (`first_call_s`: compile plus one chunk of work, reported apart),
then the rows run alternately in a rotated order `--repeats` times; the figures are medians of candidate-steps/s
(P x steps / seconds of `score`, which returns numpy on the host), with the 1-minute load average read before each
run. The machine is shared: load averages above ~1 mean other processes took CPU time during that run.
Defaults (P = 4, 10 steps, 3 repeats, four rows): 14 minutes on the 2-core CPU at load average 4-5 (861 s), of which
7 minutes are compiles (the supernet's program alone ~3 minutes) and most of the rest the supernet and select rows;
`--rows population,one-by-one` takes about a third of that.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))
from population_training import synthetic  # noqa: E402  (its --host-devices pre-parse defaults to one device)

import jax  # noqa: E402
import numpy as np  # noqa: E402

from jaxnas.common.provenance import record_result  # noqa: E402
from jaxnas.evaluation.population import PopulationTrainer, TrainSettings  # noqa: E402
from jaxnas.models.nasnet import network  # noqa: E402
from jaxnas.models.nasnet_supernet import supernet  # noqa: E402
from jaxnas.spaces import nasnet  # noqa: E402

ROWS = ("population", "population-split", "one-by-one", "supernet-map", "supernet-vmap", "select-vmap")
DEFAULT_ROWS = ("population", "one-by-one", "supernet-map", "select-vmap")  # supernet-vmap: slower on a CPU
# population-split needs --host-devices > 1 (read by population_training's import, before JAX starts)


def candidates(pop: int, seed: int, amoebanet: bool) -> np.ndarray:
    """The P architectures every row trains: a uniform draw of the default space, AmoebaNet-A first if asked. (P, 40)"""
    archs = np.array(nasnet.SPACE.sample(jax.random.key(seed), (pop,)), np.int32)
    if amoebanet:
        archs[0] = nasnet.AMOEBANET_A
    return archs


def trainer_for(row: str, args: argparse.Namespace, data, settings: TrainSettings) -> PopulationTrainer:
    cells, options = nasnet.cells_of(nasnet.SPACE), {"channels": args.channels, "cells_per_stage": args.cells,
                                                     "image_size": args.hw}
    net = supernet(cells, 10, **options) if row.startswith("supernet") else network(cells, 10, **options)
    execution = "vmap" if row.endswith("vmap") else "map"
    chunk = 1 if row == "one-by-one" else args.pop
    devices = jax.local_devices()[: args.host_devices if row == "population-split" else 1]
    return PopulationTrainer(net, data, settings, chunk_size=chunk, devices=devices, execution=execution)


def timed(trainer: PopulationTrainer, archs: np.ndarray) -> tuple[float, np.ndarray]:
    t = time.perf_counter()
    scores = trainer.score(archs, seed=0)  # numpy on the host: the work is done
    return time.perf_counter() - t, np.asarray(scores.valid_acc)


def summarise(runs: dict[str, list[float]]) -> dict:
    """Medians, the population rows' ratios to the others, and the two CPU targets of issue 23."""
    med = {k: statistics.median(v) for k, v in runs.items() if v}
    out: dict = {"median_cand_steps_per_s": med}
    best = max((med[k] for k in ("supernet-map", "supernet-vmap") if k in med), default=None)
    if best is not None:
        out["best_supernet_cand_steps_per_s"] = best
    targets = {}
    for pop in ("population", "population-split"):
        if pop not in med:
            continue
        out[f"{pop}_over"] = {k: med[pop] / v for k, v in med.items() if not k.startswith("population")}
        if "one-by-one" in med:
            targets[f"{pop}_ge_one_by_one"] = bool(med[pop] >= med["one-by-one"])
        if best is not None:
            out[f"{pop}_over_best_supernet"] = med[pop] / best
            targets[f"{pop}_ge_2x_supernet"] = bool(med[pop] >= 2 * best)
    out["targets_met"] = targets
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", default=",".join(DEFAULT_ROWS), help=f"rows to time, among {', '.join(ROWS)}")
    ap.add_argument("--pop", type=int, default=4, help="candidates P (one compiled call in the population rows)")
    ap.add_argument("--host-devices", type=int, default=1, help="XLA host devices (CPU) the population-split row "
                    "splits its candidates over; set before JAX starts")
    ap.add_argument("--arch-seed", type=int, default=0)
    ap.add_argument("--amoebanet", action="store_true", help="AmoebaNet-A replaces the first drawn candidate")
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--hw", type=int, default=16)
    ap.add_argument("--channels", type=int, default=8, help="F")
    ap.add_argument("--cells", type=int, default=1, help="N, normal cells per stack (three stacks)")
    ap.add_argument("--lr", type=float, default=0.05)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--publish", default=None, help="NAME: write OUT_DIR/NAME.json (after every repeat)")
    ap.add_argument("--out-dir", default=str(REPO / "benchmarks" / "results"))
    ap.add_argument("--cache-dir", default=None, help="JAX persistent compilation cache (then first_call_s may be a "
                    "cache load; `--repeats 0` fills it)")
    args = ap.parse_args()
    if args.cache_dir:
        jax.config.update("jax_compilation_cache_dir", args.cache_dir)
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
    rows = [r for r in args.rows.split(",") if r]
    for r in rows:
        if r not in ROWS:
            raise SystemExit(f"--rows: got {r!r}; allowed: {', '.join(ROWS)}")
    if "population-split" in rows and (args.host_devices < 2 or len(jax.local_devices()) < args.host_devices
                                       or args.pop % args.host_devices):
        raise SystemExit(f"--host-devices: got {args.host_devices} ({len(jax.local_devices())} devices, P = "
                         f"{args.pop}); population-split needs 2 or more devices that divide --pop")
    t_start = time.perf_counter()
    data = synthetic(args.hw)
    settings = TrainSettings(steps=args.steps, batch_size=args.batch, learning_rate=args.lr)
    archs = candidates(args.pop, args.arch_seed, args.amoebanet)
    dev = jax.devices()[0]
    device = f"{dev.platform}:{dev.device_kind} ({os.cpu_count()} cores)"
    trainers, first_call, accs = {}, {}, {}
    for row in rows:
        load = os.getloadavg()[0]
        trainers[row] = trainer_for(row, args, data, settings)
        chunk = trainers[row].chunk_size
        first_call[row], _ = timed(trainers[row], archs[:chunk])  # compile + one chunk of work
        print(json.dumps({"row": row, "first_call_s": round(first_call[row], 2), "loadavg_1m": load}), flush=True)
    runs: dict[str, list[float]] = {r: [] for r in rows}
    loads: dict[str, list[float]] = {r: [] for r in rows}
    settings_rec = {**vars(args), "device": device, "archs": [nasnet.SPACE.to_string(a) for a in archs],
                    "train_seed": 0, "data": "population_training.synthetic(hw, seed=0): 512 train, 64 valid"}

    def publish(done: int) -> None:
        figures = {**summarise(runs), "device": device, "cand_steps_per_s_each_repeat": runs,
                   "loadavg_1m_each_repeat": loads, "first_call_s": first_call, "repeats_done": done,
                   "valid_acc_per_row": accs}
        print(json.dumps({k: figures[k] for k in figures if k in ("median_cand_steps_per_s", "population_over",
                                                                   "population-split_over", "targets_met")}), flush=True)
        if args.publish:
            command = " ".join(shlex.quote(a) for a in
                               [".venv/bin/python", "benchmarks/nasnet_population_speed.py", *sys.argv[1:]])
            path = record_result(args.publish, command=command, settings=settings_rec, figures=figures, seeds=[0],
                                 wall_s=round(time.perf_counter() - t_start, 1), out_dir=args.out_dir)
            print(f"wrote {path} ({done} of {args.repeats} repeats)", flush=True)

    for r in range(args.repeats):
        order = rows[r % len(rows):] + rows[: r % len(rows)]  # rotated: no row always runs first
        for row in order:
            load = os.getloadavg()[0]
            seconds, acc = timed(trainers[row], archs)
            runs[row].append(len(archs) * args.steps / seconds)
            loads[row].append(round(load, 2))
            accs[row] = [round(float(a), 4) for a in acc]  # fractions: 4 decimals keep what 2 kept of percent
            print(json.dumps({"repeat": r, "row": row, "cand_steps_per_s": round(runs[row][-1], 3),
                              "seconds": round(seconds, 2), "loadavg_1m": round(load, 2)}), flush=True)
        publish(r + 1)


if __name__ == "__main__":
    main()
