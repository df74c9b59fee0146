"""The DARTS run's report: what the search did epoch by epoch over every seed, and where it ended.

Figures (each a function of the records, testable alone): alpha's softmax per edge (DARTS's cell: per cell type
and node, the mean over the node's incoming edges) against epochs (mean over seeds, one line per op), the
NAS-Bench-201 table accuracy of each seed's derived cell against epochs, the share
of each op among the derived cells' edges against epochs, and the dominant Hessian eigenvalue where recorded.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import matplotlib.pyplot as plt
    from ml_collections import config_dict

    from jaxnas.common.report import Report

METHOD_NAMES = {"darts": "DARTS (first order)", "darts2": "DARTS (second order)", "darts_minus": "DARTS-",
                "gdas": "GDAS", "rdarts_es": "RobustDARTS early stopping (DARTS-ES)", "beta": "beta-DARTS"}


def alpha_panels(space: str, probs: np.ndarray, steps: int = 4) -> tuple[np.ndarray, list[str], tuple[str, ...]]:
    """probs (S, E, *alpha_shape) -> (S, E, panels, ops), the panels' titles and the op names: NAS-Bench-201 one
    panel per edge; DARTS's cell (`steps` intermediate nodes) one per (cell type, node), the mean of the node's
    incoming edges."""
    if space == "nb201":
        from jaxnas.spaces import nb201

        return probs, [f"edge {a} \u2192 {b}" for a, b in nb201.EDGES], nb201.OPS
    from jaxnas.models.darts_cell import DARTS_OPS, num_edges

    if probs.shape[3] != num_edges(steps):
        raise ValueError(f"probs: {probs.shape[3]} edges per cell; a cell of {steps} nodes has {num_edges(steps)}")
    panels, titles = [], []
    for c, cell in enumerate(("normal", "reduction")):
        for i in range(steps):
            panels.append(probs[:, :, c, num_edges(i):num_edges(i + 1)].mean(2))
            titles.append(f"{cell} node {2 + i} (mean of {2 + i} edges)")
    return np.stack(panels, 2), titles, DARTS_OPS


def plot_alphas(probs: np.ndarray, ops: tuple[str, ...], titles: list[str]) -> plt.Figure:
    """probs (S, E, panels, ops): one panel each, softmax(alpha) of each op against epochs (mean over seeds, band:
    min-max)."""
    import matplotlib.pyplot as plt

    cols = 3 if probs.shape[2] <= 6 else 4
    rows = -(-probs.shape[2] // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(11, 2.75 * rows), sharex=True, sharey=True, squeeze=False)
    epochs = np.arange(1, probs.shape[1] + 1)
    for e, ax in enumerate(axes.flat[:probs.shape[2]]):
        for o, name in enumerate(ops):
            p = probs[:, :, e, o]
            ax.plot(epochs, p.mean(0), color=f"C{o}", label=name)
            if p.shape[0] > 1:
                ax.fill_between(epochs, p.min(0), p.max(0), color=f"C{o}", alpha=0.12, lw=0)
        ax.set_title(titles[e], fontsize=9)
        ax.grid(alpha=0.3)
    for ax in axes[-1]:
        ax.set_xlabel("epoch")
    for ax in axes[:, 0]:
        ax.set_ylabel("softmax(\u03b1)")
    axes.flat[0].legend(fontsize=7)
    fig.tight_layout()
    return fig


def _per_seed(ax: plt.Axes, values: np.ndarray, stops: list[int | None], color: str, label: str) -> None:
    """values (S, E): one grey line per seed, a dot at each seed's early-stopping epoch, the mean in `color`."""
    epochs = np.arange(1, values.shape[1] + 1)
    for s in range(values.shape[0]):
        ax.plot(epochs, values[s], color="0.6", lw=0.8, alpha=0.7)
        if stops[s] is not None:
            ax.plot(stops[s] + 1, values[s, stops[s]], "o", color="C3", ms=5)
    ax.plot(epochs, np.nanmean(values, 0), color=color, lw=2, label=label)


def plot_table_accuracy(test: np.ndarray, stops: list[int | None]) -> plt.Figure:
    """test (S, E): the table's CIFAR-10 test accuracy (fractions, drawn in percent) of each seed's derived cell per
    epoch, the mean, and the early-stopping epochs (dots) where a rule chose one."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    _per_seed(ax, 100 * np.asarray(test, np.float64), stops, "C0", f"mean of {test.shape[0]} seeds")
    ax.set_xlabel("epoch")
    ax.set_ylabel("NAS-Bench-201 CIFAR-10 test accuracy (%)")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower left")
    return fig


def plot_op_share(share: dict[str, list[float]]) -> plt.Figure:
    """The share of each op among all derived cells' edges (over seeds) against epochs, stacked."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.5))
    names = list(share)
    values = np.array([share[n] for n in names])
    ax.stackplot(np.arange(1, values.shape[1] + 1), values, labels=names, alpha=0.85)
    ax.set_xlabel("epoch")
    ax.set_ylabel("share of edges")
    ax.set_ylim(0, 1)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    return fig


def plot_eigenvalue(eig: np.ndarray, stops: list[int | None]) -> plt.Figure:
    """eig (S, E): the dominant eigenvalue of grad^2_alpha L_val per seed and its mean; early stops (dots)."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.5))
    _per_seed(ax, eig, stops, "C1", "mean")
    ax.set_xlabel("epoch")
    ax.set_ylabel("dominant eigenvalue")
    ax.grid(alpha=0.3)
    ax.legend()
    return fig


def write_report(config: config_dict.ConfigDict, results: dict[str, Any], recs: Any, workdir: str,
                 report: Report | None = None) -> None:
    """The report's section (a new report.md in workdir unless `report` is given)."""
    from jaxnas.common.report import Report

    own = report is None
    report = report or Report(workdir, "DARTS")
    rel = lambda name: os.path.relpath(os.path.join(workdir, name), report.workdir)  # noqa: E731
    name = METHOD_NAMES[config.method]
    per_seed = results["per_seed"]
    stops = [r["stop_epoch"] for r in per_seed]
    where = {"nb201": "NAS-Bench-201", "nasnet": "DARTS's cell"}[config.space]
    if config.space == "nasnet" and config.darts.steps != 4:
        where += f" ({config.darts.steps} intermediate nodes)"
    report.heading(f"{name} on {where}, {len(per_seed)} seeds vmapped, {config.epochs} epochs ({results['dataset']})")
    summary = (f"Supernet C={config.darts.channels}, {config.darts.cells_per_stage} cell(s) per stage, batch "
               f"{config.darts.batch_size}; {results['wall_s']:.0f} s of search ({results['device']}). Final cells: "
               f"{results['mean_parameter_free_edges']:.2f} of {results['edges_per_arch']} edges parameter-free "
               "(none, skip or pool) on average")
    if results["mean_final_table_test"] is not None:
        summary += f"; table CIFAR-10 test accuracy {100 * results['mean_final_table_test']:.2f}% (mean over seeds)"
    if results["mean_scratch_valid"] is not None:
        summary += (f"; trained from scratch on {results['dataset']}: validation "
                    f"{100 * results['mean_scratch_valid']:.2f}%, test {100 * results['mean_scratch_test']:.2f}%")
    report.text(summary + f". Steps skipped for a non-finite loss or gradient: {results['skipped_steps']}.")
    if config.method == "rdarts_es":
        fired = [s for s in stops if s is not None]
        report.text(f"RobustDARTS's rule (window {config.es.window}, factor {config.es.factor}, delta {config.es.delta}, "
                    f"from epoch {config.es.start_epoch}) fired on {len(fired)} of {len(stops)} seeds"
                    + (f" (epochs {', '.join(str(s + 1) for s in fired)})" if fired else "") + "; the others keep the "
                    "last epoch's cell.")
    rows = []
    for r in per_seed:
        row = {"seed": r["seed"], "final cell": r["final_arch"], "stop epoch": "-" if r["stop_epoch"] is None
               else r["stop_epoch"] + 1, "param-free edges": r["parameter_free_edges"]}
        if "final_table_test" in r:
            row["table test %"] = 100 * r["final_table_test"]
        if "scratch_valid" in r:
            row["scratch valid %"] = 100 * float(np.mean(r["scratch_valid"]))
            row["scratch test %"] = 100 * float(np.mean(r["scratch_test"]))
        rows.append(row)
    report.table(rows)
    probs, titles, ops = alpha_panels(config.space, recs.probs, config.darts.steps)
    report.figure(plot_alphas(probs, ops, titles), rel("alphas.png"),
                  "softmax(alpha) of each op against epochs (mean over seeds; band: min to max).")
    if results["mean_table_test_by_epoch"] is not None:
        test = np.array([r["table_test"] for r in per_seed])
        report.figure(plot_table_accuracy(test, stops), rel("table_accuracy.png"),
                      "The NAS-Bench-201 (CIFAR-10) test accuracy of each seed's derived cell after every epoch.")
    report.figure(plot_op_share(results["op_share_by_epoch"]), rel("ops.png"),
                  "The share of each op among the derived cells' edges (all seeds) after every epoch.")
    if "eigenvalue" in per_seed[0]:
        report.figure(plot_eigenvalue(recs.eigenvalue, stops), rel("eigenvalue.png"),
                      "The dominant eigenvalue of the validation loss's Hessian in alpha after every epoch.")
    if own:
        report.write()
