"""Image grids for reports: many (H, W, C) images in [0, 1] tiled into one picture, gray or RGB."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np

from jaxnas.common.report import Report


def grid(images: np.ndarray, rows: int) -> np.ndarray:
    """(N, H, W, C) -> one (rows * H, cols * W, C) image, filled row by row (cols = N // rows)."""
    n, h, w, c = images.shape
    cols = n // rows
    return images[: rows * cols].reshape(rows, cols, h, w, c).transpose(0, 2, 1, 3, 4).reshape(rows * h, cols * w, c)


def show(report: Report, image: np.ndarray, name: str, caption: str, title: str = "",
         rows: Sequence[str] = (), cols: Sequence[str] = ()) -> None:
    """Adds one tiled image (H, W, 1 or 3) in [0, 1] to the report as `name`, with `rows` written left of the
    grid's rows and `cols` above its columns (one label per tile row / column, or none)."""
    fig, ax = plt.subplots(figsize=(6 + 1.2 * bool(rows), 6 * image.shape[0] / image.shape[1] + 0.4 * bool(cols)))
    gray = image.shape[-1] == 1
    ax.imshow(image[..., 0] if gray else image, cmap="gray" if gray else None, vmin=0, vmax=1, interpolation="nearest")
    label_axes(ax, image.shape[:2], rows, cols)
    ax.set_title(title)
    report.figure(fig, name, caption)


def label_axes(ax: plt.Axes, size: tuple[int, int], rows: Sequence[str] = (), cols: Sequence[str] = ()) -> None:
    """Axis labels at the centres of a grid's tile rows / columns (an image of `size` = (H, W) pixels); the frame
    and tick marks hidden. A label count that does not match the grid is an error (a mislabelled picture)."""
    for spine in ax.spines.values():
        spine.set_visible(False)
    ax.tick_params(length=0, labelsize=8)
    for labels, extent, set_ticks in ((rows, size[0], ax.set_yticks), (cols, size[1], ax.set_xticks)):
        if not labels:
            set_ticks([])
            continue
        step = extent / len(labels)
        if step != int(step):
            raise ValueError(f"{len(labels)} labels for a grid of {extent} pixels: not one per tile")
        set_ticks([step * (i + 0.5) - 0.5 for i in range(len(labels))], list(labels))
    ax.xaxis.tick_top()
