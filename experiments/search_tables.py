"""README's tables of searches with real training beyond NAS-Bench-201 (registered in
`experiments.readme_tables.TABLES`): a space's published strategy against random search in the same space, from
results/<variant>_vs_random.json (`python benchmarks/search_vs_random.py --variant ...`; MetaQNN's through
`benchmarks/metaqnn_vs_random.py`)."""

from __future__ import annotations

from typing import Any

import numpy as np

from experiments.table_format import markdown_table, percent, sources_line


NAMES = {"qlearning": "Q-learning", "aging_evolution": "aging evolution", "tournament": "tournament (5%)"}


def _setup(s: dict[str, Any], wall_s: float) -> str:
    """The searches' settings, as a sentence."""
    c = s["config"]
    size, n = c["image_size"], s["evaluations"]
    if s.get("variant", "metaqnn") == "metaqnn":
        t = c["metaqnn"]["train"]
        what = (f"at most {c['metaqnn']['layer_limit']} layers, {n} trained models per search, {t['epochs']} epochs "
                f"each (Adam {t['learning_rate']:g}, restarts below 1.5x chance)")
    else:
        v, t = s["variant"], c["train"]
        net = c[v]["network"]
        space = (f"NASNet cells of B={c['nasnet']['B']}, aging population {c['aging_evolution']['population_size']}, "
                 f"sample {c['aging_evolution']['sample_size']}" if v == "nasnet" else
                 f"{c['hierarchical']['motifs']} motifs of {c['hierarchical']['motif_nodes']} nodes, cells of "
                 f"{c['hierarchical']['cell_nodes']} nodes, first population {c['tournament']['population_size']} "
                 f"({c['hierarchical']['init_mutations']} mutations of the trivial genotype each), tournament "
                 f"{c['tournament']['sample_fraction']:.0%} of the population")
        what = (f"{space}; networks F={net['channels']}, N={net['cells_per_stage']}, {net['stages']} stages; {n} "
                f"trained candidates per search, {t['steps']} SGD steps of {t['batch_size']} each (lr "
                f"{t['learning_rate']:g}, cosine)")
    return f"{size}x{size} digits, {what}, chunks of {c['chunk_size']}; wall time {wall_s:,.0f} s.\n\n"


def strategy_vs_random(results: dict[str, dict[str, Any]]) -> str:
    """One row per seed (each strategy's best validation and test accuracy, and its candidates' median), then the
    means and the paired difference with its standard error (the files' fractions printed in percent)."""
    (r,) = results.values()
    f, s = r["figures"], r["settings"]
    key = f.get("strategy", "qlearning")
    name = NAMES.get(key, key)
    runs = f["runs"]
    rows = []
    for q, rand in zip(runs[key], runs["random"]):
        rows.append([str(q["seed"]), f"{percent(q['best_valid']):.2f} / {percent(q['best_test']):.2f}",
                     f"{percent(rand['best_valid']):.2f} / {percent(rand['best_test']):.2f}",
                     f"{np.median(percent(q['valid_acc'])):.1f}", f"{np.median(percent(rand['valid_acc'])):.1f}"])
    rows.append(["mean", f"{percent(f[f'{key}_best_valid_mean']):.2f} / {percent(f[f'{key}_best_test_mean']):.2f}",
                 f"{percent(f['random_best_valid_mean']):.2f} / {percent(f['random_best_test_mean']):.2f}",
                 f"{percent(f[f'{key}_models_valid_median']):.1f}",
                 f"{percent(f['random_models_valid_quartiles'][2]):.1f}"])
    lo, q1, med, q3, hi = percent(f["random_models_valid_quartiles"])
    se = percent(f["paired_diff_se"])
    return (_setup(s, r["wall_s"])
            + markdown_table(["seed", f"{name} best valid / test %", "random best valid / test %",
                              f"{name} candidates, median valid %", "random candidates, median valid %"], rows)
            + f"\nBest validation accuracy, {name} minus random, paired by seed: {percent(f['paired_diff_mean']):+.2f} points"
            + (f" (standard error {se:.2f})" if se is not None else "")
            + f"; {name} ahead on {f[f'{key}_wins']} of {f['seeds']} seeds. Every random candidate's validation "
            f"accuracy: min {lo:.1f}, quartiles {q1:.1f} / {med:.1f} / {q3:.1f}, max {hi:.1f}."
            + _after_first_population(s, runs, key, name) + "\n" + sources_line(results))


def _after_first_population(s: dict[str, Any], runs: dict[str, list[dict]], key: str, name: str) -> str:
    """Evolution's children against the random candidates drawn at the same points of the budget: the median
    validation accuracy of candidates P+1..N per seed, paired, in percentage points (empty for MetaQNN, which has no
    first population)."""
    variant = s.get("variant", "metaqnn")
    if variant == "metaqnn":
        return ""
    c = s["config"]
    first = c["aging_evolution" if variant == "nasnet" else "tournament"]["population_size"]
    d = [np.median(percent(a["valid_acc"][first:])) - np.median(percent(b["valid_acc"][first:]))
         for a, b in zip(runs[key], runs["random"])]
    return (f" After the first population (candidates {first + 1}-{s['evaluations']}), the median candidate of "
            f"{name} minus that of random search, paired by seed: {np.mean(d):+.1f} points (higher on "
            f"{sum(x > 0 for x in d)} of {len(d)} seeds).")
