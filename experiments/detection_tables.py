"""README's tables of the accuracy-against-compute searches (registered in `experiments.readme_tables.TABLES`):
the multi-objective check on NAS-Bench-Macro (results/macro_front.json, `python benchmarks/macro_front.py`) and the
detector search (results/detection_search.json, `python -m experiments.detection_search ... --publish
detection_search`)."""

from __future__ import annotations

from typing import Any

from experiments.table_format import markdown_table, percent, sources_line
from jaxnas.search.pareto import hypervolume_2d

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
            f"front (reference point {percent(known['reference_point']['acc']):.2f}%, "
            f"{known['reference_point']['mflops']:.1f} MFLOPs). The whole table searched on one training scores "
            f"{known['hv_ratio_whole_table']:.4f}. "
            f"Settings tuned on seeds {', '.join(str(x) for x in s['tuned_on_seeds'])}.\n\n")
    header = ["method", "hypervolume ratio, mean", "median", "quartiles", "worst run",
              "known front points found per run"]
    return text + markdown_table(header, rows) + sources_line(results)


SEARCH_NAMES = {"reinforce": "REINFORCE, LSTM controller", "evolution": "aging evolution",
                "random": "random search", "gradient": "gradient (differentiable resizing"}
DEPTH_SEARCH_NAMES = {"outer": "depth in an outer loop", "mixture": "softmax over depth exits"}


def _config(rec: dict[str, Any] | None) -> str:
    if rec is None:
        return "none"
    return f"{rec['resolution']} px d{rec['depth']}: {percent(rec['test_map']):.1f}% at {rec['flops'] / 1e6:.1f} M"


def detection_search(results: dict[str, dict[str, Any]]) -> str:
    """Per method: on how many seeds its validation front holds a configuration that dominates the default on test
    mAP at no more FLOPs, and per seed the two picks made on validation mAP (reported on test); the files' mAP
    fractions printed in percent, hypervolumes in mAP % x MFLOPs."""
    r = results["detection_search"]
    f, s = r["figures"], r["settings"]
    d = f["default"]
    seeds = f["seeds"]
    # each front measured on test: its hypervolume (test mAP % x MFLOPs below the reference), one reference for all
    fronts = [p["front"] for v in f["methods"].values() for p in v["per_seed"]]
    ref = (0.0, max([r["flops"] for fr in fronts for r in fr] + [d["flops"]]) / 1e6)

    def hv(front: list[dict[str, Any]]) -> float:
        return (hypervolume_2d([percent(r["test_map"]) for r in front], [r["flops"] / 1e6 for r in front], ref)
                if front else 0.0)

    hvs = {m: sum(hv(p["front"]) for p in v["per_seed"]) / len(v["per_seed"]) for m, v in f["methods"].items()}
    rows = []
    for m, v in f["methods"].items():
        per = v["per_seed"]
        name = SEARCH_NAMES.get(m, m)
        if m == "evolution":
            name += f" (P={s['evolution']['population_size']}, S={s['evolution']['sample_size']})"
        elif m == "gradient":  # files written before the outer loop (2026-12-07) searched depth with the mixture
            g = s["gradient"]
            name += f"; {DEPTH_SEARCH_NAMES[g.get('depth_search', 'mixture')]}; penalties {g['penalties']})"
        rows.append([name, f"{v['seeds_dominating_default']} of {len(per)}",
                     f"{sum(p['distinct'] for p in per) / len(per):.0f}",
                     f"{hvs[m]:.0f}" + (f" ({hvs[m] / hvs['random']:.2f}x random)" if hvs.get("random") else ""),
                     "; ".join(_config(p["best_within_default_flops"]) for p in per),
                     "; ".join(_config(p["cheapest_at_default_map"]) for p in per)])
    per_seed = [p for v in f["methods"].values() for p in v["per_seed"]]
    budget = (f"{s['evaluations']} distinct configurations evaluated per search (repeats free)"
              if all("asks" in p for p in per_seed) else f"{s['evaluations']} evaluations per search")
    alpha, beta = s["reward"]["alpha"], s["reward"]["beta"]
    reward = (f"reward mAP x (FLOPs / default)^{alpha:g}" if alpha == beta else
              f"reward mAP x (FLOPs / default)^w, w = {alpha:g} at or below the default's FLOPs and {beta:g} above")
    text = (f"{f['dataset']} ({s['splits']['train']:,} / {s['splits']['valid']:,} / {s['splits']['test']:,} canvases "
            f"of {f['image_shape'][0]} px), seeds {', '.join(str(x) for x in seeds)} (each both the search's and its "
            f"trainings' seed), {budget}, {s['train']['steps']} training steps per "
            f"configuration, {reward}. The default, {d['resolution']} px "
            f"depth {d['depth']}: test mAP {percent(d['test_map']):.1f}% (mean of the seeds; "
            + ", ".join(f"{percent(x['test_map']):.1f}" for x in f["default_per_seed"])
            + f") at {d['flops'] / 1e6:.1f} MFLOPs. A seed counts when a configuration on the method's validation "
            "front has at least the default's test mAP at no more FLOPs, strictly better in one. Picks, chosen on "
            "validation mAP and given as test mAP at MFLOPs, one per seed. Hypervolume: the area (test mAP % x MFLOPs) "
            f"the method's validation front dominates on test, bounded by 0% and {ref[1]:.1f} MFLOPs (the most costly "
            "front point of any method):\n\n")
    header = ["method", "seeds dominating the default", "distinct configurations per seed (mean)",
              "front's test hypervolume, mean over seeds",
              "most accurate at <= the default's FLOPs", "cheapest at >= the default's validation mAP"]
    return text + markdown_table(header, rows) + sources_line(results)
