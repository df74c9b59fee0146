"""Architecture search with real training on image data.

    python -m experiments.nas_search --config experiments/configs/nas_search.py --config.space=nb201 \
        --config.strategy=aging_evolution --config.dataset=digits --workdir runs/nas_digits

Writes `results.json` (best architecture, its validation and test accuracy, evaluations, wall time,
and the median of random architectures trained the same way), `evaluations.jsonl` (every trained
candidate), `metrics.jsonl` (per batch), `search.png`, `report.md`, and `checkpoints/`: a killed run
restarted with the same workdir resumes and ends with the uninterrupted result. Accuracies are fractions in
[0, 1] in every file; the report and the figures show percent.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import jax
import numpy as np
from ml_collections import config_dict

from experiments.builders import build_strategy
from experiments.cli import launch, prefixed
from experiments.validation import (STRATEGY_BOUNDS, Bounds, as_setting, check_bounds, check_choices, check_files,
                                    check_strings)
from jaxnas.common.errors import ConfigError, check, check_choice, check_positive
from jaxnas.common.metrics import JsonlWriter, device_summary, write_json
from jaxnas.data import load_images
from jaxnas.evaluation.population import EXECUTIONS, PopulationTrainer, TrainSettings
from jaxnas.spaces import SPACES
from jaxnas.strategies import STRATEGIES
from jaxnas.search.trained import History, run_trained_search

if TYPE_CHECKING:  # matplotlib and the report load where they are used: a refused setting need not wait ~1 s
    import matplotlib.pyplot as plt

    from jaxnas.common.report import Report

BASELINE_FIRST_ID = 1_000_000  # candidate ids (init keys) of the random baseline, apart from the search's


# Every number of configs/nas_search.py, as the user types it. The upper bounds keep a typo from planning an
# unbounded amount of training (evaluations x train.steps candidate-steps, each network channels^2 x cells wide).
BOUNDS = {
    "image_size": Bounds(int, 4, 256), "seed": Bounds(int, 0, 2**31 - 1), "evaluations": Bounds(int, 1, 10_000),
    "chunk_size": Bounds(int, 1, 1024), "baseline_random": Bounds(int, 0, 10_000),
    "network.channels": Bounds(int, 1, 512), "network.cells_per_stage": Bounds(int, 1, 16),
    "train.steps": Bounds(int, 1, 100_000), "train.batch_size": Bounds(int, 1, 4096),
    "train.learning_rate": Bounds(float, 0.0, 10.0, open_low=True), "train.momentum": Bounds(float, 0.0, 0.999),
    "train.weight_decay": Bounds(float, 0.0, 1.0), **STRATEGY_BOUNDS,
    "metaqnn.layer_limit": Bounds(int, 1, 32), "metaqnn.max_fc": Bounds(int, 0, 8),
    "metaqnn.fc_max_size": Bounds(int, 1, 256), "metaqnn.train.epochs": Bounds(int, 1, 10_000),
    "metaqnn.train.batch_size": Bounds(int, 1, 4096), "metaqnn.train.learning_rate": Bounds(float, 0.0, 10.0, open_low=True),
    "metaqnn.train.weight_decay": Bounds(float, 0.0, 1.0), "metaqnn.train.decay_epochs": Bounds(int, 1, 10_000),
    "metaqnn.train.decay_factor": Bounds(float, 0.0, 1.0, open_low=True), "metaqnn.train.restarts": Bounds(int, 0, 20),
    "metaqnn.train.restart_factor": Bounds(float, 0.0, 1.0, open_low=True),
    "metaqnn.train.restart_check_epochs": Bounds(int, 1, 10_000),
    "metaqnn.train.restart_threshold_x_chance": Bounds(float, 0.0, 100.0),
    "nasnet.B": Bounds(int, 1, 16), "nasnet.identity_prob": Bounds(float, 0.0, 1.0),
    "hierarchical.motifs": Bounds(int, 1, 64), "hierarchical.motif_nodes": Bounds(int, 2, 8),
    "hierarchical.cell_nodes": Bounds(int, 2, 8), "hierarchical.init_mutations": Bounds(int, 0, 100_000),
    **{f"{s}.network.{f}": Bounds(int, 1, b) for s in ("nasnet", "hierarchical")
       for f, b in (("channels", 512), ("cells_per_stage", 16), ("stages", 6))},
    "nasnet.network.stem_multiplier": Bounds(int, 1, 16),
}
# Spaces whose config section holds their own settings: the space's (passed to its factory), `network` (its
# network's options, replacing the top-level `network`) and, for MetaQNN, `train` (its recipe, replacing `train`).
OWN_SECTION = ("metaqnn", "nasnet", "hierarchical")
# The space settings its factory checks (`validate` builds the space), each error naming `<space>.<field>`.
SPACE_SETTINGS = {f"metaqnn.{f}" for f in ("conv_filters", "conv_sizes", "pools", "fc_widths", "layer_types")} | {
    "nasnet.ops", "hierarchical.primitives"}
# The image loader's fields, as this config names them: everything about the .npz file is `npz_path`.
LOADER_FIELDS = {"images": "npz_path", "labels": "npz_path", "npz_path": "npz_path", "size": "image_size",
                 "seed": "seed", "dataset": "dataset"}


def validate(config: config_dict.ConfigDict) -> None:
    """Checks every setting before any data is loaded or anything compiled; errors name the field as typed."""
    # Spaces with a candidate network to train; the table-only ones (NAS-Bench-Macro) run through
    # `experiments.nb201 --config.benchmark=...` instead.
    check_choice("space", config.space, [s for s in SPACES.names() if SPACES.get(s).network is not None])
    check_choice("strategy", config.strategy, STRATEGIES.names())
    for field in ("evaluations", "chunk_size", "image_size"):
        check_positive(field, config[field], integer=True)
    check(config.space != "nb201" or config.image_size % 4 == 0, "image_size",
          f"got {config.image_size}; allowed: divisible by 4 (NAS-Bench-201's two reductions)")
    if config.space in ("nasnet", "hierarchical"):  # one halving between two stages
        div = 2 ** (config[config.space].network.stages - 1)
        check(config.image_size % div == 0, "image_size", f"got {config.image_size}; allowed: divisible by {div} "
              f"({config.space}.network.stages={config[config.space].network.stages} halve it {div.bit_length() - 1} times)")
    check(isinstance(config.baseline_random, int) and config.baseline_random >= 0, "baseline_random",
          f"got {config.baseline_random}; allowed: an integer >= 0")
    for field in ("channels", "cells_per_stage"):
        check_positive(f"network.{field}", config.network[field], integer=True)
    check_bounds(config, BOUNDS)
    for name in OWN_SECTION:  # the space's own settings, checked by building it (cheap: no compilation)
        build_space(config, name)
    check_choices(config, {"progress": (True, False), "download": (True, False), "execution": EXECUTIONS})
    check_strings(config, ("dataset", "data_dir"))
    check_files(config, ("npz_path",))
    check(config.dataset != "", "dataset", "got ''; allowed: digits, npz (with npz_path) or a prepared TFDS name")
    check(not config.npz_path or config.dataset in ("digits", "npz"), "npz_path",
          f"got {config.npz_path!r} with dataset={config.dataset!r}; an .npz file is its own dataset: set dataset=npz "
          f"(or leave npz_path empty to use {config.dataset!r})")
    check(config.dataset != "npz" or bool(config.npz_path), "npz_path",
          "got ''; dataset=npz needs npz_path, a .npz file with images and labels")
    if config.strategy == "aging_evolution":  # the engine's chunk is the strategy's batch
        pop, n_dev = config.aging_evolution.population_size, jax.local_device_count()
        check_positive("aging_evolution.population_size", pop, integer=True)
        chunk = -(-config.chunk_size // n_dev) * n_dev  # as PopulationTrainer rounds it
        rounded = f" (rounded up to {chunk} for {n_dev} devices)" if chunk != config.chunk_size else ""
        check(2 * chunk <= pop, "chunk_size",
              f"got {config.chunk_size}{rounded}; aging evolution trains one chunk per batch and needs at most half "
              f"the population per batch: chunk_size <= aging_evolution.population_size / 2 ({pop // 2}), "
              f"or raise aging_evolution.population_size to >= {2 * chunk}")


def build_space(config: config_dict.ConfigDict, name: str | None = None):
    """The space `name` (default `config.space`), built for the config's image size and its section's settings
    where it has them."""
    name = name or config.space
    space = SPACES.get(name, "space")
    if name not in OWN_SECTION:
        return space
    section = {k: v for k, v in config[name].items() if k not in ("train", "network")}
    return prefixed(name, lambda: space.factory(image_size=config.image_size, **section))


def train_settings(config: config_dict.ConfigDict, n_train: int | None = None, num_classes: int = 10) -> TrainSettings:
    """The training recipe: `train`, or the space's own section (epochs -> steps of the training split; before the
    data is loaded, `n_train=None` checks the recipe with one step per epoch)."""
    if config.space not in OWN_SECTION or "train" not in config[config.space]:
        return prefixed("train", lambda: TrainSettings(**config.train.to_dict()))
    t = config[config.space].train
    check(t.restarts == 0 or t.restart_check_epochs < t.epochs, f"{config.space}.train.restart_check_epochs",
          f"got {t.restart_check_epochs} with epochs={t.epochs}; allowed: fewer than epochs (or restarts=0)")
    per_epoch = max(1, (n_train or t.batch_size) // t.batch_size)
    return prefixed(f"{config.space}.train", lambda: TrainSettings(
        steps=t.epochs * per_epoch, batch_size=t.batch_size,
        learning_rate=t.learning_rate, weight_decay=t.weight_decay, optimizer="adam", schedule="step",
        decay_steps=t.decay_epochs * per_epoch, decay_factor=t.decay_factor, restarts=t.restarts,
        restart_factor=t.restart_factor, restart_check_steps=t.restart_check_epochs * per_epoch,
        restart_threshold=t.restart_threshold_x_chance / num_classes))  # an accuracy fraction: chance is 1 / classes


def load_data(config: config_dict.ConfigDict):
    """The images the config names; the loader's errors name this config's field (`npz_path` for anything
    wrong in the .npz file: its labels, its images), keeping the loader's message."""
    try:
        return load_images(config.dataset if not config.npz_path else "npz", size=config.image_size,
                           npz_path=config.npz_path or None, data_dir=config.data_dir or None, seed=config.seed,
                           download=config.download)
    except ConfigError as err:
        raise as_setting(err, LOADER_FIELDS) from None


def plot_search(hist: History, baseline_median: float | None,
                phases: tuple[tuple[float, int], ...] | None = None) -> plt.Figure:
    """Every candidate's validation accuracy, the best so far, the random median (fractions, drawn in percent);
    `phases` (epsilon, models) shades Q-learning's epsilon schedule as the paper's Fig. 3 does."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    start, total = 0, sum(c for _, c in phases or ())
    for i, (eps, count) in enumerate(phases or ()):
        if count:
            ax.axvspan(start + 0.5, start + count + 0.5, color="0.5", alpha=0.06 + 0.1 * (i % 2), lw=0)
            if count >= 0.08 * total:  # label the phases wide enough to hold one
                ax.text(start + count / 2 + 0.5, 0.97, f"\u03b5={eps:g}", transform=ax.get_xaxis_transform(),
                        ha="center", va="top", fontsize=7, color="0.3")
        start += count
    valid = 100 * np.asarray(hist.valid_acc, np.float64)
    idx = np.arange(1, len(valid) + 1)
    ax.scatter(idx, valid, s=12, alpha=0.6, label="each trained candidate")
    best = np.fmax.accumulate(np.where(np.isnan(valid), -np.inf, valid))
    ax.step(idx, best, where="post", color="C1", label="best so far")
    if baseline_median is not None:
        ax.axhline(100 * baseline_median, color="C2", ls="--", label="median of random architectures")
    ax.set_xlabel("evaluation")
    ax.set_ylabel("validation accuracy (%)")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    return fig


def run(config: config_dict.ConfigDict, workdir: str, report: Report | None = None) -> dict[str, Any]:
    validate(config)
    space = build_space(config)
    settings = train_settings(config)  # the recipe's errors before any data is loaded
    strategy = build_strategy(config, config.strategy, space, batch_size=config.chunk_size)
    data = load_data(config)
    settings = train_settings(config, data.train_x.shape[0], data.num_classes)
    own = config[config.space] if config.space in OWN_SECTION else {"network": config.network}
    options = own["network"].to_dict() if "network" in own else {}
    field = f"{config.space}.network" if config.space in OWN_SECTION else "network"
    net = prefixed(field, lambda: space.network(num_classes=data.num_classes, **options))
    trainer = PopulationTrainer(net, data, settings, chunk_size=config.chunk_size, execution=config.execution)
    if trainer.chunk_size != config.chunk_size:  # rounded up to a multiple of the devices
        strategy = build_strategy(config, config.strategy, space, batch_size=trainer.chunk_size)
    os.makedirs(workdir, exist_ok=True)
    hist, info = run_trained_search(strategy, trainer, config.evaluations, seed=config.seed,
                                    checkpoint_dir=os.path.join(workdir, "checkpoints"),
                                    metrics_path=os.path.join(workdir, "metrics.jsonl"), progress=config.progress)
    b = hist.best()
    trained = (info["batches"] - (info["resumed_from_batch"] or 0)) * trainer.chunk_size  # evaluations this call
    baseline = None
    if config.baseline_random:
        archs = np.asarray(space.initial_sample(jax.random.fold_in(jax.random.key(config.seed), 99),
                                                (config.baseline_random,)))
        scores = trainer.score(archs, seed=config.seed, first_id=BASELINE_FIRST_ID)
        q = np.nanpercentile(scores.valid_acc, [0, 25, 50, 75, 100])
        baseline = {"n": config.baseline_random, "median_valid": float(np.nanmedian(scores.valid_acc)),
                    "median_test": float(np.nanmedian(scores.test_acc)), "max_valid": float(np.nanmax(scores.valid_acc)),
                    "valid_quartiles": [float(v) for v in q], "valid_std": float(np.nanstd(scores.valid_acc)),
                    "valid_acc": [float(v) for v in scores.valid_acc]}
    evaluations_path = os.path.join(workdir, "evaluations.jsonl")
    if os.path.exists(evaluations_path):  # a rerun rewrites it (appending would repeat every evaluation)
        os.remove(evaluations_path)
    with JsonlWriter(evaluations_path) as w:
        for i in range(len(hist.valid_acc)):
            w.write({"evaluation": i, "arch_str": space.to_string(hist.archs[i]), "valid_acc": hist.valid_acc[i],
                     "test_acc": hist.test_acc[i], "diverged": hist.diverged[i]})
    results = {
        "strategy": config.strategy, "space": config.space, "dataset": data.name, "image_shape": data.image_shape,
        "best_arch": space.to_string(hist.archs[b]), "best_valid": float(hist.valid_acc[b]),
        "best_test": float(hist.test_acc[b]), "evaluations": int(len(hist.valid_acc)),
        "diverged": int(hist.diverged.sum()), "wall_s": info["wall_s"], "resumed_from_batch": info["resumed_from_batch"],
        "random_baseline": baseline,
        "beats_random_median": None if baseline is None else bool(hist.valid_acc[b] > baseline["median_valid"]),
        # this call's throughput: a resumed run times only the batches it trained (None if none were left)
        "candidate_steps_per_s": (trained * settings.steps / info["wall_s"]) if trained else None,
        "settings": {**({config.space: config[config.space].to_dict()} if config.space in OWN_SECTION else
                        {"network": config.network.to_dict()}),
                     **({} if config.space in OWN_SECTION and "train" in config[config.space] else
                        {"train": config.train.to_dict()}),
                     "steps": settings.steps, "chunk_size": trainer.chunk_size, "execution": trainer.execution,
                     "strategy": {config.strategy: config[config.strategy].to_dict()} if config.strategy in config else {}},
        "device": device_summary(),
    }
    write_json(os.path.join(workdir, "results.json"), results)
    from jaxnas.common.report import Report

    own = report is None
    report = report or Report(workdir, "Architecture search with real training")
    report.heading(f"{config.strategy} on {data.name} ({data.image_shape[0]}x{data.image_shape[1]}), "
                   f"{results['evaluations']} trained candidates of {settings.steps} steps")
    rows = [{"": "best found by the search", "valid %": 100 * results["best_valid"],
             "test %": 100 * results["best_test"]}]
    if baseline:
        rows.append({"": f"median of {baseline['n']} random architectures", "valid %": 100 * baseline["median_valid"],
                     "test %": 100 * baseline["median_test"]})
        lo, q1, _, q3, hi = (100 * q for q in baseline["valid_quartiles"])
        rows.append({"": "random architectures: min / quartiles / max (valid %)",
                     "valid %": f"{lo:.1f} / {q1:.1f} / {q3:.1f} / {hi:.1f}", "test %": ""})
    report.table(rows)
    speed = (f"{results['candidate_steps_per_s']:.1f} candidate-steps/s" if trained
             else f"resumed after batch {info['resumed_from_batch']}: nothing left to train")
    report.text(f"Best architecture: `{results['best_arch']}`. Wall time {results['wall_s']:.0f} s "
                f"({speed}, {results['device']}).")
    phases = getattr(strategy, "schedule", None)
    report.figure(plot_search(hist, baseline and baseline["median_valid"], phases),
                  os.path.relpath(os.path.join(workdir, "search.png"), report.workdir),
                  "Validation accuracy of every trained candidate, the best so far, and the random median"
                  + (" (shaded: the epsilon phases)." if phases else "."))
    if config.space in ("nasnet", "hierarchical"):
        from experiments.genotype_pictures import add_genotype_report

        add_genotype_report(report, workdir, space, hist.archs[b],
                            caption_prefix=f"Best genotype ({100 * results['best_valid']:.1f}% valid)")
    if config.space == "metaqnn" or phases:
        from experiments.metaqnn_report import add_metaqnn_report

        add_metaqnn_report(report, workdir, space, hist, strategy, info["strategy_state"])
    if own:
        report.write()
    return results


if __name__ == "__main__":
    launch(run, os.path.join(os.path.dirname(__file__), "configs", "nas_search.py"))
