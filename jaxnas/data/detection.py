"""Object detection datasets as NumPy arrays with padded, fixed-size ground truth (train / valid / test).

Boxes are corners (x0, y0, x1, y1) in output pixels (pixel column c covers [c, c + 1)), labels integer classes,
as `jaxnas.problems.detection_map` scores them; every image holds `max_objects` rows, `valid` marking the real
ones (padding rows: box 0, label 0). Sources (`load_detection(name=...)`):

* `"digits_detection"` (default, offline): handwritten digits pasted on blank canvases, served through a local
  TFDS builder (`jaxnas_digits_detection`, array_record, one builder config per setting) prepared once into the
  data dir, as `jaxnas.data.images` serves the digits themselves. Generation, deterministic from `seed`:
  1. the 1,797 8x8 sklearn digits (read from the embedded `jaxnas_digits` builder, pixels / 16) are split by
     `jaxnas.data.images.stratified_split(labels, (valid_fraction, test_fraction), seed)`, by default
     0.2 / 0.2: 1,079 train / 359 valid / 359 test digits, so a test canvas never shows a training digit;
  2. split k (train, valid, test) draws from its own generator `np.random.default_rng([seed, k])` `splits[k]`
     canvases (default 2,000 / 500 / 500) of `image_size` x `image_size` (default 64) pixels, gray, zero;
  3. each canvas draws a number of objects uniformly in 1..`max_objects` (default 4); for each object it draws a
     digit of its split's pool, a size s uniform in `digit_sizes` (default 12..28 px, inclusive) and a top-left
     corner uniform over the positions that keep the s x s patch inside the canvas; the digit is resized to
     s x s (bilinear, half-pixel centres, edges clamped: `jax.image.resize(..., "linear")` when enlarging),
     quantised to uint8 (round(255 v)), and its box is the tight box of the patch's non-zero pixels;
  4. a placement whose box has IoU > 0.3 with a box already on the canvas is redrawn (digit, size and
     position), at most 50 times; after 50 failures the canvas keeps the objects it has (the first object is
     never rejected, so every canvas has 1..max_objects objects);
  5. the patch is pasted with a pixel-wise maximum, so each digit stays visible inside its box and every
     non-zero pixel of a canvas lies in some box; class = the digit, `source_index` = its sklearn index.
  Images are stored as uint8 and returned as float32 / 255 in [0, 1], (N, S, S, 1) (`channels=3` repeats).
* `"coco_files"`: a user's COCO-format folder + JSON (`images_dir=`, `annotations_json=`), read by
  `jaxnas.data.coco_files` (resizing, category remapping and the checks are described there) and split at
  random by image (`valid_fraction`, `test_fraction`, `seed`); `load_coco` does the same directly.
* a prepared TFDS catalogue detection dataset (`"voc"`, `"voc/2012"`, `"coco/2017"`, ...): an `image` and
  `objects` with normalised `bbox` (ymin, xmin, ymax, xmax) and `label`, read without TensorFlow from its
  array_record files. Nothing is downloaded unless `download=True`: an unprepared dataset fails at once with the
  `tfds build` command.
  Splits: train / validation / test where the test split is annotated (voc/2007: objects in its first 64
  examples); otherwise (voc/2012, coco) valid is a random `valid_fraction` of train and test is the validation
  split. Datasets whose TFDS code imports TensorFlow (coco) are opened from their prepared files' metadata.

The real sources are PASCAL VOC (Everingham et al., IJCV 2010) and COCO (Lin et al., ECCV 2014); the synthetic
set is our own offline stand-in (multi-digit detection on blank canvases), sized for a small CenterNet-style
detector. Deviations: images are stretched to a square (aspect ratio not kept; boxes scaled per axis); crowd objects
(COCO `iscrowd`) are dropped; a TFDS image with more objects than `max_objects` is left out (counted in
`DetectionSplit.skipped`), whereas a user's COCO file with one is refused; VOC's "difficult" objects count as
ordinary objects.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import tempfile
from collections.abc import Iterator
from typing import Any

import numpy as np

from jaxnas.common.errors import ConfigError, check, check_positive
from jaxnas.common.locks import file_lock
from jaxnas.data import tfds_source
from jaxnas.data.coco_files import check_settings, load_catalogue, load_coco
from jaxnas.data.images import stratified_split

SYNTHETIC = "digits_detection"
COCO_FILES = "coco_files"
BUILDER_NAME = "jaxnas_digits_detection"
BUILDER_VERSION = "1.0.0"
MAX_IOU = 0.3  # a new digit's box may overlap an earlier one up to this IoU
MAX_TRIES = 50  # placements drawn per object before the canvas is closed
_CHUNK = 256  # TFDS examples decoded at a time


@dataclasses.dataclass(frozen=True, eq=False)
class DetectionSplit:
    """One split: images and padded ground truth. `len(split)` is the number of images."""

    images: np.ndarray  # (N, H, W, C) float32 in [0, 1]
    boxes: np.ndarray  # (N, M, 4) float32 corners (x0, y0, x1, y1) in pixels; 0 in padding rows
    labels: np.ndarray  # (N, M) int32 classes; 0 in padding rows
    valid: np.ndarray  # (N, M) bool: which rows are objects
    ids: np.ndarray  # (N,) int64: canvas number, COCO image id, or TFDS example index
    source_index: np.ndarray | None = None  # (N, M) int32, digits only: sklearn index of each digit, -1 padding
    skipped: int = 0  # images of the TFDS source split left out for having more than M objects

    def __len__(self) -> int:
        return len(self.images)

    def take(self, rows: np.ndarray) -> DetectionSplit:
        """The split restricted to `rows` (same order)."""
        src = None if self.source_index is None else self.source_index[rows]
        return DetectionSplit(self.images[rows], self.boxes[rows], self.labels[rows], self.valid[rows],
                              self.ids[rows], src, self.skipped)

    def ground_truth(self) -> dict[str, np.ndarray]:
        """`boxes`, `labels`, `valid` as `jaxnas.problems.detection_map.coco_map` takes batched ground truth."""
        return {"boxes": self.boxes, "labels": self.labels, "valid": self.valid}


@dataclasses.dataclass(frozen=True, eq=False)
class DetectionDataset:
    """Three splits of one detection dataset.

    Attributes:
      name: the source (`"digits_detection"`, `"coco_files"` or a TFDS name).
      num_classes: labels lie in [0, num_classes).
      class_names: name of each class.
      train, valid, test: the splits.
      category_ids: the source's id of each class (COCO category ids); 0..num_classes-1 otherwise.
    """

    name: str
    num_classes: int
    class_names: tuple[str, ...]
    train: DetectionSplit
    valid: DetectionSplit
    test: DetectionSplit
    category_ids: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if not self.category_ids:
            object.__setattr__(self, "category_ids", tuple(range(self.num_classes)))

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(H, W, C) of every image."""
        return tuple(int(d) for d in self.train.images.shape[1:])  # type: ignore[return-value]

    @property
    def max_objects(self) -> int:
        return int(self.train.valid.shape[1])

    def __repr__(self) -> str:
        return (f"DetectionDataset(name={self.name!r}, num_classes={self.num_classes}, image_shape="
                f"{self.image_shape}, max_objects={self.max_objects}, train={len(self.train)}, "
                f"valid={len(self.valid)}, test={len(self.test)})")


# ----------------------------------------------------------------------------- synthetic digits on canvases


@functools.cache
def linear_matrix(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) matrix of 1-D bilinear resizing: half-pixel centres, edges clamped, no antialiasing."""
    centre = np.clip((np.arange(n_out) + 0.5) * n_in / n_out - 0.5, 0.0, n_in - 1.0)
    low = np.floor(centre).astype(int)
    high = np.minimum(low + 1, n_in - 1)
    m = np.zeros((n_out, n_in))
    np.add.at(m, (np.arange(n_out), low), 1.0 - (centre - low))
    np.add.at(m, (np.arange(n_out), high), centre - low)
    return m


def box_iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """IoU of one corner box (4,) with each of (n, 4)."""
    w = np.clip(np.minimum(box[2], boxes[:, 2]) - np.maximum(box[0], boxes[:, 0]), 0, None)
    h = np.clip(np.minimum(box[3], boxes[:, 3]) - np.maximum(box[1], boxes[:, 1]), 0, None)
    area = lambda b: (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])  # noqa: E731
    return w * h / (area(box) + area(boxes) - w * h)


def compose_canvases(digits: np.ndarray, count: int, *, image_size: int, max_objects: int,
                     digit_sizes: tuple[int, int], rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """Steps 3-5 of the module docstring for one split.

    Args:
      digits: (D, h, w) float in [0, 1], the split's pool.
      count: canvases to make.

    Returns:
      `(images, boxes, picks)`: (count, S, S) uint8, (count, M, 4) float32 corners, (count, M) int64 index into
      `digits` of each object (-1 in padding rows).
    """
    size = image_size
    images = np.zeros((count, size, size), np.uint8)
    boxes = np.zeros((count, max_objects, 4), np.float32)
    picks = np.full((count, max_objects), -1, np.int64)
    for n in range(count):
        for k in range(int(rng.integers(1, max_objects + 1))):
            for _ in range(MAX_TRIES):
                j, s = int(rng.integers(len(digits))), int(rng.integers(digit_sizes[0], digit_sizes[1] + 1))
                y, x = (int(v) for v in rng.integers(0, size - s + 1, size=2))
                rows_m, cols_m = linear_matrix(digits.shape[1], s), linear_matrix(digits.shape[2], s)
                patch = np.round(np.clip(rows_m @ digits[j] @ cols_m.T, 0, 1) * 255).astype(np.uint8)  # (s, s)
                rows, cols = np.flatnonzero(patch.any(axis=1)), np.flatnonzero(patch.any(axis=0))
                if not len(rows):
                    continue  # a blank digit has no box
                box = np.array([x + cols[0], y + rows[0], x + cols[-1] + 1, y + rows[-1] + 1], np.float32)
                if k == 0 or box_iou(box, boxes[n, :k]).max() <= MAX_IOU:
                    break
            else:
                break  # no room found: the canvas keeps k objects
            images[n, y: y + s, x: x + s] = np.maximum(images[n, y: y + s, x: x + s], patch)
            boxes[n, k], picks[n, k] = box, j
    return images, boxes, picks


@dataclasses.dataclass(frozen=True)
class SyntheticSettings:
    """Everything the synthetic set depends on (one TFDS builder config each)."""

    image_size: int = 64
    max_objects: int = 4
    digit_sizes: tuple[int, int] = (12, 28)
    splits: tuple[int, int, int] = (2000, 500, 500)
    valid_fraction: float = 0.2
    test_fraction: float = 0.2
    seed: int = 0

    @property
    def config_name(self) -> str:
        return (f"s{self.image_size}_m{self.max_objects}_d{self.digit_sizes[0]}-{self.digit_sizes[1]}_n"
                f"{'-'.join(map(str, self.splits))}_f{round(self.valid_fraction * 1e6)}-"
                f"{round(self.test_fraction * 1e6)}_seed{self.seed}")


SPLIT_NAMES = ("train", "validation", "test")


def synthetic_examples(settings: SyntheticSettings, digits: np.ndarray, digit_labels: np.ndarray
                       ) -> dict[str, dict[str, np.ndarray]]:
    """Steps 1-5 of the module docstring: per TFDS split, arrays `image` (N, S, S, 1) uint8, `boxes`, `labels`,
    `valid`, `source_index` (N, M), from all 1,797 digits (D, 8, 8) in [0, 1] and their labels."""
    pools = stratified_split(digit_labels, (settings.valid_fraction, settings.test_fraction), settings.seed)
    out = {}
    for k, (split, pool, count) in enumerate(zip(SPLIT_NAMES, pools, settings.splits)):
        pool = np.sort(pool)
        images, boxes, picks = compose_canvases(
            digits[pool], count, image_size=settings.image_size, max_objects=settings.max_objects,
            digit_sizes=settings.digit_sizes, rng=np.random.default_rng([settings.seed, k]))
        valid = picks >= 0
        source = np.where(valid, pool[np.maximum(picks, 0)], -1).astype(np.int32)
        labels = np.where(valid, digit_labels[np.maximum(source, 0)], 0).astype(np.int32)
        out[split] = {"image": images[..., None], "boxes": boxes, "labels": labels, "valid": valid,
                      "source_index": source}
    return out


@functools.cache
def _builder_class(settings: SyntheticSettings) -> type:
    """The TFDS builder of one setting (a class per setting, so that its only config is a declared one)."""
    import tensorflow_datasets as tfds

    size, m = settings.image_size, settings.max_objects

    class JaxnasDigitsDetection(tfds.core.GeneratorBasedBuilder, skip_registration=True):
        """sklearn digits pasted on blank canvases (see `jaxnas.data.detection`)."""

        name = BUILDER_NAME
        VERSION = tfds.core.Version(BUILDER_VERSION)
        RELEASE_NOTES = {BUILDER_VERSION: "Digits pasted with IoU <= 0.3; splits from disjoint source digits."}
        BUILDER_CONFIGS = [tfds.core.BuilderConfig(name=settings.config_name, description=repr(settings))]

        def _info(self) -> Any:
            tensor = tfds.features.Tensor
            features = tfds.features.FeaturesDict({
                "image": tensor(shape=(size, size, 1), dtype=np.uint8),
                "boxes": tensor(shape=(m, 4), dtype=np.float32),
                "labels": tensor(shape=(m,), dtype=np.int32),
                "valid": tensor(shape=(m,), dtype=np.bool_),
                "source_index": tensor(shape=(m,), dtype=np.int32),
                "index": tfds.features.Scalar(dtype=np.int32),
            })
            return tfds.core.DatasetInfo(builder=self, features=features, description=(
                "Handwritten sklearn digits pasted on blank canvases; boxes are pixel corners (x0, y0, x1, y1)."))

        def _split_generators(self, dl_manager: Any) -> dict[str, Any]:
            del dl_manager  # nothing to download: the digits come from the embedded jaxnas_digits builder
            source = tfds_source.digits_builder(os.fspath(self.data_dir_root)).as_data_source(split="train")
            digits, labels = tfds_source.read_split(source, "image", "label", tfds_source.DIGITS_SCALE,
                                                    lambda x: x, order_key="index")
            examples = synthetic_examples(settings, digits[..., 0], labels)
            return {split: self._generate_examples(arrays) for split, arrays in examples.items()}

        def _generate_examples(self, arrays: dict[str, np.ndarray]) -> Iterator[tuple[int, dict[str, Any]]]:
            for i in range(len(arrays["image"])):
                yield i, {**{key: value[i] for key, value in arrays.items()}, "index": i}

    return JaxnasDigitsDetection


def _prepared_synthetic_builder(settings: SyntheticSettings, data_dir: str) -> Any:
    """The builder of `settings` in `data_dir`, prepared once under a file lock (as `tfds_source.digits_builder`)."""
    cls = _builder_class(settings)
    info = os.path.join(data_dir, BUILDER_NAME, settings.config_name, BUILDER_VERSION, "dataset_info.json")
    if not os.path.isfile(info):
        try:
            os.makedirs(data_dir, exist_ok=True)
            with file_lock(os.path.join(data_dir, f".{BUILDER_NAME}.lock")):
                builder = cls(data_dir=data_dir, file_format="array_record")
                if not builder.is_prepared():
                    with tempfile.TemporaryDirectory() as downloads:
                        builder.download_and_prepare(download_dir=downloads)
        except OSError as err:
            if not cls(data_dir=data_dir).is_prepared():
                raise ConfigError("data_dir", f"cannot prepare the {SYNTHETIC} cache in {data_dir!r} ({err}); "
                                  f"pass data_dir= or set ${tfds_source.DATA_DIR_ENV} to a writable folder") from err
    return cls(data_dir=data_dir, file_format="array_record")


def _load_synthetic(settings: SyntheticSettings, data_dir: str | None, channels: int) -> DetectionDataset:
    builder = _prepared_synthetic_builder(settings, tfds_source.resolve_data_dir(data_dir))
    splits = []
    for split in SPLIT_NAMES:
        source = builder.as_data_source(split=split)
        rows = [ex for start in range(0, len(source), _CHUNK)
                for ex in source.__getitems__(list(range(start, min(start + _CHUNK, len(source)))))]
        rows.sort(key=lambda ex: int(ex["index"]))
        get = lambda key: np.stack([np.asarray(ex[key]) for ex in rows])  # noqa: E731
        images = get("image").astype(np.float32) / np.float32(255)
        if channels == 3:
            images = np.repeat(images, 3, axis=-1)
        splits.append(DetectionSplit(images, get("boxes").astype(np.float32), get("labels").astype(np.int32),
                                     get("valid").astype(bool), get("index").astype(np.int64),
                                     get("source_index").astype(np.int32)))
    return DetectionDataset(SYNTHETIC, 10, tuple(str(d) for d in range(10)), *splits)


def load_detection(name: str = SYNTHETIC, data_dir: str | None = "", image_size: int = 64, max_objects: int = 4,
                   seed: int = 0, *, images_dir: str | None = None, annotations_json: str | None = None,
                   channels: int | None = None, splits: tuple[int, int, int] = (2000, 500, 500),
                   digit_sizes: tuple[int, int] = (12, 28), valid_fraction: float = 0.2,
                   test_fraction: float = 0.2, max_images: int | None = None,
                   download: bool = False) -> DetectionDataset:
    """Loads a detection dataset (see the module docstring for the sources and the generation procedure).

    Args:
      name: `"digits_detection"` (embedded, offline), `"coco_files"`, or a prepared TFDS detection dataset
        (`"voc"`, `"coco/2017"`, ...).
      data_dir: TFDS data folder (cache of the synthetic set, home of catalogue datasets); empty or None:
        `$JAXNAS_DATA_DIR`, else `~/.cache/jaxnas/tensorflow_datasets` (catalogue names also `~/tensorflow_datasets`).
      image_size: output height and width in pixels.
      max_objects: ground-truth rows per image.
      seed: generation and split seed.
      images_dir, annotations_json: the folder and JSON of `"coco_files"`.
      channels: 1 or 3; None keeps the source's (1 for digits, 3 otherwise).
      splits: train / valid / test canvases of the synthetic set.
      digit_sizes: smallest and largest pasted digit side in pixels (synthetic set).
      valid_fraction, test_fraction: share of the source digits (synthetic) or images (coco_files) held out;
        `valid_fraction` also carves valid out of a catalogue train split when its test split has no labels.
      max_images: read at most this many images per catalogue split (COCO train has 118k).
      download: let TFDS download and prepare a catalogue dataset that is not prepared (needs internet; off by
        default: an unprepared one fails at once with instructions).

    Raises:
      ConfigError: naming the field of an invalid setting or input; unknown names list the allowed ones.
    """
    check(isinstance(name, str) and name != "", "dataset", f"got {name!r}; allowed: a dataset name string")
    check_settings(image_size, max_objects, seed, valid_fraction, test_fraction, channels)
    if max_images is not None:
        check_positive("max_images", max_images, integer=True)
    check(name == COCO_FILES or (images_dir is None and annotations_json is None), "images_dir",
          f"images_dir / annotations_json given together with name={name!r}; use name='{COCO_FILES}'")
    if name == SYNTHETIC:
        pair = isinstance(digit_sizes, (tuple, list)) and len(digit_sizes) == 2
        lo, hi = digit_sizes if pair else (0, 0)
        check(pair and all(isinstance(v, int) for v in (lo, hi)) and 1 <= lo <= hi <= image_size, "digit_sizes",
              f"got {digit_sizes!r}; allowed: (smallest, largest) integers, 1 <= smallest <= largest <= "
              f"image_size ({image_size})")
        check(isinstance(splits, (tuple, list)) and len(splits) == 3
              and all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in splits),
              "splits", f"got {splits!r}; allowed: (train, valid, test) canvas counts, integers >= 1")
        check(valid_fraction > 0 and test_fraction > 0, "valid_fraction", f"got valid_fraction={valid_fraction}, "
              f"test_fraction={test_fraction}; allowed: both > 0 for '{SYNTHETIC}' (each split needs its own digits)")
        settings = SyntheticSettings(image_size, max_objects, (lo, hi), tuple(splits), float(valid_fraction),
                                     float(test_fraction), int(seed))
        return _load_synthetic(settings, data_dir, channels or 1)
    if name == COCO_FILES:
        check(images_dir is not None, "images_dir", f"required with name='{COCO_FILES}': the folder of the images")
        check(annotations_json is not None, "annotations_json",
              f"required with name='{COCO_FILES}': the COCO instances JSON")
        return load_coco(images_dir, annotations_json, image_size, max_objects, valid_fraction=valid_fraction,
                         test_fraction=test_fraction, seed=seed, channels=channels or 3)
    if tfds_source.in_catalogue(name):
        return load_catalogue(name, data_dir, image_size, max_objects, channels or 3, valid_fraction, seed,
                              max_images, (SYNTHETIC, COCO_FILES), download)
    raise ConfigError("dataset", (
        f"unknown dataset {name!r}. Allowed: '{SYNTHETIC}' (embedded, offline), '{COCO_FILES}' with images_dir= "
        "and annotations_json=, or a TFDS detection dataset prepared in data_dir (e.g. voc, voc/2012, coco/2017); "
        f"{tfds_source.unknown_name_hint(name, [SYNTHETIC, COCO_FILES])}"))
