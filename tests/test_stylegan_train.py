"""StyleGAN training on tiny shapes: R1 against a hand-computed penalty, the lazy-regularisation Adam
correction, 8 devices == 1, resume == uninterrupted, NaN stops training, Adam restarts between growth phases."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from gans.losses import d_logistic, g_nonsaturating, lazy_adam_hparams, r1_per_example
from gans.stylegan_config import StyleGANConfig
from gans.stylegan_train import GANTrainSettings, StyleGANTrainer, lod_at, lod_phase_starts

pytestmark = pytest.mark.usefixtures("fast_compile")  # exact checks and tiny runs: compile-bound (conftest)

TINY = StyleGANConfig(resolution=8, channels=1, z_dim=8, w_dim=8, mapping_layers=2, fmap_base=64, fmap_max=8)
# Progressive growing from 4x4, fading to 8x8 across the 4 steps (lod 1, 0.75, 0.5, 0.25), so the tests
# below (8 devices, resume) cover a changing level of detail.
SETTINGS = GANTrainSettings(steps=4, batch_size=32, r1_interval=2, checkpoint_every=2, ema_kimg=0.1,
                            lod_initial_resolution=4, lod_training_kimg=0.0, lod_transition_kimg=0.128)


def _images(n=64, seed=0):
    return np.random.default_rng(seed).uniform(0, 1, (n, 8, 8, 1)).astype(np.float32)


def test_r1_equals_hand_computed_gradient_penalty():
    a = jnp.arange(1.0, 5.0).reshape(1, 2, 2, 1)  # D(x) = sum(a * x^2) -> dD/dx = 2 a x
    x = jnp.stack([jnp.ones((2, 2, 1)), 2 * jnp.ones((2, 2, 1))])
    r1 = r1_per_example(lambda img: jnp.sum(a * img**2, axis=(1, 2, 3)), x)
    expected = [np.sum((2 * np.arange(1.0, 5.0) * s) ** 2) for s in (1.0, 2.0)]  # [120, 480]
    np.testing.assert_allclose(r1, expected, rtol=1e-6)


def test_logistic_losses_and_lazy_adam_correction():
    np.testing.assert_allclose(d_logistic(jnp.array([0.0]), jnp.array([0.0])), [2 * np.log(2)], rtol=1e-6)
    np.testing.assert_allclose(g_nonsaturating(jnp.array([0.0, 2.0])), [np.log(2), np.log1p(np.exp(-2))], rtol=1e-6)
    lr, b1, b2 = lazy_adam_hparams(0.002, 0.0, 0.99, 16)
    assert lr == pytest.approx(0.002 * 16 / 17) and b1 == 0.0 and b2 == pytest.approx(0.99 ** (16 / 17))


def _close(a, b, atol, rtol=0.0):
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), atol=atol, rtol=rtol)


@pytest.mark.slow
def test_eight_devices_equal_one():
    assert len(jax.devices()) == 8
    one, h1 = StyleGANTrainer(TINY, SETTINGS, _images(), devices=jax.devices()[:1]).train(jax.random.key(0))
    eight, h8 = StyleGANTrainer(TINY, SETTINGS, _images()).train(jax.random.key(0))
    assert [h["d_loss"] for h in h1] == pytest.approx([h["d_loss"] for h in h8], rel=1e-4)
    assert [h["g_loss"] for h in h1] == pytest.approx([h["g_loss"] for h in h8], rel=1e-4)
    assert [h["r1"] for h in h1] == pytest.approx([h["r1"] for h in h8], rel=1e-4)
    # Parameters with (near-)zero gradients get summation-order noise, which Adam (beta1 0, eps 1e-8) turns
    # into steps of up to lr; measured here, ~6% of the tiny nets' elements differ that way after 4 steps. A
    # partition bug (mbstd groups, noise or latents depending on the device) changes the losses above.
    a = np.concatenate([np.ravel(x) for x in jax.tree.leaves((one.g_params, one.d_params))])
    b = np.concatenate([np.ravel(x) for x in jax.tree.leaves((eight.g_params, eight.d_params))])
    close = np.isclose(a, b, rtol=1e-5, atol=1e-5)
    assert close.mean() > 0.9, close.mean()
    np.testing.assert_allclose(a, b, atol=2 * 4 * SETTINGS.lr, rtol=1e-5)


@pytest.mark.slow
def test_resume_equals_uninterrupted(tmp_path):
    trainer = StyleGANTrainer(TINY, SETTINGS, _images(), devices=jax.devices()[:1])
    full, _ = trainer.train(jax.random.key(1))
    trainer.train(jax.random.key(1), workdir=str(tmp_path), stop_at=2)
    resumed, hist = StyleGANTrainer(TINY, SETTINGS, _images(), devices=jax.devices()[:1]).train(
        jax.random.key(1), workdir=str(tmp_path))
    assert int(resumed.step) == 4 and [h["step"] for h in hist] == [1, 2, 3, 4]
    _close(full.g_ema, resumed.g_ema, 0)
    _close(full.w_avg, resumed.w_avg, 0)


@pytest.mark.slow
def test_nan_input_stops_with_the_step_named():
    images = _images()
    images[:] = np.nan
    trainer = StyleGANTrainer(TINY, dataclasses.replace(SETTINGS, steps=2), images, devices=jax.devices()[:1])
    with pytest.raises(FloatingPointError, match="diverged at step 1"):
        trainer.train(jax.random.key(0))


def test_lod_schedule_is_the_official_one():
    """Official TrainingSchedule by hand: 16x16 from 8x8, 12k images stable + 12k fading, batch 32."""
    s = GANTrainSettings(batch_size=32, lod_initial_resolution=8, lod_training_kimg=12.0, lod_transition_kimg=12.0)
    c16 = dataclasses.replace(TINY, resolution=16)
    lods = [float(lod_at(step, s, c16)) for step in (0, 374, 375, 500, 750, 1500)]
    np.testing.assert_allclose(lods, [1.0, 1.0, 1.0, 1.0 - 4.0 / 12.0, 0.0, 0.0], atol=1e-6)
    c32 = dataclasses.replace(TINY, resolution=32)  # 8x8 -> 16x16 -> 32x32
    lods = [float(lod_at(step, s, c32)) for step in (0, 750, 1125, 1250, 1500)]
    np.testing.assert_allclose(lods, [2.0, 1.0, 1.0, 1.0 - 4.0 / 12.0, 0.0], atol=1e-6)
    assert float(lod_at(0, s, dataclasses.replace(c16, structure="fixed"))) == 0.0
    np.testing.assert_allclose([float(lod_at(i, SETTINGS, TINY)) for i in range(5)], [1.0, 0.75, 0.5, 0.25, 0.0],
                               atol=1e-6)


def test_optimizers_restart_when_a_fade_starts_or_ends():
    """Official reset_opt_for_new_lod: a new phase wherever floor(lod) or ceil(lod) changes."""
    s = GANTrainSettings(batch_size=32, lod_initial_resolution=4, lod_training_kimg=12.0, lod_transition_kimg=12.0)
    c16 = dataclasses.replace(TINY, resolution=16)  # 4x4 to step 375, fade to 8x8 to 750, 8x8 to 1125, fade to 1500
    starts = np.nonzero(np.asarray(lod_phase_starts(jnp.arange(3000), s, c16)))[0]
    np.testing.assert_array_equal(starts, [376, 750, 1126, 1500])
    # SETTINGS fades over steps 1-4: Adam restarts before step 1's update, so of the 4 updates 3 are counted.
    trainer = StyleGANTrainer(TINY, SETTINGS, _images(), devices=jax.devices()[:1])
    state, history = trainer.train(jax.random.key(0))
    assert int(state.step) == 4 and len(history) == 4
    assert int(optax.tree_utils.tree_get(state.g_opt, "count")) == 3
    assert int(optax.tree_utils.tree_get(state.d_opt, "count")) == 3
