"""The CycleGAN entry point end to end on the tiny config: results.json fields, the report's images, a
restart that reuses the finished run, a user's unlabeled .npz pair, and config mistakes."""

import json
import math
import os

import numpy as np
import pytest

from experiments import cyclegan
from experiments.configs import cyclegan as cyclegan_config
from jaxnas.common.errors import ConfigError

pytestmark = pytest.mark.usefixtures("fast_compile")  # exact checks and tiny runs: compile-bound (conftest)


@pytest.mark.slow
def test_small_run_writes_results_and_resumes(tmp_path):
    config = cyclegan_config.get_config("small")
    config.transform = "tint"
    summary = cyclegan.run(config, str(tmp_path))
    from gans.saved_generator import load_generator  # G and F load again without the trainer

    g = load_generator(str(tmp_path))
    x = np.random.default_rng(0).uniform(0, 1, (2, g.config.resolution, g.config.resolution, g.config.channels_a))
    assert g.translate(x, "ab").shape == (2, g.config.resolution, g.config.resolution, g.config.channels_b)
    results = json.load(open(tmp_path / "results.json"))
    for key in ("translation_error_ab", "translation_error_ba", "cycle_error", "label_preservation", "steps",
                "fid_a", "fid_b", "iterations_per_s"):
        assert isinstance(results[key], (int, float)) and math.isfinite(results[key]), key
    assert results["steps"] == 4 and [c["step"] for c in results["curve"]] == [0, 2, 4]
    assert 0 <= results["label_preservation"] <= 1 and results["translation_error_ab"] > 0
    assert summary["cycle_error"] == results["cycle_error"] and len(results["losses"]) == 4
    for png in ("cyclegan_curves.png", "cyclegan_ab.png", "cyclegan_ba.png"):
        assert os.path.getsize(tmp_path / png) > 500
    cyclegan.run(config, str(tmp_path))  # finished: restored from the checkpoints, measurements included
    again = json.load(open(tmp_path / "results.json"))
    assert again["curve"] == results["curve"] and again["losses"] == results["losses"]


@pytest.mark.slow
def test_unlabeled_npz_pair_has_no_ground_truth(tmp_path):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "a.npz", images=rng.uniform(size=(40, 16, 16)))
    np.savez(tmp_path / "b.npz", images=rng.uniform(size=(40, 16, 16)) ** 2)
    config = cyclegan_config.get_config("small")
    config.data.npz_a, config.data.npz_b = str(tmp_path / "a.npz"), str(tmp_path / "b.npz")
    config.train.steps = 2
    cyclegan.run(config, str(tmp_path / "run"))
    results = json.load(open(tmp_path / "run" / "results.json"))
    assert results["translation_error_ab"] is None and results["label_preservation"] is None
    assert results["classifier_task"] == "rotation" and math.isfinite(results["cycle_error"])


@pytest.mark.parametrize("section, field, value", [("model", "ngf", 0), ("train", "adversarial_loss", "hinge"),
                                                   ("data", "channels", 2), ("eval", "every", 0)])
def test_mistakes_name_the_field(tmp_path, section, field, value):
    config = cyclegan_config.get_config("small")
    config[section][field] = value
    with pytest.raises(ConfigError) as info:
        cyclegan.run(config, str(tmp_path))
    assert info.value.field.endswith(field)


@pytest.mark.slow
def test_rerun_refuses_other_settings_or_an_edited_npz_and_falls_back_past_a_damaged_checkpoint(
        tmp_path, monkeypatch, capsys):
    """Through the one loop: another cycle weight, or domain B's .npz edited in place, is refused in one line
    naming the key before any array is read; a truncated newest checkpoint is skipped for the one before it, and
    the run ends with the first run's measurements."""
    from test_loop import refused_before_restore, truncate_newest

    rng = np.random.default_rng(0)
    b = rng.uniform(size=(40, 16, 16)) ** 2
    np.savez(tmp_path / "a.npz", images=rng.uniform(size=(40, 16, 16)))
    np.savez(tmp_path / "b.npz", images=b)
    config = cyclegan_config.get_config("small")
    config.data.npz_a, config.data.npz_b = str(tmp_path / "a.npz"), str(tmp_path / "b.npz")
    config.train.update({"steps": 2, "checkpoint_every": 1})
    work = str(tmp_path / "run")
    cyclegan.run(config, work)
    first = json.load(open(tmp_path / "run" / "results.json"))
    assert [json.loads(line)["step"] for line in open(tmp_path / "run" / "metrics.jsonl")] == [1, 2]
    run = lambda: cyclegan.run(config, work)  # noqa: E731
    config.train.cycle_lambda = 5.0
    assert "train.cycle_lambda (saved 10.0, now 5.0)" in refused_before_restore(monkeypatch, run)
    config.train.cycle_lambda = 10.0
    np.savez(tmp_path / "b.npz", images=b[::-1])  # the same file, other contents
    message = refused_before_restore(monkeypatch, run)
    assert "images (saved" in message and "train." not in message
    np.savez(tmp_path / "b.npz", images=b)
    assert truncate_newest(tmp_path / "run" / "checkpoints") == [1]
    capsys.readouterr()
    cyclegan.run(config, work)
    assert "resuming from step 1" in capsys.readouterr().out
    again = json.load(open(tmp_path / "run" / "results.json"))
    assert again["curve"] == first["curve"] and again["losses"] == first["losses"]
    assert [json.loads(line)["step"] for line in open(tmp_path / "run" / "metrics.jsonl")] == [1, 2]


def test_throughput_leaves_out_the_first_step_of_every_run_resumed_ones_included(tmp_path):
    """Issue 20: after a resume, `iterations_per_s` counted the resumed run's compilation as steady state (77.9 ->
    2.77). Each run's trainer marks its first step as compiling; `steady_rate` times only the others."""
    import jax

    from gans.cyclegan import CycleGANConfig
    from gans.cyclegan_train import CycleGANSettings, CycleGANTrainer
    from jaxnas.common.loop import steady_rate

    cfg = CycleGANConfig(resolution=16, ngf=2, ndf=2, n_res_blocks=0, disc_layers=1, channels_a=1, channels_b=1)
    settings = CycleGANSettings(steps=4, checkpoint_every=1, pool_size=2)
    rng = np.random.default_rng(0)
    a, b = (rng.uniform(size=(4, 16, 16, 1)).astype(np.float32) for _ in range(2))
    key, work = jax.random.key(0), str(tmp_path / "checkpoints")
    CycleGANTrainer(cfg, settings, a, b).train(key, workdir=work, stop_at=2)  # killed after step 2
    _, history = CycleGANTrainer(cfg, settings, a, b).train(key, workdir=work)  # a new process resumes
    assert [(h["step"], h["compiles"]) for h in history] == [(1, True), (2, False), (3, True), (4, False)]
    rate, timed = steady_rate(history)
    assert timed == {"timed": 2, "excluded": [1, 3]}
    assert rate == pytest.approx(2 / (history[1]["seconds"] + history[3]["seconds"]))


def test_loader_errors_are_named_by_the_setting_that_gave_the_file(tmp_path):
    images = np.random.default_rng(0).uniform(size=(40, 8, 8)).astype(np.float32)
    np.savez(tmp_path / "neg.npz", images=images, labels=np.arange(40) % 3 - 1)
    config = cyclegan_config.get_config("small")
    config.data.npz = str(tmp_path / "neg.npz")
    with pytest.raises(ConfigError, match=r"^data\.npz: labels: .*negative label"):
        cyclegan.run(config, str(tmp_path / "run"))
    config = cyclegan_config.get_config("small")
    config.data.npz_a = config.data.npz_b = str(tmp_path / "neg.npz")
    with pytest.raises(ConfigError, match=r"^data\.npz_a: .*negative label"):
        cyclegan.run(config, str(tmp_path / "run"))
    assert not (tmp_path / "run").exists()
