"""DARTS and its remedies on NAS-Bench-201 with our data: the same seeds, data and budget for every method (issue 24).

    python benchmarks/darts_methods.py --methods darts,darts_minus,gdas,rdarts_es,beta,darts2 --seeds 8 --epochs 50
    python benchmarks/darts_methods.py --methods gdas,gdas_paper --name darts_gdas   (GDAS's two estimators)
    python benchmarks/darts_methods.py --variant nasnet --methods darts,beta --seeds 8 --epochs 20 \
        --name darts_nasnet   (DARTS's own cell: no table, so from-scratch accuracies only)

Each method is `experiments.darts` with the default config (digits 8x8, supernet C=8 with one cell per stage, the
paper's optimisers; 8 seeds vmapped in one program), changed only in `method`: every epoch's derived cell is
looked up in the NAS-Bench-201 table (CIFAR-10, 200 epochs), and each seed's final cell is trained from scratch
on the digits by the population engine (`train`: 100 SGD steps). Writes results/darts_methods.json: per method the
mean over seeds of the final cells' table test accuracy, their from-scratch validation and test accuracy, how
many of their 6 edges are parameter-free, the op shares at the last epoch, every seed's final cell and the
table accuracy of the mean derived cell per epoch; and the paired differences of each remedy against plain
DARTS (first order).

No setting was tuned: every method runs its published defaults (the configs' `darts` section), on seeds 0-7.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


VARIANTS = {"gdas_paper": ("gdas", {"gdas_estimator": "paper"})}  # a method with other `darts` settings


def one_method(method: str, seeds: int, epochs: int, variant: str | None = None) -> dict:
    from experiments import darts
    from experiments.configs import darts as darts_config

    config = darts_config.get_config(variant)
    base, changes = VARIANTS.get(method, (method, {}))
    config.method, config.seeds, config.epochs, config.progress = base, seeds, epochs, False
    for k, v in changes.items():
        config.darts[k] = v
    with tempfile.TemporaryDirectory() as workdir:
        darts.run(config, workdir)
        with open(os.path.join(workdir, "results.json")) as f:
            res = json.load(f)
    per_seed = res["per_seed"]
    return {
        "mean_final_table_test": res["mean_final_table_test"], "mean_scratch_valid": res["mean_scratch_valid"],
        "mean_scratch_test": res["mean_scratch_test"], "mean_parameter_free_edges": res["mean_parameter_free_edges"],
        "final_op_share": {op: v[-1] for op, v in res["op_share_by_epoch"].items()},
        "mean_table_test_by_epoch": res["mean_table_test_by_epoch"], "skipped_steps": res["skipped_steps"],
        "search_wall_s": res["wall_s"], "config": config.to_dict(),
        "per_seed": [{k: r.get(k) for k in ("seed", "final_arch", "stop_epoch", "final_table_test", "scratch_valid",
                                            "scratch_test", "parameter_free_edges")} for r in per_seed],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", default="darts,darts_minus,gdas,rdarts_es,beta,darts2")
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--out", default=None, help="results directory (default: the repository's results/)")
    parser.add_argument("--name", default="darts_methods", help="results file stem")
    parser.add_argument("--variant", default=None, help="config variant (experiments/configs/darts.py), e.g. nasnet")
    args = parser.parse_args()
    from experiments.darts_tables import paired_difference
    from jaxnas.common.provenance import record_result

    start = time.perf_counter()
    methods = args.methods.split(",")
    figures: dict = {"methods": {}}
    for m in methods:
        t0 = time.perf_counter()
        figures["methods"][m] = out = one_method(m, args.seeds, args.epochs, args.variant)
        table = out["mean_final_table_test"]
        print(f"{m:12s} table test {'-' if table is None else f'{100 * table:.2f}'}  "  # fractions, printed in %
              f"scratch valid {100 * out['mean_scratch_valid']:.2f}  "
              f"test {100 * out['mean_scratch_test']:.2f}  param-free edges {out['mean_parameter_free_edges']:.2f}  "
              f"({time.perf_counter() - t0:.0f} s)", flush=True)
    if "darts" in figures["methods"]:
        base = figures["methods"]["darts"]["per_seed"]
        figures["vs_darts"] = {}
        for m, out in figures["methods"].items():
            if m == "darts":
                continue
            figures["vs_darts"][m] = {key: paired_difference(out["per_seed"], base, k) for key, k in
                                      (("table_test", "final_table_test"), ("scratch_valid", "scratch_valid"),
                                       ("scratch_test", "scratch_test")) if base[0].get(k) is not None}
    path = record_result(args.name, command=" ".join(["python", "benchmarks/darts_methods.py"] + sys.argv[1:]),
                         settings={"methods": methods, "seeds": args.seeds, "epochs": args.epochs,
                                   "variant": args.variant},
                         figures=figures, seeds=list(range(args.seeds)), wall_s=time.perf_counter() - start,
                         out_dir=args.out)
    print(path)


if __name__ == "__main__":
    main()
