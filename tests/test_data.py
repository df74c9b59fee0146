"""Tests of `jaxnas.data`: the digits served through a local TFDS builder, npz files, prepared catalogue
datasets, resizing and stratified splits. Everything runs offline in `tmp_path` data dirs."""

import functools
import glob
import os
import threading
import time

import jax
import numpy as np
import pytest
from sklearn.datasets import load_digits

from jaxnas.common.errors import ConfigError
from jaxnas.data import DATASETS, ImageDataset, load_images, resize_images, stratified_split
from jaxnas.data import tfds_source

FAKE_NAME = "jaxnas_test_fake_images"


@pytest.fixture(scope="module")
def digits_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("tfds"))


@pytest.fixture(scope="module")
def digits(digits_dir):
    return load_images(data_dir=digits_dir)


@functools.cache
def _sklearn_digits():
    d = load_digits()
    return (d.images / 16.0).astype(np.float32), d.target


def _splits(ds: ImageDataset):
    return [(ds.train_x, ds.train_y), (ds.valid_x, ds.valid_y), (ds.test_x, ds.test_y)]


def test_digits_shapes_ranges_and_splits(digits):
    assert digits.name == "digits" and digits.num_classes == 10 and digits.image_shape == (16, 16, 1)
    assert sum(len(y) for _, y in _splits(digits)) == 1797
    for x, y in _splits(digits):
        assert x.dtype == np.float32 and y.dtype == np.int32
        assert x.shape == (len(y), 16, 16, 1)
        assert 0.0 <= x.min() and x.max() <= 1.0
        assert set(np.unique(y)) == set(range(10))
    assert len(digits.valid_y) == pytest.approx(0.2 * 1797, abs=10)
    assert len(digits.test_y) == pytest.approx(0.2 * 1797, abs=10)
    assert "train=" in repr(digits)


def test_digits_are_served_by_the_tfds_builder(digits, digits_dir, monkeypatch):
    files = glob.glob(os.path.join(digits_dir, "jaxnas_digits", "*", "*.array_record*"))
    assert files and os.path.isfile(os.path.join(os.path.dirname(files[0]), "dataset_info.json"))

    # A second load reads the prepared files: regenerating from sklearn would fail now.
    def no_sklearn():
        raise AssertionError("the prepared cache should have been used")

    monkeypatch.setattr("sklearn.datasets.load_digits", no_sklearn)
    again = load_images(data_dir=digits_dir)
    for (x1, y1), (x2, y2) in zip(_splits(digits), _splits(again)):
        np.testing.assert_array_equal(x1, x2)
        np.testing.assert_array_equal(y1, y2)


def test_unwritable_data_dir_names_the_field(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(ConfigError) as info:
        load_images(data_dir=str(blocker / "tfds"))
    assert info.value.field == "data_dir"


def test_data_dir_defaults_to_env(tmp_path, monkeypatch):
    monkeypatch.setenv("JAXNAS_DATA_DIR", str(tmp_path))
    assert tfds_source.resolve_data_dir(None) == str(tmp_path)
    assert tfds_source.catalogue_search_dirs(None) == [str(tmp_path)]
    assert tfds_source.resolve_data_dir(str(tmp_path / "x")) == str(tmp_path / "x")


def test_concurrent_preparation_is_safe(tmp_path):
    results, errors = [], []

    def prepare():
        try:
            results.append(tfds_source.digits_builder(str(tmp_path)).info.splits["train"].num_examples)
        except Exception as err:  # noqa: BLE001
            errors.append(err)

    threads = [threading.Thread(target=prepare) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and results == [1797] * 3
    assert os.listdir(tmp_path / "jaxnas_digits") == ["1.0.0"]  # no leftover incomplete folders


def test_native_images_are_the_sklearn_digits(digits_dir):
    native = load_images(data_dir=digits_dir, size=None)
    assert native.image_shape == (8, 8, 1)
    images, targets = _sklearn_digits()
    lookup = {img.tobytes(): int(t) for img, t in zip(images, targets)}
    for x, y in _splits(native):
        assert [lookup[img[..., 0].tobytes()] for img in x] == y.tolist()


def test_resized_images_keep_the_content(digits, digits_dir):
    native = load_images(data_dir=digits_dir, size=None)  # same seed -> same split, same order
    np.testing.assert_array_equal(native.train_y, digits.train_y)
    back = digits.train_x.reshape(-1, 8, 2, 8, 2, 1).mean(axis=(2, 4))  # 2x2 average pooling: 16x16 -> 8x8
    assert np.abs(back - native.train_x).mean() < 0.1  # measured 0.07 (bilinear upsampling smooths a little)
    assert np.corrcoef(back.ravel(), native.train_x.ravel())[0, 1] > 0.95  # measured 0.98
    other = np.roll(native.train_x, 1, axis=0)  # each image against a different digit
    assert np.corrcoef(back.ravel(), other.ravel())[0, 1] < 0.7


def test_resize_matches_jax_image_resize():
    x = np.random.default_rng(0).uniform(size=(3, 8, 12, 2)).astype(np.float32)
    for size in (5, 16):
        expected = np.clip(np.asarray(jax.image.resize(x, (3, size, size, 2), "linear")), 0, 1)
        np.testing.assert_allclose(resize_images(x, size), expected, atol=1e-5)


def test_split_is_deterministic_per_seed(digits, digits_dir):
    same = load_images(data_dir=digits_dir, seed=0)
    other = load_images(data_dir=digits_dir, seed=1)
    np.testing.assert_array_equal(same.train_x, digits.train_x)
    np.testing.assert_array_equal(same.test_y, digits.test_y)
    assert not np.array_equal(other.train_y, digits.train_y)
    assert not np.array_equal(other.test_x, digits.test_x)


def test_split_options_and_channels(digits_dir):
    ds = load_images(data_dir=digits_dir, size=12, channels=3, valid_fraction=0.1, test_fraction=0.0)
    assert ds.image_shape == (12, 12, 3) and len(ds.test_y) == 0
    np.testing.assert_array_equal(ds.train_x[..., 0], ds.train_x[..., 2])
    assert len(ds.train_y) + len(ds.valid_y) == 1797


def test_stratified_split_keeps_small_classes_in_train():
    labels = np.array([0] * 20 + [1] * 3 + [2])
    train, valid, test = stratified_split(labels, (0.2, 0.2), seed=0)
    assert sorted(np.concatenate([train, valid, test]).tolist()) == list(range(24))
    for part in (train, valid, test):
        assert {0, 1} <= set(labels[part].tolist())
    assert 2 in labels[train]


def _write_npz(path, **arrays):
    np.savez(path, **arrays)
    return str(path)


def test_npz_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.uniform(size=(30, 5, 6)).astype(np.float32)
    labels = np.repeat(np.arange(3), 10)
    path = _write_npz(tmp_path / "d.npz", images=images, labels=labels)
    ds = load_images(npz_path=path, size=None, seed=3)
    assert ds.name == "npz" and ds.num_classes == 3 and ds.image_shape == (5, 6, 1)
    lookup = {img.tobytes(): int(t) for img, t in zip(images, labels)}
    for x, y in _splits(ds):
        assert set(y.tolist()) == {0, 1, 2}
        assert [lookup[img[..., 0].tobytes()] for img in x] == y.tolist()
    assert sum(len(y) for _, y in _splits(ds)) == 30

    rgb = _write_npz(tmp_path / "rgb.npz", images=rng.uniform(size=(30, 4, 4, 3)), labels=labels)
    gray = load_images("npz", npz_path=rgb, size=8, channels=1)
    assert gray.image_shape == (8, 8, 1) and gray.train_x.dtype == np.float32


@pytest.mark.parametrize(
    "arrays, field, fragment",
    [
        (None, "npz_path", "not found"),
        ({"labels": np.zeros(4)}, "images", "missing"),
        ({"images": np.zeros((4, 3, 3))}, "labels", "missing"),
        ({"images": np.zeros((4, 9)), "labels": np.arange(4) % 2}, "images", "(N,H,W)"),
        ({"images": np.full((4, 3, 3), 255.0), "labels": np.arange(4) % 2}, "images", "[0, 1]"),
        ({"images": np.full((4, 3, 3), np.nan), "labels": np.arange(4) % 2}, "images", "NaN"),
        ({"images": np.array(["a"] * 4), "labels": np.arange(4) % 2}, "images", "(N,H,W)"),
        ({"images": np.full((4, 3, 3), "a"), "labels": np.arange(4) % 2}, "images", "dtype"),
        ({"images": np.zeros((4, 3, 3)), "labels": np.arange(5) % 2}, "labels", "one per image"),
        ({"images": np.zeros((4, 3, 3)), "labels": np.zeros(4, int)}, "labels", "at least 2"),
        ({"images": np.zeros((4, 3, 3)), "labels": np.array([0, 1, 0.5, 1])}, "labels", "integers"),
        ({"images": np.zeros((4, 3, 3)), "labels": np.array([0, 1, -1, 1])}, "labels", "negative"),
        ({"images": np.zeros((4, 3, 3)), "labels": np.zeros((4, 1))}, "labels", "(N,)"),
    ],
)
def test_npz_errors_name_their_field(tmp_path, arrays, field, fragment):
    path = str(tmp_path / "missing.npz") if arrays is None else _write_npz(tmp_path / "bad.npz", **arrays)
    with pytest.raises(ConfigError) as info:
        load_images(npz_path=path)
    assert info.value.field == field and fragment in str(info.value)


def test_npz_name_requires_path_and_unreadable_file(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_images("npz")
    assert info.value.field == "npz_path"
    junk = tmp_path / "junk.npz"
    junk.write_text("not a zip")
    with pytest.raises(ConfigError) as info:
        load_images(npz_path=str(junk))
    assert info.value.field == "npz_path"
    with pytest.raises(ConfigError) as info:
        load_images("mnist", npz_path=str(junk))
    assert info.value.field == "npz_path"


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"size": 0}, "size"),
        ({"size": 2.5}, "size"),
        ({"valid_fraction": -0.1}, "valid_fraction"),
        ({"test_fraction": 1.5}, "test_fraction"),
        ({"valid_fraction": 0.6, "test_fraction": 0.5}, "valid_fraction"),
        ({"channels": 2}, "channels"),
        ({"seed": -1}, "seed"),
    ],
)
def test_settings_are_validated(tmp_path, kwargs, field):
    with pytest.raises(ConfigError) as info:
        load_images(data_dir=str(tmp_path), **kwargs)
    assert info.value.field == field
    assert not os.listdir(tmp_path)  # rejected before any work


def test_missing_catalogue_dataset_fails_fast(tmp_path):
    start = time.monotonic()
    with pytest.raises(ConfigError) as info:
        load_images("mnist", data_dir=str(tmp_path))
    (tmp_path / "mnist").mkdir()  # a folder without a prepared version goes through tfds.builder
    with pytest.raises(ConfigError) as again:
        load_images("mnist", data_dir=str(tmp_path))
    assert time.monotonic() - start < 10.0
    for err in (info.value, again.value):
        message = str(err)
        assert err.field == "dataset" and "not prepared" in message
        assert "tfds.data_source('mnist'" in message and str(tmp_path) in message and "npz" in message


def test_unknown_name_lists_the_choices(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_images("no_such_dataset", data_dir=str(tmp_path))
    message = str(info.value)
    assert info.value.field == "dataset"
    for choice in ("'digits'", "npz_path", "mnist", "fashion_mnist", "cifar10"):
        assert choice in message
    with pytest.raises(ConfigError):
        load_images("some_namespace:mnist", data_dir=str(tmp_path))
    assert set(DATASETS) == {"digits", "npz"}


@functools.cache
def _fake_catalogue_builder():
    """A registered builder standing in for a prepared catalogue dataset (train + test splits)."""
    import tensorflow_datasets as tfds

    class JaxnasTestFakeImages(tfds.core.GeneratorBasedBuilder):
        name = FAKE_NAME
        VERSION = tfds.core.Version("1.0.0")

        def _info(self):
            features = tfds.features.FeaturesDict(
                {
                    "image": tfds.features.Tensor(shape=(12, 12, 3), dtype=np.uint8),
                    "label": tfds.features.ClassLabel(num_classes=3),
                }
            )
            return tfds.core.DatasetInfo(builder=self, features=features, supervised_keys=("image", "label"))

        def _split_generators(self, dl_manager):
            return {"train": self._generate_examples(60, 0), "test": self._generate_examples(30, 1)}

        def _generate_examples(self, n, seed):
            rng = np.random.default_rng(seed)
            for i in range(n):
                yield i, {"image": rng.integers(0, 256, (12, 12, 3), dtype=np.uint8), "label": i % 3}

    return JaxnasTestFakeImages


def test_prepared_catalogue_dataset_is_read(tmp_path):
    builder = _fake_catalogue_builder()(data_dir=str(tmp_path))
    builder.download_and_prepare(file_format="array_record")
    ds = load_images(FAKE_NAME, data_dir=str(tmp_path), size=6, channels=1, valid_fraction=0.25)
    assert ds.name == FAKE_NAME and ds.num_classes == 3 and ds.image_shape == (6, 6, 1)
    assert (len(ds.train_y), len(ds.valid_y), len(ds.test_y)) == (45, 15, 30)  # test = the builder's test split
    for x, y in _splits(ds):
        assert set(y.tolist()) == {0, 1, 2} and 0 <= x.min() and x.max() <= 1
    native = load_images(FAKE_NAME, data_dir=str(tmp_path), size=None)
    assert native.image_shape == (12, 12, 3)
    source = builder.as_data_source(split="test")
    expected = np.stack([ex["image"] for ex in source.__getitems__(list(range(30)))]) / 255.0
    np.testing.assert_allclose(native.test_x, expected, atol=1e-6)


def test_download_is_opt_in_and_prepares_array_record(tmp_path, monkeypatch, capsys):
    """download=False (the default) refuses an unprepared catalogue dataset at once and names the opt-in;
    download=True lets TFDS prepare it (the fake builder 'downloads' nothing) as array_record into data_dir,
    then reads it like a prepared one; a failed download names the `download` field with TFDS's reason."""
    builder_cls = _fake_catalogue_builder()
    with pytest.raises(ConfigError) as refused:
        load_images(FAKE_NAME, data_dir=str(tmp_path / "a"), size=None)
    assert refused.value.field == "dataset" and "download=True" in str(refused.value)
    assert not (tmp_path / "a" / FAKE_NAME).exists()
    ds = load_images(FAKE_NAME, data_dir=str(tmp_path / "a"), size=None, download=True)
    assert "downloads and prepares" in capsys.readouterr().out
    assert builder_cls(data_dir=str(tmp_path / "a")).is_prepared() and len(ds.test_y) == 30
    assert glob.glob(str(tmp_path / "a" / FAKE_NAME / "1.0.0" / "*.array_record*"))
    again = load_images(FAKE_NAME, data_dir=str(tmp_path / "a"), size=None, download=True)  # prepared: read
    np.testing.assert_array_equal(again.test_x, ds.test_x)
    assert "downloads" not in capsys.readouterr().out

    def offline(self, *args, **kwargs):
        raise OSError("network is unreachable")

    monkeypatch.setattr(builder_cls, "download_and_prepare", offline)
    with pytest.raises(ConfigError) as failed:
        load_images(FAKE_NAME, data_dir=str(tmp_path / "b"), size=None, download=True)
    assert failed.value.field == "download" and "network is unreachable" in str(failed.value)


def test_npz_without_labels_loads_only_when_allowed(tmp_path):
    path = _write_npz(tmp_path / "images_only.npz", images=np.random.default_rng(0).uniform(size=(20, 4, 4)))
    with pytest.raises(ConfigError) as info:
        load_images(npz_path=path, size=None)
    assert info.value.field == "labels" and "missing" in str(info.value)
    ds = load_images(npz_path=path, size=None, labels_required=False)
    assert not ds.labeled and ds.num_classes == 1
    assert len(ds.train_x) + len(ds.valid_x) + len(ds.test_x) == 20 and ds.train_x.shape[1:] == (4, 4, 1)
    assert not ds.train_y.any() and not ds.test_y.any()
    labeled = load_images(npz_path=_write_npz(tmp_path / "l.npz", images=np.zeros((6, 4, 4)), labels=np.arange(6) % 2),
                          size=None, labels_required=False)
    assert labeled.labeled and labeled.num_classes == 2


def test_unlabeled_non_square_catalogue_dataset_loads_for_gans(tmp_path):
    """A catalogue dataset with images only (like celeb_a): refused when labels are required; otherwise one
    class, every image centre-cropped to a square before resizing."""
    import tensorflow_datasets as tfds

    class JaxnasTestFakeFaces(tfds.core.GeneratorBasedBuilder):
        name = FAKE_NAME + "_faces"
        VERSION = tfds.core.Version("1.0.0")

        def _info(self):
            features = tfds.features.FeaturesDict({"image": tfds.features.Tensor(shape=(10, 6, 1), dtype=np.uint8)})
            return tfds.core.DatasetInfo(builder=self, features=features)

        def _split_generators(self, dl_manager):
            return {"train": self._generate_examples()}

        def _generate_examples(self):
            for i in range(20):
                img = np.zeros((10, 6, 1), np.uint8)
                img[2:8] = 255  # the centre 6x6 square is white, the top and bottom rows black
                yield i, {"image": img}

    JaxnasTestFakeFaces(data_dir=str(tmp_path)).download_and_prepare(file_format="array_record")
    with pytest.raises(ConfigError) as info:
        load_images(FAKE_NAME + "_faces", data_dir=str(tmp_path), size=3)
    assert info.value.field == "dataset" and "class label" in str(info.value)
    ds = load_images(FAKE_NAME + "_faces", data_dir=str(tmp_path), size=3, labels_required=False)
    assert not ds.labeled and ds.num_classes == 1 and ds.image_shape == (3, 3, 1)
    assert len(ds.train_x) + len(ds.valid_x) + len(ds.test_x) == 20
    np.testing.assert_allclose(ds.train_x, 1.0)  # cropped to the white centre, not squashed with the black rows
