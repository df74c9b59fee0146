"""Tabular NAS benchmarks: random, aging evolution, tournament, REINFORCE and Q-learning (MetaQNN) under
NAS-Bench-201's protocol (Dong & Yang, ICLR 2020, Sec. 5), on NAS-Bench-201 or any other table in
`jaxnas.problems.BENCHMARKS`.

    python -m experiments.nb201 --config experiments/configs/nb201.py --config.strategy=aging_evolution \
        --config.runs=500 --config.budget_s=12000 --workdir runs/nb201_rea
    python -m experiments.nb201 --config experiments/configs/nb201.py --config.benchmark=macro \
        --config.strategy=all --workdir runs/macro          # NAS-Bench-Macro, 100 evaluations per search

`--config.strategy=all` runs every strategy and writes one comparison table and plot (several names separated by
commas, `--config.strategy=aging_evolution,random`, compare those). Outputs in the
work directory: `results.json`, `runs.jsonl` (one line per search run), `metrics.jsonl` (one line per
compiled chunk), `best_so_far.png`, `report.md`, and `checkpoints/` (a rerun with the same workdir resumes).
Accuracies are fractions in [0, 1] in every file; the report, the plot and the printed lines show percent.
"""

from __future__ import annotations

import collections
import os
import time
import warnings
from typing import TYPE_CHECKING, Any

import numpy as np
from ml_collections import config_dict

from experiments.builders import build_benchmark, build_strategy
from experiments.cli import launch
from experiments.validation import STRATEGY_BOUNDS, Bounds, check_bounds, check_choices, check_files
from jaxnas.common.checkpoint import file_fingerprint
from jaxnas.common.errors import ConfigError, check_choice, check_positive
from jaxnas.common.metrics import JsonlWriter, device_summary, write_json
from jaxnas.problems import BENCHMARKS, Table, TabularBenchmark
from jaxnas.search import BudgetedSearch, SearchResult, best_so_far_curve
from jaxnas.strategies import STRATEGIES

if TYPE_CHECKING:  # matplotlib and the report load where they are used: a refused setting need not wait ~1 s
    import matplotlib.pyplot as plt

    from jaxnas.common.report import Report

PUBLISHED = BENCHMARKS.get("nb201").published  # Dong & Yang's Table 5: (valid mean, valid std, test mean, test std),
# fractions like every accuracy of the library and its results files; reports, plots and printed lines show percent
LABELS = {"random": "random search", "aging_evolution": "aging evolution (REA)",
          "tournament": "tournament, no aging", "reinforce": "REINFORCE (LSTM)", "qlearning": "Q-learning (MetaQNN)"}


# Every other number of configs/nb201.py. The upper bounds keep a typo from planning an unbounded search;
# BudgetedSearch also bounds the evaluations a budget plans per run (budget / the table's cheapest evaluation).
BOUNDS = {
    "runs": Bounds(int, 1, 10_000), "budget_s": Bounds(float, 0.0, 1e6, open_low=True),
    "seed": Bounds(int, 0, 2**31 - 1), "chunk_steps": Bounds(int, 1, 10_000),
    "macro.budget": Bounds(float, 0.0, 100_000, open_low=True), "macro.search_run": Bounds(int, 0, 2),
    "qlearning.total_models": Bounds(int, 1, 100_000),
    **STRATEGY_BOUNDS,
}


def validate(config: config_dict.ConfigDict) -> list[str]:
    """Checks every setting before any table is read or anything compiled; returns the strategies to run."""
    check_choice("benchmark", config.benchmark, BENCHMARKS.names())
    names = strategy_names(config.strategy)
    check_positive("runs", config.runs, integer=True)
    check_positive("chunk_steps", config.chunk_steps, integer=True)
    check_positive("budget_s", config.budget_s)
    check_bounds(config, BOUNDS)
    check_choices(config, {"progress": (True, False)})
    check_files(config, ("table_path", "macro.path"))
    space = BENCHMARKS.get(config.benchmark).space
    for name in names:
        build_strategy(config, name, space)  # validates the strategy's own settings
    return names


def strategy_names(value: Any) -> list[str]:
    """`strategy`: one name, `all`, or several names separated by commas (a comparison of those, in that order)."""
    names = [n.strip() for n in str(value).split(",")]
    allowed = f"{', '.join(STRATEGIES.names())}, all, or several names separated by commas"
    if names == ["all"]:
        return STRATEGIES.names()
    for name in names:
        if name not in STRATEGIES:
            raise ConfigError("strategy", f"got {value!r}; allowed: {allowed}")
    if len(set(names)) != len(names):
        raise ConfigError("strategy", f"got {value!r}; allowed: {allowed}, each once")
    return names


def search(config: config_dict.ConfigDict, name: str, bench: TabularBenchmark, table: Table, budget: float,
           workdir: str, extra: dict[str, Any] | None = None) -> tuple[dict[str, Any], SearchResult]:
    """Runs `config.runs` searches of strategy `name`; writes results.json (with `extra`) and runs.jsonl."""
    strategy = build_strategy(config, name, bench.space)
    budget_field = "budget_s" if bench.name == "nb201" else f"{bench.name}.budget"
    searcher = BudgetedSearch(strategy, table, budget, config.chunk_steps, budget_field=budget_field)
    result = searcher.run(config.seed, config.runs, checkpoint_dir=os.path.join(workdir, "checkpoints"),
                          progress=config.progress, desc=name, metrics_path=os.path.join(workdir, "metrics.jsonl"),
                          settings=table_file_settings(config, bench))
    arch_strs = [bench.space.to_string(a) for a in result.best_arch]
    top_arch, top_count = collections.Counter(arch_strs).most_common(1)[0]
    summary = {
        "strategy": name, "runs": config.runs, **_budget_fields(bench, budget), "seed": config.seed,
        "valid_mean": float(result.best_valid.mean()), "valid_std": float(result.best_valid.std()),
        "test_mean": float(result.best_test.mean()), "test_std": float(result.best_test.std()),
        "evaluations_mean": float(result.num_evals.mean()), "wall_s": result.wall_s,
        "resumed_from_chunk": result.resumed_from_step,
        "most_chosen_arch": top_arch, "most_chosen_fraction": top_count / config.runs,
        "found_global_best_fraction": float(np.mean(result.best_index == table.best_index)),
        "settings": config[name].to_dict() if name in config else {},
        "device": device_summary(),
        "published": (dict(zip(("valid_mean", "valid_std", "test_mean", "test_std"), bench.published[name]))
                      if name in bench.published else None),
    }
    summary.update(extra or {})
    os.makedirs(workdir, exist_ok=True)
    runs_path = os.path.join(workdir, "runs.jsonl")
    if os.path.exists(runs_path):
        os.remove(runs_path)
    with JsonlWriter(runs_path) as w:
        for r in range(config.runs):
            w.write({"run": r, "best_valid": result.best_valid[r], "best_test": result.best_test[r],
                     "best_index": result.best_index[r], "arch_str": arch_strs[r], "evaluations": result.num_evals[r],
                     "elapsed_s": result.elapsed[r]})
    write_json(os.path.join(workdir, "results.json"), summary)
    return summary, result


def table_file_settings(config: config_dict.ConfigDict, bench: TabularBenchmark) -> dict[str, Any]:
    """The content hash of the table file the config names, under the setting that names it (`table_path`,
    `<benchmark>.path`): that file edited in place is refused by name, even in the process that loaded it before
    (the loaders cache a parsed table per path). Without a path (the default table) nothing is added: the search
    records the loaded table's content (`table`) either way."""
    field, path = ("table_path", config.table_path) if bench.name == "nb201" else (
        f"{bench.name}.path", config[bench.name].path)
    return {field: file_fingerprint(path)} if path else {}


def _budget_fields(bench: TabularBenchmark, budget: float) -> dict[str, Any]:
    """NAS-Bench-201 calls its budget `budget_s`; other tables say what their budget counts."""
    return {"budget_s": budget} if bench.name == "nb201" else {"budget": budget, "budget_unit": bench.budget_unit}


def _oracle(table: Table) -> dict[str, float]:
    """What a perfect search would find: the best fitness in the table and that architecture's reported figure."""
    best = int(np.argmax(np.asarray(table.valid)))
    return {"table_best_valid": float(table.valid[best]), "table_best_test": float(table.test[best]),
            "table_max_test": float(np.max(np.asarray(table.test)))}


def plot_curves(results: dict[str, SearchResult], budget: float, bench: TabularBenchmark | None = None) -> plt.Figure:
    """Best-so-far fitness against the budget spent, in percent: mean over runs and a +-1 std band.

    Budget points at which fewer than 90% of runs have finished an evaluation are left out (a mean over the few
    runs that have would be misleading)."""
    import matplotlib.pyplot as plt

    bench = bench or BENCHMARKS.get("nb201")
    fig, ax = plt.subplots(figsize=(7, 4.2))
    lows, highs = [], []
    for name, result in results.items():
        grid, curves = best_so_far_curve(result.history, budget)
        curves = 100 * curves  # the histories hold fractions; the axis says %
        shown = np.mean(np.isfinite(curves), axis=0) >= 0.9
        with warnings.catch_warnings():  # columns before any run's first evaluation are all-NaN
            warnings.simplefilter("ignore", RuntimeWarning)
            mean, std = np.nanmean(curves, 0), np.nanstd(curves, 0)
        mean, std = np.where(shown, mean, np.nan), np.where(shown, std, np.nan)
        line, = ax.plot(grid, mean, label=f"{LABELS.get(name, name)} ({np.nanmean(curves[:, -1]):.2f})")
        ax.fill_between(grid, mean - std, mean + std, color=line.get_color(), alpha=0.1)
        lows.append(np.nanpercentile(mean - std, 20))
        highs.append(mean[shown][-1] + std[shown][-1] if shown.any() else np.nan)  # early points are noisy
    ax.set_xlabel(f"search budget spent ({bench.budget_unit})")
    ax.set_ylabel(f"best {bench.fitness} so far")
    top = float(np.ceil(np.nanmax(highs) * 5 + 1) / 5)
    ax.set_ylim(max(top - 12.0, float(np.floor(min(lows)))), top)
    ax.set_xlim(0, budget)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    runs = next(iter(results.values())).best_valid.shape[0]
    ax.set_title(f"{bench.title}: {runs} searches per strategy (mean ± 1 std)")
    return fig


def comparison_rows(summaries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per strategy, accuracies in percent; the paper's figures only where the setting is the paper's (12,000 s
    budget)."""
    rows = []
    for s in summaries:
        pub = PUBLISHED.get(s["strategy"]) if s.get("budget_s") == 12_000 else None
        rows.append({
            "strategy": LABELS.get(s["strategy"], s["strategy"]),
            "valid (ours)": f"{100 * s['valid_mean']:.2f} ± {100 * s['valid_std']:.2f}",
            "valid (paper)": f"{100 * pub[0]:.2f} ± {100 * pub[1]:.2f}" if pub else "–",
            "test (ours)": f"{100 * s['test_mean']:.2f} ± {100 * s['test_std']:.2f}",
            "evaluations": f"{s['evaluations_mean']:.1f}",
            "wall s": f"{s['wall_s']:.1f}",
        })
    return rows


# What `all` returns per strategy: every column of the README table, and the paper's figures beside them.
TABLE_FIELDS = ("valid_mean", "valid_std", "test_mean", "test_std", "evaluations_mean", "found_global_best_fraction",
                "published", "wall_s")

def run(config: config_dict.ConfigDict, workdir: str, report: Report | None = None) -> dict[str, Any]:
    """Runs the strategy (or all of them) and writes results, plots and a report into `workdir`."""
    names = validate(config)
    bench, table, budget = build_benchmark(config)  # a missing file fails here, before compiling
    # NAS-Bench-201's summaries keep the keys its published results files have; other tables add what a perfect
    # search would find
    extra = {} if bench.name == "nb201" else {"benchmark": bench.name, **_oracle(table)}
    start = time.perf_counter()
    summaries, results = [], {}
    for name in names:
        sub = workdir if len(names) == 1 else os.path.join(workdir, name)
        summary, results[name] = search(config, name, bench, table, budget, sub, extra)
        summaries.append(summary)
        print(f"{name:>16}: valid {100 * summary['valid_mean']:.2f} ± {100 * summary['valid_std']:.2f}, test "
              f"{100 * summary['test_mean']:.2f}, {summary['evaluations_mean']:.0f} evaluations, "
              f"{summary['wall_s']:.1f} s", flush=True)
    own_report = report is None
    from jaxnas.common.report import Report

    report = report or Report(workdir, f"{bench.title} search")
    report.heading(f"{bench.title}: {config.runs} searches per strategy, a budget of {budget:,.0f} {bench.budget_unit}")
    report.table(comparison_rows(summaries))
    report.text(f"valid: {bench.fitness}; test: {bench.reported}. {bench.note}")
    if extra:
        report.text(f"The table's best by the search's fitness: {100 * extra['table_best_valid']:.2f} (reported "
                    f"figure {100 * extra['table_best_test']:.2f}; the best reported figure of any architecture: "
                    f"{100 * extra['table_max_test']:.2f}).")
    report.figure(plot_curves(results, budget, bench), os.path.relpath(os.path.join(workdir, "best_so_far.png"), report.workdir),
                  f"Best {bench.fitness} so far (mean and ±1 std over runs; final mean in the legend).")
    if own_report:
        report.write()
    out = {"runs": config.runs, **_budget_fields(bench, budget), "wall_s": time.perf_counter() - start,
           "seed": config.seed, "strategies": {s["strategy"]: {k: s[k] for k in TABLE_FIELDS} for s in summaries}}
    out.update(extra)
    if len(names) == 1:
        return summaries[0]
    write_json(os.path.join(workdir, "comparison.json"), out)
    return out


if __name__ == "__main__":
    launch(run, os.path.join(os.path.dirname(__file__), "configs", "nb201.py"))
