"""README's tables of searches with real training beyond NAS-Bench-201 (registered in
`experiments.readme_tables.TABLES`): MetaQNN's Q-learning against random search, from
results/metaqnn_vs_random.json (`python benchmarks/metaqnn_vs_random.py`)."""

from __future__ import annotations

from typing import Any

import numpy as np

from experiments.table_format import markdown_table, sources_line


def metaqnn_vs_random(results: dict[str, dict[str, Any]]) -> str:
    """One row per seed (each strategy's best validation and test accuracy, and its models' median), then the means
    and the paired difference with its standard error."""
    (r,) = results.values()
    f, s = r["figures"], r["settings"]
    runs = f["runs"]
    rows = []
    for q, rand in zip(runs["qlearning"], runs["random"]):
        rows.append([str(q["seed"]), f"{q['best_valid']:.2f} / {q['best_test']:.2f}",
                     f"{rand['best_valid']:.2f} / {rand['best_test']:.2f}",
                     f"{np.median(q['valid_acc']):.1f}", f"{np.median(rand['valid_acc']):.1f}"])
    rows.append(["mean", f"{f['qlearning_best_valid_mean']:.2f} / {f['qlearning_best_test_mean']:.2f}",
                 f"{f['random_best_valid_mean']:.2f} / {f['random_best_test_mean']:.2f}",
                 f"{f['qlearning_models_valid_median']:.1f}", f"{f['random_models_valid_quartiles'][2]:.1f}"])
    c = s["config"]
    lo, q1, med, q3, hi = f["random_models_valid_quartiles"]
    se = f["paired_diff_se"]
    return (f"{c['image_size']}x{c['image_size']} digits, at most {c['metaqnn']['layer_limit']} layers, "
            f"{s['evaluations']} trained models per search, {c['metaqnn']['train']['epochs']} epochs each (Adam "
            f"{c['metaqnn']['train']['learning_rate']:g}, restarts below 1.5x chance), chunks of {c['chunk_size']}; "
            f"wall time {r['wall_s']:,.0f} s.\n\n"
            + markdown_table(["seed", "Q-learning best valid / test %", "random best valid / test %",
                              "Q-learning models, median valid %", "random models, median valid %"], rows)
            + f"\nBest validation accuracy, Q-learning minus random, paired by seed: {f['paired_diff_mean']:+.2f} points"
            + (f" (standard error {se:.2f})" if se is not None else "")
            + f"; Q-learning ahead on {f['qlearning_wins']} of {f['seeds']} seeds. Every random model's validation "
            f"accuracy: min {lo:.1f}, quartiles {q1:.1f} / {med:.1f} / {q3:.1f}, max {hi:.1f}.\n"
            + sources_line(results))
