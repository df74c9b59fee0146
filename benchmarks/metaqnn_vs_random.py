"""MetaQNN with real training: Q-learning against random search in the same space, the same number of trained
models, over several seeds (issue 22).

    python benchmarks/metaqnn_vs_random.py --seeds 0,1,2,3,4 --evaluations 48

Both strategies run `experiments.nas_search` with the `:metaqnn` config (digits 8x8, at most 6 layers, MetaQNN's
recipe scaled to 4 epochs) and differ only in `strategy`. Random search samples each layer uniformly among the
allowed ones: the agent at epsilon = 1. Writes results/metaqnn_vs_random.json: per seed the best validation and
test accuracy of each strategy, every model's validation accuracy (the spread of random networks), and the paired
differences. The recipe's one tuned setting (Adam's rate) was chosen on data seed 100, not on these seeds.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from experiments import nas_search  # noqa: E402
from experiments.configs import nas_search as nas_config  # noqa: E402
from jaxnas.common.provenance import record_result  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,1,2,3,4")
    parser.add_argument("--evaluations", type=int, default=48)
    parser.add_argument("--out", default=None, help="results directory (default: the repository's results/)")
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    start = time.perf_counter()
    runs: dict[str, list[dict]] = {"qlearning": [], "random": []}
    config = None
    for seed in seeds:
        for strategy in runs:
            config = nas_config.get_config("metaqnn")
            config.strategy, config.seed, config.evaluations = strategy, seed, args.evaluations
            config.baseline_random, config.progress = 0, False
            with tempfile.TemporaryDirectory() as workdir:
                out = nas_search.run(config, workdir)
                with open(os.path.join(workdir, "evaluations.jsonl")) as f:
                    valid = [json.loads(line)["valid_acc"] for line in f]
            runs[strategy].append({"seed": seed, "best_valid": out["best_valid"], "best_test": out["best_test"],
                                   "best_arch": out["best_arch"], "wall_s": out["wall_s"], "valid_acc": valid})
            print(f"seed {seed} {strategy:9s} best valid {out['best_valid']:.2f} test {out['best_test']:.2f} "
                  f"{out['best_arch']} ({out['wall_s']:.0f} s)", flush=True)
    q = np.array([r["best_valid"] for r in runs["qlearning"]])
    r = np.array([r["best_valid"] for r in runs["random"]])
    diff = q - r
    every_random = np.concatenate([x["valid_acc"] for x in runs["random"]])
    figures = {
        "qlearning_best_valid_mean": float(q.mean()), "random_best_valid_mean": float(r.mean()),
        "qlearning_best_test_mean": float(np.mean([x["best_test"] for x in runs["qlearning"]])),
        "random_best_test_mean": float(np.mean([x["best_test"] for x in runs["random"]])),
        "paired_diff_mean": float(diff.mean()),
        "paired_diff_se": float(diff.std(ddof=1) / np.sqrt(len(diff))) if len(diff) > 1 else None,
        "qlearning_wins": int((diff > 0).sum()), "ties": int((diff == 0).sum()), "seeds": len(seeds),
        "random_models_valid_quartiles": [float(v) for v in np.percentile(every_random, [0, 25, 50, 75, 100])],
        "qlearning_models_valid_median": float(np.median(np.concatenate([x["valid_acc"] for x in runs["qlearning"]]))),
        "runs": runs,
    }
    path = record_result("metaqnn_vs_random", command=" ".join(["python", "benchmarks/metaqnn_vs_random.py"] + sys.argv[1:]),
                         settings={"config": config.to_dict(), "evaluations": args.evaluations}, figures=figures,
                         seeds=seeds, wall_s=time.perf_counter() - start, out_dir=args.out)
    print(f"Q-learning best valid {q.mean():.2f} vs random {r.mean():.2f}: paired difference {diff.mean():+.2f} "
          f"(se {figures['paired_diff_se']}), Q-learning ahead on {figures['qlearning_wins']} of {len(seeds)} seeds; {path}")


if __name__ == "__main__":
    main()
