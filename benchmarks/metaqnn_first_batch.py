"""Benchmark: MetaQNN's first batch (compilation included) and a second batch on `make demo`'s `:metaqnn` config.

    .venv/bin/python benchmarks/metaqnn_first_batch.py [--repeats 3] [--out FILE]

Each repeat is a fresh process with the persistent compilation cache off, running the tree this script sits in:
8 random MetaQNN chains (`experiments/configs/nas_search.py:metaqnn`: digits 8x8, 6 layer positions, 4 epochs with
MetaQNN's restarts) scored from scratch, then the same chains with another seed. `first_s` is compile + run,
`second_s` the run alone. `scores` (the first batch's validation accuracies) shows that two trees compute the same
thing. Copy the script into another checkout to compare commits, alternating the runs.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from jaxnas.common.provenance import provenance  # noqa: E402  (standard library only: JAX stays in the children)

CHILD = r"""
import json, time
import jax, numpy as np
from experiments import nas_search as ns
from experiments.configs import nas_search as cfg
from jaxnas.evaluation.population import PopulationTrainer
c = cfg.get_config("metaqnn")
space, data = ns.build_space(c), ns.load_data(c)
settings = ns.train_settings(c, data.train_x.shape[0], data.num_classes)
net = space.network(num_classes=data.num_classes)
trainer = PopulationTrainer(net, data, settings, chunk_size=c.chunk_size, execution=c.execution)
archs = np.asarray(space.initial_sample(jax.random.key(5), (trainer.chunk_size,)))
t = time.perf_counter(); first = trainer.score(archs, seed=0); t1 = time.perf_counter() - t
t = time.perf_counter(); trainer.score(archs, seed=1); t2 = time.perf_counter() - t
print(json.dumps({"first_s": t1, "second_s": t2, "scores": [float(v) for v in first.valid_acc]}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "results", "metaqnn_first_batch.json"))
    args = parser.parse_args()
    if args.repeats < 1:
        print(f"error: --repeats: got {args.repeats}; allowed: an integer >= 1", file=sys.stderr)
        sys.exit(2)
    env = {**os.environ, "PYTHONPATH": ROOT, "JAX_ENABLE_COMPILATION_CACHE": "false"}
    runs = []
    for i in range(args.repeats):
        out = subprocess.run([sys.executable, "-c", CHILD], cwd=ROOT, env=env, capture_output=True, text=True)
        if out.returncode != 0:
            sys.exit(f"repeat {i} failed:\n{out.stderr[-2000:]}")
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
        print(f"repeat {i}: first batch {runs[-1]['first_s']:.1f} s, second {runs[-1]['second_s']:.1f} s", flush=True)
    row = {"first_s_median": statistics.median(r["first_s"] for r in runs),
           "second_s_median": statistics.median(r["second_s"] for r in runs),
           "first_s_all": [round(r["first_s"], 1) for r in runs], "second_s_all": [round(r["second_s"], 1) for r in runs],
           "scores": runs[0]["scores"], "same_scores_every_repeat": all(r["scores"] == runs[0]["scores"] for r in runs)}
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump({"command": "python benchmarks/metaqnn_first_batch.py " + " ".join(sys.argv[1:]), **row,
                   "repeats": args.repeats, "provenance": provenance()}, f, indent=2)
    print(f"first batch median {row['first_s_median']:.1f} s, second {row['second_s_median']:.1f} s; wrote {args.out}")


if __name__ == "__main__":
    main()
