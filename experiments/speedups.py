"""Speed-ups for architecture search, each measured against standalone training of the same candidates.

    python -m experiments.speedups --config experiments/configs/speedups.py --config.speedup=weight_sharing \
        --workdir runs/speedups
"""

from __future__ import annotations

import os
import time
from typing import Any

import jax
import matplotlib.pyplot as plt
import numpy as np
from ml_collections import config_dict
from scipy import stats

from experiments.cli import launch, prefixed
from jaxnas.common.errors import check_choice, check_positive
from jaxnas.common.metrics import write_json
from jaxnas.common.report import Report
from jaxnas.data import load_images
from jaxnas.evaluation.nb201_network import NB201Network
from jaxnas.evaluation.population import PopulationTrainer, TrainSettings
from jaxnas.evaluation.weight_sharing import score_inherited, train_supernet
from jaxnas.spaces import nb201

SPEEDUPS = ("weight_sharing",)


def rank_agreement(reference: np.ndarray, proxy: np.ndarray) -> dict[str, float]:
    """Kendall tau and Spearman rho between two score vectors (NaN-safe), and top-1 agreement."""
    ok = np.isfinite(reference) & np.isfinite(proxy)
    tau = stats.kendalltau(reference[ok], proxy[ok]).statistic
    rho = stats.spearmanr(reference[ok], proxy[ok]).statistic
    return {"kendall_tau": float(tau), "spearman_rho": float(rho),
            "proxy_top1_reference_rank": int((reference[ok] > reference[ok][np.argmax(proxy[ok])]).sum()) + 1}


def weight_sharing(config: config_dict.ConfigDict, trainer: PopulationTrainer, archs: np.ndarray, workdir: str,
                   report: Report) -> dict[str, Any]:
    start = time.perf_counter()
    standalone = trainer.score(archs, seed=config.seed)
    standalone_s = time.perf_counter() - start
    steps = config.weight_sharing.supernet_steps
    check_positive("weight_sharing.supernet_steps", steps, integer=True)
    supernet, losses, train_s = train_supernet(trainer, nb201.SPACE, steps, seed=config.seed)
    start = time.perf_counter()
    inherited = score_inherited(trainer, supernet, archs)
    score_s = time.perf_counter() - start
    out = {"speedup": "weight_sharing", "candidates": len(archs),
           "standalone_candidate_steps": len(archs) * trainer.settings.steps, "supernet_steps": steps,
           "compute_ratio": len(archs) * trainer.settings.steps / steps,
           "standalone_wall_s": standalone_s, "supernet_wall_s": train_s + score_s,
           "wall_speedup": standalone_s / (train_s + score_s),
           "standalone_valid": standalone.valid_acc, "inherited_valid": inherited,
           **rank_agreement(standalone.valid_acc, inherited)}
    report.heading("Weight sharing: one-shot supernet, uniform single-path sampling")
    report.table([{"": "standalone training", "candidate-steps": out["standalone_candidate_steps"],
                   "wall s": standalone_s},
                  {"": "supernet + inherited-weight scoring", "candidate-steps": steps, "wall s": train_s + score_s}])
    report.text(f"Kendall tau between inherited-weight and standalone validation accuracy: "
                f"**{out['kendall_tau']:.2f}** (Spearman {out['spearman_rho']:.2f}) over {len(archs)} random "
                f"architectures; the supernet's favourite ranks {out['proxy_top1_reference_rank']} of {len(archs)} "
                f"under standalone training. Wall-clock speed-up {out['wall_speedup']:.1f}x, compute ratio "
                f"{out['compute_ratio']:.1f}x (these measurements include compilation).")
    fig, ax = plt.subplots(figsize=(5, 4))
    ax.scatter(standalone.valid_acc, inherited)
    ax.set_xlabel("standalone training: validation accuracy (%)")
    ax.set_ylabel("inherited supernet weights (%)")
    ax.set_title(f"Kendall tau {out['kendall_tau']:.2f}")
    ax.grid(alpha=0.3)
    report.figure(fig, os.path.relpath(os.path.join(workdir, "weight_sharing.png"), report.workdir),
                  "Each random architecture scored both ways.")
    return out


def run(config: config_dict.ConfigDict, workdir: str, report: Report | None = None) -> dict[str, Any]:
    check_choice("speedup", config.speedup, SPEEDUPS)
    check_positive("candidates", config.candidates, integer=True)
    settings = prefixed("train", lambda: TrainSettings(**config.train.to_dict()))
    data = load_images(config.dataset, size=config.image_size, data_dir=config.data_dir or None, seed=config.seed)
    trainer = PopulationTrainer(NB201Network(config.network.channels, config.network.cells_per_stage, data.num_classes),
                                data, settings, chunk_size=config.chunk_size)
    archs = np.asarray(nb201.SPACE.sample(jax.random.fold_in(jax.random.key(config.seed), 7), (config.candidates,)))
    own = report is None
    report = report or Report(workdir, "Making architecture search affordable")
    out = weight_sharing(config, trainer, archs, workdir, report)
    write_json(os.path.join(workdir, f"{config.speedup}.json"), out)
    if own:
        report.write()
    return {k: v for k, v in out.items() if not isinstance(v, np.ndarray)}


if __name__ == "__main__":
    launch(run, os.path.join(os.path.dirname(__file__), "configs", "speedups.py"))
