"""Image classification datasets as NumPy arrays: train / valid / test splits in (N, H, W, C) float32.

Sources (`load_images(name=...)`):

* `"digits"` (default, offline): sklearn's 1,797 8x8 handwritten digits, served through a local TFDS
  builder prepared once into a cache folder (see `jaxnas.data.tfds_source`).
* `"npz"` (or `npz_path=...`): a user file with `images` (N, H, W) or (N, H, W, C) in [0, 1] and `labels` (N,);
  `labels` may be left out where the caller allows it (`labels_required=False`, e.g. for GAN training):
  the dataset then has one class and `labeled=False`. Labels are mapped to the classes present (sorted distinct
  values -> 0..K-1, kept in `class_labels`) and their number is bounded (`jaxnas.data.labels`).
* a TFDS catalogue name (`"mnist"`, `"fashion_mnist"`, `"cifar10"`, ...), read when prepared on disk in the
  array_record format; an unprepared one fails at once, unless `download=True` lets TFDS fetch and prepare it.

Images are resized to `size` x `size` with a bilinear (triangle) filter, antialiased when shrinking,
exactly as `jax.image.resize(..., "linear")` (non-square images are first cropped to their centre square),
and split deterministically and stratified by class. Catalogue datasets without a class label (celeb_a)
load, as one class, for callers that pass `labels_required=False`.
Batching is left to the training engine.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from collections.abc import Callable

import numpy as np

from jaxnas.common.errors import ConfigError, check, check_choice, check_positive, check_range
from jaxnas.common.registry import Registry
from jaxnas.data import tfds_source
from jaxnas.data.labels import index_labels

NPZ_FORMAT = "arrays 'images' (N,H,W) or (N,H,W,C) floats in [0, 1] and 'labels' (N,) non-negative integers"


@dataclasses.dataclass(frozen=True, eq=False)
class ImageDataset:
    """Three splits of one image classification dataset.

    Attributes:
      name: the source (`"digits"`, `"npz"`, or a TFDS catalogue name).
      num_classes: number of classes; labels lie in [0, num_classes).
      train_x, valid_x, test_x: images, (N, H, W, C) float32 in [0, 1].
      train_y, valid_y, test_y: labels, (N,) int32 (all zero when `labeled` is False).
      labeled: False for an unlabeled `.npz` loaded with `labels_required=False`.
      class_labels: the source's label of each class: class `i` was label `class_labels[i]` in the file (a
        `.npz`'s labels are mapped to the classes present); 0..num_classes-1 for digits and catalogue data.
    """

    name: str
    num_classes: int
    train_x: np.ndarray
    train_y: np.ndarray
    valid_x: np.ndarray
    valid_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray
    labeled: bool = True
    class_labels: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if not self.class_labels:
            object.__setattr__(self, "class_labels", tuple(range(self.num_classes)))

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(H, W, C) of every image."""
        return tuple(int(d) for d in self.train_x.shape[1:])  # type: ignore[return-value]

    def __repr__(self) -> str:
        return (
            f"ImageDataset(name={self.name!r}, num_classes={self.num_classes}, image_shape={self.image_shape}, "
            f"train={len(self.train_y)}, valid={len(self.valid_y)}, test={len(self.test_y)})"
        )


@dataclasses.dataclass
class _Loaded:
    """A source after conversion, before splitting; `test_*` is set when the source has its own test split."""

    num_classes: int
    images: np.ndarray
    labels: np.ndarray
    test_images: np.ndarray | None = None
    test_labels: np.ndarray | None = None
    labeled: bool = True
    class_labels: tuple[int, ...] = ()  # empty: 0..num_classes-1


Convert = Callable[[np.ndarray], np.ndarray]
Loader = Callable[..., _Loaded]
DATASETS: Registry[Loader] = Registry("dataset")
"""Embedded sources by name; each loader takes `(*, data_dir, npz_path, convert)`. Catalogue names are
looked up in TFDS after these."""


@functools.cache
def _resize_matrix(n_in: int, n_out: int) -> np.ndarray:
    """The (n_out, n_in) matrix of 1-D linear resizing, taken from `jax.image.resize` itself."""
    import jax

    eye = np.eye(n_in, dtype=np.float32)
    return np.asarray(jax.image.resize(eye, (n_out, n_in), method="linear"), dtype=np.float32)


def resize_images(images: np.ndarray, size: int) -> np.ndarray:
    """Resizes (N, H, W, C) images to (N, size, size, C), bilinear, antialiased when shrinking.

    Equals `jax.image.resize(images, (N, size, size, C), "linear")` (the filter is separable, so it is
    applied as two small matrix products in NumPy), clipped to [0, 1] against rounding.
    """
    n, h, w, c = images.shape
    out = images.astype(np.float32, copy=False)
    if h != size:
        out = np.einsum("sh,nhwc->nswc", _resize_matrix(h, size), out)
    if w != size:
        out = np.einsum("tw,nhwc->nhtc", _resize_matrix(w, size), out)
    return np.clip(out, 0.0, 1.0).astype(np.float32, copy=False)


def _make_convert(size: int | None, channels: int | None) -> Convert:
    """Returns the per-chunk transform: channel conversion, then resizing."""

    def convert(x: np.ndarray) -> np.ndarray:
        if x.ndim == 3:
            x = x[..., None]
        if channels is not None and x.shape[-1] != channels:
            if x.shape[-1] == 3 and channels == 1:
                x = x.mean(axis=-1, keepdims=True)
            elif x.shape[-1] == 1 and channels == 3:
                x = np.repeat(x, 3, axis=-1)
            else:
                raise ConfigError(
                    "channels", f"cannot convert {x.shape[-1]}-channel images to {channels}; allowed: 1 <-> 3"
                )
        if size is not None:
            h, w = x.shape[1:3]
            if h != w:  # centre square crop first, so faces/objects are not squashed (e.g. celeb_a 218x178)
                m = min(h, w)
                x = x[:, (h - m) // 2 : (h - m) // 2 + m, (w - m) // 2 : (w - m) // 2 + m]
            x = resize_images(x, size)
        return np.ascontiguousarray(x, dtype=np.float32)

    return convert


def stratified_split(
    labels: np.ndarray, fractions: tuple[float, ...], seed: int
) -> list[np.ndarray]:
    """Splits indices of `labels` into `len(fractions) + 1` shuffled parts, class by class.

    Part `k` gets `round(n_c * fractions[k])` examples of each class `c` (at least one when the fraction is
    > 0), and the first part keeps the rest (at least one). A class with at least `len(fractions) + 1`
    examples is therefore present in every part with a nonzero fraction. Same seed, same split.
    """
    rng = np.random.default_rng(seed)
    parts: list[list[np.ndarray]] = [[] for _ in range(len(fractions) + 1)]
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        counts = [max(int(round(len(idx) * f)), 1 if f > 0 else 0) for f in fractions]
        while sum(counts) >= len(idx) and any(counts):  # leave at least one example for the first part
            counts[int(np.argmax(counts))] -= 1
        start = len(idx) - sum(counts)
        parts[0].append(idx[:start])
        for k, count in enumerate(counts):
            parts[k + 1].append(idx[start : start + count])
            start += count
    return [rng.permutation(np.concatenate(p)) if p else np.empty(0, np.int64) for p in parts]


@DATASETS.register("digits")
def _load_digits(*, data_dir: str | None, npz_path: str | None, convert: Convert) -> _Loaded:
    """sklearn digits through the local TFDS builder, in sklearn's order."""
    del npz_path
    builder = tfds_source.digits_builder(tfds_source.resolve_data_dir(data_dir))
    source = builder.as_data_source(split="train")
    images, labels = tfds_source.read_split(
        source, "image", "label", tfds_source.DIGITS_SCALE, convert, order_key="index"
    )
    return _Loaded(10, images, labels)


@DATASETS.register("npz")
def _load_npz(*, data_dir: str | None, npz_path: str | None, convert: Convert, labels_required: bool = True) -> _Loaded:
    """A user `.npz` file; every problem raises `ConfigError` naming `npz_path`, `images` or `labels`."""
    del data_dir
    check(npz_path is not None, "npz_path", f"required with name='npz': a .npz file with {NPZ_FORMAT}")
    check(os.path.isfile(npz_path), "npz_path", f"file not found: {npz_path!r}; expected a .npz file with {NPZ_FORMAT}")
    try:
        with np.load(npz_path, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in archive.files}
    except Exception as err:  # noqa: BLE001 - any unreadable file is a config problem
        raise ConfigError("npz_path", f"cannot read {npz_path!r} as .npz ({err}); expected {NPZ_FORMAT}") from err
    for key in ("images", "labels") if labels_required else ("images",):
        check(key in arrays, key, f"missing from {npz_path!r} (found: {sorted(arrays)}); expected {NPZ_FORMAT}")
    images = arrays["images"]
    check(images.ndim in (3, 4), "images", f"got shape {images.shape}; allowed: (N,H,W) or (N,H,W,C)")
    check(images.shape[0] > 0 and all(d > 0 for d in images.shape), "images", f"got empty shape {images.shape}")
    real = np.issubdtype(images.dtype, np.number) and not np.iscomplexobj(images)
    check(real, "images", f"got dtype {images.dtype}; allowed: real numbers in [0, 1]")
    images = images.astype(np.float32)
    if not np.all((images >= 0) & (images <= 1)):
        found = "NaN" if np.isnan(images).any() else f"min {images.min():.4g}, max {images.max():.4g}"
        raise ConfigError("images", f"values must lie in [0, 1] (found {found}); divide uint8 pixels by 255")
    if "labels" not in arrays:
        return _Loaded(1, convert(images), np.zeros(len(images), np.int32), labeled=False)
    labels, where = arrays["labels"], repr(npz_path)
    check(labels.ndim == 1, "labels", f"{where}: got shape {labels.shape}; allowed: (N,)")
    check(len(labels) == len(images), "labels",
          f"{where}: got {len(labels)} labels for {len(images)} images; allowed: one per image")
    floating = np.issubdtype(labels.dtype, np.floating)
    whole = np.isfinite(labels) & (labels == np.round(labels)) & (np.abs(labels) < 2.0**62) if floating else None
    if not (np.issubdtype(labels.dtype, np.integer) or (floating and bool(np.all(whole)))):
        bad = (labels[np.argmin(whole)] if floating else labels[0]).item()
        raise ConfigError("labels", f"{where}: got dtype {labels.dtype} with non-integer values (e.g. {bad!r}); "
                          "must be integers >= 0")
    labels = labels.astype(np.int64)
    check(bool(np.all(labels >= 0)), "labels", f"{where}: got a negative label ({labels.min()}); allowed: integers >= 0")
    check(len(np.unique(labels)) >= 2, "labels", f"{where}: found {len(np.unique(labels))} distinct class(es); "
          "need at least 2")
    indices, class_labels = index_labels(labels, "labels", f"{where}, array 'labels'")
    return _Loaded(len(class_labels), convert(images), indices, class_labels=class_labels)


def _load_catalogue(name: str, data_dir: str | None, convert: Convert, labels_required: bool = True,
                    download: bool = False) -> _Loaded:
    """A prepared TFDS catalogue dataset: `train` split (+ `test` if present), read as array_record.

    Without a class label (e.g. celeb_a) it loads only when `labels_required` is False, as one class."""
    builder = tfds_source.prepared_catalogue_builder(name, tfds_source.catalogue_search_dirs(data_dir), download)
    info = builder.info
    image_key, label_key = info.supervised_keys or ("image", "label")
    hint = tfds_source.prepare_hint(name, os.fspath(builder.data_dir_root))
    check(image_key in info.features, "dataset", f"{name!r} has features {list(info.features)}; need an image")
    labeled = label_key in info.features and hasattr(info.features[label_key], "num_classes")
    check(labeled or not labels_required, "dataset",
          f"{name!r} has features {list(info.features)}; need an image and a class label (supervised_keys)")
    image_feature = info.features[image_key]
    shape = tuple(getattr(image_feature, "shape", ()) or ())
    check(len(shape) in (2, 3) and None not in shape, "dataset",
          f"{name!r} images have shape {shape}; only fixed-size (H,W[,C]) images are supported (or use npz_path)")
    check("train" in info.splits, "dataset", f"{name!r} has no 'train' split (splits: {list(info.splits)})")
    num_classes = info.features[label_key].num_classes if labeled else 1
    label_key = label_key if labeled else None
    dtype = np.dtype(getattr(image_feature, "np_dtype", np.uint8))
    scale = 255.0 if dtype == np.uint8 else 1.0
    try:
        sources = {s: builder.as_data_source(split=s) for s in ("train", "test") if s in info.splits}
    except Exception as err:  # noqa: BLE001 - typically files prepared as tfrecord by tfds.load
        raise ConfigError("dataset", f"cannot read {name!r} without TensorFlow ({err}); it must be prepared "
                          f"in the array_record format. {hint}") from err
    images, labels = tfds_source.read_split(sources["train"], image_key, label_key, scale, convert)
    loaded = _Loaded(int(num_classes), images, labels, labeled=labeled)
    if "test" in sources:
        loaded.test_images, loaded.test_labels = tfds_source.read_split(
            sources["test"], image_key, label_key, scale, convert
        )
    return loaded


def _unknown_name_message(name: str) -> str:
    return (
        f"unknown dataset {name!r}. Allowed: 'digits' (embedded, offline), 'npz' with npz_path=FILE.npz "
        f"({NPZ_FORMAT}), or a TFDS catalogue name prepared in data_dir (e.g. mnist, fashion_mnist, cifar10); "
        f"{tfds_source.unknown_name_hint(name, DATASETS.names())}"
    )


def load_images(
    name: str = "digits",
    *,
    size: int | None = 16,
    npz_path: str | None = None,
    data_dir: str | None = None,
    valid_fraction: float = 0.2,
    test_fraction: float = 0.2,
    seed: int = 0,
    channels: int | None = None,
    labels_required: bool = True,
    download: bool = False,
) -> ImageDataset:
    """Loads an image classification dataset as resized, stratified train / valid / test splits.

    Args:
      name: `"digits"` (embedded sklearn digits, offline), `"npz"`, or a TFDS catalogue name such as
        `"mnist"`, `"fashion_mnist"`, `"cifar10"` that is already prepared (array_record) in the data dir.
      size: output height and width (bilinear, antialiased when shrinking); `None` keeps the native size.
      npz_path: a `.npz` file with `images` (N,H,W) or (N,H,W,C) in [0, 1] and `labels` (N,); implies
        `name="npz"`.
      data_dir: TFDS data folder (cache of the digits builder, home of catalogue datasets); defaults to
        `$JAXNAS_DATA_DIR`, else `~/.cache/jaxnas/tensorflow_datasets` (for catalogue names also
        `$TFDS_DATA_DIR` or `~/tensorflow_datasets`).
      valid_fraction: share of each class held out for validation (of the train split, for catalogue data).
      test_fraction: share of each class held out for testing; ignored when the source has a test split.
      seed: seed of the split; the same seed gives the same split.
      channels: 1 or 3 to average RGB to gray or repeat gray to RGB; `None` keeps the source's channels.
      labels_required: False accepts a `.npz` without `labels` or a catalogue dataset without a class label
        (one class, `labeled=False`), for callers that need images only (GANs).
      download: let TFDS download and prepare a catalogue dataset that is not prepared (needs internet; off
        by default: an unprepared one fails at once with instructions).

    Returns:
      An `ImageDataset`; every class with at least three examples is present in every split.

    Raises:
      ConfigError: on an invalid setting, a bad npz file, an unknown name, or a catalogue dataset that is
        not prepared (raised at once; nothing is downloaded unless `download`).
    """
    check(isinstance(name, str) and name != "", "dataset", f"got {name!r}; allowed: a dataset name string")
    if size is not None:
        check_positive("size", size, integer=True)
    check_range("valid_fraction", valid_fraction, 0.0, 1.0)
    check_range("test_fraction", test_fraction, 0.0, 1.0)
    check(valid_fraction + test_fraction < 1, "valid_fraction",
          f"valid_fraction + test_fraction = {valid_fraction + test_fraction:g}; allowed: < 1 to leave training data")
    integer_seed = isinstance(seed, (int, np.integer)) and not isinstance(seed, bool)
    check(integer_seed and seed >= 0, "seed", f"got {seed!r}; allowed: an integer >= 0")
    if channels is not None:
        check_choice("channels", channels, [1, 3])
    if npz_path is not None:
        check(name in ("npz", "digits"), "npz_path",
              f"given together with name={name!r}; use name='npz' (or omit name)")
        name = "npz"

    convert = _make_convert(size, channels)
    if name in DATASETS:
        extra = {} if name != "npz" else {"labels_required": labels_required}
        loaded = DATASETS.get(name, "dataset")(data_dir=data_dir, npz_path=npz_path, convert=convert, **extra)
    elif tfds_source.in_catalogue(name):
        loaded = _load_catalogue(name, data_dir, convert, labels_required, download)
    else:
        raise ConfigError("dataset", _unknown_name_message(name))

    if loaded.test_images is not None:
        train, valid = stratified_split(loaded.labels, (valid_fraction,), seed)
        test_x, test_y = loaded.test_images, loaded.test_labels
    else:
        train, valid, test = stratified_split(loaded.labels, (valid_fraction, test_fraction), seed)
        test_x, test_y = loaded.images[test], loaded.labels[test]
    return ImageDataset(
        name=name,
        num_classes=loaded.num_classes,
        train_x=loaded.images[train],
        train_y=loaded.labels[train].astype(np.int32),
        valid_x=loaded.images[valid],
        valid_y=loaded.labels[valid].astype(np.int32),
        test_x=test_x,
        test_y=np.asarray(test_y, np.int32),
        labeled=loaded.labeled,
        class_labels=loaded.class_labels,
    )
