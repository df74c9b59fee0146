"""README's tables of the accuracy-against-compute searches (registered in `experiments.readme_tables.TABLES`):
the multi-objective check on NAS-Bench-Macro (results/macro_front.json, `python benchmarks/macro_front.py`)."""

from __future__ import annotations

from typing import Any

from experiments.table_format import markdown_table, sources_line

NAMES = {"reinforce": "REINFORCE, LSTM controller", "evolution": "aging evolution (P=10, S=3)",
         "gradient": "gradient (relaxed categorical, fitted model)", "random": "random search"}


def macro_front(results: dict[str, dict[str, Any]]) -> str:
    """Hypervolume of each run's found front over the table's known front, per method (median and quartiles)."""
    r = results["macro_front"]
    s, f = r["settings"], r["figures"]
    known = f["known_front"]
    rows = []
    order = sorted(f["methods"], key=lambda m: -f["methods"][m]["hv_ratio"]["median"])
    for m in order:
        v = f["methods"][m]
        hv = v["hv_ratio"]
        found = sum(v["found_fraction"])
        rows.append([NAMES.get(m, m), f"{hv['mean']:.3f}", f"{hv['median']:.3f}", f"{hv['q25']:.3f} - {hv['q75']:.3f}",
                     f"{hv['min']:.3f}", f"{found:.2f}"])
    text = (f"{s['runs']} runs per method, {s['evaluations']} table evaluations each, seed {r['seeds'][0]}; reward "
            f"MnasNet's acc x (FLOPs / {s['target_mflops']:.1f} M)^w with w swept from {s['sweep']['w_start']:g} to "
            f"{s['sweep']['w_end']:g} over each run. Searched on training {s['search_run']}, scored on the mean of "
            f"the other two; hypervolume ratio = the run's front over the known {known['points_reported']}-point "
            f"front (reference point {known['reference_point']['acc']:.2f}%, {known['reference_point']['mflops']:.1f} "
            f"MFLOPs). The whole table searched on one training scores {known['hv_ratio_whole_table']:.4f}. "
            f"Settings tuned on seeds {', '.join(str(x) for x in s['tuned_on_seeds'])}.\n\n")
    header = ["method", "hypervolume ratio, mean", "median", "quartiles", "worst run",
              "known front points found per run"]
    return text + markdown_table(header, rows) + sources_line(results)
