"""Speed-ups: weight sharing trains one supernet on sampled paths and scores candidates with it."""

import json

import jax
import numpy as np
import pytest

from experiments import speedups
from experiments.configs import speedups as speedups_config
from jaxnas.common.errors import ConfigError


def test_rank_agreement_against_hand_computed_values():
    ref = np.array([1.0, 2.0, 3.0, 4.0])
    assert speedups.rank_agreement(ref, ref)["kendall_tau"] == pytest.approx(1.0)
    assert speedups.rank_agreement(ref, -ref)["kendall_tau"] == pytest.approx(-1.0)
    # one discordant pair of six: tau = (5 - 1) / 6
    out = speedups.rank_agreement(ref, np.array([1.0, 3.0, 2.0, 4.0]))
    assert out["kendall_tau"] == pytest.approx(4 / 6) and out["proxy_top1_reference_rank"] == 1
    assert speedups.rank_agreement(ref, np.array([4.0, 0, 0, 1]))["proxy_top1_reference_rank"] == 4


@pytest.mark.slow
def test_weight_sharing_report(tmp_path):
    c = speedups_config.get_config("small")
    c.data_dir, c.progress = str(tmp_path / "tfds"), False
    out = speedups.run(c, str(tmp_path / "work"))
    saved = json.loads((tmp_path / "work" / "weight_sharing.json").read_text())
    assert saved["candidates"] == 8 and len(saved["inherited_valid"]) == 8
    assert all(v is None or 0 <= v <= 1 for v in saved["inherited_valid"] + saved["standalone_valid"])  # fractions
    assert -1 <= out["kendall_tau"] <= 1 and out["compute_ratio"] == pytest.approx(8 * 18 / 150)
    # the supernet really was trained: inherited weights beat chance (10%) for most candidates
    assert np.median(saved["inherited_valid"]) > 0.20
    assert (tmp_path / "work" / "weight_sharing.png").exists()


def test_unknown_speedup_names_the_field(tmp_path):
    c = speedups_config.get_config("small")
    c.speedup = "distillation"
    with pytest.raises(ConfigError, match="^speedup: got .distillation.; allowed: weight_sharing, pruning, early_stopping, incremental$"):
        speedups.run(c, str(tmp_path))
    c.speedup, c.pruning.method = "pruning", "random"
    with pytest.raises(ConfigError, match="^pruning.method: got .random.; allowed: magnitude, structured$"):
        speedups.run(c, str(tmp_path))


def test_a_space_without_a_network_or_without_a_capability_is_refused_in_one_line(tmp_path):
    from jaxnas.evaluation.capabilities import require
    from jaxnas.models.nb201 import NB201Network

    c = speedups_config.get_config("small")
    c.space = "macro"  # a table-only space: no candidate network to train
    with pytest.raises(ConfigError, match="^space: got .macro.; allowed: nb201, metaqnn, nasnet, hierarchical$"):
        speedups.run(c, str(tmp_path))
    require(NB201Network(4, 1, 10), "grow", "incremental training")  # offered: no error

    class Plain:  # a network that offers none of the speed-ups' methods
        pass

    with pytest.raises(ConfigError, match="^space: incremental training needs a network offering `grow`; Plain does not"):
        require(Plain(), "grow", "incremental training")


def test_pruning_reaches_the_requested_sparsity_per_kernel():
    from jaxnas.models.nb201 import NB201Network
    from jaxnas.evaluation.pruning import prune, scheduled_sparsity
    from jaxnas.models.nb201_surgery import conv_macs

    arch = np.array([3, 2, 3, 1, 4, 3])
    params = NB201Network(4, 1, 10).init(jax.random.key(0), np.ones((1, 8, 8, 1), np.float32), arch, train=True)["params"]
    prune_jit = jax.jit(prune)
    for s in (0.0, 0.3, 0.9):
        pruned = prune_jit(params, s)
        for (path, leaf), original in zip(jax.tree_util.tree_leaves_with_path(pruned), jax.tree_util.tree_leaves(params)):
            name = path[-1].key
            if name not in ("conv3x3", "conv1x1", "kernel"):
                continue
            layers = zip(leaf, original) if name != "kernel" else [(leaf, original)]  # a cell's edges are layers
            for w, w0 in layers:
                w, w0 = np.asarray(w), np.asarray(w0)
                assert (w == 0).sum() == int(np.floor(s * w.size)), path
                if 0 < s:  # the smallest magnitudes went, the rest is unchanged
                    assert np.abs(w0[w == 0]).max() <= np.abs(w0[w != 0]).min()
                    np.testing.assert_array_equal(w[w != 0], w0[w != 0])
        macs = conv_macs(pruned, arch, 8, 1)
        assert macs == pytest.approx((1 - s) * conv_macs(params, arch, 8, 1), rel=0.02)
    assert float(scheduled_sparsity(0, 0.8, 100, "before")) == pytest.approx(0.8)
    assert float(scheduled_sparsity(0, 0.8, 100, "during")) < 0.1
    assert float(scheduled_sparsity(74, 0.8, 100, "during")) == pytest.approx(0.8)


@pytest.mark.slow
def test_structured_pruning_report(tmp_path):
    c = speedups_config.get_config("small")
    c.data_dir, c.progress, c.speedup = str(tmp_path / "tfds"), False, "pruning"
    c.pruning.method, c.pruning.repeats = "structured", 1
    out = speedups.run(c, str(tmp_path / "work"))
    saved = json.loads((tmp_path / "work" / "pruning_structured.json").read_text())
    assert saved["dense_widths"] == [4, 8, 16] and saved["widths"] == [2, 4, 8] and saved["inner_widths"] == [4, 8]
    assert (saved["steps_before_pruning"], saved["steps_after_pruning"]) == (4, 14)
    # convolutions cost C_in x C_out: halving both quarters them; the stem (1 input channel) and classifier halve
    assert 0.25 < out["macs_per_image_ratio"] < 0.3
    assert out["training_macs_saved_fraction"] == pytest.approx(14 / 18 * (1 - out["macs_per_image_ratio"]))
    assert len(saved["after_pruning_wall_s_pruned"]) == len(saved["after_pruning_cpu_s_dense"]) == 1
    # the pruned candidates still classify at their smaller width (a broken cut gives chance, 10%); fractions
    assert len(saved["pruned_valid"]) == 8 and np.median(saved["pruned_valid"]) > 0.15
    assert all(v is None or 0 <= v <= 1 for v in saved["pruned_valid"] + saved["dense_valid"])
    assert (tmp_path / "work" / "pruning_structured.png").exists()


def test_rung_budgets():
    from jaxnas.evaluation.early_stopping import rung_budgets

    assert rung_budgets(81, 9, 3) == (9, 27, 81)
    assert rung_budgets(18, 2, 3) == (2, 6, 18)
    assert rung_budgets(100, 30, 2) == (50, 100)
    with pytest.raises(ConfigError, match="^eta:"):
        rung_budgets(81, 9, 1)
    with pytest.raises(ConfigError, match="^min_steps:"):
        rung_budgets(81, 100, 3)


@pytest.mark.slow
def test_successive_halving_continues_training_exactly_and_saves_compute(tmp_path):
    c = speedups_config.get_config("small")
    c.data_dir, c.progress, c.speedup, c.candidates = str(tmp_path / "tfds"), False, "early_stopping", 9
    out = speedups.run(c, str(tmp_path / "work"))
    saved = json.loads((tmp_path / "work" / "early_stopping.json").read_text())
    steps, full, score = (np.array(saved[k]) for k in ("sh_steps", "full_valid", "sh_score"))
    assert saved["budgets"] == [2, 6, 18]
    assert sorted(np.bincount(np.searchsorted([2, 6, 18], steps), minlength=3).tolist()) == [1, 2, 6]  # 9 -> 3 -> 1
    assert out["sh_candidate_steps"] == 9 * 2 + 3 * 4 + 1 * 12 < 9 * 18
    # the one survivor trained to the full budget in three pieces ends exactly where full training ends
    np.testing.assert_allclose(score[steps == 18], full[steps == 18], atol=1e-5)  # fractions
    assert (tmp_path / "work" / "early_stopping.png").exists()


@pytest.mark.slow
def test_incremental_report(tmp_path):
    c = speedups_config.get_config("small")
    c.data_dir, c.progress, c.speedup = str(tmp_path / "tfds"), False, "incremental"
    out = speedups.run(c, str(tmp_path / "work"))
    saved = json.loads((tmp_path / "work" / "incremental.json").read_text())
    assert saved["child_steps"] == round(18 * 0.25) and saved["grown_curve_steps"][-1] == saved["child_steps"]
    assert saved["scratch_curve_steps"][-1] == 18 and len(saved["grown_curve_valid"]) == 4
    # a grown child starts from its parent's function: after a few steps it is far above a fresh network
    assert saved["grown_curve_valid"][0] > saved["scratch_curve_valid"][0]
    assert out["compute_saved_fraction"] == pytest.approx(1 - 4 / 18) or out["compute_saved_fraction"] == pytest.approx(1 - 5 / 18)
    assert (tmp_path / "work" / "incremental.png").exists()


@pytest.mark.parametrize("field, value", [("early_stopping.eta", 1), ("incremental.eval_points", 0),
                                          ("incremental.lr_scale", -0.1), ("network.channels", 0),
                                          ("weight_sharing.supernet_steps", 10**9), ("candidates", 1)])
def test_every_setting_is_checked_before_data_is_loaded(tmp_path, monkeypatch, field, value):
    """Issue 20: these were refused only after 70-86 s of training (or as config.learning_rate, or by a
    ZeroDivisionError); now validate() names them before any data is read or anything compiled."""
    monkeypatch.setattr(speedups, "load_images", lambda *a, **k: pytest.fail("data loaded before validation"))
    c = speedups_config.get_config("small")
    section, _, name = field.rpartition(".")
    (c[section] if section else c)[name] = value
    with pytest.raises(ConfigError, match=rf"^{field}: got {value!r}; allowed: "):
        speedups.run(c, str(tmp_path / "work"))
    assert not (tmp_path / "work").exists()
