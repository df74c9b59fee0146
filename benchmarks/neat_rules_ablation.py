"""Which of neat-python's rules move our XOR results (issue 27): ours with neat-python 2.0's XOR settings
(`experiments/configs/neat.py:NEAT_PYTHON_XOR`), then with one of its rules at a time put back to ours (the
paper's), on a tuning set of seeds (default 100-199, never the seeds 0-39 the README reports).

    .venv/bin/python benchmarks/neat_rules_ablation.py [--first 100 --seeds 100] [--without structure_first,...]

Each variant runs its seeds vmapped in one program (population 150, at most 300 generations, solved at fitness
3.9; generations counted as neat-python counts them, the solving one included). Writes
results/neat_rules_ablation.json with `jaxnas.common.provenance.record_result`.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from neat_vs_neat_python import MAX_NODES, MAX_CONNS, ours, quality_ours  # noqa: E402

from experiments.configs.neat import NEAT_PYTHON_ACTIVATION, NEAT_PYTHON_XOR  # noqa: E402
from jaxnas.common.provenance import record_result  # noqa: E402
from jaxnas.problems.neat_tasks import make_problem  # noqa: E402
from jaxnas.search.neat import NeatRunner  # noqa: E402
from jaxnas.strategies.neat import Neat  # noqa: E402

# each rule of NEAT_PYTHON_XOR this script can take back, and our (the paper's) value for it
OURS = {name: Neat.__dataclass_fields__[name].default
        for name in ("structure_first", "speciation", "spawn", "min_parents", "split_disabled", "conn_from_outputs",
                     "split_ids")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--first", type=int, default=100, help="first seed of the tuning set")
    ap.add_argument("--seeds", type=int, default=100)
    ap.add_argument("--max-generations", type=int, default=300)
    ap.add_argument("--without", default=",".join(OURS), help="rules to take back one at a time ('' for none)")
    ap.add_argument("--out", default="neat_rules_ablation")
    args = ap.parse_args()
    without = [w for w in args.without.split(",") if w]
    unknown = [w for w in without if w not in OURS]
    if unknown:
        sys.exit(f"error: --without: got {', '.join(unknown)}; allowed: {', '.join(OURS)}")
    seeds = list(range(args.first, args.first + args.seeds))
    start, figures = time.perf_counter(), {}
    for name in ["all of neat-python's rules", *without]:
        settings = dict(NEAT_PYTHON_XOR) if name not in OURS else {**NEAT_PYTHON_XOR, name: OURS[name]}
        runner = NeatRunner(ours(settings, 150, NEAT_PYTHON_ACTIVATION), make_problem("xor"), chunk=50)
        figures[name if name not in OURS else f"without {name} (ours: {OURS[name]})"] = r = quality_ours(
            runner, seeds, args.max_generations)
        print(f"{name}: solved {r['solved']} of {len(seeds)}, median {r['median_generations']} generations "
              f"({r['wall_s']:.0f} s)", flush=True)
    command = "python benchmarks/neat_rules_ablation.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    path = record_result(args.out, command=command.strip(), figures=figures, seeds=seeds,
                         settings={"neat_python_xor": NEAT_PYTHON_XOR, "activation": NEAT_PYTHON_ACTIVATION,
                                   "ours": OURS, "population": 150,
                                   "max_generations": args.max_generations, "max_nodes": MAX_NODES,
                                   "max_conns": MAX_CONNS}, wall_s=time.perf_counter() - start)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
