"""CycleGAN training on tiny shapes: the learning-rate schedule, unpaired batches, 8 devices == 1,
resume == uninterrupted, a non-finite step stops training, and a short run learns a known mapping."""

import dataclasses

import jax
import numpy as np
import pytest

from gans.cyclegan import CycleGANConfig
from gans.cyclegan_train import CycleGANSettings, CycleGANTrainer
from jaxnas.common.errors import ConfigError

pytestmark = pytest.mark.usefixtures("fast_compile")  # exact checks and tiny runs: compile-bound (conftest)

TINY = CycleGANConfig(resolution=16, channels_a=1, channels_b=1, ngf=4, ndf=4, n_res_blocks=1, disc_layers=1)
SETTINGS = CycleGANSettings(steps=4, batch_size=8, checkpoint_every=2, pool_size=6)


def _domains(n=32, seed=0):
    rng = np.random.default_rng(seed)
    a = rng.uniform(0, 1, (n, 16, 16, 1)).astype(np.float32)
    return a, 1.0 - rng.uniform(0, 1, (n, 16, 16, 1)).astype(np.float32)


def test_learning_rate_constant_then_linear_to_zero():
    lr = CycleGANSettings(steps=10, lr=1.0, decay_start=0.6).learning_rate()
    # official: constant for n_epochs, then 1 - (epoch - n_epochs) / (n_epochs_decay + 1); here per step
    np.testing.assert_allclose([float(lr(i)) for i in range(10)], [1, 1, 1, 1, 1, 1, 1, 0.8, 0.6, 0.4][:6] +
                               [1 - k / 5 for k in range(4)], atol=1e-6)


def test_batches_are_unpaired_and_deterministic():
    a, b = _domains()
    trainer = CycleGANTrainer(TINY, SETTINGS, a, b[:24], devices=jax.devices()[:1])
    x, y = trainer.batch(0)
    assert x.shape == y.shape == (8, 16, 16, 1)
    np.testing.assert_array_equal(trainer.batch(5)[0], CycleGANTrainer(TINY, SETTINGS, a, b[:24]).batch(5)[0])
    first_epoch = np.concatenate([trainer.batch(i)[0] for i in range(4)])  # 32 A images: each exactly once
    assert len({row.tobytes() for row in first_epoch}) == 32


def test_settings_errors_name_the_field():
    a, b = _domains()
    for bad, field in ((dict(adversarial_loss="wgan"), "train.adversarial_loss"), (dict(pool_size=-1), "train.pool_size"),
                       (dict(decay_start=1.5), "train.decay_start"), (dict(batch_size=64), "train.batch_size")):
        with pytest.raises(ConfigError) as info:
            CycleGANTrainer(TINY, dataclasses.replace(SETTINGS, **bad), a, b)
        assert info.value.field == field
    with pytest.raises(ConfigError) as info:
        CycleGANTrainer(dataclasses.replace(TINY, channels_b=3), SETTINGS, a, b)
    assert info.value.field in ("data.b", "train.identity")


def test_default_devices_divide_the_batch():
    a, b = _domains()
    assert len(CycleGANTrainer(TINY, dataclasses.replace(SETTINGS, batch_size=1), a, b).devices) == 1
    assert len(CycleGANTrainer(TINY, dataclasses.replace(SETTINGS, batch_size=12), a, b).devices) == 4
    with pytest.raises(ConfigError, match="multiple of the number of devices"):
        CycleGANTrainer(TINY, dataclasses.replace(SETTINGS, batch_size=3), a, b, devices=jax.devices()[:2])


def _close(a, b, atol):
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), atol=atol)


@pytest.mark.slow
def test_eight_devices_equal_one_and_resume_equals_uninterrupted(tmp_path):
    assert len(jax.devices()) == 8
    a, b = _domains()
    one, h1 = CycleGANTrainer(TINY, SETTINGS, a, b, devices=jax.devices()[:1]).train(jax.random.key(0))
    eight, h8 = CycleGANTrainer(TINY, SETTINGS, a, b).train(jax.random.key(0))
    for k in ("g_loss", "cycle", "identity", "d_a", "d_b"):
        assert [h[k] for h in h1] == pytest.approx([h[k] for h in h8], rel=1e-4), k
    # Conv biases followed by instance norm have an exactly zero true gradient (the norm removes the mean),
    # so theirs is summation-order noise that Adam scales up to steps of ~lr: those differ by up to
    # steps x lr between device counts. Everything else agrees closely.
    p1 = np.concatenate([np.ravel(x) for x in jax.tree.leaves(one.params)])
    p8 = np.concatenate([np.ravel(x) for x in jax.tree.leaves(eight.params)])
    assert np.isclose(p1, p8, rtol=1e-4, atol=1e-5).mean() > 0.9
    np.testing.assert_allclose(p1, p8, atol=2 * SETTINGS.steps * SETTINGS.lr)
    np.testing.assert_array_equal(np.asarray(one.pool_a["count"] if isinstance(one.pool_a, dict) else one.pool_a.count),
                                  6)  # 4 steps x 8 fakes > 6: the pool is full
    # resume: stop at 2, a fresh trainer continues to 4 from the checkpoint
    CycleGANTrainer(TINY, SETTINGS, a, b).train(jax.random.key(0), workdir=str(tmp_path), stop_at=2)
    resumed, hist = CycleGANTrainer(TINY, SETTINGS, a, b).train(jax.random.key(0), workdir=str(tmp_path))
    assert int(resumed.step) == 4 and [h["step"] for h in hist] == [1, 2, 3, 4]
    _close(resumed.params, eight.params, 0)
    _close(resumed.pool_b, eight.pool_b, 0)


@pytest.mark.slow
def test_nan_input_stops_with_the_step_named():
    a, b = _domains()
    a[:] = np.nan
    trainer = CycleGANTrainer(TINY, dataclasses.replace(SETTINGS, steps=2), a, b, devices=jax.devices()[:1])
    with pytest.raises(FloatingPointError, match="CycleGAN training diverged at step 1"):
        trainer.train(jax.random.key(0))


@pytest.mark.slow
def test_a_short_run_learns_a_known_mapping(tmp_path):
    """Digits (16x16) against the tint of other digits, unpaired; the translation is scored against the known
    transform T on held-out images: error = mean |G(a) - T(a)| / mean |a - T(a)| (1 = not translating).
    Settings (ngf 4, batch 4, lr 1e-3, 300 steps, the paper's identity weight) were chosen on seeds 0-2
    (A->B 0.22-0.24, B->A 0.37-0.43) and held on seeds 3-5 (0.23-0.25, 0.32-0.41); this test runs seed 3.
    Untrained, both errors are above 1.3; a translation that ignores its input (the target domain's mean
    image) scores about 0.6 / 0.9, so passing needs a translation that follows its input."""
    from gans.cyclegan_data import load_domains, translation_error

    seed = 3
    data = load_domains(name="digits", transform="tint", size=16, data_dir=str(tmp_path / "tfds"), seed=seed)
    cfg = CycleGANConfig(resolution=16, channels_a=data.image_shape_a[2], channels_b=data.image_shape_b[2], ngf=4,
                         ndf=4, n_res_blocks=1, disc_layers=1)
    settings = CycleGANSettings(steps=300, batch_size=4, lr=1e-3, identity=0.5, pool_size=10, seed=seed,
                                checkpoint_every=10**6)
    trainer = CycleGANTrainer(cfg, settings, data.train_a, data.train_b, devices=jax.devices()[:1])
    a, b = data.test_a[:200], data.test_b[:200]
    true_b, true_a = data.truth_ab(a), data.truth_ba(b)

    def errors(params):
        return (translation_error(trainer.translate(params, a, "ab"), true_b, a),
                translation_error(trainer.translate(params, b, "ba"), true_a, b))

    mean_image = (translation_error(data.train_b.mean(0), true_b, a),
                  translation_error(data.train_a.mean(0), true_a, b))
    key = jax.random.key(seed)
    state = trainer.init_state(jax.random.fold_in(key, 10**6))
    before = errors(state.params)
    state, _ = trainer.train(key, state=state)
    after = errors(state.params)
    for direction, e0, e1, base in zip(("A->B", "B->A"), before, after, mean_image):
        assert e0 > 1.0, (direction, e0)  # untrained: worse than not translating at all
        assert e1 < 0.5 and e1 < 0.75 * base, (direction, e1, base)
