"""mtl.metrics: confusion matrix, per-class P/R/F1, macro-F1 and accuracy against scikit-learn; the report."""

import json

import numpy as np
import pytest
from sklearn import metrics as skm

from jaxnas.common import ConfigError
from mtl.metrics import (
    accuracy,
    classification_report,
    confusion_matrix,
    format_report,
    macro_f1,
    precision_recall_f1,
)


def _random_case(rng: np.random.Generator):
    """Random labels/preds, often with classes missing from the predictions or from the labels."""
    num_classes = int(rng.integers(2, 7))
    n = int(rng.integers(1, 40))
    label_classes = rng.choice(num_classes, size=int(rng.integers(1, num_classes + 1)), replace=False)
    pred_classes = rng.choice(num_classes, size=int(rng.integers(1, num_classes + 1)), replace=False)
    labels = rng.choice(label_classes, size=n)
    preds = np.where(rng.random(n) < 0.5, labels, rng.choice(pred_classes, size=n))
    return num_classes, labels, preds


CASES = [_random_case(np.random.default_rng(seed)) for seed in range(80)]


def test_random_cases_cover_absent_classes():
    absent_pred = sum(len(set(range(c)) - set(p.tolist())) > 0 for c, _, p in CASES)
    absent_label = sum(len(set(range(c)) - set(y.tolist())) > 0 for c, y, _ in CASES)
    assert absent_pred >= 20 and absent_label >= 20


@pytest.mark.parametrize("case", range(len(CASES)))
def test_matches_sklearn(case):
    num_classes, labels, preds = CASES[case]
    classes = list(range(num_classes))
    cm = confusion_matrix(labels, preds, num_classes)
    np.testing.assert_array_equal(cm, skm.confusion_matrix(labels, preds, labels=classes))
    scores = precision_recall_f1(cm)
    p, r, f, s = skm.precision_recall_fscore_support(labels, preds, labels=classes, zero_division=0)
    np.testing.assert_allclose(scores.precision, p, rtol=1e-12, atol=0)
    np.testing.assert_allclose(scores.recall, r, rtol=1e-12, atol=0)
    np.testing.assert_allclose(scores.f1, f, rtol=1e-12, atol=1e-15)
    np.testing.assert_array_equal(scores.support, s)
    expected_macro = skm.f1_score(labels, preds, average="macro", labels=classes, zero_division=0)
    assert macro_f1(cm) == pytest.approx(expected_macro, rel=1e-12, abs=1e-15)
    assert accuracy(cm) == pytest.approx(skm.accuracy_score(labels, preds), rel=1e-12)


def test_majority_class_predictor_high_accuracy_low_macro_f1():
    # 95 negatives, 5 positives; the model always predicts "neg".
    labels = np.array([0] * 95 + [1] * 5)
    preds = np.zeros(100, int)
    cm = confusion_matrix(labels, preds, 2)
    np.testing.assert_array_equal(cm, [[95, 0], [5, 0]])
    # neg: P = 95/100, R = 95/95 = 1, F1 = 2*95 / (2*95 + 5 + 0) = 190/195; pos: P = R = F1 = 0.
    scores = precision_recall_f1(cm)
    np.testing.assert_allclose(scores.precision, [0.95, 0.0])
    np.testing.assert_allclose(scores.recall, [1.0, 0.0])
    np.testing.assert_allclose(scores.f1, [190 / 195, 0.0])
    assert accuracy(cm) == pytest.approx(0.95)
    assert macro_f1(cm) == pytest.approx(95 / 195)  # 0.487..., half of what accuracy suggests


def test_minus_one_labels_are_ignored():
    labels = np.array([0, -1, 1, 2, -1, 2])
    preds = np.array([0, 2, 1, 1, 0, 2])
    keep = labels != -1
    np.testing.assert_array_equal(
        confusion_matrix(labels, preds, 3), confusion_matrix(labels[keep], preds[keep], 3)
    )
    assert confusion_matrix(labels, preds, 3).sum() == 4
    empty = confusion_matrix([-1, -1], [0, 1], 3)
    assert empty.sum() == 0 and accuracy(empty) == 0.0 and macro_f1(empty) == 0.0


def test_classification_report_is_json_and_formats():
    labels = [0, 0, 1, 2, 2, 2, -1]
    preds = [0, 1, 1, 2, 2, 0, 1]
    report = classification_report(labels, preds, ["neg", "neu", "pos"])
    assert json.loads(json.dumps(report)) == report
    assert report["num_examples"] == 6
    assert report["accuracy"] == pytest.approx(4 / 6)
    assert report["confusion_matrix"] == [[1, 1, 0], [0, 1, 0], [1, 0, 2]]
    # neu: P = 1/2, R = 1/1, F1 = 2*1 / (2 + 1 + 0) = 2/3.
    assert report["per_class"]["neu"] == pytest.approx({"precision": 0.5, "recall": 1.0, "f1": 2 / 3, "support": 1})
    kept = [(y, p) for y, p in zip(labels, preds) if y != -1]
    y, p = map(list, zip(*kept))
    assert report["macro_f1"] == pytest.approx(skm.f1_score(y, p, average="macro", labels=[0, 1, 2]))

    text = format_report(report)
    lines = text.splitlines()
    assert lines[0].split() == ["class", "precision", "recall", "f1", "support"]
    assert lines[2].split() == ["neu", "0.500", "1.000", "0.667", "1"]
    assert len({len(line) for line in lines[:4]}) == 1  # the table rows are aligned
    assert lines[-1] == f"accuracy 0.667  macro-F1 {report['macro_f1']:.3f}  n=6"


def test_errors_name_the_field():
    with pytest.raises(ConfigError, match=r"^labels: must be in \[0, 3\) or -1; got \[3\]$"):
        confusion_matrix([0, 3], [0, 1], 3)
    with pytest.raises(ConfigError, match=r"^labels:"):
        confusion_matrix([0, -2], [0, 1], 3)
    with pytest.raises(ConfigError, match=r"^preds: must be in \[0, 3\); got \[5\]$"):
        confusion_matrix([0, 1], [0, 5], 3)
    with pytest.raises(ConfigError, match="^preds: must have the same length"):
        confusion_matrix([0, 1], [0], 3)
    with pytest.raises(ConfigError, match="^num_classes:"):
        confusion_matrix([0], [0], 0)
    with pytest.raises(ConfigError, match="^labels: must hold integer"):
        confusion_matrix([0.5], [0], 2)
    with pytest.raises(ConfigError, match="^cm:"):
        macro_f1(np.zeros((2, 3)))
    with pytest.raises(ConfigError, match="^class_names: must be distinct"):
        classification_report([0], [0], ["a", "a"])
    with pytest.raises(ConfigError, match="^report:"):
        format_report({"accuracy": 1.0})
