"""The multi-task experiment end to end on the small config: results.json fields, the report, reruns that
resume from finished runs, and config mistakes reported by field."""

import json
import os

import pytest

from experiments import mtl
from experiments.configs import mtl as mtl_config
from jaxnas.common.errors import ConfigError

LOSSES = ("ce", "weighted", "class_balanced", "focal")


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    workdir = str(tmp_path_factory.mktemp("mtl"))
    config = mtl_config.get_config("small")
    summary = mtl.run(config, workdir)
    with open(os.path.join(workdir, "results.json")) as f:
        return workdir, summary, json.load(f)


@pytest.mark.slow
def test_results_have_every_loss_and_task(small_run):
    _, _, results = small_run
    assert set(results["losses"]) == set(LOSSES)
    for per_task in results["losses"].values():
        assert set(per_task) == {"topic", "sentiment"}
        for s in per_task.values():
            assert 0.0 <= s["macro_f1"] <= 1.0 and 0.0 <= s["accuracy"] <= 1.0 and s["seeds"] == 2
    assert results["losses"]["ce"]["sentiment"]["minority_class"] == "neutral"
    # chance is 1/3 macro-F1 for sentiment and 1/4 for topic: the frozen pretrained features do better
    assert results["losses"]["weighted"]["topic"]["macro_f1"] > 0.5


@pytest.mark.slow
def test_freezing_sparsity_and_oversampling_sections(small_run):
    workdir, _, results = small_run
    rows = {r["strategy"]: r for r in results["freezing"]}
    assert rows["none"]["trainable_params"] == rows["none"]["total_params"] == 22_565_376 + 2695
    assert rows["encoder"]["trainable_params"] == 2695
    assert rows["encoder"]["step_seconds"] < rows["none"]["step_seconds"]
    last = results["sparsity"]["last"]
    for task in ("topic", "sentiment"):
        assert last["used"][task] == len(last["features"][task])
        assert last["used"][task] == last["shared"] + last["specific"][task]
    shift = results["oversampling"]["topic"]["shift"]
    assert shift["topic"]["after"] == pytest.approx([0.25] * 4)
    assert shift["sentiment"]["total_variation"] > 0.0  # balancing topic moved the sentiment distribution
    report = open(os.path.join(workdir, "report.md")).read()
    for piece in ("four losses", "Why not resample", "Freezing strategies", "What the heads share", "mtl_sparsity.png"):
        assert piece in report
    for png in ("mtl_losses.png", "mtl_confusion.png", "mtl_sparsity.png", "mtl_loss_curves.png"):
        assert os.path.getsize(os.path.join(workdir, png)) > 1000


@pytest.mark.slow
def test_rerun_reuses_finished_runs(small_run):
    workdir, summary, results = small_run
    again = mtl.run(mtl_config.get_config("small"), workdir)
    assert again["losses"] == summary["losses"]
    assert again["wall_seconds"] < results["wall_seconds"]


@pytest.mark.slow
def test_rerun_with_other_settings_is_refused(small_run):
    workdir, _, _ = small_run
    config = mtl_config.get_config("small")
    config.train.steps = 7
    with pytest.raises(ConfigError, match="workdir"):
        mtl.run(config, workdir)


@pytest.mark.parametrize("field,value,match", [
    ("losses", "ce,hinge", "losses: got 'hinge'"),
    ("freeze", "bias", "freeze: got 'bias'"),
    ("data.source", "web", "data.source: got 'web'"),
])
def test_config_mistakes_name_the_field(tmp_path, field, value, match):
    config = mtl_config.get_config("small")
    node, key = config, field
    if "." in field:
        head, key = field.split(".")
        node = config[head]
    node[key] = value
    with pytest.raises(ConfigError, match=match):
        mtl.run(config, str(tmp_path))


def test_separate_corpus_needs_a_path_or_dataset(tmp_path):
    config = mtl_config.get_config("small")
    config.data.source = "separate"
    with pytest.raises(ConfigError, match=r"data.corpora.(topic|sentiment): set .path"):
        mtl.run(config, str(tmp_path))


@pytest.mark.slow
def test_separate_corpora_mt_dnn_style(tmp_path):
    """One JSONL file per task; each batch comes from one corpus and trains only its task's head; a corpus file
    edited in place is not taken for the cached run."""
    rng = __import__("numpy").random.default_rng(0)
    words = {"sport": "goal match team score", "money": "bank price market stock", "tech": "chip code app cloud"}
    with open(tmp_path / "topic.jsonl", "w") as f:
        for i in range(150):
            name = list(words)[i % 3]
            f.write(json.dumps({"text": " ".join(rng.choice(words[name].split(), 5)), "label": name}) + "\n")
    with open(tmp_path / "sentiment.csv", "w") as f:
        f.write("review,stars\n")
        for i in range(120):
            good = i % 4 != 0  # imbalanced: 3 positive for each negative
            f.write(f"{'great lovely superb' if good else 'awful terrible bad'} item {i},{int(good)}\n")
    config = mtl_config.get_config("small")
    config.data.source = "separate"
    config.data.corpora.topic.path = str(tmp_path / "topic.jsonl")
    config.data.corpora.sentiment.path = str(tmp_path / "sentiment.csv")
    config.data.corpora.sentiment.update({"text_column": "review", "label_column": "stars"})
    config.update({"losses": "weighted", "seeds": 1, "oversample": True})
    config.freezing.strategies = ""
    config.sparsity.l1 = ""
    results = mtl.run(config, str(tmp_path / "work"))
    assert results["losses"]["weighted"]["topic"]["macro_f1"] > 0.9  # trivially separable words
    assert results["losses"]["weighted"]["sentiment"]["macro_f1"] > 0.9
    saved = json.load(open(tmp_path / "work" / "results.json"))
    assert saved["data"]["sentiment"]["train_counts"][1] > 2 * saved["data"]["sentiment"]["train_counts"][0]
    assert "oversampling" not in saved  # resampling shifts nothing when the tasks share no sentences
    # the same file edited in place (labels flipped, same size) is another run: refused, not reported from cache
    text = open(tmp_path / "sentiment.csv").read().replace(",1\n", ",x\n").replace(",0\n", ",1\n").replace(",x\n", ",0\n")
    open(tmp_path / "sentiment.csv", "w").write(text)
    with pytest.raises(ConfigError, match=r"^workdir: .*content \(saved '[0-9a-f]{16}', now '[0-9a-f]{16}'\)"):
        mtl.run(config, str(tmp_path / "work"))


def _tiny_corpora(tmp_path):
    """A topic JSONL and an imbalanced sentiment CSV (as in the MT-DNN-style test), with a config that trains one
    run of 4 steps on them, a checkpoint after each step."""
    rng = __import__("numpy").random.default_rng(0)
    words = {"sport": "goal match team score", "money": "bank price market stock", "tech": "chip code app cloud"}
    with open(tmp_path / "topic.jsonl", "w") as f:
        for i in range(150):
            name = list(words)[i % 3]
            f.write(json.dumps({"text": " ".join(rng.choice(words[name].split(), 5)), "label": name}) + "\n")
    with open(tmp_path / "sentiment.csv", "w") as f:
        f.write("review,stars\n")
        for i in range(120):
            good = i % 4 != 0
            f.write(f"{'great lovely superb' if good else 'awful terrible bad'} item {i},{int(good)}\n")
    config = mtl_config.get_config("small")
    config.data.source = "separate"
    config.data.corpora.topic.path = str(tmp_path / "topic.jsonl")
    config.data.corpora.sentiment.path = str(tmp_path / "sentiment.csv")
    config.data.corpora.sentiment.update({"text_column": "review", "label_column": "stars"})
    config.update({"losses": "weighted", "seeds": 1, "oversample": False, "progress": False})
    config.freezing.strategies = ""
    config.sparsity.l1 = ""
    config.train.update({"steps": 4, "checkpoint_every": 1})
    return config


def test_rerun_refuses_other_settings_or_an_edited_corpus_and_falls_back_past_a_damaged_checkpoint(
        tmp_path, monkeypatch, capsys):
    """Through the one loop, on a run killed after step 2: another head learning rate, or a corpus file edited in
    place, is refused in one line naming the key before any checkpoint is restored; a truncated newest checkpoint
    is skipped for the one before it and the run ends with the figures of an uninterrupted one. A finished run
    rerun with other steps is refused naming `train.steps`."""
    from mtl.train import MultiTaskTrainer
    from test_loop import refused_before_restore, truncate_newest

    config = _tiny_corpora(tmp_path)
    reference = mtl.run(config, str(tmp_path / "uninterrupted"))
    real_train = MultiTaskTrainer.train

    class Killed(Exception):
        pass

    def killed_after_two_steps(self, key, **kwargs):
        real_train(self, key, **{**kwargs, "stop_at": 2})
        raise Killed

    with monkeypatch.context() as m:
        m.setattr(MultiTaskTrainer, "train", killed_after_two_steps)
        with pytest.raises(Killed):
            mtl.run(config, str(tmp_path / "work"))
    checkpoints = tmp_path / "work" / "runs" / "weighted_seed0" / "checkpoints"
    csv = (tmp_path / "sentiment.csv").read_text()
    config.train.lr_heads = 0.01
    run = lambda: mtl.run(config, str(tmp_path / "work"))  # noqa: E731
    assert "train.lr_heads (saved 0.003, now 0.01)" in refused_before_restore(monkeypatch, run)
    config.train.lr_heads = 0.003
    flipped = csv.replace(",1\n", ",x\n").replace(",0\n", ",1\n").replace(",x\n", ",0\n")
    (tmp_path / "sentiment.csv").write_text(flipped)  # the same file, labels flipped, same size
    message = refused_before_restore(monkeypatch, run)
    assert "content (saved '" in message and "train." not in message
    (tmp_path / "sentiment.csv").write_text(csv)
    assert truncate_newest(checkpoints) == [1]
    capsys.readouterr()
    resumed = mtl.run(config, str(tmp_path / "work"))
    assert "resuming from step 1" in capsys.readouterr().out
    assert resumed["losses"] == reference["losses"]
    curves = [next(mtl.read_jsonl(tmp_path / w / "runs" / "weighted_seed0" / "result.json"))["loss_curve"]
              for w in ("uninterrupted", "work")]
    assert curves[0] == curves[1] and len(curves[0]) == 4
    config.train.steps = 7
    with pytest.raises(ConfigError, match=r"^workdir: .*train\.steps \(saved 4, now 7\)"):
        mtl.run(config, str(tmp_path / "uninterrupted"))


@pytest.mark.slow
def test_the_best_losss_classifier_is_kept_and_predicts_like_its_run(small_run):
    """load_classifier(workdir) gives the best loss's first run (by mean macro-F1 over tasks); its predictions on the
    test split reproduce that run's stored per-task reports; the other runs' weights are not kept."""
    import numpy as np

    from mtl.metrics import classification_report
    from mtl.saved_classifier import load_classifier

    workdir, _, results = small_run
    kept = results["classifier"]
    means = {loss: np.mean([v["macro_f1"] for v in per_task.values()]) for loss, per_task in results["losses"].items()}
    assert kept["candidate"] == max(means, key=means.get) and kept["run"] == f"{kept['candidate']}_seed0"
    assert sorted(os.listdir(os.path.join(workdir, "classifier"))) == ["classifier.json", "classifier.msgpack",
                                                                      "run.json"]
    assert not any(os.path.exists(os.path.join(workdir, "runs", r, "classifier"))
                   for r in os.listdir(os.path.join(workdir, "runs")))
    clf = load_classifier(workdir)
    with open(os.path.join(workdir, "runs", kept["run"], "result.json")) as f:
        stored = json.loads(f.readline())["tasks"]
    setup = mtl.load_setup(mtl_config.get_config("small"))
    for task in setup.tasks:
        corpus = setup.test[task.name]
        labels = clf.predict(list(corpus.texts), batch_size=16)[task.name]
        pred = np.array([task.class_names.index(c) for c in labels])
        ours = classification_report(corpus.labels[task.name], pred, task.class_names)
        assert ours["macro_f1"] == pytest.approx(stored[task.name]["macro_f1"], abs=1e-9), task.name
    assert set(clf.predict("a single sentence")) == {t.name for t in setup.tasks}
