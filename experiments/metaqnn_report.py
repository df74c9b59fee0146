"""The MetaQNN part of a search report (issue 22): the top-5 networks as a table and drawn layer by layer, and
the Q-values of the first two layers as a heat map (Q-learning only)."""

from __future__ import annotations

import os
from typing import Any

import jax.numpy as jnp
import numpy as np

from jaxnas.common.report import Report
from jaxnas.search.trained import History
from jaxnas.spaces import metaqnn

COLORS = {"conv": "#6baed6", "pool": "#fd8d3c", "fc": "#74c476", "gap": "#9e9ac8", "end": "#bdbdbd"}


def top(hist: History, k: int = 5) -> list[int]:
    """Indices of the k best validation accuracies (NaN last; a repeated architecture once)."""
    order = np.argsort(-np.where(np.isnan(hist.valid_acc), -np.inf, hist.valid_acc), kind="stable")
    seen, out = set(), []
    for i in order:
        key = tuple(hist.archs[i])
        if key not in seen:
            seen.add(key)
            out.append(int(i))
        if len(out) == k:
            break
    return out


def _layer_names(space) -> list[str]:
    if space.name == "metaqnn":
        lay = metaqnn.layers_of(space)
        return [lay.name(i) for i in range(space.num_choices)]
    return [str(i) for i in range(space.num_choices)]


def plot_chains(space, hist: History, rows: list[int]):
    """The chosen networks drawn as chains of boxes, input on the left."""
    import matplotlib.pyplot as plt

    lay = metaqnn.layers_of(space)
    fig, ax = plt.subplots(figsize=(10, 0.7 * len(rows) + 0.6))
    for r, i in enumerate(rows):
        ids = hist.archs[i][:metaqnn.depth(hist.archs[i]) + 1]
        y = len(rows) - 1 - r
        ax.text(-0.2, y, f"{100 * hist.valid_acc[i]:.1f}%", ha="right", va="center", fontsize=9)
        for j, layer_id in enumerate(ids):
            kind = lay.table[int(layer_id)][0]
            ax.add_patch(plt.Rectangle((j * 1.25, y - 0.3), 1.1, 0.6, color=COLORS[kind]))
            ax.text(j * 1.25 + 0.55, y, lay.name(int(layer_id)).replace(",1)", ")"), ha="center", va="center", fontsize=7)
            if j:
                ax.annotate("", (j * 1.25, y), (j * 1.25 - 0.15, y), arrowprops={"arrowstyle": "->", "lw": 0.8})
    width = max(metaqnn.depth(hist.archs[i]) + 1 for i in rows) * 1.25
    ax.set_xlim(-1.2, width)
    ax.set_ylim(-0.6, len(rows) - 0.4)
    ax.axis("off")
    return fig


def plot_q(space, strategy, state, hist: History):
    """Q(s, a) at the first layer (the start state) and the second (one row per first layer the search tried)."""
    import matplotlib.pyplot as plt

    agent = space.states()
    names = _layer_names(space)
    archs = jnp.asarray(hist.archs)
    rows, labels, masks = [], [], []
    start = np.asarray(agent.index(archs[:1], 0))[0]
    rows.append(np.asarray(state.q[start]))
    masks.append(np.asarray(space.position_mask(archs[:1], 0))[0])
    labels.append("layer 1 (start)")
    firsts = sorted({int(a) for a in np.asarray(hist.archs[:, 0])}) if space.num_positions > 1 else []
    for first in firsts:
        arch = np.zeros((1, space.num_positions), np.int32)
        arch[0, 0] = first
        if agent.decisions is not None and int(np.asarray(agent.decisions(jnp.asarray(arch)))[0]) < 2:
            continue  # the chain ended at the first layer: no second decision
        rows.append(np.asarray(state.q[np.asarray(agent.index(jnp.asarray(arch), 1))[0]]))
        masks.append(np.asarray(space.position_mask(jnp.asarray(arch), 1))[0])
        labels.append(f"layer 2 after {names[first]}")
    q = np.where(np.array(masks), np.array(rows), np.nan)
    cols = np.flatnonzero(np.array(masks).any(0))
    fig, ax = plt.subplots(figsize=(0.45 * len(cols) + 3, 0.32 * len(rows) + 1.8))
    im = ax.imshow(q[:, cols], cmap="viridis", aspect="auto")
    ax.set_xticks(range(len(cols)), [names[c] for c in cols], rotation=70, fontsize=7)
    ax.set_yticks(range(len(rows)), labels, fontsize=7)
    fig.colorbar(im, ax=ax, label=f"Q (initial {strategy.initial_q:g}; blank: not allowed)")
    fig.tight_layout()
    return fig


def add_metaqnn_report(report: Report, workdir: str, space, hist: History, strategy: Any, state: Any) -> None:
    """Appends the top-5 table, the drawn networks (MetaQNN space) and the Q heat map (Q-learning) to `report`."""
    best = top(hist)
    report.table([{"rank": r + 1, "architecture": space.to_string(hist.archs[i]), "evaluation": i + 1,
                   "valid %": 100 * float(hist.valid_acc[i]), "test %": 100 * float(hist.test_acc[i])}
                  for r, i in enumerate(best)])
    rel = lambda name: os.path.relpath(os.path.join(workdir, name), report.workdir)  # noqa: E731
    if space.name == "metaqnn":
        report.figure(plot_chains(space, hist, best), rel("best_networks.png"),
                      "The five best networks, layer by layer (validation accuracy on the left).")
    if hasattr(state, "q"):
        report.figure(plot_q(space, strategy, state, hist), rel("q_values.png"),
                      "Q-values after the search: the first layer, and the second after each first layer tried.")
