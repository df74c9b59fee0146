"""Tables, plots and the computed verdicts of the multi-task experiment's report (`experiments.mtl`)."""

from __future__ import annotations

from typing import Any

import matplotlib.pyplot as plt
import numpy as np

from jaxnas.common.report import Report
from mtl.sparsity import plot_sharing


def _fmt(mean: float, std: float) -> str:
    return f"{mean:.3f} ± {std:.3f}"


def report_all(report: Report, workdir: str, results: dict[str, Any], setup: Any, config: Any) -> None:
    tasks = [t.name for t in setup.tasks]
    report.heading("Multi-task learning: a shared pretrained encoder, a head per task, imbalanced labels")
    report.text(
        f"Encoder: MiniLM-L6 ({'pretrained' if config.encoder.pretrained else 'random init'}, {config.encoder.pooling}"
        f" pooling), one {'linear' if not config.head.hidden else f'{config.head.hidden}-unit MLP'} head per task "
        f"(hard parameter sharing). Data: {config.data.source}; test-set figures; device: {results['device']}.")
    rows = []
    for t in tasks:
        d = results["data"][t]
        for c, tr, te in zip(d["classes"], d["train_counts"], d["test_counts"]):
            rows.append({"task": t, "class": c, "train": tr, "train share": f"{tr / max(sum(d['train_counts']), 1):.1%}",
                         "test": te})
    report.table(rows)
    _losses(report, workdir, results, tasks, config)
    if "oversampling" in results:
        _oversampling(report, results, tasks)
    if results.get("freezing"):
        _freezing(report, results, tasks, config)
    if "sparsity" in results:
        _sparsity(report, results, tasks, config)


def _losses(report: Report, workdir: str, results: dict[str, Any], tasks: list[str], config: Any) -> None:
    losses = results["losses"]
    report.heading(f"Imbalance handled in the model: four losses, {results['seeds']} seeds each "
                   f"(freeze={results['freeze']}, {config.train.steps} steps)", 3)
    rows = []
    for name, per_task in losses.items():
        row = {"loss": name}
        for t in tasks:
            s = per_task[t]
            row[f"{t} macro-F1"] = _fmt(s["macro_f1"], s["macro_f1_std"])
            row[f"{t} accuracy"] = _fmt(s["accuracy"], s["accuracy_std"])
            row[f"{t} F1 of '{s['minority_class']}'"] = f"{s['minority_f1']:.3f}"
        rows.append(row)
    report.table(rows)
    if "ce" in losses:
        lines = []
        for t in tasks:
            base = losses["ce"][t]
            better = [n for n, s in losses.items() if n != "ce" and s[t]["macro_f1"] > base["macro_f1"]
                      and s[t]["minority_f1"] > base["minority_f1"]]
            best = max(losses, key=lambda n: losses[n][t]["macro_f1"])
            lines.append(f"{t}: best macro-F1 with `{best}` ({losses[best][t]['macro_f1']:.3f} vs CE "
                         f"{base['macro_f1']:.3f}); losses that raise both macro-F1 and the F1 of the rarest class "
                         f"'{base['minority_class']}' over plain cross-entropy: {', '.join(better) or 'none'}.")
        report.text("Measured (means over seeds): " + " ".join(lines) + " Accuracy alone would hide this: it "
                    "rewards predicting the frequent classes.")
    fig, axes = plt.subplots(1, len(tasks) + 1, figsize=(4.2 * (len(tasks) + 1), 3.4))
    names = list(losses)
    for ax, t in zip(axes, tasks):
        ax.bar(names, [losses[n][t]["macro_f1"] for n in names], yerr=[losses[n][t]["macro_f1_std"] for n in names],
               color="tab:blue", alpha=0.8, capsize=4, label="macro-F1")
        ax.plot(names, [losses[n][t]["accuracy"] for n in names], "ko--", label="accuracy")
        ax.set_title(t)
        ax.set_ylim(0, 1)
        ax.tick_params(axis="x", rotation=20)
        ax.legend(loc="lower right", fontsize=8)
    t = tasks[-1]
    classes = list(losses[names[0]][t]["per_class_f1"])
    width = 0.8 / len(names)
    for i, n in enumerate(names):
        axes[-1].bar(np.arange(len(classes)) + i * width, [losses[n][t]["per_class_f1"][c] for c in classes], width,
                     label=n)
    axes[-1].set_xticks(np.arange(len(classes)) + 0.4 - width / 2, classes)
    axes[-1].set_title(f"{t}: F1 per class")
    axes[-1].legend(fontsize=8)
    report.figure(fig, "mtl_losses.png", "Macro-F1 (bars, ± std over seeds) and accuracy per loss; per-class F1.")
    conf = results["confusion"]
    fig, axes = plt.subplots(1, len(conf), figsize=(3.2 * len(conf), 3))
    for ax, (n, per_task) in zip(np.atleast_1d(axes), conf.items()):
        cm = np.asarray(per_task[t])
        ax.imshow(cm / np.maximum(cm.sum(1, keepdims=True), 1), cmap="Blues", vmin=0, vmax=1)
        for (i, j), v in np.ndenumerate(cm):
            ax.text(j, i, str(v), ha="center", va="center", fontsize=8)
        ax.set_title(n)
        ax.set_xticks(range(len(classes)), classes, rotation=30)
        ax.set_yticks(range(len(classes)), classes)
    report.figure(fig, "mtl_confusion.png", f"{t}: confusion matrices (rows: true class; first seed).")
    fig, ax = plt.subplots(figsize=(6, 3))
    for n, curve in results["loss_curves"].items():
        ax.plot(np.convolve(curve, np.ones(20) / 20, mode="valid"), label=n)
    ax.set_xlabel("step")
    ax.set_ylabel("training loss (sum over tasks, 20-step mean)")
    ax.legend()
    report.figure(fig, "mtl_loss_curves.png", "Training loss per loss function (first seed).")


def _oversampling(report: Report, results: dict[str, Any], tasks: list[str]) -> None:
    report.heading("Why not resample: balancing one task unbalances the other", 3)
    for balanced, entry in results["oversampling"].items():
        rows = []
        for other, shift in entry["shift"].items():
            row = {"task": other + (" (balanced)" if other == balanced else ""),
                   "total variation": f"{shift['total_variation']:.3f}"}
            row.update({c: f"{b:.1%} → {a:.1%}" for c, b, a in zip(shift["classes"], shift["before"], shift["after"])})
            rows.append(row)
        report.text(f"Oversampling to balance **{balanced}** ({entry['size']} sentences after resampling):")
        for row in rows:
            report.table([row])
        base, trained = results["losses"].get("ce"), entry["trained"]
        if base:
            report.text(f"CE trained on the {balanced}-balanced set: " + "; ".join(
                f"{t} macro-F1 {trained[t]['macro_f1']:.3f} (original data: {base[t]['macro_f1']:.3f})" for t in tasks)
                + ".")
    report.text("Every sentence carries both labels, so copying sentences to balance one task changes the class "
                "shares of the other (columns: before → after). The model-side remedies above reweight each "
                "task's loss separately and leave the other task's data untouched.")


def _freezing(report: Report, results: dict[str, Any], tasks: list[str], config: Any) -> None:
    f = config.freezing
    report.heading(f"Freezing strategies ({f.loss} loss, {f.steps} steps of {f.batch_size}, "
                   f"{f.train_examples} training sentences, max length {f.max_length})", 3)
    rows = [{"strategy": r["strategy"], "what trains": r["description"], "trainable params": f"{r['trainable_params']:,}",
             **{f"{t} macro-F1": f"{r[f'{t}_macro_f1']:.3f}" for t in tasks},
             "s/step": f"{r['step_seconds']:.3f}"} for r in results["freezing"]]
    report.table(rows)
    report.text("Time per step is the median over steps (compilation excluded) on this machine; with the encoder "
                "frozen its features are computed once, so a step trains the heads only.")


def _sparsity(report: Report, results: dict[str, Any], tasks: list[str], config: Any) -> None:
    s = results["sparsity"]
    report.heading("What the heads share: L1 on each head's first layer", 3)
    report.table([{k: (f"{v:.3f}" if isinstance(v, float) else v) for k, v in row.items()} for row in s["lambdas"]])
    last = s["last"]
    report.text(f"At λ={s['lambdas'][-1]['l1']:g}: {last['shared']} encoder features are read by every head "
                f"(general), " + ", ".join(f"{last['specific'][t]} by {t} only" for t in tasks)
                + f", {last['unused']} by none (Jaccard overlap {last['jaccard']:.2f}). The feature indices per "
                "head are in results.json (`sparsity.last.features`).")
    report.figure(plot_sharing(last, f"λ = {s['lambdas'][-1]['l1']:g}"), "mtl_sparsity.png",
                  "Encoder features used by each head after L1 (exact zeros from the proximal step).")
