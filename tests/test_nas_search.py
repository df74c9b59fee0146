"""Search with real training: resumption, every strategy end to end, config errors."""

import dataclasses
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from experiments import nas_search
from experiments.configs import nas_search as nas_config
from jaxnas.common.errors import ConfigError
from jaxnas.data import load_images
from jaxnas.models.nb201 import NB201Network
from jaxnas.evaluation.population import PopulationTrainer, TrainSettings
from jaxnas.spaces import nb201
from jaxnas.strategies import STRATEGIES, aging_evolution
from jaxnas.search.trained import run_trained_search

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("tfds"))


def tiny_config(data_dir, **overrides):
    c = nas_config.get_config("small")
    c.data_dir, c.progress, c.evaluations, c.baseline_random = data_dir, False, 8, 8
    c.train.steps = 4
    for k, v in overrides.items():
        c[k] = v
    return c


def test_resume_equals_uninterrupted(data_dir, tmp_path):
    data = load_images("digits", size=8, data_dir=data_dir)
    trainer = PopulationTrainer(NB201Network(4, 1, 10), data, TrainSettings(steps=4, batch_size=32), chunk_size=8)
    strategy = aging_evolution(nb201.SPACE, population_size=16, sample_size=3, batch_size=8)
    full, _ = run_trained_search(strategy, trainer, 24, seed=1, progress=False)
    run_trained_search(strategy, trainer, 24, seed=1, checkpoint_dir=str(tmp_path), progress=False, stop_after_batches=2)
    resumed, info = run_trained_search(strategy, trainer, 24, seed=1, checkpoint_dir=str(tmp_path), progress=False)
    assert info["resumed_from_batch"] == 2
    np.testing.assert_array_equal(resumed.archs, full.archs)  # the evolved children after the resume match
    np.testing.assert_allclose(resumed.valid_acc, full.valid_acc, atol=1e-6)  # fractions
    assert ((full.archs[16:, None] != full.archs[None, :16]).sum(-1) == 1).any(1).all()  # mutants of the population
    # A rerun into that workdir with other training steps, or other data, is refused before anything is restored
    # (both were once answered with the cached result).
    longer = PopulationTrainer(NB201Network(4, 1, 10), data, TrainSettings(steps=10, batch_size=32), chunk_size=8)
    with pytest.raises(ConfigError, match=r"^workdir: .*: train\.steps \(saved 4, now 10\); use a fresh"):
        run_trained_search(strategy, longer, 24, seed=1, checkpoint_dir=str(tmp_path), progress=False)
    edited = dataclasses.replace(data, train_x=np.concatenate([data.train_x[:1] * 0.5, data.train_x[1:]]))
    other_data = PopulationTrainer(NB201Network(4, 1, 10), edited, TrainSettings(steps=4, batch_size=32), chunk_size=8)
    with pytest.raises(ConfigError, match=r"^workdir: .*: data \(saved '[0-9a-f]{16}', now '[0-9a-f]{16}'\)"):
        run_trained_search(strategy, other_data, 24, seed=1, checkpoint_dir=str(tmp_path), progress=False)


@pytest.mark.slow
@pytest.mark.parametrize("strategy", STRATEGIES.names())
def test_every_strategy_end_to_end(data_dir, tmp_path, strategy):
    out = nas_search.run(tiny_config(data_dir, strategy=strategy), str(tmp_path))
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["best_arch"] == out["best_arch"] and nb201.from_string(saved["best_arch"]).shape == (6,)
    assert saved["evaluations"] == 8 and 0 <= saved["best_valid"] <= 1 and 0 <= saved["best_test"] <= 1  # fractions
    assert saved["random_baseline"]["n"] == 8 and all(0 <= v <= 1 for v in saved["random_baseline"]["valid_quartiles"])
    lines = (tmp_path / "evaluations.jsonl").read_text().splitlines()
    assert len(lines) == 8 and max(json.loads(x)["valid_acc"] for x in lines) == pytest.approx(saved["best_valid"])
    assert (tmp_path / "search.png").exists() and "search.png" in (tmp_path / "report.md").read_text()


def test_metaqnn_restart_threshold_is_a_fraction_of_chance():
    """MetaQNN retrains a network that stays below 1.5x chance: accuracies being fractions, that is 1.5 / classes
    (0.15 with 10 classes, 0.015 with 100), the engine's threshold in the objective's units."""
    c = nas_config.get_config("metaqnn")
    assert c.space == "metaqnn" and c.metaqnn.train.restart_threshold_x_chance == 1.5
    assert nas_search.train_settings(c, 1024, num_classes=10).restart_threshold == pytest.approx(0.15)
    assert nas_search.train_settings(c, 1024, num_classes=100).restart_threshold == pytest.approx(0.015)


def test_aging_chunk_above_half_the_population_is_refused_before_any_work(data_dir, tmp_path):
    """A chunk of 8 (the tests' 8 devices round any smaller chunk up to 8) with population 8 would make
    every batch replace the whole population; the CLI says so in one line, exit 2, nothing written."""
    c = tiny_config(data_dir)
    c.aging_evolution.population_size = 8
    with pytest.raises(ConfigError, match=r"^chunk_size: got 8; aging evolution .* chunk_size <= "
                                          r"aging_evolution.population_size / 2 \(4\), .* >= 16$"):
        nas_search.run(c, str(tmp_path / "run"))
    assert not (tmp_path / "run").exists()
    proc = subprocess.run(
        [sys.executable, "-m", "experiments.nas_search", "--config", os.path.join(REPO, "experiments/configs/nas_search.py"),
         "--config.chunk_size=4", "--config.aging_evolution.population_size=6", "--workdir", str(tmp_path / "cli")],
        capture_output=True, text=True, cwd=REPO, timeout=120, env={**os.environ, "XLA_FLAGS": ""})
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("error: config.chunk_size: got 4; aging evolution")
    assert "Traceback" not in proc.stderr and not (tmp_path / "cli").exists()


@pytest.mark.parametrize("field, value", [("strategy", "annealing"), ("space", "darts"), ("evaluations", 0),
                                          ("image_size", 10), ("dataset", "no_such_dataset")])
def test_bad_config_names_the_field(data_dir, tmp_path, field, value):
    with pytest.raises(ConfigError, match=f"^{'dataset' if field == 'dataset' else field}"):
        nas_search.run(tiny_config(data_dir, **{field: value}), str(tmp_path))


def test_a_table_only_space_is_refused_naming_the_trainable_ones(data_dir, tmp_path):
    with pytest.raises(ConfigError, match=r"^space: got 'macro'; allowed: nb201, metaqnn, nasnet, hierarchical$"):
        nas_search.run(tiny_config(data_dir, space="macro"), str(tmp_path))


def test_entry_point_refuses_other_settings_or_an_edited_npz_and_falls_back(data_dir, tmp_path, monkeypatch, capsys):
    """Through the one loop: a rerun with other training steps, or with its .npz edited in place, is refused in
    one line naming the key before any checkpoint is restored; a truncated newest checkpoint is skipped for the
    one before it and the search ends with the first run's evaluations."""
    from test_loop import refused_before_restore, truncate_newest

    # the digits as a user's .npz: the same split shapes and network as the test above, so one compiled program
    # (and the persistent compilation cache) serves both
    digits = load_images("digits", size=8, data_dir=data_dir)
    images = np.concatenate([digits.train_x, digits.valid_x, digits.test_x])[..., 0]
    labels = np.concatenate([digits.train_y, digits.valid_y, digits.test_y])
    np.savez(tmp_path / "data.npz", images=images, labels=labels)
    config = tiny_config(data_dir, npz_path=str(tmp_path / "data.npz"), evaluations=16, baseline_random=0)
    work = str(tmp_path / "run")
    first = nas_search.run(config, work)  # two batches of 8: checkpoints 1 and 2
    evaluations = (tmp_path / "run" / "evaluations.jsonl").read_text()
    config.train.steps = 10
    assert "train.steps (saved 4, now 10)" in refused_before_restore(monkeypatch, lambda: nas_search.run(config, work))
    config.train.steps = 4
    ran, other = first["settings"]["execution"], {"map": "vmap", "vmap": "map"}[first["settings"]["execution"]]
    config.execution = other  # the first run's auto picked `ran` for this backend
    assert f"execution (saved '{ran}', now '{other}')" in refused_before_restore(monkeypatch,
                                                                               lambda: nas_search.run(config, work))
    config.execution = "auto"
    np.savez(tmp_path / "data.npz", images=images[::-1], labels=labels[::-1])  # the same file, other order
    message = refused_before_restore(monkeypatch, lambda: nas_search.run(config, work))
    assert "data (saved '" in message and "train." not in message
    np.savez(tmp_path / "data.npz", images=images, labels=labels)
    assert truncate_newest(tmp_path / "run" / "checkpoints") == [1]
    capsys.readouterr()
    again = nas_search.run(config, work)
    assert "resuming from step 1" in capsys.readouterr().out and again["resumed_from_batch"] == 1
    assert (again["best_arch"], again["best_valid"], again["best_test"]) == (
        first["best_arch"], first["best_valid"], first["best_test"])
    assert (tmp_path / "run" / "evaluations.jsonl").read_text() == evaluations
    assert [json.loads(line)["batch"] for line in open(tmp_path / "run" / "metrics.jsonl")] == [1, 2]


def test_metaqnn_qlearning_end_to_end_and_resume(data_dir, tmp_path):
    """MetaQNN's space searched by Q-learning through the entry point (report with the top-5 table, the drawn
    networks and the Q heat map), then a killed search resumes to the uninterrupted result."""
    c = tiny_config(data_dir, space="metaqnn", strategy="qlearning")
    c.metaqnn.train.epochs = 2
    out = nas_search.run(c, str(tmp_path / "run"))
    saved = json.loads((tmp_path / "run" / "results.json").read_text())
    assert saved["best_arch"] == out["best_arch"] and saved["best_arch"].endswith("SM]")
    assert saved["evaluations"] == 8 and saved["settings"]["metaqnn"]["train"]["epochs"] == 2
    assert len(saved["random_baseline"]["valid_quartiles"]) == 5
    report = (tmp_path / "run" / "report.md").read_text()
    for figure in ("search.png", "best_networks.png", "q_values.png"):
        assert figure in report and (tmp_path / "run" / figure).exists()

    space = nas_search.build_space(c)
    data = load_images("digits", size=8, data_dir=data_dir)
    trainer = PopulationTrainer(space.network(num_classes=10), data, nas_search.train_settings(c, data.train_x.shape[0]),
                                chunk_size=8)
    strategy = STRATEGIES.get("qlearning")(space, total_models=16, batch_size=8)
    full, full_info = run_trained_search(strategy, trainer, 16, seed=2, progress=False)
    assert len({tuple(a) for a in full.archs}) == 16  # a trained model is never trained again
    ckpt = str(tmp_path / "ckpt")
    run_trained_search(strategy, trainer, 16, seed=2, checkpoint_dir=ckpt, progress=False, stop_after_batches=1)
    resumed, info = run_trained_search(strategy, trainer, 16, seed=2, checkpoint_dir=ckpt, progress=False)
    assert info["resumed_from_batch"] == 1
    np.testing.assert_array_equal(resumed.archs, full.archs)
    np.testing.assert_allclose(resumed.valid_acc, full.valid_acc, atol=1e-6)  # fractions
    np.testing.assert_allclose(info["strategy_state"].q, full_info["strategy_state"].q, atol=1e-6)  # the agent too


def cell_space_config(data_dir, space):
    """A tiny NASNet / hierarchical search through the entry point: two stages of 4 channels, few ops."""
    strategy = {"nasnet": "aging_evolution", "hierarchical": "tournament"}[space]
    c = tiny_config(data_dir, space=space, strategy=strategy, evaluations=16, baseline_random=8)
    if space == "nasnet":
        c.nasnet.B, c.nasnet.ops = 2, ("identity", "sep_conv_3x3", "max_pool_3x3")
    else:
        c.hierarchical.update(dict(motifs=2, motif_nodes=3, cell_nodes=3, init_mutations=50,
                                   primitives=("conv1x1", "maxpool3x3", "identity")))
        c.tournament.update(dict(population_size=8, sample_fraction=0.05))
    c[space].network.update(dict(channels=4, stages=2))
    return c


@pytest.mark.parametrize("space", ["nasnet", "hierarchical"])
def test_cell_spaces_end_to_end_same_seed_and_resume(data_dir, tmp_path, space):
    """AmoebaNet's aging evolution on NASNet cells and hierarchical NAS's 5% tournament, through the entry point
    (report with the genotype picture), then: the same seed gives the same run; a killed search resumes to the
    uninterrupted result; every evolved child is one mutation away from an earlier candidate."""
    from experiments.builders import build_strategy

    c = cell_space_config(data_dir, space)
    out = nas_search.run(c, str(tmp_path / "run"))
    saved = json.loads((tmp_path / "run" / "results.json").read_text())
    assert saved["evaluations"] == 16 and saved["settings"][space]["network"]["stages"] == 2
    evaluations = [json.loads(line) for line in open(tmp_path / "run" / "evaluations.jsonl")]
    best = max(evaluations, key=lambda e: e["valid_acc"])
    assert best["arch_str"] == out["best_arch"] and best["valid_acc"] == pytest.approx(out["best_valid"])
    report = (tmp_path / "run" / "report.md").read_text()
    for figure in ("search.png", "genotype.png"):
        assert figure in report and (tmp_path / "run" / figure).stat().st_size > 1000

    sp = nas_search.build_space(c)
    data = load_images("digits", size=8, data_dir=data_dir)
    trainer = PopulationTrainer(sp.network(num_classes=10, **c[space].network.to_dict()), data,
                                nas_search.train_settings(c), chunk_size=8)
    strategy = build_strategy(c, c.strategy, sp, batch_size=8)
    again, _ = run_trained_search(strategy, trainer, 16, seed=c.seed, progress=False)
    assert [sp.to_string(a) for a in again.archs] == [e["arch_str"] for e in evaluations]  # same seed, same run
    np.testing.assert_allclose(again.valid_acc, [e["valid_acc"] for e in evaluations], atol=1e-6)

    full, _ = run_trained_search(strategy, trainer, 24, seed=3, progress=False)
    ckpt = str(tmp_path / "ckpt")
    run_trained_search(strategy, trainer, 24, seed=3, checkpoint_dir=ckpt, progress=False, stop_after_batches=2)
    resumed, info = run_trained_search(strategy, trainer, 24, seed=3, checkpoint_dir=ckpt, progress=False)
    assert info["resumed_from_batch"] == 2
    np.testing.assert_array_equal(resumed.archs, full.archs)
    np.testing.assert_allclose(resumed.valid_acc, full.valid_acc, atol=1e-6)  # fractions
    first = 16 if space == "nasnet" else 8  # the initial population, then children of earlier candidates
    changed = [(full.archs[:i] != full.archs[i]).sum(-1).min() for i in range(first, 24)]
    assert max(changed) <= 1  # NASNet: one element's input or op, or nothing (identity); hierarchical: one edge
