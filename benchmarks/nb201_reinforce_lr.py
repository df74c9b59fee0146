"""The REINFORCE learning-rate sweep behind the NAS-Bench-201 default (3e-3), as a results JSON.

    .venv/bin/python benchmarks/nb201_reinforce_lr.py            # writes results/nb201_reinforce_lr.json

Each cell is 500 searches of 12,000 simulated seconds on the CIFAR-10-valid table with the experiment's
settings (`experiments/configs/nb201.py`, only `reinforce.learning_rate` and the seed changed), the same
call `python -m experiments.nb201 --config.strategy=reinforce --config.reinforce.learning_rate=LR
--config.seed=S` makes. The cells are those of the README's sweep table: the default was chosen on seed 0
and checked on seeds 1 and 2 (with random search on those seeds for reference), so seeds 0-2 are tuning
seeds; the protocol's reported figures use other seeds (`results/nb201_protocol_seed*.json`).
A few seconds per cell on the 2-core CPU after its compilation (each learning rate compiles once).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from experiments.builders import build_strategy  # noqa: E402
from experiments.configs import nb201 as nb201_config  # noqa: E402
from jaxnas.common.provenance import record_result  # noqa: E402
from jaxnas.problems.nb201_table import load_nb201_table  # noqa: E402
from jaxnas.search import BudgetedSearch  # noqa: E402
from jaxnas.spaces import nb201  # noqa: E402

# (seed, strategy, learning rate or None): the README table's cells, row by row.
CELLS = ([(0, "reinforce", lr) for lr in (6e-4, 3e-3, 0.01, 0.03, 0.1)]
         + [(1, "reinforce", lr) for lr in (1e-3, 2e-3, 3e-3, 5e-3)] + [(1, "random", None)]
         + [(2, "reinforce", lr) for lr in (1e-3, 2e-3, 3e-3)] + [(2, "random", None)])


def run_cell(table, seed: int, strategy: str, lr: float | None, runs: int) -> dict:
    """500 (or `runs`) searches of one cell; returns its mean/std of validation and test accuracy (fractions)."""
    config = nb201_config.get_config()
    config.runs, config.seed, config.progress = runs, seed, False
    if lr is not None:
        config.reinforce.learning_rate = lr
    search = BudgetedSearch(build_strategy(config, strategy, nb201.SPACE), table, config.budget_s, config.chunk_steps)
    start = time.perf_counter()
    result = search.run(seed, runs, progress=False)
    return {"seed": seed, "strategy": strategy, "learning_rate": lr, "runs": runs,
            "valid_mean": float(result.best_valid.mean()), "valid_std": float(result.best_valid.std()),
            "test_mean": float(result.best_test.mean()), "test_std": float(result.best_test.std()),
            "evaluations_mean": float(result.num_evals.mean()), "wall_s": round(time.perf_counter() - start, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=500)
    parser.add_argument("--name", default="nb201_reinforce_lr", help="results/NAME.json")
    parser.add_argument("--out-dir", default=None, help="directory for NAME.json (default: the repository's results/)")
    args = parser.parse_args()
    table = load_nb201_table()
    start, cells = time.perf_counter(), []
    for seed, strategy, lr in CELLS:
        cells.append(run_cell(table, seed, strategy, lr, args.runs))
        c = cells[-1]
        print(f"seed {seed} {strategy:>9} lr {lr!s:>6}: valid {100 * c['valid_mean']:.2f} ± "
              f"{100 * c['valid_std']:.2f} ({c['wall_s']:.0f} s)", flush=True)  # the file holds fractions
    base = nb201_config.get_config()
    path = record_result(
        args.name, command=f"python benchmarks/nb201_reinforce_lr.py --runs {args.runs}",
        settings={"budget_s": base.budget_s, "chunk_steps": base.chunk_steps, "runs": args.runs,
                  "reinforce": base.reinforce.to_dict(), "cells": [list(c) for c in CELLS]},
        figures={"cells": cells}, seeds=sorted({s for s, _, _ in CELLS}), wall_s=round(time.perf_counter() - start, 1),
        out_dir=args.out_dir)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
