"""The population training engine: deterministic, and independent of chunking and of the device count."""

import types

import jax
import numpy as np
import pytest

from jaxnas.common.errors import ConfigError
from jaxnas.models.nb201 import NB201Network
from jaxnas.evaluation.population import PopulationTrainer, TrainSettings
from jaxnas.spaces import nb201

# Exact checks with a few steps each: compile-bound (conftest). Learning, which trains for longer, is in
# test_population_learning.py with XLA's optimisations on.
pytestmark = pytest.mark.usefixtures("fast_compile")

SETTINGS = TrainSettings(steps=8, batch_size=32, learning_rate=0.1)
NET = NB201Network(channels=4, cells_per_stage=1, num_classes=10)
ARCHS = np.asarray(nb201.SPACE.decode(np.array([0, 6111, 15624, 3906, 781, 12000])))  # 6: pads a chunk of 4


@pytest.fixture(scope="module")
def sharded(digits_8x8):
    return PopulationTrainer(NET, digits_8x8, SETTINGS, chunk_size=8)


def test_sharded_equals_one_device_and_chunked_equals_unchunked(digits_8x8, sharded):
    one_device = PopulationTrainer(NET, digits_8x8, SETTINGS, chunk_size=4, devices=jax.local_devices()[:1])
    a = sharded.score(ARCHS, seed=3)  # one chunk of 8 over 8 devices
    b = one_device.score(ARCHS, seed=3)  # two chunks of 4 on one device (the last one padded)
    assert len(sharded.devices) == 8 and sharded.chunk_size == 8 and one_device.chunk_size == 4
    np.testing.assert_allclose(a.train_loss, b.train_loss, rtol=2e-5, atol=2e-5)
    np.testing.assert_allclose(a.valid_acc, b.valid_acc, atol=1e-5)
    np.testing.assert_allclose(a.test_acc, b.test_acc, atol=1e-5)
    assert one_device.traces == 1  # both chunks share one compiled program


def test_same_seed_same_scores_other_seed_differs(sharded):
    a, b, c = sharded.score(ARCHS[:3], seed=0), sharded.score(ARCHS[:3], seed=0), sharded.score(ARCHS[:3], seed=1)
    np.testing.assert_array_equal(a.train_loss, b.train_loss)
    assert not np.array_equal(a.train_loss, c.train_loss)
    assert a.train_loss.shape == (3, SETTINGS.steps) and a.valid_acc.shape == (3,)


def test_divergence_is_reported_not_trained_on(digits_8x8):
    diverging = TrainSettings(steps=8, batch_size=32, learning_rate=1e9)
    trainer = PopulationTrainer(NET, digits_8x8, diverging, chunk_size=8)
    s = trainer.score(ARCHS[1:2], seed=0)
    assert s.diverged[0] and np.isnan(s.valid_acc[0])


def test_bad_settings_name_the_field(digits_8x8):
    with pytest.raises(ConfigError, match="^steps:"):
        TrainSettings(steps=0)
    with pytest.raises(ConfigError, match="^batch_size: got 5000"):
        PopulationTrainer(NET, digits_8x8, TrainSettings(batch_size=5000))


def test_the_objective_is_injected(digits_8x8, sharded):
    """Loss and metric come from the trainer's objective: the default is cross-entropy and accuracy, another
    objective trains and scores by its own rules."""
    from jaxnas.problems.classification import Classification

    class Shifted(Classification):  # the same training, a metric moved by a known amount
        def metric(self, logits, labels):
            return super().metric(logits, labels) - 1000.0

    base = sharded.score(ARCHS[:2], seed=4)
    other = PopulationTrainer(NET, digits_8x8, SETTINGS, chunk_size=8, objective=Shifted()).score(ARCHS[:2], seed=4)
    np.testing.assert_array_equal(other.train_loss, base.train_loss)
    np.testing.assert_allclose(other.valid_acc, base.valid_acc - 1000.0, atol=1e-4)

    class Doubled(Classification):  # the loss it reports (and trains on) is its own: the first step shows it
        def loss(self, logits, labels):
            return 2.0 * super().loss(logits, labels)

    doubled = PopulationTrainer(NET, digits_8x8, SETTINGS, chunk_size=8, objective=Doubled()).score(ARCHS[:2], seed=4)
    np.testing.assert_allclose(doubled.train_loss[:, 0], 2.0 * base.train_loss[:, 0], rtol=1e-5)
    assert not np.allclose(doubled.train_loss[:, -1], 2.0 * base.train_loss[:, -1], rtol=1e-5)  # then it trains otherwise


def test_input_shape_per_call_one_compile_per_shape(digits_8x8):
    """The same trainer scores the same candidates on 8x8 and on 16x16 images (a searched input size):
    one compiled program per shape, reused for every later call with that shape."""
    trainer = PopulationTrainer(NET, digits_8x8, SETTINGS, chunk_size=4, devices=jax.local_devices()[:1])
    up = lambda x: np.repeat(np.repeat(np.asarray(x), 2, axis=1), 2, axis=2)  # noqa: E731 (nearest 2x)
    big = types.SimpleNamespace(**{f: (up(getattr(digits_8x8, f)) if f.endswith("_x") else getattr(digits_8x8, f))
                                   for f in ("train_x", "train_y", "valid_x", "valid_y", "test_x", "test_y")})
    small_a = trainer.score(ARCHS[:4], seed=1)
    large = trainer.score(ARCHS[:4], seed=1, data=big)
    assert trainer.traces == 2
    small_b = trainer.score(ARCHS[:4], seed=1, data=digits_8x8)
    assert trainer.traces == 2  # the 8x8 program again, not a third compile
    np.testing.assert_array_equal(small_a.train_loss, small_b.train_loss)
    assert not np.array_equal(small_a.train_loss, large.train_loss)  # really trained on the 16x16 images
    assert np.isfinite(large.valid_acc).all()
    tiny = types.SimpleNamespace(**{**vars(big), "train_x": big.train_x[:8], "train_y": big.train_y[:8]})
    with pytest.raises(ConfigError, match="^batch_size: got 32; the training split has only 8 examples"):
        trainer.score(ARCHS[:4], data=tiny)
