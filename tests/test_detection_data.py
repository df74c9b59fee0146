"""Tests of `jaxnas.data.detection`: the synthetic digits-on-canvas set (determinism, tight boxes, disjoint source
digits), a user's COCO files (hand-computed boxes, category remap, every refused input), and the TFDS path (a fake
prepared detection builder; real voc / coco not prepared -> fast ConfigError). Everything runs offline."""

import functools
import json
import time

import jax
import numpy as np
import pytest
from PIL import Image
from sklearn.datasets import load_digits

from jaxnas.common.errors import ConfigError
from jaxnas.data import detection
from jaxnas.data.detection import load_coco, load_detection

SMALL = dict(image_size=32, max_objects=3, splits=(40, 15, 15), digit_sizes=(8, 14))
FAKE_NAME = "jaxnas_test_fake_detection"


@pytest.fixture(scope="module")
def synth_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("tfds"))


@pytest.fixture(scope="module")
def synth(synth_dir):
    return load_detection(data_dir=synth_dir, **SMALL)


def _splits(ds):
    return [ds.train, ds.valid, ds.test]


def test_synthetic_shapes_labels_and_counts(synth):
    assert synth.name == "digits_detection" and synth.num_classes == 10 and synth.image_shape == (32, 32, 1)
    assert synth.class_names == tuple("0123456789") and synth.max_objects == 3 and "train=40" in repr(synth)
    target = load_digits().target
    for split, n in zip(_splits(synth), SMALL["splits"]):
        assert len(split) == n and split.images.dtype == np.float32 and split.images.shape == (n, 32, 32, 1)
        assert split.boxes.shape == (n, 3, 4) and split.boxes.dtype == np.float32
        assert split.labels.dtype == np.int32 and split.valid.dtype == bool
        assert 0.0 <= split.images.min() and split.images.max() <= 1.0
        counts = split.valid.sum(axis=1)
        assert counts.min() >= 1 and counts.max() <= 3
        assert np.all(split.valid[:, :-1] >= split.valid[:, 1:])  # objects first, then padding
        assert set(np.unique(split.labels[split.valid])) <= set(range(10))
        assert not split.boxes[~split.valid].any() and not split.labels[~split.valid].any()
        assert np.all(split.source_index[~split.valid] == -1)
        np.testing.assert_array_equal(split.labels[split.valid], target[split.source_index[split.valid]])
    assert len(set(np.unique(synth.train.valid.sum(1)))) == 3  # 1, 2 and 3 objects all occur


def test_synthetic_boxes_are_tight_and_cover_every_ink_pixel(synth):
    for split in _splits(synth):
        b = split.boxes[split.valid]
        assert np.all(b == np.round(b)) and b.min() >= 0 and b.max() <= 32
        assert np.all(b[:, 2] > b[:, 0]) and np.all(b[:, 3] > b[:, 1])
        assert np.all(b[:, 2] - b[:, 0] <= 14) and np.all(b[:, 3] - b[:, 1] <= 14)
        for image, boxes, valid in zip(split.images[..., 0], split.boxes, split.valid):
            covered = np.zeros((32, 32), bool)
            for x0, y0, x1, y1 in boxes[valid].astype(int):
                covered[y0:y1, x0:x1] = True
                crop = image[y0:y1, x0:x1]
                # tight: the first and last row and column of the box each hold ink
                assert crop[0].any() and crop[-1].any() and crop[:, 0].any() and crop[:, -1].any()
            assert not image[~covered].any()  # the canvas is blank outside all boxes


def test_synthetic_overlap_is_limited(synth):
    for split in _splits(synth):
        for boxes, valid in zip(split.boxes, split.valid):
            b = boxes[valid]
            for k in range(1, len(b)):
                assert detection.box_iou(b[k], b[:k]).max() <= detection.MAX_IOU + 1e-6


def test_synthetic_splits_use_disjoint_source_digits(synth):
    used = [set(s.source_index[s.valid].tolist()) for s in _splits(synth)]
    assert not used[0] & used[1] and not used[0] & used[2] and not used[1] & used[2]
    pools = detection.stratified_split(load_digits().target, (0.2, 0.2), 0)  # the documented source split
    for u, pool in zip(used, pools):
        assert u <= set(pool.tolist())


def test_synthetic_is_deterministic_and_cached(synth, synth_dir, tmp_path, monkeypatch):
    again = load_detection(data_dir=str(tmp_path / "fresh"), **SMALL)  # generated anew in another folder
    other = load_detection(data_dir=synth_dir, seed=1, **SMALL)
    for a, b, c in zip(_splits(synth), _splits(again), _splits(other)):
        for key in ("images", "boxes", "labels", "valid", "source_index"):
            np.testing.assert_array_equal(getattr(a, key), getattr(b, key))
        assert not np.array_equal(a.images, c.images) and not np.array_equal(a.boxes, c.boxes)

    def no_generation(*args, **kwargs):
        raise AssertionError("the prepared cache should have been read")

    monkeypatch.setattr(detection, "synthetic_examples", no_generation)
    cached = load_detection(data_dir=synth_dir, **SMALL, channels=3)
    assert cached.image_shape == (32, 32, 3)
    np.testing.assert_array_equal(cached.test.images[..., 2], synth.test.images[..., 0])


def test_ground_truth_feeds_the_coco_metric(synth):
    from jaxnas.problems.detection_map import coco_map

    gt = synth.test.ground_truth()
    perfect = {**gt, "scores": np.where(gt["valid"], 1.0, 0.0).astype(np.float32)}
    assert coco_map(gt, perfect, num_classes=10)["map"] == pytest.approx(1.0)
    shifted = {**perfect, "boxes": gt["boxes"] + np.float32(3)}  # 3 px off: IoU < 0.95 on every box
    assert coco_map(gt, shifted, num_classes=10)["map"] < 1.0


def test_pasted_digit_is_the_resized_source_digit():
    """Single-object canvases from a pool of known digits: the box's crop equals the tight crop of one of the
    digits resized (by `jax.image.resize`, independently of our matrix) to one of the allowed sizes."""
    digits = load_digits().images[:5] / 16.0
    images, boxes, picks = detection.compose_canvases(
        digits, 12, image_size=24, max_objects=1, digit_sizes=(9, 15), rng=np.random.default_rng(3))
    for image, box, pick in zip(images, boxes, picks):
        x0, y0, x1, y1 = box[0].astype(int)
        crop, found = image[y0:y1, x0:x1], False
        for s in range(9, 16):
            big = np.asarray(jax.image.resize(digits[pick[0]], (s, s), "linear"))
            patch = np.round(np.clip(big, 0, 1) * 255).astype(np.uint8)
            r, c = np.flatnonzero(patch.any(1)), np.flatnonzero(patch.any(0))
            tight = patch[r[0]: r[-1] + 1, c[0]: c[-1] + 1]
            found |= tight.shape == crop.shape and np.abs(tight.astype(int) - crop).max() <= 1
        assert found and image.sum() == crop.sum()


# ----------------------------------------------------------------------------- COCO files


def _write_coco(tmp_path, annotations=None, images=None, categories=None, write_files=True):
    """Three images: id 5 (40x20 red), id 2 (16x16 gray), id 9 (30x60 blue, no objects); categories 7, 3, 12."""
    folder = tmp_path / "images"
    folder.mkdir(exist_ok=True)
    listed = images if images is not None else [
        {"id": 5, "file_name": "a.png", "width": 40, "height": 20},
        {"id": 2, "file_name": "b.png", "width": 16, "height": 16},
        {"id": 9, "file_name": "c.png", "width": 30, "height": 60},
    ]
    colours = {"a.png": (255, 0, 0), "b.png": (128, 128, 128), "c.png": (0, 0, 255)}
    if write_files:
        for img in listed:
            pixels = np.zeros((img["height"], img["width"], 3), np.uint8) + np.uint8(colours[img["file_name"]])
            Image.fromarray(pixels).save(folder / img["file_name"])
    data = {
        "images": listed,
        "categories": categories or [{"id": 7, "name": "cat"}, {"id": 3, "name": "ant"}, {"id": 12, "name": "dog"}],
        "annotations": annotations if annotations is not None else [
            {"id": 1, "image_id": 5, "category_id": 7, "bbox": [4, 2, 10, 8]},
            {"id": 2, "image_id": 5, "category_id": 12, "bbox": [30, 10, 10.5, 10]},  # 0.5 px beyond: clipped
            {"id": 3, "image_id": 2, "category_id": 3, "bbox": [0, 0, 16, 16]},
            {"id": 4, "image_id": 2, "category_id": 7, "bbox": [2, 4, 6, 2], "iscrowd": 1},  # crowd: dropped
        ],
    }
    path = tmp_path / "instances.json"
    path.write_text(json.dumps(data))
    return str(folder), str(path)


def test_coco_round_trip(tmp_path):
    folder, ann = _write_coco(tmp_path)
    ds = load_coco(folder, ann, image_size=32, max_objects=3, valid_fraction=0.0, test_fraction=0.0)
    assert ds.name == "coco_files" and ds.num_classes == 3 and ds.image_shape == (32, 32, 3)
    assert ds.category_ids == (3, 7, 12) and ds.class_names == ("ant", "cat", "dog")
    assert len(ds.valid) == 0 and len(ds.test) == 0
    train = ds.train
    np.testing.assert_array_equal(train.ids, [2, 5, 9])  # sorted by image id
    # image 2 (16x16, scale 2): ant [0, 0, 16, 16] -> (0, 0, 32, 32); the crowd annotation is dropped
    np.testing.assert_allclose(train.boxes[0], [[0, 0, 32, 32], [0, 0, 0, 0], [0, 0, 0, 0]])
    np.testing.assert_array_equal(train.labels[0], [0, 0, 0])
    np.testing.assert_array_equal(train.valid[0], [True, False, False])
    # image 5 (40x20: x * 0.8, y * 1.6): cat (4, 2, 14, 10) -> (3.2, 3.2, 11.2, 16); dog (30, 10, 40.5 -> 40, 20)
    np.testing.assert_allclose(train.boxes[1, :2], [[3.2, 3.2, 11.2, 16.0], [24.0, 16.0, 32.0, 32.0]], rtol=1e-6)
    np.testing.assert_array_equal(train.labels[1, :2], [1, 2])
    np.testing.assert_array_equal(train.valid[1], [True, True, False])
    assert not train.valid[2].any()  # image 9 has no objects
    np.testing.assert_allclose(train.images[1].reshape(-1, 3).mean(0), [1, 0, 0], atol=1e-6)
    np.testing.assert_allclose(train.images[0], 128 / 255, atol=1e-6)
    np.testing.assert_allclose(train.images[2].reshape(-1, 3).mean(0), [0, 0, 1], atol=1e-6)

    gray = load_detection("coco_files", images_dir=folder, annotations_json=ann, image_size=8, max_objects=2,
                          channels=1)
    assert gray.image_shape == (8, 8, 1) and [len(s) for s in _splits(gray)] == [1, 1, 1]
    assert sorted(np.concatenate([s.ids for s in _splits(gray)]).tolist()) == [2, 5, 9]
    assert gray.category_ids == (3, 7, 12)


def _annotation(**fields):
    return [{"id": 1, "image_id": 5, "category_id": 7, "bbox": [4, 2, 10, 8], **fields}]


BAD_COCO = {
    "box_outside": (dict(annotations=_annotation(bbox=[35, 2, 7, 8])), "annotations_json", "outside its image"),
    "box_above": (dict(annotations=_annotation(bbox=[4, -2, 10, 8])), "annotations_json", "outside its image"),
    "negative_size": (dict(annotations=_annotation(bbox=[4, 2, -3, 8])), "annotations_json", "negative size"),
    "unknown_category": (dict(annotations=_annotation(category_id=99)), "annotations_json", "category_id 99"),
    "unknown_image": (dict(annotations=_annotation(image_id=77)), "annotations_json", "image_id 77"),
    "no_image_id": (dict(annotations=[{"id": 1, "category_id": 7, "bbox": [4, 2, 10, 8]}]), "annotations_json",
                    "has image_id None, which is not in 'images'"),
    "too_many_objects": (dict(annotations=_annotation() * 3), "max_objects", "has 3 objects but max_objects=2"),
}


@pytest.mark.parametrize("case", sorted(BAD_COCO))
def test_bad_coco_annotations_name_the_problem(tmp_path, case):
    kwargs, field, fragment = BAD_COCO[case]
    folder, ann = _write_coco(tmp_path, **kwargs)
    with pytest.raises(ConfigError) as info:
        load_coco(folder, ann, image_size=16, max_objects=2)
    assert info.value.field == field and fragment in str(info.value) and "\n" not in str(info.value)


def test_bad_coco_files_name_the_problem(tmp_path):
    folder, ann = _write_coco(tmp_path)
    (tmp_path / "images" / "b.png").unlink()
    with pytest.raises(ConfigError) as info:
        load_coco(folder, ann, image_size=16, max_objects=2)
    assert info.value.field == "images_dir" and "'b.png'" in str(info.value) and "image id 2" in str(info.value)
    Image.fromarray(np.zeros((20, 41, 3), np.uint8)).save(tmp_path / "images" / "b.png")  # declared 16x16
    with pytest.raises(ConfigError) as info:
        load_coco(folder, ann, image_size=16, max_objects=2)
    assert info.value.field == "images_dir" and "is 41x20 px but" in str(info.value)
    empty = tmp_path / "empty"
    empty.mkdir()
    for where in (str(empty), str(tmp_path / "missing")):
        with pytest.raises(ConfigError) as info:
            load_coco(where, ann, image_size=16, max_objects=2)
        assert info.value.field == "images_dir" and where in str(info.value)
    with pytest.raises(ConfigError) as info:
        load_coco(folder, str(tmp_path / "none.json"), image_size=16, max_objects=2)
    assert info.value.field == "annotations_json" and "not found" in str(info.value)
    (tmp_path / "broken.json").write_text("{not json")
    with pytest.raises(ConfigError) as info:
        load_coco(folder, str(tmp_path / "broken.json"), image_size=16, max_objects=2)
    assert info.value.field == "annotations_json"
    with pytest.raises(ConfigError) as info:
        load_detection("coco_files", images_dir=folder)
    assert info.value.field == "annotations_json" and "required" in str(info.value)


# ----------------------------------------------------------------------------- names and TFDS


def test_unknown_dataset_name_lists_the_choices(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_detection("no_such_detection_set", data_dir=str(tmp_path))
    message = str(info.value)
    assert info.value.field == "dataset"
    for choice in ("'digits_detection'", "'coco_files'", "voc", "coco/2017"):
        assert choice in message


@pytest.mark.parametrize("name", ["voc", "coco/2017"])
def test_unprepared_tfds_dataset_fails_fast(tmp_path, name):
    start = time.monotonic()
    with pytest.raises(ConfigError) as info:
        load_detection(name, data_dir=str(tmp_path))
    (tmp_path / name.split("/")[0]).mkdir()  # a folder without a prepared version goes through tfds.builder
    with pytest.raises(ConfigError) as again:
        load_detection(name, data_dir=str(tmp_path))
    assert time.monotonic() - start < 10.0
    for err in (info.value, again.value):
        assert err.field == "dataset" and "not prepared" in str(err)
        assert f"tfds build {name} --data_dir={tmp_path}" in str(err) and "digits_detection" in str(err)


@pytest.mark.parametrize("kwargs, field", [
    (dict(image_size=0), "image_size"), (dict(max_objects=-1), "max_objects"), (dict(seed=-1), "seed"),
    (dict(digit_sizes=(12, 80)), "digit_sizes"), (dict(splits=(10, 0, 5)), "splits"), (dict(channels=2), "channels"),
    (dict(valid_fraction=0.6, test_fraction=0.5), "valid_fraction"), (dict(images_dir="x"), "images_dir"),
    (dict(test_fraction=0.0), "valid_fraction"), (dict(max_images=0), "max_images"),
])
def test_settings_are_validated(tmp_path, kwargs, field):
    with pytest.raises(ConfigError) as info:
        load_detection(data_dir=str(tmp_path), **kwargs)
    assert info.value.field == field


@functools.cache
def _fake_detection_builder():
    """A registered builder standing in for a prepared TFDS detection dataset (VOC/COCO-like features)."""
    import tensorflow_datasets as tfds

    class JaxnasTestFakeDetection(tfds.core.GeneratorBasedBuilder):
        name = FAKE_NAME
        VERSION = tfds.core.Version("1.0.0")

        def _info(self):
            return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict({
                "image": tfds.features.Tensor(shape=(None, None, 3), dtype=np.uint8, encoding="zlib"),
                "objects": tfds.features.Sequence({
                    "bbox": tfds.features.BBoxFeature(),
                    "label": tfds.features.ClassLabel(names=["cat", "dog"]),
                    "is_crowd": np.bool_,
                }),
            }))

        def _split_generators(self, dl_manager):
            return {"train": self._generate_examples(8), "validation": self._generate_examples(3)}

        def _generate_examples(self, n):
            box, whole = [0.1, 0.2, 0.5, 0.75], [0.0, 0.0, 1.0, 1.0]
            for i in range(n):
                k = i % 4  # 0 to 3 annotations; the second is a crowd region, so 0, 1, 1, 2 objects
                yield i, {"image": np.full((10 + i, 20, 3), 10 * i, np.uint8), "objects": {
                    "bbox": np.array([box, whole, box][:k], np.float32).reshape(-1, 4),
                    "label": [i % 2, 0, 1][:k], "is_crowd": [False, True, False][:k]}}

    return JaxnasTestFakeDetection


def test_prepared_tfds_detection_dataset_is_converted(tmp_path, monkeypatch):
    _fake_detection_builder()(data_dir=str(tmp_path)).download_and_prepare(file_format="array_record")
    ds = load_detection(FAKE_NAME, data_dir=str(tmp_path), image_size=16, max_objects=2, valid_fraction=0.25)
    assert ds.num_classes == 2 and ds.class_names == ("cat", "dog") and ds.image_shape == (16, 16, 3)
    assert (len(ds.train), len(ds.valid), len(ds.test)) == (6, 2, 3)  # test = the validation split
    for split in _splits(ds):
        # normalised (ymin, xmin, ymax, xmax) = (0.1, 0.2, 0.5, 0.75) -> pixels (x0, y0, x1, y1) = (3.2, 1.6, 12, 8)
        np.testing.assert_allclose(split.boxes[split.valid], [[3.2, 1.6, 12.0, 8.0]] * int(split.valid.sum()),
                                   rtol=1e-6)
        assert split.skipped == 0
    counts = np.concatenate([s.valid.sum(1) for s in _splits(ds)])
    assert sorted(counts.tolist()) == [0, 0, 0, 1, 1, 1, 1, 1, 1, 2, 2]  # crowd regions are not objects
    mean = np.concatenate([s.images for s in _splits(ds)]).mean(axis=(1, 2, 3)) * 25.5
    assert sorted(np.round(mean).astype(int).tolist()) == sorted([*range(8), 0, 1, 2])  # image i is filled with 10 i

    one = load_detection(FAKE_NAME, data_dir=str(tmp_path), image_size=16, max_objects=1, valid_fraction=0.25)
    assert one.train.skipped == 2 and len(one.train) + len(one.valid) == 6  # images with 2 objects left out
    small = load_detection(FAKE_NAME, data_dir=str(tmp_path), image_size=16, max_objects=2, max_images=2)
    assert len(small.train) + len(small.valid) == 2 and len(small.test) == 2

    import tensorflow_datasets as tfds

    def needs_tensorflow(*args, **kwargs):  # as tfds.builder("coco/2017") behaves without TensorFlow
        raise ModuleNotFoundError("No module named 'tensorflow'")

    monkeypatch.setattr(tfds, "builder", needs_tensorflow)
    from_files = load_detection(FAKE_NAME, data_dir=str(tmp_path), image_size=16, max_objects=2, valid_fraction=0.25)
    for a, b in zip(_splits(ds), _splits(from_files)):
        np.testing.assert_array_equal(a.images, b.images)
        np.testing.assert_array_equal(a.boxes, b.boxes)
