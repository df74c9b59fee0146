"""A saved generator loads again without its trainer or data (issue 26's reuse): the loaded StyleGAN's samples and
the loaded CycleGAN's translations equal the trainer's own, truncation and the level of detail included."""

import dataclasses

import jax
import numpy as np
import pytest

from gans.cyclegan import CycleGANConfig
from gans.cyclegan_train import CycleGANSettings, CycleGANTrainer
from gans.saved_generator import CycleGANTranslator, StyleGANSampler, load_generator, save_cyclegan, save_stylegan
from gans.stylegan_config import StyleGANConfig
from gans.stylegan_train import GANTrainSettings, StyleGANTrainer
from jaxnas.common.errors import ConfigError

pytestmark = pytest.mark.usefixtures("fast_compile")


def test_a_loaded_stylegan_samples_what_the_trainer_samples(tmp_path):
    cfg = StyleGANConfig(resolution=8, channels=1, z_dim=8, w_dim=8, mapping_layers=2, fmap_base=64, fmap_max=8)
    settings = GANTrainSettings(steps=4, batch_size=8, lod_initial_resolution=4, lod_training_kimg=0.0,
                                lod_transition_kimg=1.0)  # training ends mid-fade: lod 0.97, not full resolution
    images = np.random.default_rng(0).uniform(0, 1, (16, 8, 8, 1)).astype(np.float32)
    trainer = StyleGANTrainer(cfg, settings, images)
    state = trainer.init_state(jax.random.key(1))
    w_avg = jax.random.normal(jax.random.key(2), (cfg.w_dim,))  # a non-zero average, so truncation shows
    save_stylegan(str(tmp_path), cfg, state.g_ema, w_avg, trainer.final_lod)
    g = load_generator(str(tmp_path))
    assert isinstance(g, StyleGANSampler) and g.config == cfg and 0 < g.lod == pytest.approx(trainer.final_lod)
    key = jax.random.key(3)
    for psi in (1.0, 0.5):
        ours = g.sample(key, 5, psi=psi)
        np.testing.assert_allclose(ours, trainer.sample(state.g_ema, key, 5, w_avg=w_avg, psi=psi), atol=1e-6)
    assert ours.shape == (5, 8, 8, 1) and not np.allclose(ours, g.sample(key, 5))  # truncation changed them


def test_a_loaded_cyclegan_translates_what_the_trainer_translates(tmp_path):
    cfg = CycleGANConfig(resolution=16, channels_a=1, channels_b=3, ngf=4, ndf=4, n_res_blocks=1, disc_layers=1)
    rng = np.random.default_rng(0)
    a = rng.uniform(0, 1, (10, 16, 16, 1)).astype(np.float32)
    b = rng.uniform(0, 1, (10, 16, 16, 3)).astype(np.float32)
    trainer = CycleGANTrainer(cfg, CycleGANSettings(steps=2, batch_size=4, identity=0.0), a, b)
    state = trainer.init_state(jax.random.key(0))
    save_cyclegan(str(tmp_path), cfg, state.params)
    g = load_generator(str(tmp_path))
    assert isinstance(g, CycleGANTranslator) and g.config == cfg
    for x, direction, channels in ((a, "ab", 3), (b, "ba", 1)):
        ours = g.translate(x, direction, batch_size=4)  # 10 images: batches of 4, 4, 2 (padded)
        assert ours.shape == (10, 16, 16, channels)
        np.testing.assert_allclose(ours, trainer.translate(state.params, x, direction, batch_size=4), atol=1e-6)
    with pytest.raises(ConfigError, match="^direction: got 'ac'"):
        g.translate(a, "ac")


def test_a_workdir_without_a_saved_generator_is_refused_in_one_line(tmp_path):
    with pytest.raises(ConfigError, match=r"^workdir: .* has no generator\.json"):
        load_generator(str(tmp_path))
    cfg = dataclasses.asdict(CycleGANConfig())
    (tmp_path / "generator.json").write_text('{"kind": "biggan", "config": %s}' % str(cfg).replace("'", '"'))
    with pytest.raises(ConfigError, match="^kind: got 'biggan'; allowed: stylegan, cyclegan$"):
        load_generator(str(tmp_path))
