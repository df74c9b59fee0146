"""Benchmark: 500 table searches per strategy, compilation included: NAS-Bench-201 (12,000 s budget) or, with
`--benchmark macro`, NAS-Bench-Macro (100 evaluations, the config's default).

    .venv/bin/python benchmarks/nb201_search_speed.py [--benchmark nb201|macro] [--runs 500] [--repeats 3] [--block-runs strategy]

Each measurement is a fresh process with the persistent compilation cache off, so it pays the full
jit compile: `total_s` is from process start (imports included) to the last result on the host,
`search_s` is BudgetedSearch.run (table already loaded: compile + all chunks). The goals (issues 2 and 19):
under 30 s per strategy on the 2-core CPU. Record results in benchmarks/RESULTS.md with the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from jaxnas.common.provenance import provenance  # noqa: E402  (standard library only: JAX stays in the children)

CHILD = r"""
import time, json, sys
t0 = time.perf_counter()
import jax
from jaxnas.problems import BENCHMARKS
from jaxnas.search import BudgetedSearch
from jaxnas.strategies import STRATEGIES
name, runs, block, bench, budget = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], float(sys.argv[5])
block = block if block == "strategy" else (int(block) or None)
bench = BENCHMARKS.get(bench)
table = bench.load()
searcher = BudgetedSearch(STRATEGIES.get(name)(bench.space), table, budget, chunk_steps=32, block_runs=block)
t1 = time.perf_counter()
result = searcher.run(seed=0, runs=runs, progress=False)
t2 = time.perf_counter()
print(json.dumps({"strategy": name, "runs": runs, "total_s": t2 - t0, "search_s": t2 - t1, "traces": searcher.traces,
                  "valid_mean": float(result.best_valid.mean()), "device": jax.devices()[0].device_kind}))
"""


def block_runs(text: str) -> str:
    """`--block-runs`: "strategy" or an integer >= 0 (0: one vmap over all runs)."""
    if text != "strategy" and not (text.isdigit()):
        raise argparse.ArgumentTypeError(f"got {text!r}; allowed: strategy or an integer >= 0")
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--benchmark", default="nb201", choices=("nb201", "macro"))
    parser.add_argument("--budget", type=float, default=None, help="default: 12000 (nb201, simulated s), 100 (macro)")
    parser.add_argument("--runs", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--block-runs", default="strategy", type=block_runs,
                        help="runs vmapped together; 0: one vmap over all runs; strategy: its own (default)")
    parser.add_argument("--strategies", default="random,aging_evolution,tournament,reinforce,qlearning")
    parser.add_argument("--out", default=None, help="default: benchmarks/results/BENCHMARK_search_speed.json")
    args = parser.parse_args()
    budget = args.budget or {"nb201": 12_000.0, "macro": 100.0}[args.benchmark]
    args.out = args.out or os.path.join(os.path.dirname(__file__), "results", f"{args.benchmark}_search_speed.json")
    env = {k: v for k, v in os.environ.items() if not k.startswith("JAX_COMPILATION_CACHE")}
    env["JAX_ENABLE_COMPILATION_CACHE"] = "false"
    rows = []
    for name in args.strategies.split(","):
        samples = []
        for _ in range(args.repeats):
            out = subprocess.run([sys.executable, "-c", CHILD, name, str(args.runs), str(args.block_runs),
                                  args.benchmark, str(budget)],
                                 capture_output=True, text=True, env=env, check=True)
            samples.append(json.loads(out.stdout.strip().splitlines()[-1]))
        row = dict(samples[0])
        for key in ("total_s", "search_s"):
            row[key + "_median"] = statistics.median(s[key] for s in samples)
            row[key + "_all"] = [round(s[key], 2) for s in samples]
            row.pop(key)
        rows.append(row)
        print(f"{name:>16}: total {row['total_s_median']:.1f} s (runs: {row['total_s_all']}), search "
              f"{row['search_s_median']:.1f} s, traces {row['traces']}, valid {100 * row['valid_mean']:.2f}",
              flush=True)
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    meta = {"machine": f"{platform.machine()} {os.cpu_count()} cores", "python": platform.python_version(),
            "date": time.strftime("%Y-%m-%d"), "block_runs": args.block_runs, "benchmark": args.benchmark,
            "budget": budget, "runs": args.runs, "repeats": args.repeats, "provenance": provenance()}
    with open(args.out, "w") as f:
        json.dump({"meta": meta, "rows": rows}, f, indent=2)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
