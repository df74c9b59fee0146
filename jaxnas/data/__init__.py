"""Datasets as NumPy arrays, loaded offline.

`load_images` returns an `ImageDataset` (train / valid / test, (N, H, W, C) float32 in [0, 1]) from the
embedded sklearn digits (served through a local TFDS builder), a user `.npz` file, or an already
prepared TFDS catalogue dataset. `DATASETS` maps the embedded source names to their loaders.
"""

from jaxnas.data.images import DATASETS, ImageDataset, load_images, resize_images, stratified_split

__all__ = ["DATASETS", "ImageDataset", "load_images", "resize_images", "stratified_split"]
