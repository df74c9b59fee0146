"""Speed-ups for architecture search, each measured against standalone training of the same candidates.

    python -m experiments.speedups --config experiments/configs/speedups.py --config.speedup=weight_sharing \
        --workdir runs/speedups

Writes `<speed-up>.json` (accuracies as fractions in [0, 1], differences of accuracies in the same unit) and a
report whose tables, text and figures show percent.
"""

from __future__ import annotations

import dataclasses
import os
import time
from typing import Any

import jax
import matplotlib.pyplot as plt
import numpy as np
from ml_collections import config_dict

from experiments.cli import launch, prefixed
from experiments.validation import Bounds, check_bounds, check_choices, check_strings
from jaxnas.common.errors import check, check_choice
from jaxnas.common.metrics import write_json
from jaxnas.common.report import Report
from jaxnas.data import load_images
from jaxnas.evaluation.capabilities import require
from jaxnas.evaluation.early_stopping import successive_halving
from jaxnas.evaluation.incremental import grow_candidates
from jaxnas.evaluation.population import EXECUTIONS, PopulationTrainer, TrainSettings
from jaxnas.evaluation.pruning import make_pruner, prune
from jaxnas.evaluation.weight_sharing import score_inherited, train_supernet
from jaxnas.spaces import SPACES

SPEEDUPS = ("weight_sharing", "pruning", "early_stopping", "incremental")


def rank_agreement(reference: np.ndarray, proxy: np.ndarray) -> dict[str, float]:
    """Kendall tau and Spearman rho between two score vectors (NaN-safe), and top-1 agreement."""
    from scipy import stats  # here, not at the top: 0.8 s of start-up a refused setting need not wait for
    ok = np.isfinite(reference) & np.isfinite(proxy)
    tau = stats.kendalltau(reference[ok], proxy[ok]).statistic
    rho = stats.spearmanr(reference[ok], proxy[ok]).statistic
    return {"kendall_tau": float(tau), "spearman_rho": float(rho),
            "proxy_top1_reference_rank": int((reference[ok] > reference[ok][np.argmax(proxy[ok])]).sum()) + 1}


# Every numeric setting of experiments/configs/speedups.py, as the user types it; the upper bounds keep a
# typo from planning an unbounded run (and candidates >= 2: a ranking needs two).
BOUNDS = {
    "image_size": Bounds(int, 4, 256), "seed": Bounds(int, 0, 2**31 - 1), "candidates": Bounds(int, 2, 1024),
    "chunk_size": Bounds(int, 1, 1024), "network.channels": Bounds(int, 1, 512),
    "network.cells_per_stage": Bounds(int, 1, 16), "train.steps": Bounds(int, 1, 100_000),
    "train.batch_size": Bounds(int, 1, 4096), "train.learning_rate": Bounds(float, 0.0, 10.0, open_low=True),
    "train.momentum": Bounds(float, 0.0, 0.999), "train.weight_decay": Bounds(float, 0.0, 1.0),
    "weight_sharing.supernet_steps": Bounds(int, 1, 1_000_000), "pruning.sparsity": Bounds(float, 0.0, 0.99),
    "pruning.channel_fraction": Bounds(float, 0.0, 0.95, open_low=True), "pruning.prune_at": Bounds(float, 0.0, 1.0),
    "pruning.repeats": Bounds(int, 1, 20), "early_stopping.eta": Bounds(int, 2, 100),
    "early_stopping.min_steps": Bounds(int, 0, 100_000),
    "incremental.child_fraction": Bounds(float, 0.0, 1.0, open_low=True),
    "incremental.eval_points": Bounds(int, 1, 100), "incremental.lr_scale": Bounds(float, 0.0, 10.0, open_low=True),
}
CHOICES = {"speedup": SPEEDUPS, "execution": EXECUTIONS,
           "pruning.method": ("magnitude", "structured"), "pruning.mode": ("before", "during"),
           "weight_sharing.off_path": ("frozen", "decayed"), "progress": (True, False), "download": (True, False),
           "early_stopping.median_rule": (True, False)}
STRINGS = ("dataset", "data_dir")  # a dataset name is checked by load_images before anything is read


def validate(config: config_dict.ConfigDict) -> None:
    """Checks every setting before any data is loaded or anything compiled; errors name the field as typed."""
    # spaces with a candidate network to train (each speed-up also checks the network offers what it needs)
    check_choice("space", config.space, [s for s in SPACES.names() if SPACES.get(s).network is not None])
    check_choices(config, CHOICES)
    check_strings(config, STRINGS)
    check(config.dataset != "", "dataset", "got ''; allowed: a dataset name (digits, npz, or a prepared TFDS name)")
    check_bounds(config, BOUNDS)
    check(config.image_size % 4 == 0, "image_size", f"got {config.image_size}; allowed: a multiple of 4 (2 reductions)")
    steps = config.train.steps
    check(config.early_stopping.min_steps <= steps, "early_stopping.min_steps",
          f"got {config.early_stopping.min_steps}; allowed: 0 (= train.steps / eta^2) or at most train.steps ({steps})")
    child_steps = max(1, round(steps * config.incremental.child_fraction))
    check(config.incremental.eval_points <= child_steps, "incremental.eval_points",
          f"got {config.incremental.eval_points}; allowed: at most the child's steps ({child_steps} = train.steps x "
          f"incremental.child_fraction)")


_STANDALONE: dict[tuple, tuple[Any, float]] = {}


def standalone_scores(config: config_dict.ConfigDict, trainer: PopulationTrainer, archs: np.ndarray):
    """Full training of the candidates, the reference every speed-up is measured against, and its wall time.

    Memoised per setting within a process: the demo measures several speed-ups on the same candidates,
    and training the same reference again would repeat identical work.
    """
    key = (config.dataset, config.image_size, config.seed, str(config.network), str(config.train), archs.tobytes())
    if key not in _STANDALONE:
        start = time.perf_counter()
        scores = trainer.score(archs, seed=config.seed)
        _STANDALONE[key] = (scores, time.perf_counter() - start)
    return _STANDALONE[key]


def paired_scatter(report: Report, workdir: str, name: str, x: np.ndarray, y: np.ndarray, xlabel: str, ylabel: str,
                   title: str, caption: str) -> None:
    """One point per candidate scored two ways, with the y = x line; `x`, `y` accuracies as fractions, drawn in
    percent (the labels say %)."""
    x, y = 100 * np.asarray(x), 100 * np.asarray(y)
    fig, ax = plt.subplots(figsize=(5, 4))
    ax.scatter(x, y)
    lo, hi = float(np.nanmin([x.min(), y.min()])), float(np.nanmax([x.max(), y.max()]))
    ax.plot([lo, hi], [lo, hi], color="gray", lw=0.8)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    report.figure(fig, os.path.relpath(os.path.join(workdir, name), report.workdir), caption)


def weight_sharing(config: config_dict.ConfigDict, trainer: PopulationTrainer, archs: np.ndarray, workdir: str,
                   report: Report) -> dict[str, Any]:
    standalone, standalone_s = standalone_scores(config, trainer, archs)
    steps = config.weight_sharing.supernet_steps
    off_path = config.weight_sharing.off_path
    space = SPACES.get(config.space, "space")
    supernet, losses, train_s = train_supernet(trainer, space, steps, seed=config.seed, off_path=off_path)
    start = time.perf_counter()
    inherited = score_inherited(trainer, supernet, archs)
    score_s = time.perf_counter() - start
    out = {"speedup": "weight_sharing", "off_path": off_path, "candidates": len(archs),
           "standalone_candidate_steps": len(archs) * trainer.settings.steps, "supernet_steps": steps,
           "compute_ratio": len(archs) * trainer.settings.steps / steps,
           "standalone_wall_s": standalone_s, "supernet_wall_s": train_s + score_s,
           "wall_speedup": standalone_s / (train_s + score_s),
           "standalone_valid": standalone.valid_acc, "inherited_valid": inherited,
           **rank_agreement(standalone.valid_acc, inherited)}
    report.heading("Weight sharing: one-shot supernet, uniform single-path sampling"
                   + (" (off-path weights frozen)" if off_path == "frozen" else " (every weight decayed, for comparison)"))
    report.table([{"": "standalone training", "candidate-steps": out["standalone_candidate_steps"],
                   "wall s": standalone_s},
                  {"": "supernet + inherited-weight scoring", "candidate-steps": steps, "wall s": train_s + score_s}])
    report.text(f"Kendall tau between inherited-weight and standalone validation accuracy: "
                f"**{out['kendall_tau']:.2f}** (Spearman {out['spearman_rho']:.2f}) over {len(archs)} random "
                f"architectures; the supernet's favourite ranks {out['proxy_top1_reference_rank']} of {len(archs)} "
                f"under standalone training. Wall-clock speed-up {out['wall_speedup']:.1f}x, compute ratio "
                f"{out['compute_ratio']:.1f}x (these measurements include compilation).")
    paired_scatter(report, workdir, "weight_sharing.png", standalone.valid_acc, inherited,
                   "standalone training: validation accuracy (%)", "inherited supernet weights (%)",
                   f"Kendall tau {out['kendall_tau']:.2f}", "Each random architecture scored both ways.")
    return out


def pruning(config: config_dict.ConfigDict, trainer: PopulationTrainer, archs: np.ndarray, workdir: str,
            report: Report) -> dict[str, Any]:
    if config.pruning.method == "structured":
        return structured_pruning(config, trainer, archs, workdir, report)
    c = config.pruning
    require(trainer.model, "macs", "pruning")
    pruner = prefixed("pruning", lambda: make_pruner(c.sparsity, c.mode, trainer.settings.steps))
    pruned_trainer = PopulationTrainer(trainer.model, trainer.data, trainer.settings, chunk_size=trainer.chunk_size,
                                       execution=trainer.execution,
                                       post_update=pruner)
    dense, dense_s = standalone_scores(config, trainer, archs)
    start = time.perf_counter()
    sparse = pruned_trainer.score(archs, seed=config.seed)  # same candidates, same initial weights and batches
    sparse_s = time.perf_counter() - start
    init = jax.jit(lambda a: trainer.model.init(jax.random.key(0), trainer.data.train_x[:1], a, train=True)["params"])
    hw, model = trainer.data.train_x.shape[1], trainer.model
    macs_dense = np.array([model.macs(init(a), a, hw) for a in archs])
    macs_sparse = np.array([model.macs(prune(init(a), c.sparsity), a, hw) for a in archs])
    change = sparse.valid_acc - dense.valid_acc
    out = {"speedup": "pruning", "method": "magnitude", "sparsity": c.sparsity, "mode": c.mode, "candidates": len(archs),
           "nominal_macs_saved_fraction": float(1 - macs_sparse.sum() / macs_dense.sum()),
           "dense_wall_s_with_compile": dense_s, "pruned_wall_s_with_compile": sparse_s,
           "dense_valid_mean": float(np.nanmean(dense.valid_acc)), "pruned_valid_mean": float(np.nanmean(sparse.valid_acc)),
           "valid_change_mean": float(np.nanmean(change)), "valid_change_worst": float(np.nanmin(change)),
           "dense_valid": dense.valid_acc, "pruned_valid": sparse.valid_acc,
           **rank_agreement(dense.valid_acc, sparse.valid_acc)}
    report.heading(f"Pruning: magnitude, {c.sparsity:.0%} of every kernel, {c.mode} training")
    report.table([{"": "dense", "valid % (mean)": 100 * out["dense_valid_mean"],
                   "nominal MACs per image (mean)": float(macs_dense.mean())},
                  {"": "pruned", "valid % (mean)": 100 * out["pruned_valid_mean"],
                   "nominal MACs per image (mean)": float(macs_sparse.mean())}])
    report.text(f"{out['nominal_macs_saved_fraction']:.0%} of the nominal multiply-accumulates saved (zeros in dense kernels, "
                f"which run as before: {sparse_s:.0f} s against {dense_s:.0f} s for dense training, compilation included); "
                f"validation accuracy changes by {100 * out['valid_change_mean']:+.2f} points on average (worst "
                f"{100 * out['valid_change_worst']:+.2f}); Kendall tau between pruned and dense rankings "
                f"{out['kendall_tau']:.2f}.")
    paired_scatter(report, workdir, "pruning.png", dense.valid_acc, sparse.valid_acc,
                   "dense: validation accuracy (%)",
                   f"pruned to {c.sparsity:.0%}: validation accuracy (%)", f"Kendall tau {out['kendall_tau']:.2f}",
                   "The same candidates (same initial weights and batches), dense and pruned; grey: y = x.")
    return out


def structured_pruning(config: config_dict.ConfigDict, trainer: PopulationTrainer, archs: np.ndarray, workdir: str,
                       report: Report) -> dict[str, Any]:
    """Filter pruning (Li et al. 2017) after `prune_at` of training; the rest trains at the smaller widths.

    Both arms continue from the same dense state with the same batches; the second phase (training the
    remaining steps, then validation) is timed for the dense and the pruned candidates alternately,
    `repeats` times, after compiling both; medians are reported.
    """
    c, full = config.pruning, trainer.settings.steps
    for method in ("pruned", "prune_filters", "macs", "widths_summary"):
        require(trainer.model, method, "structured pruning")
    small_model = prefixed("pruning", lambda: trainer.model.pruned(c.channel_fraction))
    small = PopulationTrainer(small_model, trainer.data, trainer.settings, chunk_size=trainer.chunk_size,
                              execution=trainer.execution)
    n, data, key = len(archs), trainer.data, trainer.data_key(config.seed)
    first = int(round(full * c.prune_at))
    init, advance = trainer.compiled_init(total_steps=full), trainer.compiled_advance(total_steps=full)
    advance_small = small.compiled_advance(total_steps=full)
    states = trainer.run_chunked(init, (trainer.candidate_keys(config.seed, np.arange(n)), archs), (data,))
    trainer.run_chunked(advance, (states, archs), (data, key, np.int32(0)))  # compile (0 steps: validation only)
    start = time.perf_counter()
    states, _ = trainer.run_chunked(advance, (states, archs), (data, key, np.int32(first)))
    first_s = time.perf_counter() - start
    cut = jax.jit(jax.vmap(lambda s, a: trainer.model.prune_filters(s, a, c.channel_fraction)))
    pruned_states = cut(states, archs)
    small.run_chunked(advance_small, (pruned_states, archs), (data, key, np.int32(0)))  # compile
    arms = {"dense": (trainer, advance, states), "pruned": (small, advance_small, pruned_states)}
    times: dict[str, list[float]] = {"dense": [], "pruned": []}
    cpu: dict[str, list[float]] = {"dense": [], "pruned": []}  # process CPU seconds: less disturbed by other load
    acc = {}
    for r in range(c.repeats):
        for arm in (("dense", "pruned") if r % 2 == 0 else ("pruned", "dense")):  # alternate who goes first
            tr, adv, st = arms[arm]
            start, start_cpu = time.perf_counter(), time.process_time()
            _, acc[arm] = tr.run_chunked(adv, (st, archs), (data, key, np.int32(full - first)))
            times[arm].append(time.perf_counter() - start)
            cpu[arm].append(time.process_time() - start_cpu)
    hw, models = trainer.data.train_x.shape[1], {"dense": trainer.model, "pruned": small_model}
    macs = {arm: np.array([models[arm].macs(jax.tree.map(lambda x: x[i], st.params), a, hw) for i, a in enumerate(archs)])
            for arm, (_, _, st) in arms.items()}
    med = {arm: float(np.median(t)) for arm, t in times.items()}
    change = acc["pruned"] - acc["dense"]
    macs_ratio = float(macs["pruned"].sum() / macs["dense"].sum())
    out = {"speedup": "pruning", "method": "structured", "channel_fraction": c.channel_fraction,
           **small_model.widths_summary(), "dense_widths": trainer.model.widths_summary()["widths"], "candidates": n, "steps_before_pruning": first,
           "steps_after_pruning": full - first, "repeats": c.repeats,
           "macs_per_image_ratio": macs_ratio, "training_macs_saved_fraction": (1 - first / full) * (1 - macs_ratio),
           "after_pruning_wall_s_dense_median": med["dense"], "after_pruning_wall_s_pruned_median": med["pruned"],
           "after_pruning_wall_s_dense": times["dense"], "after_pruning_wall_s_pruned": times["pruned"],
           "after_pruning_wall_ratio": med["pruned"] / med["dense"], "before_pruning_wall_s": first_s,
           "after_pruning_wall_ratio_per_pair": [p / d for p, d in zip(times["pruned"], times["dense"])],
           "after_pruning_cpu_s_dense": cpu["dense"], "after_pruning_cpu_s_pruned": cpu["pruned"],
           "after_pruning_cpu_ratio": float(np.median(cpu["pruned"]) / np.median(cpu["dense"])),
           "whole_training_wall_ratio": (first_s + med["pruned"]) / (first_s + med["dense"]),
           "loadavg_1m": os.getloadavg()[0],
           "dense_valid_mean": float(np.nanmean(acc["dense"])), "pruned_valid_mean": float(np.nanmean(acc["pruned"])),
           "valid_change_mean": float(np.nanmean(change)), "valid_change_worst": float(np.nanmin(change)),
           "dense_valid": acc["dense"], "pruned_valid": acc["pruned"], **rank_agreement(acc["dense"], acc["pruned"])}
    report.heading(f"Pruning: filters by L1 norm (Li et al. 2017), {c.channel_fraction:.0%} of the channels after "
                   f"{first} of {full} steps")
    report.table([{"": arm, "stage widths": str(m.widths_summary()["widths"]), "valid % (mean)": 100 * out[f"{arm}_valid_mean"],
                   "MACs per image (mean)": float(macs[arm].mean()), f"wall s, last {full - first} steps + validation (median)": med[arm]}
                  for arm, m in (("dense", trainer.model), ("pruned", small_model))])
    report.text(f"Pruned candidates run {out['after_pruning_wall_ratio']:.2f}x the dense wall time after pruning (median of "
                f"{c.repeats} alternating runs, compiled beforehand, load average {out['loadavg_1m']:.1f}; CPU time "
                f"{out['after_pruning_cpu_ratio']:.2f}x); whole training "
                f"{out['whole_training_wall_ratio']:.2f}x. Validation accuracy changes by "
                f"{100 * out['valid_change_mean']:+.2f} points on average (worst {100 * out['valid_change_worst']:+.2f}); "
                f"Kendall tau {out['kendall_tau']:.2f}.")
    paired_scatter(report, workdir, "pruning_structured.png", acc["dense"], acc["pruned"],
                   "dense: validation accuracy (%)",
                   f"{c.channel_fraction:.0%} of channels pruned: validation accuracy (%)", f"Kendall tau {out['kendall_tau']:.2f}",
                   "The same candidates, the same dense start and batches; grey: y = x.")
    return out


def early_stopping(config: config_dict.ConfigDict, trainer: PopulationTrainer, archs: np.ndarray, workdir: str,
                   report: Report) -> dict[str, Any]:
    c = config.early_stopping
    full, full_s = standalone_scores(config, trainer, archs)
    start = time.perf_counter()
    sh = prefixed("early_stopping", lambda: successive_halving(trainer, archs, seed=config.seed, min_steps=c.min_steps or None,
                                                               eta=c.eta, median_rule=c.median_rule))
    sh_s = time.perf_counter() - start
    full_steps = len(archs) * trainer.settings.steps
    winner = int(np.argmax(sh.ranking_score()))
    out = {"speedup": "early_stopping", "candidates": len(archs), "budgets": list(sh.budgets), "eta": c.eta,
           "median_rule": c.median_rule, "full_candidate_steps": full_steps, "sh_candidate_steps": sh.candidate_steps,
           "compute_saved_fraction": 1 - sh.candidate_steps / full_steps, "full_wall_s": full_s, "sh_wall_s": sh_s,
           "winner_full_valid": float(full.valid_acc[winner]), "best_full_valid": float(np.nanmax(full.valid_acc)),
           "full_valid": full.valid_acc, "sh_score": sh.score, "sh_steps": sh.steps,
           **rank_agreement(full.valid_acc, sh.ranking_score())}
    report.heading(f"Early stopping: successive halving, eta={c.eta}, budgets {list(sh.budgets)} steps"
                   + (" + median stopping rule" if c.median_rule else ""))
    report.table([{"": "full training of every candidate", "candidate-steps": full_steps, "wall s": full_s},
                  {"": "successive halving", "candidate-steps": sh.candidate_steps, "wall s": sh_s}])
    report.text(f"{out['compute_saved_fraction']:.0%} of the training steps saved. Kendall tau between the halving order "
                f"(rung reached, then score) and full training: {out['kendall_tau']:.2f}; its winner ranks "
                f"{out['proxy_top1_reference_rank']} of {len(archs)} under full training "
                f"({100 * out['winner_full_valid']:.2f}% vs the best {100 * out['best_full_valid']:.2f}%). Wall times "
                "include compilation.")
    fig, ax = plt.subplots(figsize=(6, 4))
    for i in range(len(archs)):
        reached = np.isfinite(sh.curves[i])
        ax.plot(np.array(sh.budgets)[reached], 100 * np.asarray(sh.curves[i])[reached], marker="o", alpha=0.6)
    ax.set_xscale("log", base=c.eta)
    ax.set_xlabel("training steps (rungs)")
    ax.set_ylabel("validation accuracy (%)")
    ax.grid(alpha=0.3)
    report.figure(fig, os.path.relpath(os.path.join(workdir, "early_stopping.png"), report.workdir),
                  "Validation accuracy of each candidate at each rung it reached.")
    return out


def incremental(config: config_dict.ConfigDict, trainer: PopulationTrainer, archs: np.ndarray, workdir: str,
                report: Report) -> dict[str, Any]:
    full, pieces, model = trainer.settings.steps, config.incremental.eval_points, trainer.model
    for method in ("growable", "grow"):
        require(model, method, "incremental training")
    archs = np.array([a for a in archs if len(model.growable(a))])  # parents need a position to grow into
    check(len(archs) > 0, "candidates", f"got {config.candidates}; none of the sampled architectures can grow: "
          "allowed: more candidates (or another seed)")
    n, data, key = len(archs), trainer.data, trainer.data_key(config.seed)
    positions = np.array([model.growable(a)[0] for a in archs])
    init, advance = trainer.compiled_init(total_steps=full), trainer.compiled_advance(total_steps=full)
    parents = trainer.run_chunked(init, (trainer.candidate_keys(config.seed, np.arange(n)), archs), (data,))
    parents, parent_acc = trainer.run_chunked(advance, (parents, archs), (data, key, np.int32(full)))

    def curve(states, child_archs, adv, budget):
        points, accs, done = [], [], 0
        for p in range(1, pieces + 1):
            target = round(budget * p / pieces)
            states, acc = trainer.run_chunked(adv, (states, child_archs), (data, key, np.int32(target - done)))
            done = target
            points.append(target)
            accs.append(acc)
        return np.array(points), np.stack(accs, 1)  # (pieces,), (n, pieces)

    child_budget = max(1, round(full * config.incremental.child_fraction))
    # Children fine-tune a trained network: restarting at the full initial learning rate undoes much of what
    # the parent learned (measured: 97.1% -> 91.6% after 25 steps at lr 0.1), so they use a scaled one.
    fine_tune = dataclasses.replace(trainer.settings, learning_rate=trainer.settings.learning_rate * config.incremental.lr_scale)
    child_trainer = PopulationTrainer(trainer.model, trainer.data, fine_tune, chunk_size=trainer.chunk_size,
                                      execution=trainer.execution)
    grown, child_archs = grow_candidates(child_trainer, parents, archs, positions, np.full(n, model.grow_op), child_budget)
    grown_steps, grown_acc = curve(grown, child_archs, child_trainer.compiled_advance(total_steps=child_budget), child_budget)
    scratch = trainer.run_chunked(init, (trainer.candidate_keys(config.seed + 1, np.arange(n)), child_archs), (data,))
    scratch_steps, scratch_acc = curve(scratch, child_archs, advance, full)
    out = {"speedup": "incremental", "candidates": n, "parent_steps": full, "child_steps": child_budget,
           "child_learning_rate": fine_tune.learning_rate,
           "parent_valid_mean": float(np.nanmean(parent_acc)),
           "grown_valid_mean": float(np.nanmean(grown_acc[:, -1])), "scratch_valid_mean": float(np.nanmean(scratch_acc[:, -1])),
           "grown_curve_steps": grown_steps, "grown_curve_valid": np.nanmean(grown_acc, 0),
           "scratch_curve_steps": scratch_steps, "scratch_curve_valid": np.nanmean(scratch_acc, 0),
           "compute_saved_fraction": 1 - child_budget / full}
    report.heading(f"Incremental training: children grown from trained parents ({model.grow_description})")
    report.text(f"{n} parents trained {full} steps ({100 * out['parent_valid_mean']:.2f}% mean validation). Each child "
                f"inherits its parent's weights and trains {child_budget} steps: {100 * out['grown_valid_mean']:.2f}%, "
                f"against {100 * out['scratch_valid_mean']:.2f}% for the same child trained from scratch for {full} steps "
                f"({out['compute_saved_fraction']:.0%} fewer steps for the child).")
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(grown_steps, 100 * out["grown_curve_valid"], marker="o", label="grown from the parent")
    ax.plot(scratch_steps, 100 * out["scratch_curve_valid"], marker="o", label="from scratch")
    ax.set_xlabel("child training steps")
    ax.set_ylabel("validation accuracy (%, mean over children)")
    ax.grid(alpha=0.3)
    ax.legend()
    report.figure(fig, os.path.relpath(os.path.join(workdir, "incremental.png"), report.workdir),
                  "Accuracy against steps: a child grown from its parent and the same child from scratch.")
    return out


def run(config: config_dict.ConfigDict, workdir: str, report: Report | None = None) -> dict[str, Any]:
    validate(config)
    settings = prefixed("train", lambda: TrainSettings(**config.train.to_dict()))
    data = load_images(config.dataset, size=config.image_size, data_dir=config.data_dir or None, seed=config.seed,
                       download=config.download)
    space = SPACES.get(config.space, "space")
    net = prefixed("network", lambda: space.network(num_classes=data.num_classes, **config.network.to_dict()))
    trainer = PopulationTrainer(net, data, settings, chunk_size=config.chunk_size, execution=config.execution)
    archs = np.asarray(space.sample(jax.random.fold_in(jax.random.key(config.seed), 7), (config.candidates,)))
    own = report is None
    report = report or Report(workdir, "Making architecture search affordable")
    speedup = {"weight_sharing": weight_sharing, "pruning": pruning, "early_stopping": early_stopping,
               "incremental": incremental}[config.speedup]
    out = speedup(config, trainer, archs, workdir, report)
    name = config.speedup if config.speedup != "pruning" or config.pruning.method == "magnitude" else "pruning_structured"
    write_json(os.path.join(workdir, f"{name}.json"), out)
    if own:
        report.write()
    return {k: v for k, v in out.items() if not isinstance(v, np.ndarray)}


if __name__ == "__main__":
    launch(run, os.path.join(os.path.dirname(__file__), "configs", "speedups.py"))
