"""Detection data from outside the project: a user's COCO-format files, and prepared TFDS detection datasets.

COCO files: a folder of images and an `instances`-style annotations JSON.

`read_coco` returns every image of the file, resized to a square, with its boxes as padded fixed-size arrays;
`load_coco` (also exported by `jaxnas.data.detection`) splits them at random by image into train / valid /
test. The format is COCO's
(https://cocodataset.org/#format-data): `images` (`id`, `file_name`, `width`, `height`), `annotations` (`id`,
`image_id`, `category_id`, `bbox` = [x, y, width, height] in pixels, optional `iscrowd`) and `categories`
(`id`, `name`), read with pycocotools' `COCO`.

Conversion: each image is read with PIL (RGB, or gray with `channels=1`), stretched to `image_size` x
`image_size` (bilinear, antialiased when shrinking, as `jax.image.resize`; the aspect ratio is not kept), and
each box becomes corners (x0, y0, x1, y1) = (x, y, x + w, y + h) clipped to the image, then scaled by
`image_size / width` and `image_size / height`. Category ids, sorted, become classes 0..K-1 (`category_ids[k]`
is class k's id, `class_names[k]` its name). Crowd annotations (`iscrowd` 1) are left out (the mAP of
`jaxnas.problems.detection_map` has no crowd regions); images without annotations are kept, with no objects.

Refused with a one-line `ConfigError` naming the field (`images_dir`, `annotations_json`, `max_objects`): a
missing or empty images folder, an unreadable or malformed JSON, an annotation whose `image_id` or
`category_id` is not listed, a box with a negative size or more than 1 px outside its image, an image listed but
missing from the folder (or of another size than declared), and an image with more objects than `max_objects`.

TFDS detection datasets (voc, coco/2017, ...): `prepared_catalogue` finds one prepared in the data dir without
ever downloading (else a `ConfigError` naming `dataset` with the `tfds build` command) and
`read_catalogue_split` converts a split as above, from normalised (ymin, xmin, ymax, xmax) boxes;
`load_catalogue` assembles the splits. Both loaders return `jaxnas.data.detection.DetectionDataset`s.
"""

from __future__ import annotations

import contextlib
import dataclasses
import glob
import io
import json
import math
import os
import re
from typing import TYPE_CHECKING, Any

import numpy as np

from jaxnas.common.errors import ConfigError, check, check_choice, check_positive, check_range
from jaxnas.data import tfds_source
from jaxnas.data.images import resize_images

if TYPE_CHECKING:  # a late import at run time: jaxnas.data.detection imports this module
    from jaxnas.data.detection import DetectionDataset

BOX_TOLERANCE = 1.0  # pixels a box may extend beyond its image (rounding in annotation tools)
_CHUNK = 256  # TFDS examples decoded at a time


@dataclasses.dataclass(frozen=True, eq=False)
class CocoArrays:
    """Every image of a COCO file, converted; rows are the images sorted by id."""

    images: np.ndarray  # (N, S, S, C) float32 in [0, 1]
    boxes: np.ndarray  # (N, M, 4) float32 corners in output pixels
    labels: np.ndarray  # (N, M) int32 class indices
    valid: np.ndarray  # (N, M) bool
    image_ids: np.ndarray  # (N,) int64 COCO image ids
    class_names: tuple[str, ...]
    category_ids: tuple[int, ...]


def to_square(image: np.ndarray, size: int, channels: int) -> np.ndarray:
    """(H, W[, C]) uint8 or [0, 1] float image -> (size, size, channels) float32, stretched (bilinear)."""
    x = np.asarray(image)
    x = x.astype(np.float32) / (255.0 if x.dtype == np.uint8 else 1.0)
    if x.ndim == 2:
        x = x[..., None]
    if x.shape[-1] == 4:  # RGBA: drop alpha
        x = x[..., :3]
    if x.shape[-1] != channels:
        x = x.mean(axis=-1, keepdims=True) if channels == 1 else np.repeat(x[..., :1], channels, axis=-1)
    return resize_images(x[None], size)[0]


def pad_objects(boxes: list[np.ndarray], labels: list[np.ndarray], max_objects: int):
    """Per-image (n_i, 4) boxes and (n_i,) labels -> (N, M, 4) float32, (N, M) int32, (N, M) bool; padding 0."""
    n = len(boxes)
    out_boxes = np.zeros((n, max_objects, 4), np.float32)
    out_labels = np.zeros((n, max_objects), np.int32)
    valid = np.zeros((n, max_objects), bool)
    for i, (b, lab) in enumerate(zip(boxes, labels)):
        k = len(b)
        out_boxes[i, :k], out_labels[i, :k], valid[i, :k] = b, lab, True
    return out_boxes, out_labels, valid


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _load_index(annotations_json: str) -> Any:
    """pycocotools' COCO index of the file, built after every check of `_check_file` passed."""
    try:
        from pycocotools.coco import COCO
    except ImportError as err:  # a test extra of the project, not a core dependency
        raise ImportError("reading COCO files needs pycocotools: pip install pycocotools") from err

    check(os.path.isfile(annotations_json), "annotations_json", f"file not found: {annotations_json!r}")
    try:
        with open(annotations_json, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError) as err:
        raise ConfigError("annotations_json", f"cannot read {annotations_json!r} as JSON ({err})") from err
    _check_file(data, repr(annotations_json))
    coco = COCO()
    coco.dataset = data
    with contextlib.redirect_stdout(io.StringIO()):  # createIndex prints progress lines
        coco.createIndex()
    return coco


def _check_file(data: Any, where: str) -> None:
    """Checks the structure, references and boxes of a COCO JSON; fills missing annotation ids (COCO's index
    needs them)."""
    check(isinstance(data, dict), "annotations_json", f"{where} must hold a JSON object (COCO instances format)")
    for key in ("images", "annotations", "categories"):
        check(isinstance(data.get(key), list), "annotations_json", f"{where} needs a list '{key}' (COCO format)")
    check(len(data["categories"]) > 0, "annotations_json", f"{where} lists no categories")
    check(len(data["images"]) > 0, "annotations_json", f"{where} lists no images")
    for cat in data["categories"]:
        check(isinstance(cat, dict) and _integer(cat.get("id")), "annotations_json",
              f"{where}: every category needs an integer 'id' (got {cat!r})")
    category_ids = sorted({cat["id"] for cat in data["categories"]})
    sizes = {}
    for img in data["images"]:
        ok = isinstance(img, dict) and _integer(img.get("id")) and isinstance(img.get("file_name"), str)
        ok = ok and all(_integer(img.get(k)) and img[k] > 0 for k in ("width", "height"))
        check(ok, "annotations_json", f"{where}: every image needs an integer 'id', a 'file_name' and positive "
              f"integer 'width' and 'height' (got {img!r})")
        check(img["id"] not in sizes, "annotations_json", f"{where}: image id {img['id']} is listed twice")
        sizes[img["id"]] = (img["width"], img["height"])
    for n, ann in enumerate(data["annotations"]):
        check(isinstance(ann, dict), "annotations_json", f"{where}: annotations[{n}] is not an object")
        name = f"{where}: annotation id {ann.get('id')} (annotations[{n}])"
        image_id, category_id, bbox = ann.get("image_id"), ann.get("category_id"), ann.get("bbox")
        check(_integer(image_id) and image_id in sizes, "annotations_json",
              f"{name} has image_id {image_id!r}, which is not in 'images'")
        check(_integer(category_id) and category_id in category_ids, "annotations_json",
              f"{name} has category_id {category_id!r}, which is not in 'categories' (ids: {category_ids})")
        check(isinstance(bbox, list) and len(bbox) == 4 and all(map(_number, bbox)), "annotations_json",
              f"{name}: 'bbox' must be 4 finite numbers [x, y, width, height] (got {bbox!r})")
        x, y, w, h = (float(v) for v in bbox)
        width, height = sizes[image_id]
        check(w >= 0 and h >= 0, "annotations_json", f"{name}: bbox [x, y, w, h] = {bbox} has a negative size")
        inside = (x >= -BOX_TOLERANCE and y >= -BOX_TOLERANCE and x + w <= width + BOX_TOLERANCE
                  and y + h <= height + BOX_TOLERANCE)
        check(inside, "annotations_json", f"{name}: bbox [x, y, w, h] = {bbox} lies outside its image "
              f"(image_id {image_id}, {width}x{height} px) by more than {BOX_TOLERANCE:g} px")
        ann.setdefault("id", f"annotations[{n}]")


def _objects(coco: Any, image_size: int) -> tuple[dict, dict, tuple[str, ...], tuple[int, ...]]:
    """Per image id, its (n, 4) boxes in output pixels and (n,) class indices, from a checked COCO index."""
    category_ids = tuple(sorted(coco.cats))
    class_of = {cid: k for k, cid in enumerate(category_ids)}
    boxes: dict[int, list] = {}
    labels: dict[int, list] = {}
    for image_id, img in coco.imgs.items():
        width, height = img["width"], img["height"]
        scale = np.array([image_size / width, image_size / height] * 2)
        kept = [ann for ann in coco.imgToAnns.get(image_id, []) if not ann.get("iscrowd", 0)]  # no crowd regions
        x, y, w, h = np.asarray([ann["bbox"] for ann in kept], np.float64).reshape(-1, 4).T
        corners = np.clip(np.stack([x, y, x + w, y + h], axis=1), 0.0, [width, height, width, height])
        boxes[image_id] = (corners * scale).astype(np.float32)
        labels[image_id] = np.asarray([class_of[ann["category_id"]] for ann in kept], np.int32)
    names = tuple(str(coco.cats[c].get("name", c)) for c in category_ids)
    return boxes, labels, names, category_ids


def read_coco(images_dir: str, annotations_json: str, image_size: int, max_objects: int,
              channels: int = 3) -> CocoArrays:
    """Reads a COCO-format folder + JSON into padded arrays (see the module docstring for every rule).

    Args:
      images_dir: folder holding the images named by `file_name` (relative paths allowed).
      annotations_json: the COCO instances JSON.
      image_size: output height and width in pixels.
      max_objects: rows of the padded ground truth; an image with more (non-crowd) objects is refused.
      channels: 3 (RGB) or 1 (gray).

    Returns:
      `CocoArrays`, images sorted by id.

    Raises:
      ConfigError: naming `images_dir`, `annotations_json` or `max_objects` (one line).
    """
    from PIL import Image

    images_dir, annotations_json = os.fspath(images_dir), os.fspath(annotations_json)
    check(os.path.isdir(images_dir), "images_dir", f"folder not found: {images_dir!r}")
    check(len(os.listdir(images_dir)) > 0, "images_dir", f"folder {images_dir!r} is empty; expected the images "
          f"named by 'file_name' in {annotations_json!r}")
    coco = _load_index(annotations_json)
    where = repr(annotations_json)
    boxes, labels, class_names, category_ids = _objects(coco, image_size)
    counts = {i: len(b) for i, b in boxes.items()}
    worst = max(counts, key=lambda i: (counts[i], -i))
    check(counts[worst] <= max_objects, "max_objects",
          f"image id {worst} in {where} has {counts[worst]} objects but max_objects={max_objects}; "
          f"set max_objects >= {counts[worst]} (the most in any image of this file)")
    ids = sorted(coco.imgs)
    images = np.zeros((len(ids), image_size, image_size, channels), np.float32)
    for row, image_id in enumerate(ids):
        info = coco.imgs[image_id]
        path = os.path.join(images_dir, info["file_name"])
        check(os.path.isfile(path), "images_dir",
              f"image id {image_id} file {info['file_name']!r} (listed in {where}) not found in {images_dir!r}")
        try:
            with Image.open(path) as pil:
                pixels = np.asarray(pil.convert("L" if channels == 1 else "RGB"))
        except Exception as err:  # noqa: BLE001 - an unreadable image is a data problem
            raise ConfigError("images_dir", f"cannot read image {path!r} ({err})") from err
        declared = (info["width"], info["height"])
        check(pixels.shape[1::-1] == declared, "images_dir",
              f"image {path!r} is {pixels.shape[1]}x{pixels.shape[0]} px but {where} declares "
              f"{declared[0]}x{declared[1]}")
        images[row] = to_square(pixels, image_size, channels)
    box_arr, label_arr, valid = pad_objects([boxes[i] for i in ids], [labels[i] for i in ids], max_objects)
    return CocoArrays(images, box_arr, label_arr, valid, np.asarray(ids, np.int64), class_names, category_ids)


# ----------------------------------------------------------------------------- prepared TFDS detection datasets


def prepared_catalogue(name: str, data_dir: str | None, local: tuple[str, ...], download: bool = False) -> Any:
    """The builder of a catalogue dataset prepared in a search folder; when there is none, downloaded and prepared
    with `download` (`tfds_source.download_catalogue`), else a fast failure (no network).

    Where the dataset's own code needs TensorFlow (coco), the prepared files are opened by their metadata alone
    (`tfds.builder_from_directory`, newest version; `name:version` picks one). `local`: the two local source
    names, suggested in the message."""
    import tensorflow_datasets as tfds

    dirs = tfds_source.catalogue_search_dirs(data_dir)
    base, _, version = name.partition(":")
    for directory in dirs:
        if not os.path.isdir(os.path.join(directory, base.split("/")[0])):
            continue  # nothing there: no need to ask TFDS
        try:
            builder = tfds.builder(name, data_dir=directory)
            if builder.is_prepared():
                return builder
        except (ValueError, KeyError) as err:  # an unknown config or version
            raise ConfigError("dataset", f"TFDS could not resolve {name!r}: {err}") from err
        except ImportError:  # the builder's code imports TensorFlow: read the prepared files without it
            infos = glob.glob(os.path.join(directory, *base.split("/"), version or "*", "dataset_info.json"))
            infos = [p for p in infos if re.fullmatch(r"\d+\.\d+\.\d+", os.path.basename(os.path.dirname(p)))]
            if infos:
                newest = max(infos, key=lambda p: tfds.core.Version(os.path.basename(os.path.dirname(p))))
                return tfds.builder_from_directory(os.path.dirname(newest))
    if download:
        return tfds_source.download_catalogue(name, dirs[0])
    raise ConfigError("dataset", (
        f"TFDS dataset {name!r} is not prepared in {', '.join(dirs)}; jaxnas does not download by default (offline, "
        f"TFDS would retry for minutes): {tfds_source.DOWNLOAD_HINT}. Or on a machine with internet and tensorflow "
        f"run: tfds build {name} "
        f"--data_dir={dirs[0]} --file_format=array_record, then copy {os.path.join(dirs[0], base.split('/')[0])} "
        f"to the same place here (or pass data_dir= where it is). Offline: name='{local[0]}', or "
        f"name='{local[1]}' with images_dir= and annotations_json="))


def read_catalogue_split(source: Any, size: int, max_objects: int, channels: int,
                         max_images: int | None) -> tuple[Any, ...]:
    """Converts a TFDS split: images stretched to `size`, normalised (ymin, xmin, ymax, xmax) boxes -> pixel
    corners (x0, y0, x1, y1); crowd objects dropped; images with more than `max_objects` objects left out.

    Returns:
      `(images, boxes, labels, valid, ids, source_index=None, skipped)`, the fields of a `DetectionSplit`.
    """
    images, boxes, labels, ids, skipped = [], [], [], [], 0
    for start in range(0, len(source), _CHUNK):
        if max_images is not None and len(images) >= max_images:
            break
        for offset, ex in enumerate(source.__getitems__(list(range(start, min(start + _CHUNK, len(source)))))):
            objects = ex["objects"]
            label = np.asarray(objects["label"]).reshape(-1)
            keep = ~np.asarray(objects.get("is_crowd", np.zeros(len(label), bool)), bool).reshape(-1)
            bbox = np.asarray(objects["bbox"], np.float32).reshape(-1, 4)[keep]
            if len(bbox) > max_objects:
                skipped += 1
                continue
            images.append(to_square(np.asarray(ex["image"]), size, channels))
            boxes.append(np.clip(bbox[:, [1, 0, 3, 2]], 0.0, 1.0) * np.float32(size))
            labels.append(label[keep].astype(np.int32))
            ids.append(start + offset)
            if max_images is not None and len(images) >= max_images:
                break
    padded = pad_objects(boxes, labels, max_objects)
    stacked = np.stack(images) if images else np.zeros((0, size, size, channels), np.float32)
    return (stacked, *padded, np.asarray(ids, np.int64), None, skipped)


def has_objects(source: Any, look: int = 64) -> bool:
    """Whether any of the first `look` examples of a split is annotated (coco and voc/2012 tests are not)."""
    examples = source.__getitems__(list(range(min(look, len(source)))))
    return any(len(np.asarray(ex["objects"]["label"]).reshape(-1)) for ex in examples)


# ----------------------------------------------------------------------------- assembled datasets


def check_settings(image_size: Any, max_objects: Any, seed: Any, valid_fraction: Any, test_fraction: Any,
                   channels: Any) -> None:
    """The settings every detection source shares; raises `ConfigError` naming the first bad one."""
    check_positive("image_size", image_size, integer=True)
    check_positive("max_objects", max_objects, integer=True)
    check(isinstance(seed, (int, np.integer)) and not isinstance(seed, bool) and seed >= 0, "seed",
          f"got {seed!r}; allowed: an integer >= 0")
    check_range("valid_fraction", valid_fraction, 0.0, 1.0)
    check_range("test_fraction", test_fraction, 0.0, 1.0)
    check(valid_fraction + test_fraction < 1, "valid_fraction", f"valid_fraction + test_fraction = "
          f"{valid_fraction + test_fraction:g}; allowed: < 1 to leave training data")
    if channels is not None:
        check_choice("channels", channels, [1, 3])


def random_parts(n: int, valid_fraction: float, test_fraction: float, seed: int) -> list[np.ndarray]:
    """Sorted row indices of train / valid / test: round(n f) rows each (at least 1 when f > 0), train the rest."""
    counts = [max(int(round(n * f)), 1 if f > 0 else 0) for f in (valid_fraction, test_fraction)]
    check(n - sum(counts) >= 1, "valid_fraction", f"{n} image(s) leave no training image after {counts[0]} "
          f"valid and {counts[1]} test ones; lower valid_fraction / test_fraction")
    perm = np.random.default_rng(seed).permutation(n)
    ends = np.cumsum([n - sum(counts), *counts])
    return [np.sort(part) for part in np.split(perm, ends[:-1])]


def load_coco(images_dir: str, annotations_json: str, image_size: int = 64, max_objects: int = 4, *,
              valid_fraction: float = 0.2, test_fraction: float = 0.2, seed: int = 0,
              channels: int = 3) -> DetectionDataset:
    """A user's COCO-format images and annotations (read by `read_coco`), split at random by image.

    With `valid_fraction = test_fraction = 0` every image is in `train`, sorted by COCO image id. Returns a
    `jaxnas.data.detection.DetectionDataset` named `"coco_files"`.
    """
    from jaxnas.data.detection import COCO_FILES, DetectionDataset, DetectionSplit  # late: detection imports us

    check_settings(image_size, max_objects, seed, valid_fraction, test_fraction, channels)
    data = read_coco(images_dir, annotations_json, image_size, max_objects, channels)
    whole = DetectionSplit(data.images, data.boxes, data.labels, data.valid, data.image_ids)
    parts = random_parts(len(whole), valid_fraction, test_fraction, seed)
    return DetectionDataset(COCO_FILES, len(data.class_names), data.class_names,
                            *(whole.take(p) for p in parts), category_ids=data.category_ids)


def load_catalogue(name: str, data_dir: str | None, size: int, max_objects: int, channels: int,
                   valid_fraction: float, seed: int, max_images: int | None,
                   local: tuple[str, ...], download: bool = False) -> DetectionDataset:
    """A prepared TFDS detection dataset as a `DetectionDataset` (splits: see `jaxnas.data.detection`)."""
    from jaxnas.data.detection import DetectionDataset, DetectionSplit  # late: detection imports us

    builder = prepared_catalogue(name, data_dir, local, download)
    features, splits = builder.info.features, builder.info.splits
    objects = features["objects"] if "objects" in features else None
    ok = "image" in features and objects is not None and all(k in objects for k in ("bbox", "label"))
    check(ok, "dataset", f"{name!r} has features {list(features)}; a detection dataset needs 'image' and "
          "'objects' with 'bbox' and 'label'")
    check("train" in splits and "validation" in splits, "dataset",
          f"{name!r} has splits {list(splits)}; need train and validation")
    sources = {s: builder.as_data_source(split=s) for s in ("train", "validation", "test") if s in splits}
    annotated_test = "test" in sources and has_objects(sources["test"])
    read = {s: DetectionSplit(*read_catalogue_split(src, size, max_objects, channels, max_images))
            for s, src in sources.items() if s != "test" or annotated_test}
    if annotated_test:
        train, valid, test = read["train"], read["validation"], read["test"]
    else:
        parts = random_parts(len(read["train"]), valid_fraction, 0.0, seed)[:2]
        train, valid, test = read["train"].take(parts[0]), read["train"].take(parts[1]), read["validation"]
    names = tuple(objects["label"].names)
    return DetectionDataset(name, len(names), names, train, valid, test)
