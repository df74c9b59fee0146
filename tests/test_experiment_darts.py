"""The DARTS entry point end to end on the digits (tiny supernet, 3 epochs, 2 seeds vmapped): results, report,
table lookups, from-scratch training, resume between epochs, RobustDARTS's choice of epoch."""

from __future__ import annotations

import dataclasses
import json
import os

import numpy as np
import pytest

from experiments import darts as entry
from experiments.configs import darts as darts_config
from jaxnas.common.errors import ConfigError
from jaxnas.problems.nb201_table import load_nb201_table
from jaxnas.spaces import nb201

pytestmark = pytest.mark.usefixtures("fast_compile")


def small(data_dir, **overrides):
    c = darts_config.get_config("small")
    c.data_dir, c.progress = data_dir, False
    for k, v in overrides.items():
        c[k] = v
    return c


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("tfds"))


@pytest.fixture(scope="module")
def gdas_run(data_dir, tmp_path_factory):
    workdir = str(tmp_path_factory.mktemp("gdas"))
    summary = entry.run(small(data_dir, method="gdas"), workdir)
    with open(os.path.join(workdir, "results.json")) as f:
        return workdir, summary, json.load(f)


def test_results_report_and_table_lookups(gdas_run, nb201_table):
    workdir, summary, res = gdas_run
    assert res["method"] == "gdas" and res["seeds"] == [0, 1] and res["epochs"] == 3
    for name in ("report.md", "alphas.png", "table_accuracy.png", "ops.png", "metrics.jsonl"):
        assert os.path.getsize(os.path.join(workdir, name)) > 0, name
    assert not os.path.exists(os.path.join(workdir, "eigenvalue.png"))  # not recorded for GDAS
    finals = []
    for row in res["per_seed"]:
        assert len(row["archs"]) == 3 and row["stop_epoch"] is None and row["final_arch"] == row["archs"][-1]
        archs = np.array([nb201.from_string(a) for a in row["archs"]])
        looked_up = load_nb201_table().query(archs)
        np.testing.assert_allclose(row["table_test"], np.asarray(looked_up.test), rtol=1e-6)
        assert row["final_table_test"] == pytest.approx(row["table_test"][-1])
        assert len(row["scratch_valid"]) == 1  # accuracies are fractions
        assert all(0 <= v <= 1 for v in (row["scratch_valid"][0], row["scratch_test"][0], row["final_table_test"]))
        finals.append(row["final_table_test"])
    assert res["mean_final_table_test"] == pytest.approx(np.mean(finals))
    share = np.array([res["op_share_by_epoch"][op] for op in nb201.OPS])  # (ops, epochs)
    np.testing.assert_allclose(share.sum(0), 1.0, rtol=1e-6)
    assert summary["skipped_steps"] == 0 and "per_seed" not in summary
    with open(os.path.join(workdir, "report.md")) as f:
        text = f.read()
    assert "GDAS on NAS-Bench-201, 2 seeds vmapped, 3 epochs" in text and "alphas.png" in text


def test_resume_between_epochs_equals_uninterrupted(gdas_run, data_dir, tmp_path):
    _, _, full = gdas_run
    config = small(data_dir, method="gdas")
    config.scratch.seeds = 0  # the search is what resumes (from-scratch training is not checkpointed: it is short)
    settings = entry.darts_settings(config)
    from experiments.nas_search import load_data

    entry.search(config, settings, load_data(config), str(tmp_path), stop_after=1)  # "killed" after epoch 1
    entry.run(config, str(tmp_path))
    with open(tmp_path / "results.json") as f:
        resumed = json.load(f)
    assert resumed["resumed_from_epoch"] == 1
    for a, b in zip(full["per_seed"], resumed["per_seed"]):
        assert a["archs"] == b["archs"]
        np.testing.assert_allclose(a["valid_acc_supernet"], b["valid_acc_supernet"], atol=1e-6)  # fractions
        assert "scratch_valid" not in b
    with open(tmp_path / "metrics.jsonl") as f:
        assert [json.loads(line)["epoch"] for line in f] == [1, 2, 3]
    # a rerun into that workdir on other images of the same shape is refused, naming what differs
    data = load_data(config)
    edited = dataclasses.replace(data, train_x=np.concatenate([data.train_x[:1] * 0.5, data.train_x[1:]]))
    with pytest.raises(ConfigError, match=r"^workdir: .*data\.content"):
        entry.search(config, settings, edited, str(tmp_path))


def test_rdarts_es_returns_the_cell_of_the_stop_epoch():
    """The entry point's choice of epoch per seed: RobustDARTS's rule on each seed's trace, nothing for others."""
    config = darts_config.get_config()
    rising = np.ones(30)
    rising[20:] = 2.0
    eig = np.stack([rising, np.ones(30)])
    assert entry.final_epochs(config, eig) == [None, None]  # plain DARTS keeps the last epoch
    config.method = "rdarts_es"
    assert entry.final_epochs(config, eig) == [15, None]  # see test_darts.test_robust_darts_rule_by_hand
    config.es.factor = 3.0
    assert entry.final_epochs(config, eig) == [None, None]


def test_report_figures_mark_the_stop_epochs():
    """The per-seed plots draw one line per seed plus the mean, and a dot where a seed stopped early; table
    accuracies (fractions) are drawn in percent, as the axis says."""
    import matplotlib.pyplot as plt

    from experiments.darts_report import plot_eigenvalue, plot_table_accuracy

    values = np.arange(12, dtype=float).reshape(2, 6)
    for plot, given in ((plot_eigenvalue, values), (plot_table_accuracy, values / 100)):
        fig = plot(given, [2, None])
        lines = fig.axes[0].get_lines()
        assert len(lines) == 4  # two seeds, one stop dot, the mean
        dot = [ln for ln in lines if ln.get_marker() == "o"]
        assert len(dot) == 1 and list(dot[0].get_xdata()) == [3] and list(dot[0].get_ydata()) == pytest.approx([2.0])
        np.testing.assert_allclose(lines[-1].get_ydata(), values.mean(0))
        plt.close(fig)
