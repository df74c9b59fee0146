"""The StyleGAN entry point end to end on the tiny config: results.json fields, the report's images, the
mapping-network ablation, a restart that reuses the finished run, progressive growing (the default
structure), and a user's unlabeled .npz."""

import json
import math
import os

import jax
import numpy as np
import pytest

from experiments import stylegan
from experiments.configs import stylegan as stylegan_config
from jaxnas.common.errors import ConfigError

pytestmark = pytest.mark.usefixtures("fast_compile")  # exact checks and tiny runs: compile-bound (conftest)


@pytest.mark.slow
def test_small_run_writes_results_images_and_ablation_and_resumes(tmp_path):
    config = stylegan_config.get_config("small")
    config.ablation.no_mapping = True
    summary = stylegan.run(config, str(tmp_path))
    results = json.load(open(tmp_path / "results.json"))
    for key in ("fid", "kid", "steps", "images_per_s", "classifier_test_accuracy", "fid_init"):
        assert key in results and math.isfinite(results[key]), key
    assert results["steps"] == 4 and [c["step"] for c in results["curve"]] == [0, 2, 4]
    assert summary["fid"] == results["fid"] > 0
    from gans.saved_generator import load_generator  # the final generators load again without the trainer

    main, plain = load_generator(str(tmp_path)), load_generator(str(tmp_path / "no_mapping"))
    assert main.config.use_mapping and not plain.config.use_mapping
    images = main.sample(jax.random.key(0), 3, psi=0.7)
    r = main.config.resolution
    assert images.shape == (3, r, r, 1) and 0 <= images.min() <= images.max() <= 1
    assert results["classifier_task"] == "classes"
    assert set(results["style_mixing"]) == {"coarse", "middle", "fine", "per_layer", "paper_claim"}
    assert set(results["style_mixing"]["paper_claim"]) == {"ordering", "coarse_carry_identity"}
    assert [p["resolution"] for p in results["style_mixing"]["per_layer"]] == [4, 4, 8, 8]
    for effect in (results["style_mixing"][k] for k in stylegan.RANGES):
        assert 0 <= effect["class_change"] <= 1 and 0 <= effect["takes_b"] <= 1 and effect["pixel_change"] > 0
    ablation = results["no_mapping"]
    assert [c["step"] for c in ablation["curve"]] == [0, 2, 4] and ablation["fid"] != results["fid"]
    for png in ("stylegan_fid.png", "stylegan_samples.png", "stylegan_mixing.png", "stylegan_truncation.png",
                "stylegan_samples_truncated.png", "stylegan_samples_no_mapping.png"):
        assert os.path.getsize(tmp_path / png) > 500
    # A second call finds both finished runs in the checkpoints: the measurements come back unchanged
    # (they are kept in the checkpointed history, not re-taken from the final state).
    stylegan.run(config, str(tmp_path))
    again = json.load(open(tmp_path / "results.json"))
    assert again["curve"] == results["curve"] and again["no_mapping"]["curve"] == ablation["curve"]


@pytest.mark.slow
def test_progressive_growing_through_the_experiment(tmp_path, monkeypatch):
    """The default structure (progressive growing) run through the entry point on the tiny network: 8x8
    grown from 4x4 with phases of 64 images, 2 steps of 32 (lod 1 at steps 0-2, 0.5 at step 3, 0 from
    step 4). The experiment measures each evaluation at the schedule's level of detail (step 0: 4x4
    images nearest-upsampled, so constant on 2x2 blocks; the last: full 8x8 detail), and both Adam
    states restart as the fade starts and ends (steps 3 and 4): of the 6 updates, 2 are counted."""
    import optax

    config = stylegan_config.get_config("small")
    config.model.structure = "progressive"
    config.train.update({"steps": 6, "checkpoint_every": 6, "lod_initial_resolution": 4,
                         "lod_training_kimg": 0.064, "lod_transition_kimg": 0.064})
    config.ablation.no_mapping = False
    measured, records = [], []
    measure, train = stylegan.Features.measure, stylegan.train_and_measure
    monkeypatch.setattr(stylegan.Features, "measure", lambda self, fake, final=False: measured.append(fake) or
                        measure(self, fake, final))
    monkeypatch.setattr(stylegan, "train_and_measure", lambda *a, **k: records.append(train(*a, **k)) or records[-1])
    results = stylegan.run(config, str(tmp_path))
    assert [c["step"] for c in results["curve"]] == [0, 2, 4, 6] and all(math.isfinite(c["fid"]) for c in results["curve"])
    trainer, state = records[0]["trainer"], records[0]["state"]
    assert [float(trainer.lod(i)) for i in (0, 2, 3, 4, 6)] == [1.0, 1.0, 0.5, 0.0, 0.0] and trainer.final_lod == 0.0

    def block_spread(x):  # (N, 8, 8, C): largest difference inside any 2x2 block
        blocks = x.reshape(x.shape[0], 4, 2, 4, 2, x.shape[-1])
        return float((blocks.max((2, 4)) - blocks.min((2, 4))).max())

    assert measured[0].shape[1:3] == (8, 8) and block_spread(measured[0]) < 1e-6  # step 0: rendered at 4x4
    assert block_spread(measured[-1]) > 0.05  # the final generator renders 8x8 detail
    for opt in (state.g_opt, state.d_opt):
        assert int(optax.tree_utils.tree_get(opt, "count")) == 2
    assert [p["resolution"] for p in results["style_mixing"]["per_layer"]] == [4, 4, 8, 8]


class _FakeInception:
    """Stands in for the Inception network (tested on its own in test_inception.py): 2048 cheap features."""

    def features(self, images):
        flat = images.reshape(len(images), -1)
        return np.tile(np.stack([flat.mean(1), flat.std(1), flat.max(1), flat.min(1)], 1), (1, 512))


@pytest.mark.slow
def test_unlabeled_rgb_npz_trains_with_rotation_features(tmp_path, monkeypatch):
    import gans.inception

    loaded = []
    monkeypatch.setattr(gans.inception, "load_inception", lambda path: loaded.append(path) or _FakeInception())
    rng = np.random.default_rng(0)
    images = np.zeros((96, 8, 8), np.float32)
    for i, img in enumerate(images):  # bars at random rows: rotations are distinguishable
        img[rng.integers(0, 4), :] = 1.0
        img[:, i % 3] = 0.5
    np.savez(tmp_path / "bars.npz", images=np.stack([images, images[:, ::-1], 0.5 * images], axis=-1))  # RGB
    config = stylegan_config.get_config("small")
    config.data.npz = str(tmp_path / "bars.npz")
    config.train.steps = 2
    config.eval.inception = "weights.pth"
    config.ablation.no_mapping = False  # the ablation's run is tested above; it would double this test's compiles
    stylegan.run(config, str(tmp_path / "run"))
    assert loaded == ["weights.pth"]
    results = json.load(open(tmp_path / "run" / "results.json"))
    assert results["classifier_task"] == "rotation" and math.isfinite(results["fid"])  # NaN is written as null
    assert all(results["style_mixing"][k]["class_change"] is None and results["style_mixing"][k]["pixel_change"] > 0
               for k in stylegan.RANGES)
    assert os.path.getsize(tmp_path / "run" / "stylegan_samples.png") > 500
    assert math.isfinite(results["inception_fid"]) and "inception_fid" in results["curve"][-1]
    assert "inception_fid" not in results["curve"][0]  # the final generator only


def test_bad_settings_name_the_field(tmp_path):
    config = stylegan_config.get_config("small")
    config.model.resolution = 12
    with pytest.raises(ConfigError, match="resolution"):
        stylegan.run(config, str(tmp_path))
    config = stylegan_config.get_config("small")
    config.eval.mixing_pairs = 1
    with pytest.raises(ConfigError, match="eval.mixing_pairs"):
        stylegan.run(config, str(tmp_path))
    config = stylegan_config.get_config("small")
    config.train.lod_initial_resolution = 6
    with pytest.raises(ConfigError, match="train.lod_initial_resolution"):
        stylegan.run(config, str(tmp_path))


def test_layer_ranges_split_the_style_inputs_in_thirds():
    assert stylegan.layer_ranges(6) == {"coarse": (0, 2), "middle": (2, 4), "fine": (4, 6)}
    assert stylegan.layer_ranges(8) == {"coarse": (0, 2), "middle": (2, 5), "fine": (5, 8)}


def test_mixing_verdict_checks():
    def sm(coarse_b, middle_b, fine_change):
        return {"coarse": {"class_change": 0.9, "takes_b": coarse_b, "pixel_change": 0.2},
                "middle": {"class_change": 0.5, "takes_b": middle_b, "pixel_change": 0.1},
                "fine": {"class_change": fine_change, "takes_b": 0.01, "pixel_change": 0.04}}
    assert stylegan.paper_claim(sm(0.62, 0.05, 0.06)) == {"ordering": True, "coarse_carry_identity": True}
    assert stylegan.mixing_verdict(sm(0.62, 0.05, 0.06)).startswith("As the paper reports")
    assert stylegan.paper_claim(sm(0.34, 0.14, 0.21)) == {"ordering": True, "coarse_carry_identity": False}
    assert stylegan.mixing_verdict(sm(0.34, 0.14, 0.21)).startswith("The paper's ordering holds")
    assert stylegan.paper_claim(sm(0.62, 0.70, 0.06))["ordering"] is False  # middle styles carry more
    assert stylegan.paper_claim(sm(0.62, 0.05, 0.40))["ordering"] is False  # fine styles change the digit
    assert stylegan.mixing_verdict(sm(0.07, 0.13, 0.67)).startswith("The paper's ordering (coarse")
    nan = float("nan")
    assert stylegan.paper_claim(sm(nan, nan, nan)) == {"ordering": None, "coarse_carry_identity": None}


@pytest.mark.slow
def test_rerun_refuses_other_settings_or_an_edited_npz_and_falls_back_past_a_damaged_checkpoint(
        tmp_path, monkeypatch, capsys):
    """Through the one loop: another learning rate, or the .npz edited in place, is refused in one line naming
    the key before any array is read; a truncated newest checkpoint is skipped for the one before it, and the
    run ends with the first run's measurements."""
    from test_loop import refused_before_restore, truncate_newest

    rng = np.random.default_rng(1)
    images = rng.uniform(size=(96, 8, 8)).astype(np.float32)
    np.savez(tmp_path / "data.npz", images=images)
    config = stylegan_config.get_config("small")
    config.data.npz = str(tmp_path / "data.npz")
    config.train.update({"steps": 2, "checkpoint_every": 1})
    config.ablation.no_mapping = False
    work = str(tmp_path / "run")
    stylegan.run(config, work)
    first = json.load(open(tmp_path / "run" / "results.json"))
    assert [json.loads(line)["step"] for line in open(tmp_path / "run" / "metrics.jsonl")] == [1, 2]
    run = lambda: stylegan.run(config, work)  # noqa: E731
    config.train.lr = 0.001
    assert "train.lr (saved 0.002, now 0.001)" in refused_before_restore(monkeypatch, run)
    config.train.lr = 0.002
    np.savez(tmp_path / "data.npz", images=images[::-1])  # the same file, other contents
    message = refused_before_restore(monkeypatch, run)
    assert "images (saved" in message and "train." not in message
    np.savez(tmp_path / "data.npz", images=images)
    assert truncate_newest(tmp_path / "run" / "checkpoints") == [1]
    capsys.readouterr()
    stylegan.run(config, work)
    assert "resuming from step 1" in capsys.readouterr().out
    again = json.load(open(tmp_path / "run" / "results.json"))
    assert again["curve"] == first["curve"] and again["fid"] == first["fid"]
    assert [json.loads(line)["step"] for line in open(tmp_path / "run" / "metrics.jsonl")] == [1, 2]


def test_throughput_leaves_out_the_compiling_steps_of_every_run_resumed_ones_included(tmp_path):
    """Issue 20: after a resume, `images_per_s` counted the resumed run's compilation as steady state (3,891 ->
    37 images/s). Each run's trainer marks the first call of each step variant (regularised or not) as
    compiling; `steady_rate` times only the others and says which steps it left out."""
    import jax

    from gans.stylegan_config import StyleGANConfig
    from gans.stylegan_train import GANTrainSettings, StyleGANTrainer
    from jaxnas.common.loop import steady_rate

    cfg = StyleGANConfig(resolution=8, channels=1, z_dim=4, w_dim=4, mapping_layers=1, fmap_base=16, fmap_max=4,
                         structure="fixed")
    settings = GANTrainSettings(steps=6, batch_size=8, r1_interval=2, checkpoint_every=1, ema_kimg=1.0)
    images = np.random.default_rng(0).uniform(size=(16, 8, 8, 1)).astype(np.float32)  # batch: the 8 test devices
    key, work = jax.random.key(0), str(tmp_path / "checkpoints")
    StyleGANTrainer(cfg, settings, images).train(key, workdir=work, stop_at=3)  # killed after step 3
    _, history = StyleGANTrainer(cfg, settings, images).train(key, workdir=work)  # a new process resumes
    assert [h["step"] for h in history] == [1, 2, 3, 4, 5, 6]
    # run 1: steps 1 (R1) and 2 (plain) compile; run 2 (new trainer): steps 4 (plain) and 5 (R1) compile again
    assert [h["compiles"] for h in history] == [True, True, False, True, True, False]
    rate, timed = steady_rate(history)
    assert timed == {"timed": 2, "excluded": [1, 2, 4, 5]}
    assert rate == pytest.approx(2 / (history[2]["seconds"] + history[5]["seconds"]))
    assert math.isnan(steady_rate(history[:2])[0])  # nothing but compilation: no figure rather than a wrong one


def test_bad_npz_and_late_settings_name_the_setting_before_any_data(tmp_path, monkeypatch):
    """The loader's `labels` / `images` errors are re-raised under `data.npz`; `model.structure` is named as typed;
    the ablation's z_dim == w_dim is refused before the first generator trains (it was checked after)."""
    import jaxnas.data

    np.savez(tmp_path / "frac.npz", images=np.zeros((40, 8, 8), np.float32), labels=np.linspace(0, 3, 40))
    config = stylegan_config.get_config("small")
    config.data.npz = str(tmp_path / "frac.npz")
    with pytest.raises(ConfigError, match=r"^data\.npz: labels: .*non-integer values"):
        stylegan.run(config, str(tmp_path / "a"))
    monkeypatch.setattr(jaxnas.data, "load_images", lambda *a, **k: pytest.fail("data loaded before validation"))
    for field, value, expected in (("model.structure", "pyramid", "model.structure"),
                                   ("model.z_dim", 4, "ablation.no_mapping"), ("train.lr", float("nan"), "train.lr")):
        config = stylegan_config.get_config("small")
        section, leaf = field.split(".")
        config[section][leaf] = value
        with pytest.raises(ConfigError) as err:
            stylegan.run(config, str(tmp_path / "b"))
        assert err.value.field == expected
    assert not (tmp_path / "b").exists()


def test_a_batch_the_devices_cannot_split_is_refused_before_any_data(tmp_path, monkeypatch):
    """The trainer shards each batch over every device; it refused a batch of 12 on 8 devices only after the data
    were loaded and the feature net trained."""
    import jax

    import jaxnas.data

    if jax.device_count() == 1:
        pytest.skip("one device splits any batch")
    monkeypatch.setattr(jaxnas.data, "load_images", lambda *a, **k: pytest.fail("data loaded before validation"))
    config = stylegan_config.get_config("small")
    config.train.batch_size = jax.device_count() + 1
    with pytest.raises(ConfigError, match=rf"^train\.batch_size: got {jax.device_count() + 1}; allowed: a multiple"):
        stylegan.run(config, str(tmp_path / "run"))


def test_a_run_shorter_than_the_default_says_plainly_it_has_not_converged():
    from experiments.stylegan_report import short_run_note

    default = stylegan_config.get_config().train.steps
    demo = stylegan_config.get_config("demo").train.steps
    assert demo < default and short_run_note(demo).startswith(f"**Not converged: a short run** ({demo:,} of ")
    assert short_run_note(default) == "" and short_run_note(default + 1) == ""
