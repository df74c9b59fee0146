"""README's results tables, generated from the committed `results/*.json` so that text and results cannot drift.

    python -m experiments.readme_tables           # rewrite every generated block of README.md from results/
    python -m experiments.readme_tables --check   # exit 1, naming the blocks, if README.md is not what results/ gives

A generated block sits between two markers in README.md:

    <!-- generated: NAME (python -m experiments.readme_tables) -->
    ...the table, never edited by hand...
    <!-- end generated: NAME -->

Each NAME is a `Table` in `TABLES`: the results files it reads (their `command` field says how each was made) and a
function that renders them. `tests/test_readme_tables.py` checks that README.md equals the rendering.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from experiments import darts_tables, detection_tables, gan_tables, mtl_tables, search_tables
from experiments.table_format import Table, load_note, markdown_table, percent, sources_line
from jaxnas.common.provenance import REPO_ROOT, RESULTS_DIR, load_result

README = REPO_ROOT / "README.md"
_BLOCK = re.compile(r"(<!-- generated: (?P<name>[a-z0-9_]+) \(python -m experiments.readme_tables\) -->\n)"
                    r"(?P<body>.*?)"
                    r"(<!-- end generated: (?P=name) -->)", re.S)


# --- NAS-Bench-201 -------------------------------------------------------------------------------------------------

def _nb201_label(name: str, settings: dict[str, Any]) -> str:
    if name in ("aging_evolution", "tournament"):
        e = settings[name]
        title = "aging evolution (REA" if name == "aging_evolution" else "tournament without aging ("
        sep = ", " if name == "aging_evolution" else ""
        return f"{title}{sep}P={e['population_size']}, S={e['sample_size']})"
    return {"random": "random search", "reinforce": "REINFORCE, LSTM controller",
            "qlearning": "Q-learning (MetaQNN)"}.get(name, name)


def _against_random(runs: list[dict[str, Any]], name: str, label: str, what: str) -> str:
    """`name` minus random search per seed, with two standard errors of the difference (each mean's standard
    error: the std over runs / sqrt(runs - 1), the files' std being over all runs); in percentage points."""
    cells, above, below = [], 0, 0
    for r in runs:
        f = r["figures"]
        a, b = f["strategies"][name], f["strategies"]["random"]
        diff = percent(a["valid_mean"]) - percent(b["valid_mean"])
        two_se = 2 * ((percent(a["valid_std"]) ** 2 + percent(b["valid_std"]) ** 2) / (f["runs"] - 1)) ** 0.5
        above, below = above + (diff > two_se), below + (diff < -two_se)
        cells.append(f"seed {f['seed']}: {diff:+.3f} (2 SE {two_se:.3f})")
    return (f" {label} minus random search, {what}: " + "; ".join(cells) + f"; more than two standard errors above "
            f"random on {above} of {len(runs)} seeds, below on {below}.")


def _table_protocol(results: dict[str, dict[str, Any]]) -> str:
    """`experiments.nb201 --config.strategy=all` on several seeds: one column per seed, strategies as rows (the
    files' fractions printed in percent)."""
    runs = list(results.values())
    seeds = [r["figures"]["seed"] for r in runs]
    f0 = runs[0]["figures"]
    strategies = f0["strategies"]
    macro = f0.get("benchmark", "nb201") != "nb201"  # NAS-Bench-201's files predate the field
    best = {s: max(strategies, key=lambda k: r["figures"]["strategies"][k]["valid_mean"]) for s, r in zip(seeds, runs)}
    rows = []
    for name in strategies:
        per = [r["figures"]["strategies"][name] for r in runs]
        cells = [(f"**{percent(v['valid_mean']):.2f}**" if best[s] == name else f"{percent(v['valid_mean']):.2f}")
                 + f" ± {percent(v['valid_std']):.2f}" for s, v in zip(seeds, per)]
        pub = per[0]["published"]
        test = sum(percent(v["test_mean"]) for v in per) / len(per)
        evals = sum(v["evaluations_mean"] for v in per) / len(per)
        found = sum(v["found_global_best_fraction"] for v in per) / len(per)
        rows.append([_nb201_label(name, runs[0]["settings"]), *cells,
                     *([] if macro else [f"{percent(pub['valid_mean']):.2f} ± {percent(pub['valid_std']):.2f}"
                                         if pub else "–"]),
                     f"{test:.2f}", f"{evals:.1f}", *([f"{found:.1%}"] if macro else [])])
    if macro:
        header = ["strategy", *[f"searched training, seed {s}" for s in seeds],
                  "other two trainings (reported), mean of seeds", "evaluations per search", "found the table's best"]
        caption = (f"{f0['runs']} runs per strategy and seed, budget {f0['budget']:,.0f} {f0['budget_unit']}; mean ± "
                   "std over runs. The search selects on one training's test accuracy; the reported figure is the "
                   "same architecture's mean over the other two trainings.\n\n")
    else:
        header = ["strategy", *[f"valid, seed {s}" for s in seeds], "valid, paper", "test, ours (mean of seeds)",
                  "evaluations per search"]
        caption = f"{f0['runs']} runs per strategy and seed, budget {f0['budget_s']:,.0f} s; mean ± std over runs.\n\n"
    short = {"random": "random", "aging_evolution": "REA", "tournament": "tournament", "reinforce": "REINFORCE",
             "qlearning": "Q-learning"}
    orders = [" > ".join(short.get(k, k) for k in sorted(strategies, key=lambda k: -r["figures"]["strategies"][k]["valid_mean"]))
              for r in runs]
    what = "mean accuracy on the searched training" if macro else "mean validation accuracy"
    ranking = (f"Ranking by {what}, the same on every seed: {orders[0]}." if len(set(orders)) == 1
               else f"Ranking by {what} per seed: " + "; ".join(f"seed {s}: {o}" for s, o in zip(seeds, orders)) + ".")
    if "qlearning" in strategies and "random" in strategies:
        ranking += _against_random(runs, "qlearning", "Q-learning", what)
    if macro:
        ranking += (f" A perfect search (the table's best on the searched training) would score "
                    f"{percent(f0['table_best_valid']):.2f}, reported {percent(f0['table_best_test']):.2f}; the best "
                    f"reported figure of any network is {percent(f0['table_max_test']):.2f}.")
    return caption + markdown_table(header, rows) + "\n" + ranking + "\n" + sources_line(results)


def _reinforce_lr(results: dict[str, dict[str, Any]]) -> str:
    (r,) = results.values()
    cells = r["figures"]["cells"]
    default = r["settings"]["reinforce"]["learning_rate"]
    lrs = sorted({c["learning_rate"] for c in cells if c["strategy"] == "reinforce"})
    rows = []
    for seed in sorted({c["seed"] for c in cells}):
        mine = {c["learning_rate"]: percent(c["valid_mean"]) for c in cells
                if c["seed"] == seed and c["strategy"] == "reinforce"}
        rnd = [percent(c["valid_mean"]) for c in cells if c["seed"] == seed and c["strategy"] == "random"]
        label = f"seed {seed}" + (f" (random search: {rnd[0]:.2f})" if rnd else "")
        rows.append([label, *[f"{mine[lr]:.2f}" if lr in mine else "" for lr in lrs]])
    header = ["learning rate", *[f"**{lr:g} (default)**" if lr == default else f"{lr:g}" for lr in lrs]]
    return markdown_table(header, rows) + sources_line(results)


# --- search with real training -------------------------------------------------------------------------------------

def _nas_search_demo(results: dict[str, dict[str, Any]]) -> str:
    (r,) = results.values()
    f, s = r["figures"], r["settings"]
    strat = s[f["strategy"]] if f["strategy"] in s else {}
    name = f["strategy"].replace("_", " ") + (f" (P={strat['population_size']}, S={strat['sample_size']})" if strat else "")
    base = f["random_baseline"]
    rows = [[f"{name}, {f['evaluations']} evaluations in chunks of {s['chunk_size']}", f"{percent(f['best_valid']):.2f}",
             f"{percent(f['best_test']):.2f}", "`" + f["best_arch"].replace("|", "\\|") + "`"],
            [f"{base['n']} random architectures, median (best)",
             f"{percent(base['median_valid']):.2f} ({percent(base['max_valid']):.2f})",
             f"{percent(base['median_test']):.2f}", ""]]
    net, train = s["network"], s["train"]
    return (f"{s['image_size']}x{s['image_size']} {f['dataset']}, C={net['channels']}, {net['cells_per_stage']} cell per "
            f"stage, {train['steps']} SGD steps of {train['batch_size']} per candidate, seed {s['seed']}; wall time "
            f"{load_note(r)}, {f['candidate_steps_per_s']:.1f} candidate-steps/s.\n\n"
            + markdown_table(["search", "validation %", "test %", "architecture"], rows) + sources_line(results))


# --- population training against PyTorch ---------------------------------------------------------------------------

_EXECUTION_LABEL = {"map": "one after another in one program, only the chosen ops",
                    "vmap": "all at once (vmap), folded kernels"}


def _impl_label(name: str, settings: dict[str, Any]) -> str:
    """engine-EXECUTION-(seq|pP) or torch-MODE -> a row label."""
    if name.startswith("engine-"):
        _, execution, size = name.split("-")
        dtype = f", {settings['dtype']}" if settings["dtype"] != "float32" else ""
        how = f" ({_EXECUTION_LABEL.get(execution, execution)}{dtype})"
        if size == "seq":
            return f"ours{how}, one candidate per compiled call"
        spread = settings["host_devices"]
        return f"ours{how}, {size[1:]} candidates per compiled call" + (f" over {spread} host devices" if spread > 1 else "")
    mode = name.removeprefix("torch-")
    return f"PyTorch {mode}" + (f" ({settings['threads']} threads)" if settings.get("torch_device") == "cpu" else "")


def _check_line(c: dict[str, Any]) -> str:
    return (f"both sides have {c['param_count_engine']:,} / {c['param_count_torch']:,} parameters and their "
            f"{c['steps']} training losses agree to {c['max_rel_loss_diff']:.1e} (relative)")


def _population_training(results: dict[str, dict[str, Any]]) -> str:
    blocks_ = []
    for r in results.values():
        f, s = r["figures"], r["settings"]
        med, each, load = f["median_cand_steps_per_s"], f["cand_steps_per_s_each_repeat"], f["loadavg_1m_each_repeat"]
        rows = [[_impl_label(k, s), f"**{med[k]:.3g}**", " / ".join(f"{v:.3g}" for v in each[k]),
                 " / ".join(f"{v:g}" for v in load[k])] for k in med]
        ratios = "; ".join(f"{_impl_label(a, s)} / {_impl_label(b, s)}: **{v:.2f}x**"
                           for a, b, v in ((*k.split("/"), v) for k, v in f["ratio_engine_over_torch"].items()))
        checks = f["check"]  # one per execution
        cores = r["provenance"]["device"].get("cores") or 1
        loads = [v for vs in load.values() for v in vs]
        text = (f"{s['channels']} channels, {s['cells']} cell per stage, {s['hw']}x{s['hw']}, batch {s['batch']}, "
                f"{s['steps']} steps per candidate, {len(s['torch_archs'])} architecture(s) on both sides (P candidates per "
                f"call: the first P of the same draw); "
                f"median of {f['repeats_done']} alternating repeats, compilation excluded; torch {f['torch_version']} "
                f"on {f['torch_device']}.\n\n" + markdown_table(
                    ["implementation", "candidate-steps/s (median)", "each repeat", "load average at each run"], rows)
                + f"\nRatio, same run: {ratios}. Same work checked first: from the same initial weights and batches "
                + "; ".join(f"{e}: {_check_line(v)}" for e, v in checks.items()) + ".\n")
        for mode, why in f.get("failed", {}).items():
            timeout = re.search(r"timed out after (\d+) seconds", why)
            text += (f"\nNot measured: {_impl_label(mode, s)}, "
                     + (f"which ran past the {timeout.group(1)}-second limit for one repeat (compilation included)."
                        if timeout else f"which failed: {why[:120]}") + "\n")
        if loads and max(loads) > 2 * cores:
            text += (f"\n**Measured on an oversubscribed machine** (load average up to {max(loads):g} on {cores} cores): "
                     "the figures say more about contention than about the two implementations; rerun the command "
                     "idle before quoting them.\n")
        blocks_.append(text)
    return "\n".join(blocks_) + sources_line(results)


# --- the speed-ups --------------------------------------------------------------------------------------------------

def _speedup_row(r: dict[str, Any]) -> list[str]:
    f = r["figures"]
    tau = f"Kendall tau {f['kendall_tau']:.2f}" if f.get("kendall_tau") is not None else ""
    if f["speedup"] == "weight_sharing":
        return [f"weight sharing, {f['supernet_steps']} supernet steps (off-path weights {f['off_path']})",
                f"{f['compute_ratio']:.1f}x less ({f['supernet_steps']} vs {f['standalone_candidate_steps']:,} steps)",
                f"{tau}; the supernet's favourite ranks {f['proxy_top1_reference_rank']} of {f['candidates']}"]
    if f["speedup"] == "pruning" and f.get("method") == "structured":
        return [f"structured pruning (filter L1, Li et al.), {f['channel_fraction']:.0%} of channels kept after "
                f"{f['steps_before_pruning']} of {f['steps_before_pruning'] + f['steps_after_pruning']} steps",
                f"{1 - f['macs_per_image_ratio']:.0%} fewer MACs per image after pruning; "
                f"{f['training_macs_saved_fraction']:.0%} of training MACs saved; after pruning, training took "
                f"{f['after_pruning_wall_ratio']:.2f}x the dense wall time ({f['after_pruning_cpu_ratio']:.2f}x the CPU "
                f"time; median of {f['repeats']} alternating runs, load average {f['loadavg_1m']:.1f})",
                f"validation {percent(f['valid_change_mean']):+.2f} points on average (worst "
                f"{percent(f['valid_change_worst']):+.2f}); {tau}"]
    if f["speedup"] == "pruning":  # magnitude: zeros in dense kernels, so the saving is nominal
        return [f"magnitude pruning, {f['sparsity']:.0%} of every kernel ({f['mode']} training)",
                f"{f['nominal_macs_saved_fraction']:.0%} of MACs nominally saved (zeros in dense kernels): pruned "
                f"training took {f['pruned_wall_s_with_compile'] / f['dense_wall_s_with_compile']:.2f}x the dense "
                "wall time, compilation included",
                f"validation {percent(f['valid_change_mean']):+.2f} points on average (worst "
                f"{percent(f['valid_change_worst']):+.2f}); {tau}"]
    if f["speedup"] == "early_stopping":
        return [f"early stopping, successive halving eta {f['eta']} (budgets {', '.join(map(str, f['budgets']))})",
                f"{f['compute_saved_fraction']:.0%} of training steps saved ({f['sh_candidate_steps']:,} vs "
                f"{f['full_candidate_steps']:,})",
                f"its winner ranks {f['proxy_top1_reference_rank']} of {f['candidates']} "
                f"({percent(f['winner_full_valid']):.2f}% vs best {percent(f['best_full_valid']):.2f}%); {tau}"]
    if f["speedup"] == "incremental":
        return [f"incremental training, child fine-tuned {f['child_steps']} steps at lr {f['child_learning_rate']:g}",
                f"{f['compute_saved_fraction']:.0%} fewer steps for the child ({f['child_steps']} vs {f['parent_steps']})",
                f"child {percent(f['grown_valid_mean']):.2f}% after {f['child_steps']} steps against "
                f"{percent(f['scratch_valid_mean']):.2f}% for the same child from scratch at {f['parent_steps']} "
                f"(parents {percent(f['parent_valid_mean']):.2f}%)"]
    raise KeyError(f"unknown speed-up {f['speedup']!r}")


def _speedups(results: dict[str, dict[str, Any]]) -> str:
    rows = [_speedup_row(r) for r in results.values()]
    header = ["speed-up", "compute", "quality against full training"]
    return markdown_table(header, rows) + sources_line(results)


# --- NEAT ---------------------------------------------------------------------------------------------------------

def _winner(f: dict[str, Any]) -> str:
    hidden = f"{f['hidden_nodes']} hidden" if f["hidden_nodes"] else "no hidden node"
    return f"{hidden}, {f['connections']} connections"


def _neat_problems(results: dict[str, dict[str, Any]]) -> str:
    rows, dpnv = [], []
    for name, r in results.items():
        f = r["figures"]
        if name.startswith("neat_dpnv"):
            dpnv.append(f)
            continue
        gens = f"{f['solved_at_generation']}" if f["solved"] else f"not solved in {f['generations']}"
        result = "solved" if f["solved"] else "not solved"
        if f.get("valid_accuracy") is not None:
            result += f" (validation accuracy {f['valid_accuracy']:.1%})"
        if f.get("trials_mean_distance") is not None:  # HyperNEAT's boxes: distances in 11x11 cells
            result += (f" (mean distance {f['trials_mean_distance']:.2f} cells on the 75 trials, "
                       f"{f['trials_exact']} exact; {f['all_placements_mean_distance']:.2f} on all "
                       f"{f['all_placements']:,} placements; {f['trials_33x33_mean_distance_11x11_cells']:.2f} queried "
                       "at 33x33)")
        if f.get("over_seeds"):
            o = f["over_seeds"]
            result += f"; {o['solved']} of {o['seeds']} seeds solved, median {o['median_generations']:g} generations"
        rows.append([f["description"], result, gens, f"{f['evaluations']:,}", _winner(f)])
    if dpnv:
        won = [f for f in dpnv if f["solved"]]
        gens = sorted(f["solved_at_generation"] for f in won)
        evals = sum(f["evaluations"] for f in won) / max(len(won), 1)
        gen = [f["generalization"] for f in won]
        rows.append([dpnv[0]["description"],
                     f"{len(won)} of {len(dpnv)} seeds solved; generalization {min(gen)}-{max(gen)} of 625 (mean "
                     f"{sum(gen) / len(gen):.0f}; the paper: 286)" if won else f"0 of {len(dpnv)} seeds solved",
                     f"median {gens[len(gens) // 2]} (solved seeds)" if won else "–",
                     f"{evals:,.0f} on average (the paper: 33,184)" if won else "–",
                     "; ".join(sorted({_winner(f) for f in won}))])
    header = ["problem", "result", "solved at generation", "evaluations", "winner"]
    return markdown_table(header, rows) + sources_line(results)


def _neat_rules(results: dict[str, dict[str, Any]]) -> str:
    """benchmarks/neat_rules_ablation.py: ours with neat-python's rules, then with one at a time taken back."""
    (r,) = results.values()
    seeds = r["seeds"]
    rows = [[name, f"{v['solved']}/{v['seeds']}", "–" if v["median_generations"] is None else f"{v['median_generations']:g}"]
            for name, v in r["figures"].items()]
    return (markdown_table([f"XOR, neat-python's settings, seeds {seeds[0]}-{seeds[-1]}", "solved",
                            "median generations"], rows) + sources_line(results))


def _neat_quality(results: dict[str, dict[str, Any]]) -> str:
    (r,) = results.values()
    f = r["figures"]
    label = {"paper_defaults": "ours, the paper's defaults", "neat_python_settings": "ours, neat-python's XOR settings"}
    sets = list(f["neat_python"])
    rows = []
    for setting, by_law in f["ours"].items():
        for law, per in by_law.items():
            default = " (default)" if setting == "paper_defaults" and law == f["decision"]["choice"] else ""
            rows.append([f"{label.get(setting, setting)}, {law} perturbation{default}",
                         *[f"{per[k]['solved']}/{per[k]['seeds']}, {per[k]['median_generations']:g}" for k in sets]])
    rows.append(["neat-python 2.0", *[f"{f['neat_python'][k]['solved']}/{f['neat_python'][k]['seeds']}, "
                                      f"{f['neat_python'][k]['median_generations']:g}" for k in sets]])
    d = f["decision"]
    return (markdown_table(["XOR, population 150, 300 generations at most",
                            *[f"{k.replace('seeds_', 'seeds ').replace('_', '-')}: solved, median generations" for k in sets]],
                           rows)
            + f"\nThe perturbation law was chosen on {d['seed_set'].replace('seeds_', 'seeds ').replace('_', '-')} by a rule "
              f"fixed beforehand ({d['rule']}): Gaussian {d['gaussian_solved']}, uniform {d['uniform_solved']}.\n"
            + sources_line(results))


def _neat_timing(results: dict[str, dict[str, Any]]) -> str:
    (r,) = results.values()
    rows, loads = [], []
    for t in r["figures"]["timing"]:
        loads += [t["loadavg_1m_before"], t["loadavg_1m_after"]]
        rows.append([f"{t['population']:,}", f"{t['ours']['s_per_generation_median'] * 1e3:,.1f}",
                     f"{t['neat_python']['s_per_generation_median'] * 1e3:,.0f}", f"{t['ratio_neat_python_over_ours']:.1f}x",
                     f"{t['ours_compile_s']:.0f} s", f"{t['loadavg_1m_before']:.0f} -> {t['loadavg_1m_after']:.0f}"])
    t0 = r["figures"]["timing"][0]
    text = (f"Whole generations, XOR, {t0['rounds']} alternating rounds of {t0['generations_per_round']} generations after "
            "the same untimed warm-up, medians:\n\n"
            + markdown_table(["population", "ours, ms per generation", "neat-python, ms per generation",
                              "neat-python / ours, same run", "our compile (not timed)", "load average"], rows))
    cores = r["provenance"]["device"].get("cores") or 1
    if max(loads) > 2 * cores:
        text += (f"\n**Measured on an oversubscribed machine** (load average up to {max(loads):.0f} on {cores} cores): "
                 "rerun the command idle before quoting these ratios.\n")
    return text + sources_line(results)


TABLES: dict[str, Table] = {
    "neat_problems": Table(("neat_xor", "neat_cartpole", "neat_double_pole", "neat_digits", "neat_boxes",
                            *(f"neat_dpnv_seed{s}" for s in range(10))), _neat_problems),
    "neat_quality": Table(("neat_xor_quality",), _neat_quality),
    "neat_rules": Table(("neat_rules_ablation",), _neat_rules),
    "neat_timing": Table(("neat_vs_neat_python_timing",), _neat_timing),
    "speedups": Table(("speedups_weight_sharing", "speedups_pruning_structured", "speedups_pruning_magnitude",
                       "speedups_early_stopping", "speedups_incremental"), _speedups),
    "population_training": Table(("population_training_cpu",), _population_training),
    "nb201_reinforce_lr": Table(("nb201_reinforce_lr",), _reinforce_lr),
    "nas_search_demo": Table(("nas_search_demo",), _nas_search_demo),
    "metaqnn_vs_random": Table(("metaqnn_vs_random",), search_tables.strategy_vs_random),
    "nasnet_vs_random": Table(("nasnet_vs_random",), search_tables.strategy_vs_random),
    "hierarchical_vs_random": Table(("hierarchical_vs_random",), search_tables.strategy_vs_random),
    "darts_methods": Table(("darts_methods", "darts_gdas"), darts_tables.darts_methods),
    "darts_nasnet": Table(("darts_nasnet",), darts_tables.darts_nasnet),
    "macro_front": Table(("macro_front",), detection_tables.macro_front),
    "detection_search": Table(("detection_search",), detection_tables.detection_search),
    "mtl_losses": Table(("mtl",), mtl_tables.losses),
    "mtl_demo_losses": Table(("mtl_demo",), mtl_tables.losses),
    "mtl_oversampling": Table(("mtl",), mtl_tables.oversampling),
    "mtl_freezing": Table(("mtl",), mtl_tables.freezing),
    "mtl_sparsity": Table(("mtl",), mtl_tables.sparsity),
    "stylegan_seeds": Table(tuple(f"stylegan_seed{s}" for s in range(3)), gan_tables.stylegan_seeds),
    "stylegan_mapping": Table(("stylegan_seed0",), gan_tables.stylegan_mapping),
    "cyclegan": Table(("cyclegan_tint", "cyclegan_invert", "cyclegan_invert_identity"), gan_tables.cyclegan),
    "nb201_protocol": Table(("nb201_protocol_seed3", "nb201_protocol_seed4", "nb201_protocol_seed5"), _table_protocol),
    "macro_protocol": Table(("macro_protocol_seed3", "macro_protocol_seed4", "macro_protocol_seed5"), _table_protocol),
}


def render(name: str, results_dir: Path | None = None) -> str:
    """The Markdown of table `name` from the results files it reads."""
    table = TABLES[name]
    return table.render({src: load_result(src, results_dir) for src in table.sources})


def update(text: str, results_dir: Path | None = None, only: Sequence[str] | None = None) -> str:
    """`text` with every generated block's body (or those named in `only`) replaced by its rendering; unknown names
    are an error."""
    def body(m: re.Match[str]) -> str:
        name = m.group("name")
        if name not in TABLES:
            raise KeyError(f"README block {name!r} has no table in experiments/readme_tables.py (known: {sorted(TABLES)})")
        if only is not None and name not in only:
            return m.group(0)
        return m.group(1) + render(name, results_dir) + m.group(4)

    return _BLOCK.sub(body, text)


def blocks(text: str) -> dict[str, str]:
    """The generated blocks in `text`: name -> body, in order."""
    return {m.group("name"): m.group("body") for m in _BLOCK.finditer(text)}


def problems(text: str, results_dir: Path | None = None) -> list[str]:
    """What keeps `text` from being its own regeneration: blocks out of date, tables without a block."""
    found = blocks(text)
    out = [f"out of date: {n}" for n, body in found.items() if n in TABLES and body != render(n, results_dir)]
    out += [f"unknown block: {n}" for n in found if n not in TABLES]
    out += [f"missing block: {n}" for n in TABLES if n not in found]
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only compare; exit 1 if README.md is out of date")
    parser.add_argument("--readme", type=Path, default=README)
    parser.add_argument("--only", default="", help="comma-separated table names to regenerate (default: all)")
    args = parser.parse_args(argv)
    only = [n for n in args.only.split(",") if n] or None
    text = args.readme.read_text()
    try:
        if args.check:
            found = problems(text)
            for problem in found:
                print(f"{args.readme} {problem} (run python -m experiments.readme_tables)", file=sys.stderr)
            return 1 if found else 0
        new = update(text, only=only)
    except FileNotFoundError as err:
        print(f"error: {err.filename} not found: run the command that writes it (see the README beside the table)",
              file=sys.stderr)
        return 2
    args.readme.write_text(new)
    for n in sorted(set(TABLES) - set(blocks(new))):
        print(f"note: table {n} has no block in {args.readme}", file=sys.stderr)
    print(f"{args.readme}: {len(blocks(new))} generated blocks from {RESULTS_DIR}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
