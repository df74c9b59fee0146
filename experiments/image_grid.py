"""Image grids for reports: many (H, W, C) images in [0, 1] tiled into one picture, gray or RGB."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from jaxnas.common.report import Report


def grid(images: np.ndarray, rows: int) -> np.ndarray:
    """(N, H, W, C) -> one (rows * H, cols * W, C) image, filled row by row (cols = N // rows)."""
    n, h, w, c = images.shape
    cols = n // rows
    return images[: rows * cols].reshape(rows, cols, h, w, c).transpose(0, 2, 1, 3, 4).reshape(rows * h, cols * w, c)


def show(report: Report, image: np.ndarray, name: str, caption: str, title: str = "") -> None:
    """Adds one tiled image (H, W, 1 or 3) in [0, 1] to the report as `name`."""
    fig, ax = plt.subplots(figsize=(6, 6 * image.shape[0] / image.shape[1]))
    gray = image.shape[-1] == 1
    ax.imshow(image[..., 0] if gray else image, cmap="gray" if gray else None, vmin=0, vmax=1, interpolation="nearest")
    ax.set_axis_off()
    ax.set_title(title)
    report.figure(fig, name, caption)
