"""Unpaired CycleGAN domains: known transforms are exact inverses, the two training halves are disjoint,
user .npz pairs and a prepared cycle_gan TFDS dataset load, and mistakes name their field."""

import numpy as np
import pytest

from gans.cyclegan_data import TINT_DARK, TINT_LIGHT, TRANSFORMS, load_domains, tfds_cycle_gan_domains
from jaxnas.common.errors import ConfigError


@pytest.fixture(scope="module")
def tfds_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("tfds"))


@pytest.mark.parametrize("name", sorted(TRANSFORMS))
def test_transforms_are_inverted_exactly(name):
    x = np.random.default_rng(0).uniform(size=(4, 5, 5, 3)).astype(np.float32)
    t = TRANSFORMS.get(name)
    y = t.forward(x)
    assert y.shape == x.shape and 0 <= y.min() and y.max() <= 1
    np.testing.assert_allclose(t.inverse(y), x, atol=1e-6)
    assert np.abs(y - x).mean() > 0.1  # not the identity


def test_tint_by_hand():
    t = TRANSFORMS.get("tint")
    np.testing.assert_allclose(t.forward(np.zeros((1, 1, 1, 3)))[0, 0, 0], TINT_DARK)
    np.testing.assert_allclose(t.forward(np.ones((1, 1, 1, 3)))[0, 0, 0], TINT_LIGHT)
    np.testing.assert_allclose(t.forward(np.full((1, 1, 1, 3), 0.5))[0, 0, 0], [0.525, 0.5, 0.35], atol=1e-6)


@pytest.mark.parametrize("transform, channels", [("invert", 1), ("tint", 3)])
def test_digit_domains_are_unpaired_and_carry_the_truth(tfds_dir, transform, channels):
    d = load_domains(transform=transform, size=16, data_dir=tfds_dir)
    t = TRANSFORMS.get(transform)
    assert d.image_shape_a == d.image_shape_b == (16, 16, channels) and d.labeled
    assert abs(len(d.train_a) - len(d.train_b)) <= 10 and set(d.train_a_y.tolist()) == set(range(10))
    # Disjoint halves: no B image is the transform of an A image.
    flat_a = d.train_a.reshape(len(d.train_a), -1)
    flat_b = t.inverse(d.train_b).reshape(len(d.train_b), -1)
    nearest = np.min(((flat_b[:, None, :] - flat_a[None, :, :]) ** 2).sum(-1), axis=1)
    assert nearest.min() > 1e-6
    np.testing.assert_allclose(d.truth_ab(d.test_a), t.forward(d.test_a))
    np.testing.assert_allclose(d.truth_ba(d.test_b), t.inverse(d.test_b), atol=1e-6)
    assert len(d.test_a_y) == len(d.test_a) and len(d.test_b_y) == len(d.test_b)


def test_npz_pair_and_known_transform_on_npz(tmp_path):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "a.npz", images=rng.uniform(size=(30, 8, 8)))
    np.savez(tmp_path / "b.npz", images=rng.uniform(size=(20, 8, 8, 3)), labels=np.arange(20) % 2)
    d = load_domains(npz_a=str(tmp_path / "a.npz"), npz_b=str(tmp_path / "b.npz"), size=8, channels=3)
    assert (len(d.train_a) + len(d.test_a), len(d.train_b) + len(d.test_b)) == (30, 20)
    assert d.image_shape_a == (8, 8, 3) and not d.labeled and d.truth_ab is None
    known = load_domains(npz=str(tmp_path / "b.npz"), transform="invert", size=8)
    assert known.truth_ab is not None and known.image_shape_b == (8, 8, 3)


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"transform": "flip"}, "transform"),
        ({"transform": "tint", "channels": 1}, "transform"),
        ({"channels": 2}, "data.channels"),
        ({"npz_a": "x.npz"}, "data.npz_b"),
        ({"npz_a": "missing_a.npz", "npz_b": "missing_b.npz"}, "data.npz_a"),
    ],
)
def test_mistakes_name_the_field(tfds_dir, kwargs, field):
    with pytest.raises(ConfigError) as info:
        load_domains(size=16, data_dir=tfds_dir, **kwargs)
    assert info.value.field == field


def test_prepared_cycle_gan_tfds_dataset(tmp_path):
    import tensorflow_datasets as tfds

    class JaxnasTestCyclePairs(tfds.core.GeneratorBasedBuilder):  # the layout of the catalogue's cycle_gan/*
        name = "jaxnas_test_cycle_pairs"
        VERSION = tfds.core.Version("2.0.0")

        def _info(self):
            features = tfds.features.FeaturesDict({"image": tfds.features.Tensor(shape=(12, 12, 3), dtype=np.uint8),
                                                   "label": tfds.features.ClassLabel(num_classes=2)})
            return tfds.core.DatasetInfo(builder=self, features=features)

        def _split_generators(self, dl_manager):
            return {s: self._generate_examples(n, int(s.endswith("B"))) for s, n in
                    (("trainA", 6), ("trainB", 5), ("testA", 3), ("testB", 2))}

        def _generate_examples(self, n, label):
            for i in range(n):
                yield i, {"image": np.full((12, 12, 3), 255 * label, np.uint8), "label": label}

    JaxnasTestCyclePairs(data_dir=str(tmp_path)).download_and_prepare(file_format="array_record")
    d = tfds_cycle_gan_domains("jaxnas_test_cycle_pairs", size=4, data_dir=str(tmp_path))
    assert (len(d.train_a), len(d.train_b), len(d.test_a), len(d.test_b)) == (6, 5, 3, 2)
    assert d.image_shape_a == (4, 4, 3) and d.train_a.max() == 0 and d.train_b.min() == 1
