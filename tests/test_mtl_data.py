"""Tests of `mtl.data`: the VADER corpus (fetched once per session with `pip download`, which CI can do),
user tables, prepared TFDS text datasets, stratified splits, task sampling and oversampling."""

import csv
import io
import json
import os
import tarfile
import threading
import time
import zipfile

import numpy as np
import pytest

from jaxnas.common.errors import ConfigError
from mtl import corpora, sampling
from mtl.data import Corpus, TextTask

FETCH_SECONDS = {}


@pytest.fixture(scope="module")
def vader_tsv(tmp_path_factory):
    """The real VADER TSV, built once from the PyPI sdist in a fresh cache folder."""
    start = time.perf_counter()
    path = corpora.fetch_vader(str(tmp_path_factory.mktemp("text")))
    FETCH_SECONDS["pip"] = time.perf_counter() - start
    return path


@pytest.fixture(scope="module")
def vader(vader_tsv):
    return corpora.load_vader(vader_tsv)


def _ratings(path):
    with open(path, encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    return np.array([float(r["rating"]) for r in rows]), np.array([r["domain"] for r in rows])


def _mask_counts(c: Corpus, task: str, mask) -> np.ndarray:
    return c.subset(np.asarray(mask)).counts(task)


# --------------------------------------------------------------------------------------------- VADER
def test_vader_counts_are_those_of_the_paper(vader, vader_tsv, monkeypatch):
    assert len(vader) == 23_703 and vader.texts.dtype == object
    assert [t.name for t in vader.tasks] == ["topic", "sentiment"]
    assert vader.task("topic").class_names == ("movie_reviews", "nyt_editorials", "tweets", "amazon_reviews")
    assert vader.task("sentiment").class_names == ("negative", "neutral", "positive")
    np.testing.assert_array_equal(vader.counts("topic"), [10_605, 5_190, 4_200, 3_708])
    np.testing.assert_array_equal(vader.counts("sentiment"), [9_181, 4_244, 10_278])
    np.testing.assert_array_equal(_mask_counts(vader, "sentiment", vader.labels["topic"] == 0), [5_076, 533, 4_996])
    assert vader.texts[0].startswith("The Rock is destined to be the 21st Century's new ''Conan''")
    assert any(t.startswith("Münch's genuine insight") for t in vader.texts)  # UTF-8 decoded, not mojibake
    assert all(isinstance(t, str) and t and "\r" not in t for t in vader.texts)
    # A second fetch is a file check: pip must not run again.
    monkeypatch.setattr(corpora.subprocess, "run", lambda *a, **k: pytest.fail("pip ran for a cached TSV"))
    assert corpora.fetch_vader(os.path.dirname(vader_tsv)) == vader_tsv
    print(f"VADER fetch with pip download took {FETCH_SECONDS.get('pip', float('nan')):.1f} s")


def test_vader_thresholds_move_examples_between_classes(vader, vader_tsv):
    ratings, _ = _ratings(vader_tsv)
    wide = corpora.load_vader(vader_tsv, neutral_low=-1.0, neutral_high=1.0)
    expected = [(ratings <= -1).sum(), ((ratings > -1) & (ratings < 1)).sum(), (ratings >= 1).sum()]
    np.testing.assert_array_equal(wide.counts("sentiment"), expected)
    assert wide.counts("sentiment")[1] > vader.counts("sentiment")[1] + 1000
    np.testing.assert_array_equal(wide.counts("topic"), vader.counts("topic"))
    # Ties at the thresholds: -0.5 is negative and 0.5 positive with the defaults (both occur in the data).
    assert (ratings == -0.5).sum() == 152 and (ratings == 0.5).sum() == 171
    assert np.all(vader.labels["sentiment"][ratings == -0.5] == 0)
    assert np.all(vader.labels["sentiment"][ratings == 0.5] == 2)
    none = corpora.load_vader(vader_tsv, neutral_low=0.0, neutral_high=0.0)
    np.testing.assert_array_equal(none.counts("sentiment"), [(ratings <= 0).sum(), 0, (ratings > 0).sum()])


def test_sentiment_labels_boundaries_by_hand():
    r = [-4.0, -0.5, -0.49, 0.0, 0.49, 0.5, 3.9]
    np.testing.assert_array_equal(corpora.sentiment_labels(r), [0, 0, 1, 1, 1, 2, 2])
    np.testing.assert_array_equal(corpora.sentiment_labels(r, -0.49, 0.49), [0, 0, 0, 1, 2, 2, 2])
    np.testing.assert_array_equal(corpora.sentiment_labels([-0.1, 0.0, 0.1], 0.0, 0.0), [0, 0, 2])


def _ground_truth_tar(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, raw in files.items():
            info = tarfile.TarInfo(f"hutto_ICWSM_2014/{name}")
            info.size = len(raw)
            archive.addfile(info, io.BytesIO(raw))
    return buffer.getvalue()


FAKE_FILES = {
    "movieReviewSnippets_GroundTruth.txt": "1\t2.5\tGreat \"film\", truly.\r\n2\t-0.5\tMünch bores.\r\n".encode(),
    "nytEditorialSnippets_GroundTruth.txt": b"1_1\t0.4\tThe council met.\r\n1_2\t-1.2\tA\ttabbed, sad line\r\n",
    "tweets_GroundTruth.txt": b"7\t0.5\tyay",  # no final line end
    "amazonReviewSnippets_GroundTruth.txt": "3_1\t-3\tCaf\u00e9 broke.\r\n".encode("cp1252"),  # not UTF-8
}


@pytest.mark.parametrize("kind", ["sdist_tar", "sdist_zip", "inner_tar"])
def test_fetch_vader_from_a_local_archive(tmp_path, kind):
    inner = _ground_truth_tar(FAKE_FILES)
    path = tmp_path / {"sdist_tar": "v.tar.gz", "sdist_zip": "v.zip", "inner_tar": "h.tar.gz"}[kind]
    if kind == "inner_tar":
        path.write_bytes(inner)
    elif kind == "sdist_zip":
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("vaderSentiment-3.3.2/additional_resources/hutto_ICWSM_2014.tar.gz", inner)
    else:
        with tarfile.open(path, "w:gz") as archive:
            info = tarfile.TarInfo("vaderSentiment-3.3.2/additional_resources/hutto_ICWSM_2014.tar.gz")
            info.size = len(inner)
            archive.addfile(info, io.BytesIO(inner))
    tsv = corpora.fetch_vader(str(tmp_path / "cache"), sdist_path=str(path))
    assert sorted(os.listdir(tmp_path / "cache")) == [".vader.lock", corpora.VADER_TSV]  # no partial file left
    c = corpora.load_vader(tsv)
    assert list(c.texts) == ["Great \"film\", truly.", "Münch bores.", "The council met.", "A\ttabbed, sad line",
                             "yay", "Café broke."]
    np.testing.assert_array_equal(c.labels["topic"], [0, 0, 1, 1, 2, 3])
    np.testing.assert_array_equal(c.labels["sentiment"], [2, 0, 1, 0, 2, 0])


def test_concurrent_fetches_build_one_complete_file(tmp_path):
    sdist = tmp_path / "h.tar.gz"
    sdist.write_bytes(_ground_truth_tar(FAKE_FILES))
    cache, results = str(tmp_path / "cache"), []
    threads = [threading.Thread(target=lambda: results.append(corpora.fetch_vader(cache, sdist_path=str(sdist))))
               for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [os.path.join(cache, corpora.VADER_TSV)] * 4
    assert sorted(os.listdir(cache)) == [".vader.lock", corpora.VADER_TSV]
    assert len(corpora.load_vader(results[0])) == 6


def test_fetch_vader_reports_a_failing_pip_quickly(tmp_path, monkeypatch):
    # Offline-like: no index and an empty find-links folder, so pip finds nothing.
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(tmp_path))
    monkeypatch.delenv(corpora.SDIST_ENV, raising=False)
    start = time.perf_counter()
    with pytest.raises(ConfigError, match="sdist_path") as err:
        corpora.fetch_vader(str(tmp_path / "cache"))
    assert err.value.field == "data" and time.perf_counter() - start < 60
    assert not os.path.exists(tmp_path / "cache" / corpora.VADER_TSV)


def test_vader_error_paths(tmp_path, vader_tsv):
    not_archive = tmp_path / "x.tar.gz"
    not_archive.write_bytes(b"not an archive")
    empty_tar = tmp_path / "e.tar.gz"
    empty_tar.write_bytes(_ground_truth_tar({"tweets_GroundTruth.txt": b"1\t0.1\thi"}))
    bad_header = tmp_path / "bad.tsv"
    bad_header.write_text("a\tb\n")
    cases = [
        (lambda: corpora.fetch_vader(str(tmp_path / "c1"), sdist_path=str(tmp_path / "missing.tar.gz")), "sdist_path"),
        (lambda: corpora.fetch_vader(str(tmp_path / "c2"), sdist_path=str(not_archive)), "sdist_path"),
        (lambda: corpora.fetch_vader(str(tmp_path / "c3"), sdist_path=str(empty_tar)), "sdist_path"),
        (lambda: corpora.load_vader(vader_tsv, neutral_low=1.0, neutral_high=0.0), "neutral_low"),
        (lambda: corpora.load_vader(vader_tsv, neutral_high=float("nan")), "neutral_high"),
        (lambda: corpora.load_vader(str(tmp_path / "none.tsv")), "path"),
        (lambda: corpora.load_vader(str(bad_header)), "path"),
    ]
    for call, field in cases:
        with pytest.raises(ConfigError) as err:
            call()
        assert err.value.field == field, (field, str(err.value))
    assert "movieReviewSnippets_GroundTruth.txt" in str(pytest.raises(ConfigError, cases[2][0]).value)


# ---------------------------------------------------------------------------------------- corpus basics
def _tiny() -> Corpus:
    """6 examples: topic A A A A B B (plus one unlabelled), sentiment of the B examples all positive."""
    return Corpus(
        np.array([f"t{i}" for i in range(7)], dtype=object),
        {"topic": np.array([0, 0, 0, 0, 1, 1, -1]), "sentiment": np.array([0, 0, 2, 2, 2, 2, 1])},
        (TextTask("topic", ("A", "B")), TextTask("sentiment", ("neg", "neu", "pos"))),
    )


def test_corpus_counts_subset_and_validation():
    c = _tiny()
    assert len(c) == 7 and c.labels["topic"].dtype == np.int32
    np.testing.assert_array_equal(c.counts("topic"), [4, 2])
    np.testing.assert_array_equal(c.counts("sentiment"), [2, 1, 4])
    sub = c.subset([5, 5, 0])
    assert list(sub.texts) == ["t5", "t5", "t0"] and list(sub.labels["topic"]) == [1, 1, 0]
    assert list(c.subset(c.labels["topic"] == 1).texts) == ["t4", "t5"]
    for kwargs, field in [
        ({"labels": {"topic": [0, 2]}}, "labels[topic]"),
        ({"labels": {"topic": [0, -2]}}, "labels[topic]"),
        ({"labels": {"topic": [0]}}, "labels[topic]"),
        ({"labels": {"other": [0, 1]}}, "labels"),
    ]:
        with pytest.raises(ConfigError) as err:
            Corpus(np.array(["a", "b"], dtype=object), kwargs["labels"], (TextTask("topic", ("A", "B")),))
        assert err.value.field == field
    with pytest.raises(ConfigError, match="allowed: topic, sentiment"):
        c.counts("nope")
    with pytest.raises(ConfigError) as err:
        TextTask("topic", ("A", "A"))
    assert err.value.field == "topic.class_names"


# ----------------------------------------------------------------------------------------------- splits
def test_split_is_deterministic_disjoint_complete_and_stratified(vader):
    s1 = sampling.split_corpus(vader, valid_fraction=0.1, test_fraction=0.2, seed=3)
    s2 = sampling.split_corpus(vader, valid_fraction=0.1, test_fraction=0.2, seed=3)
    s3 = sampling.split_corpus(vader, valid_fraction=0.1, test_fraction=0.2, seed=4)
    for a, b in zip((s1.train, s1.valid, s1.test), (s2.train, s2.valid, s2.test)):
        np.testing.assert_array_equal(a.texts, b.texts)
    assert not np.array_equal(s1.test.texts, s3.test.texts)
    # Index the sentences by position: texts are not all unique, so split an index corpus instead.
    ids = Corpus(np.array([str(i) for i in range(len(vader))], dtype=object), vader.labels, vader.tasks)
    parts = sampling.split_corpus(ids, seed=3)
    sets = [set(p.texts) for p in (parts.train, parts.valid, parts.test)]
    assert sum(map(len, sets)) == len(vader) and set().union(*sets) == set(ids.texts)
    assert len(parts.valid) == pytest.approx(0.1 * len(vader), abs=20)
    assert len(parts.test) == pytest.approx(0.2 * len(vader), abs=20)
    for part in (parts.train, parts.valid, parts.test):
        for task in ("topic", "sentiment"):
            np.testing.assert_allclose(part.counts(task) / len(part), vader.counts(task) / len(vader), atol=0.005)
        # Joint strata: the neutral movie sentences (533, 2.2 %) keep their share too.
        joint = np.mean((part.labels["topic"] == 0) & (part.labels["sentiment"] == 1))
        assert joint == pytest.approx(533 / len(vader), abs=0.002)


def test_split_errors_and_plain_random_split():
    c = _tiny()
    for kwargs, field in [
        ({"valid_fraction": -0.1}, "valid_fraction"),
        ({"test_fraction": 1.5}, "test_fraction"),
        ({"valid_fraction": 0.5, "test_fraction": 0.5}, "test_fraction"),
        ({"stratify": "nope"}, "task"),
    ]:
        with pytest.raises(ConfigError) as err:
            sampling.split_corpus(c, **kwargs)
        assert err.value.field == field
    with pytest.raises(ConfigError) as err:  # every joint stratum is too small to give a test example
        sampling.split_corpus(c.subset([0, 4]), valid_fraction=0.0, test_fraction=0.3)
    assert err.value.field == "test_fraction"
    plain = sampling.split_corpus(c, valid_fraction=0.0, test_fraction=3 / 7, stratify=())
    assert (len(plain.train), len(plain.valid), len(plain.test)) == (4, 0, 3)


# ------------------------------------------------------------------------------------------------ tables
def _write(path, rows, kind):
    if kind == "jsonl":
        path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n", encoding="utf-8")
    elif kind == "json":
        path.write_text(json.dumps(rows), encoding="utf-8")
    else:
        with open(path, "w", encoding="utf-8", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]), delimiter="," if kind == "csv" else "\t")
            writer.writeheader()
            writer.writerows(rows)
    return str(path)


TEXTS = ["plain", "with, comma", 'a "quote"', "multi\nline", "ünïcode ✓"]


@pytest.mark.parametrize("kind", ["jsonl", "json", "csv", "tsv"])
def test_table_round_trips_with_string_and_int_labels(tmp_path, kind):
    strings = ["pos", "neg", "pos", "mid", "neg"]
    rows = [{"body": t, "y": y, "extra": 1} for t, y in zip(TEXTS, strings)]
    c = corpora.load_table_task(_write(tmp_path / f"s.{kind}", rows, kind), task="sent", text_column="body",
                             label_column="y")
    assert list(c.texts) == TEXTS and c.task("sent").class_names == ("mid", "neg", "pos")  # sorted
    np.testing.assert_array_equal(c.labels["sent"], [2, 1, 2, 0, 1])
    fixed = corpora.load_table_task(str(tmp_path / f"s.{kind}"), task="sent", text_column="body", label_column="y",
                                 class_names=["neg", "mid", "pos"])
    np.testing.assert_array_equal(fixed.labels["sent"], [2, 0, 2, 1, 0])
    ints = [{"text": t, "label": y} for t, y in zip(TEXTS, [0, 3, 1, 0, 3])]  # in CSV these become "0", "3", ...
    c = corpora.load_table_task(_write(tmp_path / f"i.{kind}", ints, kind), task="topic")
    assert c.task("topic").class_names == ("0", "1", "3")  # the classes present (issue 20): no empty class "2"
    np.testing.assert_array_equal(c.labels["topic"], [0, 2, 1, 0, 2])
    named = corpora.load_table_task(str(tmp_path / f"i.{kind}"), task="topic", class_names=("w", "x", "y", "z"))
    assert named.task("topic").class_names == ("w", "x", "y", "z")
    np.testing.assert_array_equal(named.labels["topic"], [0, 3, 1, 0, 3])


def test_table_error_paths_name_the_field(tmp_path):
    ok = _write(tmp_path / "ok.jsonl", [{"text": "a", "label": "x"}, {"text": "b", "label": "y"}], "jsonl")
    (tmp_path / "empty.csv").write_text("")
    (tmp_path / "header_only.csv").write_text("text,label\n")
    (tmp_path / "bad.jsonl").write_text('{"text": "a", "label": 1}\n{not json}\n')
    (tmp_path / "list.jsonl").write_text('[1, 2]\n')
    (tmp_path / "x.txt").write_text("text\tlabel\n")
    no_label = _write(tmp_path / "nl.csv", [{"text": "a", "label": "x"}, {"text": "b", "label": ""}], "csv")
    one_class = _write(tmp_path / "one.jsonl", [{"text": "a", "label": "x"}, {"text": "b", "label": "x"}], "jsonl")
    mixed = _write(tmp_path / "mix.jsonl", [{"text": "a", "label": "x"}, {"text": "b", "label": 1}], "jsonl")
    negative = _write(tmp_path / "neg.jsonl", [{"text": "a", "label": -1}, {"text": "b", "label": 1}], "jsonl")
    not_text = _write(tmp_path / "nt.jsonl", [{"text": 5, "label": 0}, {"text": "b", "label": 1}], "jsonl")
    f = "data.sent.path"
    cases = [
        (dict(path=str(tmp_path / "missing.jsonl")), f),
        (dict(path=str(tmp_path / "x.txt")), f),
        (dict(path=str(tmp_path / "empty.csv")), f),
        (dict(path=str(tmp_path / "header_only.csv")), f),
        (dict(path=str(tmp_path / "bad.jsonl")), f),
        (dict(path=str(tmp_path / "list.jsonl")), f),
        (dict(path=ok, text_column="body"), "data.sent.text_column"),
        (dict(path=ok, label_column="y"), "data.sent.label_column"),
        (dict(path=no_label), "data.sent.label_column"),
        (dict(path=not_text), "data.sent.text_column"),
        (dict(path=ok, class_names=["x", "z"]), f),  # "y" is not a class
        (dict(path=ok, class_names=["x", "x"]), "data.sent.class_names"),
        (dict(path=negative), f),
        (dict(path=negative, class_names=["a", "b"]), f),  # -1 is out of range
        (dict(path=one_class), f),
        (dict(path=mixed), f),
    ]
    for kwargs, field in cases:
        with pytest.raises(ConfigError) as err:
            corpora.load_table_task(task="sent", field=f, **kwargs)
        assert err.value.field == field, (kwargs, str(err.value))
    with pytest.raises(ConfigError, match=r"allowed: \.jsonl, \.json, \.csv, \.tsv"):
        corpora.load_table_task(str(tmp_path / "x.txt"), task="sent")


# -------------------------------------------------------------------------------------------------- TFDS
def test_tfds_missing_dataset_fails_fast(tmp_path):
    import tensorflow_datasets  # noqa: F401 - the one-off import is not what we time

    start = time.perf_counter()
    with pytest.raises(ConfigError, match="not prepared") as err:
        corpora.load_tfds_task("ag_news_subset", task="topic", data_dir=str(tmp_path))
    assert err.value.field == "dataset" and time.perf_counter() - start < 2.0
    with pytest.raises(ConfigError) as err:
        corpora.load_tfds_task("no_such_dataset_xyz", task="topic", data_dir=str(tmp_path))
    assert err.value.field == "dataset"


@pytest.fixture(scope="module")
def fake_ag_news(tmp_path_factory):
    """A local stand-in for ag_news_subset with the catalogue's features, prepared as array_record."""
    import tensorflow_datasets as tfds

    class FakeAgNews(tfds.core.GeneratorBasedBuilder, skip_registration=True):
        name = "ag_news_subset"
        VERSION = tfds.core.Version("1.0.0")

        def _info(self):
            features = tfds.features.FeaturesDict({
                "label": tfds.features.ClassLabel(names=["World", "Sports", "Business", "Sci/Tech"]),
                "title": tfds.features.Text(), "description": tfds.features.Text()})
            return tfds.core.DatasetInfo(builder=self, features=features, supervised_keys=("description", "label"))

        def _split_generators(self, dl_manager):
            return {"train": self._generate_examples(10), "test": self._generate_examples(3)}

        def _generate_examples(self, n):
            for i in range(n):
                yield i, {"label": i % 4, "title": f"title {i}", "description": f"café {i}"}

    data_dir = str(tmp_path_factory.mktemp("tfds"))
    FakeAgNews(data_dir=data_dir, file_format="array_record").download_and_prepare(
        download_dir=str(tmp_path_factory.mktemp("downloads")))
    return data_dir


def test_tfds_prepared_dataset_is_read_without_tensorflow(fake_ag_news):
    c = corpora.load_tfds_task("ag_news_subset", task="topic", data_dir=fake_ag_news)
    assert len(c) == 10 and c.task("topic").class_names == ("World", "Sports", "Business", "Sci/Tech")
    pairs = sorted(zip(c.texts, c.labels["topic"]))
    assert pairs == sorted((f"café {i}", i % 4) for i in range(10))  # decoded UTF-8 str, default key
    titles = corpora.load_tfds_task("ag_news_subset", task="t", split="test", text_key="title", data_dir=fake_ag_news,
                                 max_examples=2)
    assert len(titles) == 2 and all(t.startswith("title ") for t in titles.texts)
    for kwargs, field in [({"split": "validation"}, "split"), ({"text_key": "body"}, "text_key"),
                          ({"label_key": "title"}, "label_key"), ({"max_examples": 0}, "max_examples")]:
        with pytest.raises(ConfigError) as err:
            corpora.load_tfds_task("ag_news_subset", task="t", data_dir=fake_ag_news, **kwargs)
        assert err.value.field == field


# ------------------------------------------------------------------------------------- sampling, balance
def test_task_probabilities_by_hand():
    np.testing.assert_allclose(sampling.task_probabilities([100, 400], 1.0), [0.2, 0.8])
    np.testing.assert_allclose(sampling.task_probabilities([100, 400], 0.0), [0.5, 0.5])
    np.testing.assert_allclose(sampling.task_probabilities([100, 400], 0.5), [1 / 3, 2 / 3])
    np.testing.assert_allclose(sampling.task_probabilities(np.array([1, 1, 2]), 1.0), [0.25, 0.25, 0.5])
    for args, field in [(([1, 2], 1.5), "alpha"), (([1, 2], -0.1), "alpha"), (([], 1.0), "sizes"),
                        (([3, 0], 1.0), "sizes[1]"), (([3, 2.5], 1.0), "sizes[1]")]:
        with pytest.raises(ConfigError) as err:
            sampling.task_probabilities(*args)
        assert err.value.field == field


def test_task_sampler_schedules():
    s = sampling.TaskSampler.from_sizes({"a": 3, "b": 5, "c": 2})
    assert s.names == ("a", "b", "c")
    np.testing.assert_array_equal(np.bincount(s.schedule(10, seed=0), minlength=3), [3, 5, 2])
    # 7 steps: quotas 2.1, 3.5, 1.4 -> floors 2, 3, 1 and the one left over goes to the largest remainder (b).
    np.testing.assert_array_equal(np.bincount(s.schedule(7, seed=0), minlength=3), [2, 4, 1])
    np.testing.assert_array_equal(s.schedule(50, seed=1), s.schedule(50, seed=1))
    assert not np.array_equal(s.schedule(50, seed=1), s.schedule(50, seed=2))
    draws = s.schedule(20_000, seed=0, exact=False)
    assert draws.dtype == np.int32
    np.testing.assert_allclose(np.bincount(draws, minlength=3) / 20_000, [0.3, 0.5, 0.2], atol=0.015)
    uniform = sampling.TaskSampler.from_sizes({"a": 3, "b": 5, "c": 2}, alpha=0.0)
    np.testing.assert_array_equal(np.bincount(uniform.schedule(9, seed=0)), [3, 3, 3])
    with pytest.raises(ConfigError, match="num_steps"):
        s.schedule(0, seed=0)


def test_oversampling_balances_one_task_and_shifts_the_other():
    c = _tiny()
    idx = sampling.oversample_to_balance(c, "topic", seed=0)
    np.testing.assert_array_equal(c.subset(idx).counts("topic"), [4, 4])
    assert np.sum(idx == 6) == 1 and set(range(7)) <= set(idx.tolist())  # unlabelled kept once, nothing lost
    np.testing.assert_array_equal(idx, sampling.oversample_to_balance(c, "topic", seed=0))
    # Both B examples are positive, so doubling B moves sentiment from (2, 1, 4)/7 to (2, 1, 6)/9.
    shift = sampling.label_shift(c, idx, "sentiment")
    assert shift["classes"] == ("neg", "neu", "pos")
    np.testing.assert_allclose(shift["before"], [2 / 7, 1 / 7, 4 / 7])
    np.testing.assert_allclose(shift["after"], [2 / 9, 1 / 9, 6 / 9])
    assert shift["total_variation"] == pytest.approx(6 / 9 - 4 / 7)


def test_balancing_vader_sentiment_unbalances_its_topics(vader):
    idx = sampling.oversample_to_balance(vader, "sentiment", seed=0)
    np.testing.assert_array_equal(vader.subset(idx).counts("sentiment"), [10_278] * 3)
    shift = sampling.label_shift(vader, idx, "topic")
    np.testing.assert_allclose(shift["before"], np.array([10_605, 5_190, 4_200, 3_708]) / 23_703)
    # NYT editorials hold 2,220 of the 4,244 neutral sentences, so they gain most: 21.9 % -> about 27.8 %.
    assert shift["after"][1] == pytest.approx(0.278, abs=0.01)
    assert shift["after"][0] < shift["before"][0] - 0.03 and shift["total_variation"] > 0.05
