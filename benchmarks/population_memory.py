"""Benchmark: the engine's peak memory is bounded by the chunk size, whatever the population size P.

    .venv/bin/python benchmarks/population_memory.py --pops 16,64,256 --chunk 16 --publish population_memory_cpu

Each P runs in its own process (a fresh peak): it builds the NAS-Bench-201 network of the population benchmark
(`benchmarks/population_training.py`: C=16, one cell per stage, 16x16 synthetic images, batch 64), scores P
random architectures `--steps` steps each in chunks of `--chunk`, and reports its peak resident memory
(`ru_maxrss`) and, on an accelerator, the device's peak bytes in use. The figure to read is the spread of the
peaks across P: with chunking it should not grow with P (only the host-side scores do, a few floats per
candidate). Imports only jax/flax/optax/numpy and the engine.
"""

from __future__ import annotations

import argparse
import json
import resource
import shlex
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

_CHILD = """import json, resource, sys, time
sys.path.insert(0, {repo!r}); sys.path.insert(0, {bench!r})
import jax, numpy as np
from population_training import reference_archs, synthetic
from jaxnas.evaluation.population import PopulationTrainer, TrainSettings
from jaxnas.models.nb201 import NB201Network
p, chunk, steps, execution = {p}, {chunk}, {steps}, {execution!r}
trainer = PopulationTrainer(NB201Network(16, 1, 10), synthetic(16), TrainSettings(steps=steps, batch_size=64),
                            chunk_size=chunk, devices=jax.local_devices()[:1], execution=execution)
t = time.perf_counter()
scores = trainer.score(reference_archs(p, 0))
wall = time.perf_counter() - t
stats = jax.local_devices()[0].memory_stats() or {{}}
print(json.dumps({{"P": p, "chunk": trainer.chunk_size, "execution": trainer.execution, "wall_s": wall,
                  "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "device_peak_bytes_in_use": stats.get("peak_bytes_in_use"),
                  "finite_scores": int(np.isfinite(scores.valid_acc).sum())}}))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pops", default="16,64,256")
    ap.add_argument("--chunk", type=int, default=16)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--execution", default="auto", choices=("auto", "map", "vmap"))
    ap.add_argument("--python", default=sys.executable)
    ap.add_argument("--publish", default=None, help="results/NAME.json to write")
    ap.add_argument("--out-dir", default=None)
    args = ap.parse_args()
    sys.path.insert(0, str(REPO))
    from jaxnas.common.provenance import record_result

    t0, rows = time.perf_counter(), []
    for p in (int(v) for v in args.pops.split(",") if v):
        code = _CHILD.format(repo=str(REPO), bench=str(REPO / "benchmarks"), p=p, chunk=args.chunk, steps=args.steps,
                             execution=args.execution)
        proc = subprocess.run([args.python, "-c", code], capture_output=True, text=True, timeout=3600)
        if proc.returncode != 0:
            raise SystemExit(f"P={p} failed:\n{proc.stderr[-3000:]}")
        rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
        print(json.dumps(rows[-1]), flush=True)
    peaks = [r["peak_rss_mib"] for r in rows]
    figures = {"rows": rows, "peak_rss_mib_min": min(peaks), "peak_rss_mib_max": max(peaks),
               "peak_rss_growth": max(peaks) / min(peaks), "own_peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    print(json.dumps({k: v for k, v in figures.items() if k != "rows"}), flush=True)
    if args.publish:
        command = " ".join(shlex.quote(a) for a in [".venv/bin/python", "benchmarks/population_memory.py", *sys.argv[1:]])
        path = record_result(args.publish, command=command, settings=vars(args), figures=figures,
                             wall_s=round(time.perf_counter() - t0, 1), out_dir=args.out_dir)
        print(f"wrote {path}", flush=True)


if __name__ == "__main__":
    main()
