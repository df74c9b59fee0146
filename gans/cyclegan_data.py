"""Unpaired two-domain image data for CycleGAN, with a known ground-truth mapping where possible.

Sources (`load_domains`):

* Known-transform mode (the embedded default): domain A is a set of images (sklearn digits upsampled,
  through `jaxnas.data.load_images`, or any `.npz` / prepared TFDS dataset), domain B is a fixed invertible
  transform T of *other* images (`TRANSFORMS`). The training halves are disjoint (a stratified 50/50 split
  of the training images), so training is truly unpaired; because T is known, a translation can be
  compared with the truth: G(a) against T(a), F(b) against T^-1(b).
* A user's pair of `.npz` files (`npz_a`, `npz_b`: `images` (N,H,W[,C]) in [0, 1], `labels` optional):
  no ground truth, so only cycle, FID and (with labels) label measurements apply.
* A prepared TFDS `cycle_gan/<pair>` dataset (horse2zebra, apple2orange, ...: splits trainA/trainB/
  testA/testB), read without TensorFlow and never downloaded.

All images are float32 in [0, 1], (N, H, W, C).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable

import numpy as np

from jaxnas.common.errors import ConfigError, check
from jaxnas.common.registry import Registry
from jaxnas.data import ImageDataset, load_images, resize_images, stratified_split
from jaxnas.data import tfds_source


@dataclasses.dataclass(frozen=True)
class Transform:
    """An invertible image transform on [0, 1] images (N, H, W, C); `channels` it needs (None: any)."""

    forward: Callable[[np.ndarray], np.ndarray]
    inverse: Callable[[np.ndarray], np.ndarray]
    channels: int | None
    description: str


TRANSFORMS: Registry[Transform] = Registry("transform")

# Tint: black -> dark blue, white -> warm yellow, per channel affine (invertible: c1 != c0 in every channel).
TINT_DARK = np.array([0.05, 0.15, 0.45], np.float32)
TINT_LIGHT = np.array([1.0, 0.85, 0.25], np.float32)

TRANSFORMS.register("invert")(Transform(lambda x: 1.0 - x, lambda y: 1.0 - y, None, "colour inversion 1 - x"))
TRANSFORMS.register("tint")(Transform(
    lambda x: TINT_DARK + (TINT_LIGHT - TINT_DARK) * x,
    lambda y: np.clip((y - TINT_DARK) / (TINT_LIGHT - TINT_DARK), 0.0, 1.0),
    3, "colour tint: black -> dark blue (0.05, 0.15, 0.45), white -> yellow (1, 0.85, 0.25), per-channel affine"))
TRANSFORMS.register("invert_tint")(Transform(
    lambda x: TINT_DARK + (TINT_LIGHT - TINT_DARK) * (1.0 - x),
    lambda y: 1.0 - np.clip((y - TINT_DARK) / (TINT_LIGHT - TINT_DARK), 0.0, 1.0),
    3, "inversion, then the tint"))


@dataclasses.dataclass(frozen=True, eq=False)
class UnpairedData:
    """Two domains. `*_y` are class labels (None when unknown); `truth_ab(a)` / `truth_ba(b)` give the true
    translation of test images (None when the mapping is unknown)."""

    name: str
    train_a: np.ndarray
    train_b: np.ndarray
    test_a: np.ndarray
    test_b: np.ndarray
    train_a_y: np.ndarray | None = None
    train_b_y: np.ndarray | None = None
    test_a_y: np.ndarray | None = None
    test_b_y: np.ndarray | None = None
    truth_ab: Callable[[np.ndarray], np.ndarray] | None = None
    truth_ba: Callable[[np.ndarray], np.ndarray] | None = None
    class_labels: tuple[int, ...] | None = None  # the files' label of each class (a user's .npz pair), if labeled

    @property
    def labeled(self) -> bool:
        return self.train_a_y is not None and self.train_b_y is not None

    @property
    def image_shape_a(self) -> tuple[int, int, int]:
        return tuple(int(d) for d in self.train_a.shape[1:])  # type: ignore[return-value]

    @property
    def image_shape_b(self) -> tuple[int, int, int]:
        return tuple(int(d) for d in self.train_b.shape[1:])  # type: ignore[return-value]

    def __repr__(self) -> str:
        return (f"UnpairedData({self.name!r}, A {len(self.train_a)} train / {len(self.test_a)} test {self.image_shape_a}, "
                f"B {len(self.train_b)} / {len(self.test_b)} {self.image_shape_b}, labeled={self.labeled}, "
                f"known mapping={self.truth_ab is not None})")


def translation_error(translated: np.ndarray, truth: np.ndarray, source: np.ndarray) -> float:
    """mean |translated - truth| / mean |source - truth|: a translation's error against the known transform,
    normalised by that of not translating at all (0 is perfect, 1 is the identity map's error)."""
    return float(np.abs(translated - truth).mean() / np.abs(source - truth).mean())


def known_transform_domains(dataset: ImageDataset, transform: str, seed: int = 0) -> UnpairedData:
    """Domain A: one half of the training images; domain B: T(the other half). Disjoint, so unpaired.

    Test images: A from the test split, B = T(the validation split) (different images again), with the
    truth G(a) = T(a) and F(b) = T^-1(b).
    """
    t = TRANSFORMS.get(transform, "transform")
    channels = dataset.image_shape[2]
    check(t.channels is None or t.channels == channels, "transform",
          f"{transform!r} needs {t.channels}-channel images; the data have {channels} (set data.channels={t.channels})")
    half_a, half_b = stratified_split(dataset.train_y, (0.5,), seed)
    labeled = dataset.labeled

    def y(labels: np.ndarray, idx: np.ndarray | None = None) -> np.ndarray | None:
        return (labels if idx is None else labels[idx]) if labeled else None

    return UnpairedData(
        name=f"{dataset.name}/{transform}",
        train_a=dataset.train_x[half_a], train_b=t.forward(dataset.train_x[half_b]).astype(np.float32),
        test_a=dataset.test_x, test_b=t.forward(dataset.valid_x).astype(np.float32),
        train_a_y=y(dataset.train_y, half_a), train_b_y=y(dataset.train_y, half_b),
        test_a_y=y(dataset.test_y), test_b_y=y(dataset.valid_y),
        truth_ab=lambda a: t.forward(a).astype(np.float32), truth_ba=lambda b: t.inverse(b).astype(np.float32))


def _split_one(ds: ImageDataset) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]:
    train = np.concatenate([ds.train_x, ds.valid_x])
    train_y = np.concatenate([ds.train_y, ds.valid_y]) if ds.labeled else None
    return train, ds.test_x, train_y, ds.test_y if ds.labeled else None


def npz_pair_domains(npz_a: str, npz_b: str, *, size: int | None, channels: int | None, seed: int = 0) -> UnpairedData:
    """A user's two `.npz` files, one per domain (80/20 train/test split each; labels optional).

    Labels of both files are mapped to the classes present in either file (sorted distinct values -> 0..K-1), so
    that label `l` is the same class in both domains (one classifier serves both).
    """
    parts, class_labels = {}, {}
    for field, path in (("data.npz_a", npz_a), ("data.npz_b", npz_b)):
        try:
            ds = load_images(npz_path=path, size=size, channels=channels, seed=seed, valid_fraction=0.0,
                             test_fraction=0.2, labels_required=False)
        except ConfigError as err:
            raise ConfigError(field, f"{path!r}: {err}") from None
        parts[field], class_labels[field] = _split_one(ds), np.asarray(ds.class_labels, np.int64)
    joint = np.union1d(*class_labels.values())  # each file's classes -> the classes of either file
    to_joint = {f: np.searchsorted(joint, class_labels[f]).astype(np.int32) for f in parts}
    parts = {f: (tr, te, None if tr_y is None else to_joint[f][tr_y], None if te_y is None else to_joint[f][te_y])
             for f, (tr, te, tr_y, te_y) in parts.items()}
    (tr_a, te_a, tr_a_y, te_a_y), (tr_b, te_b, tr_b_y, te_b_y) = parts["data.npz_a"], parts["data.npz_b"]
    labeled = tr_a_y is not None and tr_b_y is not None
    return UnpairedData(
        name=f"{os.path.basename(npz_a)}|{os.path.basename(npz_b)}", train_a=tr_a, train_b=tr_b, test_a=te_a,
        test_b=te_b, train_a_y=tr_a_y if labeled else None, train_b_y=tr_b_y if labeled else None,
        test_a_y=te_a_y if labeled else None, test_b_y=te_b_y if labeled else None,
        class_labels=tuple(int(c) for c in joint) if labeled else None)


def tfds_cycle_gan_domains(name: str, *, size: int, data_dir: str | None = None, download: bool = False) -> UnpairedData:
    """A prepared TFDS `cycle_gan/<pair>` dataset (splits trainA, trainB, testA, testB), resized to `size`;
    `download` lets TFDS fetch and prepare it when it is not prepared."""
    builder = tfds_source.prepared_catalogue_builder(name, tfds_source.catalogue_search_dirs(data_dir), download)
    info = builder.info
    splits = ("trainA", "trainB", "testA", "testB")
    check(all(s in info.splits for s in splits), "data.name",
          f"{name!r} has splits {list(info.splits)}; need {list(splits)} (a cycle_gan/<pair> dataset)")
    image_key = "image"
    check(image_key in info.features, "data.name", f"{name!r} has no 'image' feature ({list(info.features)})")
    scale = 255.0 if np.dtype(getattr(info.features[image_key], "np_dtype", np.uint8)) == np.uint8 else 1.0

    def convert(x: np.ndarray) -> np.ndarray:
        return resize_images(x, size)

    arrays = {s: tfds_source.read_split(builder.as_data_source(split=s), image_key, None, scale, convert)[0]
              for s in splits}
    return UnpairedData(name=name, train_a=arrays["trainA"], train_b=arrays["trainB"], test_a=arrays["testA"],
                        test_b=arrays["testB"])


def load_domains(*, name: str = "digits", transform: str = "invert", npz: str = "", npz_a: str = "", npz_b: str = "",
                 size: int = 32, channels: int = 0, data_dir: str = "", seed: int = 0,
                 download: bool = False) -> UnpairedData:
    """Builds the two domains from the `data` config fields (see the module docstring for the modes).

    `channels` 0 picks the transform's requirement (tint: 3) or the source's own; `transform` applies to
    the known-transform mode (digits, `npz`, or a labelled TFDS image dataset) and is ignored for pairs.
    """
    check((npz_a == "") == (npz_b == ""), "data.npz_a" if not npz_a else "data.npz_b",
          "give both data.npz_a and data.npz_b (one .npz per domain), or neither")
    check(channels in (0, 1, 3), "data.channels", f"got {channels!r}; allowed: 0 (automatic), 1 or 3")
    if npz_a:
        check(not npz, "data.npz", "give either data.npz (known-transform mode) or data.npz_a/npz_b (a pair), not both")
        return npz_pair_domains(npz_a, npz_b, size=size, channels=channels or None, seed=seed)
    if name.startswith("cycle_gan"):
        return tfds_cycle_gan_domains(name, size=size, data_dir=data_dir or None, download=download)
    t = TRANSFORMS.get(transform, "transform")
    ds = load_images(name, size=size, npz_path=npz or None, data_dir=data_dir or None, seed=seed,
                     channels=channels or t.channels, labels_required=False, download=download)
    return known_transform_domains(ds, transform, seed)
