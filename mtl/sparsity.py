"""Which encoder features each task head uses, read off L1-sparsified first layers.

With an L1 penalty on each head's first layer (applied as an exact proximal step, `mtl.freezing`), a head
stops reading encoder features it does not need: their rows of the first-layer kernel become exactly
zero. Features read by every head are *general* (shared); features read by one head only are
*task-specific*. This is the sparsity view of hard parameter sharing (cf. Argyriou, Evgeniou & Pontil,
"Multi-Task Feature Learning", NeurIPS 2006, where the joint (2,1)-norm selects shared features).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import matplotlib.pyplot as plt
import numpy as np

from mtl.model import first_layer_kernel


def used_features(kernel: Any, tol: float = 0.0) -> np.ndarray:
    """(D,) bool: feature i is used when any weight in row i of the (D, H) kernel exceeds `tol` in magnitude."""
    return (np.abs(np.asarray(kernel)) > tol).any(axis=1)


def sharing_analysis(heads: Mapping[str, Any], tol: float = 0.0) -> dict[str, Any]:
    """Per-head used features, the shared set, the task-specific sets and the unused ones.

    Args:
      heads: {task: head parameters} (`mtl.model.split_params(params)[1]`).
      tol: magnitude below which a weight counts as zero (0: exact zeros only).
    """
    used = {t: used_features(first_layer_kernel(p), tol) for t, p in heads.items()}
    stack = np.stack(list(used.values()))  # (T, D)
    shared = stack.all(0)
    out: dict[str, Any] = {
        "num_features": int(stack.shape[1]),
        "shared": int(shared.sum()),
        "unused": int((~stack.any(0)).sum()),
        "used": {t: int(u.sum()) for t, u in used.items()},
        "specific": {t: int((u & (stack.sum(0) == 1)).sum()) for t, u in used.items()},
        "nonzero_weights": {t: int((np.asarray(first_layer_kernel(p)) != 0).sum()) for t, p in heads.items()},
        "masks": {t: u for t, u in used.items()},
    }
    union = stack.any(0).sum()
    out["jaccard"] = float(shared.sum() / union) if union else float("nan")
    return out


def plot_sharing(analysis: Mapping[str, Any], title: str = "") -> plt.Figure:
    """Left: shared / task-specific / unused feature counts. Right: which features each head reads."""
    masks = analysis["masks"]
    tasks = list(masks)
    stack = np.stack([masks[t] for t in tasks])  # (T, D)
    # order: shared first, then each task's specific features, then unused
    key = np.where(stack.all(0), 0, np.where(stack.any(0), 1 + np.argmax(stack, 0), len(tasks) + 1))
    order = np.argsort(key, kind="stable")
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 2.8), gridspec_kw={"width_ratios": [1, 2.5]})
    labels = ["shared"] + [f"{t} only" for t in tasks] + ["unused"]
    values = [analysis["shared"]] + [analysis["specific"][t] for t in tasks] + [analysis["unused"]]
    ax1.barh(labels, values, color=["tab:purple"] + ["tab:blue", "tab:orange", "tab:green"][: len(tasks)] + ["0.7"])
    for i, v in enumerate(values):
        ax1.text(v, i, f" {v}", va="center")
    ax1.set_xlabel(f"encoder features (of {analysis['num_features']})")
    ax2.imshow(stack[:, order], aspect="auto", cmap="Greys", interpolation="nearest")
    ax2.set_yticks(range(len(tasks)), tasks)
    ax2.set_xlabel("encoder feature (sorted: shared, task-specific, unused)")
    ax2.set_title("black = the head's first layer reads this feature (non-zero row)")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig
