"""Report image grids: tiles placed row by row, and every row / column label at the centre of its tile."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from experiments.image_grid import grid, label_axes  # noqa: E402


def test_grid_fills_row_by_row():
    tiles = np.arange(6, dtype=np.float32).reshape(6, 1, 1, 1) * np.ones((6, 2, 3, 1), np.float32)
    out = grid(tiles, rows=2)  # 2 rows of 3 tiles, each 2 x 3 pixels
    assert out.shape == (4, 9, 1)
    assert out[0, 0, 0] == 0 and out[0, 3, 0] == 1 and out[0, 6, 0] == 2 and out[2, 0, 0] == 3 and out[3, 8, 0] == 5


def test_labels_sit_at_tile_centres_and_must_match_the_grid():
    fig, ax = plt.subplots()
    ax.imshow(np.zeros((20, 30)))
    label_axes(ax, (20, 30), rows=["a", "b"], cols=["x", "y", "z"])
    # pixel centres are at integers, so a 10-pixel tile spans -0.5..9.5 and its centre is 4.5
    assert list(ax.get_yticks()) == [4.5, 14.5] and [t.get_text() for t in ax.get_yticklabels()] == ["a", "b"]
    assert list(ax.get_xticks()) == [4.5, 14.5, 24.5] and [t.get_text() for t in ax.get_xticklabels()] == ["x", "y", "z"]
    with pytest.raises(ValueError, match="not one per tile"):
        label_axes(ax, (20, 30), rows=["a", "b", "c"])
    plt.close(fig)
