"""Pictures of a HyperNEAT winner on the boxes task (`jaxnas.problems.hyperneat`): the substrate weights its CPPN
draws, laid out by geometry, and its answers on example trials, at the evolved 11x11 and at 33x33."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import matplotlib.pyplot as plt


def weight_tiles(weights: np.ndarray, resolution: int) -> np.ndarray:
    """(n, n) substrate weights -> (r*r, r*r) image: tile (row j, column i) holds the weights from input node (i, j)
    to every output node, itself laid out as the output sheet."""
    r = resolution
    w = weights.reshape(r, r, r, r)  # (in y, in x, out y, out x)
    return w.transpose(0, 2, 1, 3).reshape(r * r, r * r)


def plot_substrate(space: Any, genome: Any) -> plt.Figure:
    """The 121x121 expressed weights as 11x11 tiles (blue > 0, red < 0, white: not expressed)."""
    import matplotlib.pyplot as plt

    from jaxnas.problems import hyperneat as hn

    w = np.asarray(hn.substrate_weights(space, genome, hn.Substrate.sheets(hn.FIELD)))
    fig, ax = plt.subplots(figsize=(6.2, 6))
    im = ax.imshow(weight_tiles(w, hn.FIELD), cmap="bwr_r", vmin=-hn.MAX_WEIGHT, vmax=hn.MAX_WEIGHT,
                   interpolation="nearest")
    for k in range(1, hn.FIELD):
        ax.axhline(k * hn.FIELD - 0.5, color="0.6", lw=0.4)
        ax.axvline(k * hn.FIELD - 0.5, color="0.6", lw=0.4)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_xlabel("input node x (each tile: that node's weights to the 11x11 output sheet)")
    ax.set_ylabel("input node y")
    expressed = float(np.mean(w != 0))
    ax.set_title(f"substrate weights drawn by the CPPN ({expressed:.0%} of 14,641 expressed)", fontsize=10)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="weight")
    return fig


def plot_trials(space: Any, genome: Any, count: int = 4) -> plt.Figure:
    """Rows: the first `count` of every 18th trial at 11x11, then the same placements at 33x33 (the CPPN queried
    again, no evolution). Columns: the visual field; the output sheet's activation with the answer (x) and the
    large box's centre (o)."""
    import jax.numpy as jnp
    import matplotlib.pyplot as plt

    from jaxnas.problems import hyperneat as hn

    fig, axes = plt.subplots(2 * count, 2, figsize=(5, 2.4 * 2 * count), squeeze=False)
    row = 0
    for scale in (1, 3):
        field = hn.FIELD * scale
        images, targets = hn.boxes_trials(scale)
        w = hn.substrate_weights(space, genome, hn.Substrate.sheets(field))
        act = np.asarray(jnp.asarray(images) @ w)
        for t in range(0, 18 * count, 18):
            pick = int(np.argmax(act[t]))
            left, right = axes[row]
            left.imshow(images[t].reshape(field, field), cmap="gray_r", vmin=0, vmax=1)
            left.set_title(f"{field}x{field} field, trial {t}", fontsize=8)
            right.imshow(act[t].reshape(field, field), cmap="viridis")
            right.plot(targets[t, 0], targets[t, 1], "o", mfc="none", mec="white", ms=10, mew=1.5)
            right.plot(pick % field, pick // field, "x", color="red", ms=8, mew=2)
            d = float(np.hypot(pick % field - targets[t, 0], pick // field - targets[t, 1]))
            right.set_title(f"output sheet: answer x, large box o (d = {d:.1f})", fontsize=8)
            for ax in (left, right):
                ax.set_xticks([])
                ax.set_yticks([])
            row += 1
    fig.tight_layout()
    return fig


def pictures(space: Any, genome: Any) -> list[tuple[Any, str, str]]:
    """(figure, file name, caption) of each picture the NEAT report adds for the boxes task."""
    return [(plot_substrate(space, genome), "substrate_weights.png",
             "The winner's substrate: weights from each input node (tile) to the output sheet, as its CPPN draws "
             "them."),
            (plot_trials(space, genome), "boxes_trials.png",
             "The winner on example trials at the evolved 11x11 and, queried again without evolution, at 33x33.")]


__all__ = ["weight_tiles", "plot_substrate", "plot_trials", "pictures"]
