"""Detector training throughput (issue 25): training images per second of the search's detector at several input
resolutions, on the machine it runs on.

    python benchmarks/detector_speed.py --resolutions 64,96 --depth 5 --steps 50 --repeats 5

The network and the work are those of one configuration's training in `experiments.detection_search` (the default
config: width 16, stride 4, batch 32, Adam, CenterNet's loss with its targets encoded inside the step): the
population engine's `train_candidate` for `steps` steps as one compiled program, timed after its compilation (its
first call), `repeats` times, median. Also records the compile time, XLA's FLOPs of one inference forward, and the
inference latency per image (batch 64). Writes results/detector_speed.json.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resolutions", default="64,96")
    parser.add_argument("--depth", type=int, default=5)
    parser.add_argument("--steps", type=int, default=50, help="timed training steps per repeat")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--data-dir", default="")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    import jax

    from jaxnas.common.provenance import record_result
    from jaxnas.data.detection import load_detection
    from jaxnas.evaluation.detection_training import (DETECTION_TRAINING, DetectionTrainer, DetectorSettings,
                                                      configuration_flops, latency_ms)

    start = time.perf_counter()
    data = load_detection(data_dir=args.data_dir)
    detector = DetectorSettings()
    figures = {}
    for r in (int(x) for x in args.resolutions.split(",")):
        trainer = DetectionTrainer(data, r, args.depth, DETECTION_TRAINING, detector)
        cand = trainer.init_candidate(jax.random.key(0), np.zeros((1,), np.int32), trainer.data)
        run = jax.jit(lambda c, k: trainer.train_candidate(c, np.zeros((1,), np.int32), trainer.data, k, args.steps))
        t0 = time.perf_counter()
        jax.block_until_ready(run(cand, trainer.data_key(0)))
        compile_s = time.perf_counter() - t0
        times = []
        for i in range(args.repeats):
            t0 = time.perf_counter()
            _, losses = jax.block_until_ready(run(cand, trainer.data_key(i + 1)))
            times.append(time.perf_counter() - t0)
        per_s = args.steps * DETECTION_TRAINING.batch_size / float(np.median(times))
        figures[f"r{r}"] = {
            "resolution": r, "depth": args.depth, "train_images_per_s": per_s,
            "step_ms_median": 1000 * float(np.median(times)) / args.steps,
            "step_ms_all": [1000 * t / args.steps for t in times], "first_call_s": compile_s,
            "finite": bool(np.isfinite(np.asarray(losses)).all()),
            "inference_mflops": configuration_flops(data.num_classes, r, args.depth, detector) / 1e6,
            "latency_ms_per_image": latency_ms(data.num_classes, r, args.depth, detector),
        }
        step_ms = figures[f"r{r}"]["step_ms_median"]
        print(f"{r}px depth {args.depth}: {per_s:.0f} training images/s ({step_ms:.1f} ms per step of "
              f"{DETECTION_TRAINING.batch_size}), first call {compile_s:.1f} s", flush=True)
    path = record_result("detector_speed", command=" ".join(["python", "benchmarks/detector_speed.py"] + sys.argv[1:]),
                         settings={"resolutions": args.resolutions, "depth": args.depth, "steps": args.steps,
                                   "repeats": args.repeats, "batch_size": DETECTION_TRAINING.batch_size,
                                   "width": detector.width, "stride": detector.stride},
                         figures=figures, seeds=[0], wall_s=time.perf_counter() - start, out_dir=args.out)
    print(path)


if __name__ == "__main__":
    main()
