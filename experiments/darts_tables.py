"""README's DARTS table (registered in `experiments.readme_tables.TABLES`): every method on the same seeds, data and
budget, from results/darts_methods.json and results/darts_gdas.json (`python benchmarks/darts_methods.py ...`; the
second holds GDAS with each of its two estimators and replaces the first file's GDAS row, which ran before the
official code's estimator existed, i.e. with the paper's); and DARTS's own cell from results/darts_nasnet.json."""

from __future__ import annotations

from typing import Any

import numpy as np

from experiments.table_format import markdown_table, percent, sources_line

LABELS = {"darts": "DARTS (1st order)", "darts2": "DARTS (2nd order)", "darts_minus": "DARTS-",
          "gdas": "GDAS (its code's estimator)", "gdas_paper": "GDAS (the paper's estimator)",
          "rdarts_es": "DARTS-ES (RobustDARTS)", "beta": "beta-DARTS"}


def paired_difference(rows: list[dict[str, Any]], base: list[dict[str, Any]], key: str) -> dict[str, Any]:
    """Per-seed results `rows` minus `base` on `key` (a number, or a list of repeats averaged), paired by seed:
    mean, standard error (None for one seed), seeds ahead, ties, seeds; in the unit of `key` (accuracies: fractions)."""
    value = lambda r: float(np.mean(r[key]))  # noqa: E731
    d = np.array([value(a) for a in rows]) - np.array([value(b) for b in base])
    return {"mean": float(d.mean()), "se": float(d.std(ddof=1) / np.sqrt(len(d))) if len(d) > 1 else None,
            "wins": int((d > 0).sum()), "ties": int((d == 0).sum()), "n": len(d)}


def _vs(rows: list[dict[str, Any]], base: list[dict[str, Any]], key: str) -> str:
    """Mean paired difference (method minus plain DARTS, by seed) in percentage points, its standard error, seeds
    ahead."""
    in_percent = lambda rs: [{key: percent(r[key])} for r in rs]  # noqa: E731
    p = paired_difference(in_percent(rows), in_percent(base), key)
    se = f" ± {p['se']:.2f}" if p["se"] is not None else ""
    return f"{p['mean']:+.2f}{se} ({p['wins']}/{p['n']})"


def _shares(cells: list[str]) -> dict[str, float]:
    """Each op's share of the edges of NAS-Bench-201 cell strings (`|op~input|+|...|`): of the cells each seed
    returned (RobustDARTS's from its stop epoch)."""
    ops = [tok.split("~")[0] for c in cells for tok in c.split("|") if "~" in tok]
    return {name: ops.count(name) / len(ops) for name in ("skip_connect", "none", "avg_pool_3x3")}


def darts_methods(results: dict[str, dict[str, Any]]) -> str:
    """One row per method: the final cells' table accuracy, from-scratch accuracy (the files' fractions in percent),
    parameter-free edges and op shares (means over seeds), and each remedy minus plain DARTS paired by seed."""
    r = results["darts_methods"]
    f = r["figures"]
    methods = {k: v for k, v in f["methods"].items() if k != "gdas" or "darts_gdas" not in results}
    if "darts_gdas" in results:
        methods.update(results["darts_gdas"]["figures"]["methods"])
    any_cfg = next(iter(methods.values()))["config"]
    d, t = any_cfg["darts"], any_cfg["train"]
    base = methods["darts"]["per_seed"]
    rows = []
    for m, out in methods.items():
        ps = out["per_seed"]
        share = _shares([r["final_arch"] for r in ps])
        rows.append([LABELS.get(m, m), f"{percent(out['mean_final_table_test']):.2f}",
                     f"{percent(out['mean_scratch_valid']):.2f}", f"{percent(out['mean_scratch_test']):.2f}",
                     f"{out['mean_parameter_free_edges']:.2f}",
                     f"{share['skip_connect']:.2f} / {share['none']:.2f} / {share['avg_pool_3x3']:.2f}",
                     "–" if m == "darts" else _vs(ps, base, "final_table_test"),
                     "–" if m == "darts" else _vs(ps, base, "scratch_valid")])
    n_seeds, epochs = len(r["seeds"]), r["settings"]["epochs"]
    setup = (f"{any_cfg['image_size']}x{any_cfg['image_size']} digits (training split halved: weights / alpha), "
             f"supernet C={d['channels']}, {d['cells_per_stage']} cell per stage, batch {d['batch_size']}, "
             f"{epochs} epochs, the papers' optimisers and schedules; {n_seeds} seeds vmapped in one program per "
             f"method; from scratch: {t['steps']} SGD steps of {t['batch_size']} (C={any_cfg['network']['channels']}); "
             f"wall time {sum(x['wall_s'] for x in results.values()):,.0f} s.\n\n")
    table = markdown_table(
        ["method", "table test % (CIFAR-10)", "scratch valid %", "scratch test %", "param-free edges of 6",
         "skip / none / pool share of the final cells", "table vs DARTS (wins)", "scratch valid vs DARTS (wins)"], rows)
    trace = methods.get("darts", {}).get("mean_table_test_by_epoch")
    line = ""
    if trace:
        marks = sorted({0, 4, 9, 19, len(trace) - 1} & set(range(len(trace))))
        line = ("\nPlain DARTS's derived cells, mean table test accuracy after epoch "
                + ", ".join(f"{e + 1}: {percent(trace[e]):.1f}%" for e in marks) + ".")
    return setup + table + line + "\n" + sources_line(results)


def _nasnet_shares(cells: list[str]) -> dict[str, float]:
    """Each op's share of the kept edges of DARTS-cell strings (`jaxnas.spaces.nasnet.describe`: `op(input)`)."""
    ops = [tok.split("(")[0] for c in cells for part in c.split(" | ") for node in part.split(" ")[1:]
           if "=" in node and not node.startswith("out=") for tok in node.split("=", 1)[1].split("+")]
    return {name: ops.count(name) / len(ops) for name in ("identity", "max_pool_3x3", "avg_pool_3x3")}


def darts_nasnet(results: dict[str, dict[str, Any]]) -> str:
    """DARTS's own cell (no table exists): per method the final cells' from-scratch accuracy (in percent),
    parameter-free kept edges and op shares (means over seeds), and each remedy minus plain DARTS paired by seed."""
    r = results["darts_nasnet"]
    methods = r["figures"]["methods"]
    any_cfg = next(iter(methods.values()))["config"]
    d, t = any_cfg["darts"], any_cfg["train"]
    base = methods["darts"]["per_seed"]
    rows = []
    for m, out in methods.items():
        ps = out["per_seed"]
        share = _nasnet_shares([x["final_arch"] for x in ps])
        rows.append([LABELS.get(m, m), f"{percent(out['mean_scratch_valid']):.2f}",
                     f"{percent(out['mean_scratch_test']):.2f}",
                     f"{out['mean_parameter_free_edges']:.2f}",
                     f"{share['identity']:.2f} / {share['max_pool_3x3']:.2f} / {share['avg_pool_3x3']:.2f}",
                     "–" if m == "darts" else _vs(ps, base, "scratch_valid"),
                     "–" if m == "darts" else _vs(ps, base, "scratch_test")])
    n_seeds, epochs = len(r["seeds"]), r["settings"]["epochs"]
    cells = d["stages"] * d["cells_per_stage"] + d["stages"] - 1  # normal cells plus a reduction between stages
    steps = d.get("steps", 4)  # results written before darts.steps existed used DARTS's 4
    setup = (f"{any_cfg['image_size']}x{any_cfg['image_size']} digits, DARTS's cell ({steps} nodes, "
             f"{steps * (steps + 3) // 2} edges, 8 ops; normal "
             f"and reduction alphas), supernet C={d['channels']}, {cells} cells, batch {d['batch_size']}, {epochs} "
             f"epochs, the paper's optimisers; {n_seeds} seeds vmapped in one program per method; from scratch: the "
             f"derived cells in the same layout (C={any_cfg['network']['channels']}), {t['steps']} SGD steps of "
             f"{t['batch_size']}; wall time {r['wall_s']:,.0f} s.\n\n")
    table = markdown_table(
        ["method", "scratch valid %", "scratch test %", f"param-free kept edges of {4 * steps}",
         "skip / max pool / avg pool share", "scratch valid vs DARTS (wins)", "scratch test vs DARTS (wins)"], rows)
    return setup + table + sources_line(results)


__all__ = ["darts_methods", "darts_nasnet", "paired_difference", "LABELS"]
