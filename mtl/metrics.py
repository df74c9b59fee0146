"""Classification metrics for imbalanced labels (host side, numpy): confusion matrix, per-class
precision / recall / F1, macro-F1, accuracy, and a JSON-able report with a small text table.

Evaluation runs after the jitted forward pass, on gathered integer predictions, so these are plain numpy.
Conventions follow scikit-learn's `precision_recall_fscore_support(labels=range(C), zero_division=0)`:
  * a ratio with a zero denominator is 0 (precision of a never-predicted class, recall of a class
    with no true example, F1 when both are 0);
  * macro-F1 averages over all C classes, including classes absent from both labels and predictions
    (whose F1 is 0), as sklearn does when `labels=range(C)` is passed explicitly;
  * F1 is computed as 2 TP / (2 TP + FP + FN), sklearn's formula, equal to 2PR / (P + R) where defined.
Labels equal to -1 mean "no label for this task" and are ignored (with their predictions). Any other
label or prediction outside [0, C) raises `ConfigError`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np

from jaxnas.common import ConfigError, check

__all__ = [
    "IGNORE_LABEL",
    "PerClassScores",
    "accuracy",
    "classification_report",
    "confusion_matrix",
    "format_report",
    "macro_f1",
    "precision_recall_f1",
]

IGNORE_LABEL = -1


class PerClassScores(NamedTuple):
    """Per-class scores, each a (C,) array; `support` is the number of true examples per class."""

    precision: np.ndarray
    recall: np.ndarray
    f1: np.ndarray
    support: np.ndarray


def _as_int_vector(field: str, values: Any) -> np.ndarray:
    arr = np.asarray(values)
    check(arr.ndim == 1, field, f"must be a 1-D array; got shape {arr.shape}")
    if arr.size == 0:
        return arr.astype(np.int64)
    check(
        np.issubdtype(arr.dtype, np.integer) or bool(np.all(np.mod(arr, 1) == 0)),
        field,
        f"must hold integer class ids; got dtype {arr.dtype}",
    )
    return arr.astype(np.int64)


def confusion_matrix(labels: Any, preds: Any, num_classes: int) -> np.ndarray:
    """Counts (true class, predicted class) pairs; labels equal to -1 are skipped.

    Args:
      labels: (N,) integer true classes in [0, C), or -1 for "no label".
      preds: (N,) integer predicted classes in [0, C).
      num_classes: C.

    Returns:
      (C, C) int64 matrix, rows = true class, columns = predicted class (sklearn's layout).

    Raises:
      ConfigError: mismatched lengths or an id outside the allowed range.
    """
    check(
        isinstance(num_classes, (int, np.integer)) and not isinstance(num_classes, bool) and num_classes > 0,
        "num_classes",
        f"got {num_classes!r}; allowed: an integer > 0",
    )
    labels = _as_int_vector("labels", labels)  # (N,)
    preds = _as_int_vector("preds", preds)  # (N,)
    check(
        labels.shape == preds.shape,
        "preds",
        f"must have the same length as labels; got {preds.shape} vs {labels.shape}",
    )
    keep = labels != IGNORE_LABEL  # (N,)
    labels, preds = labels[keep], preds[keep]
    bad = (labels < 0) | (labels >= num_classes)
    check(
        not bad.any(),
        "labels",
        f"must be in [0, {num_classes}) or {IGNORE_LABEL}; got {np.unique(labels[bad]).tolist()}",
    )
    bad = (preds < 0) | (preds >= num_classes)
    check(not bad.any(), "preds", f"must be in [0, {num_classes}); got {np.unique(preds[bad]).tolist()}")
    flat = np.bincount(labels * num_classes + preds, minlength=num_classes * num_classes)  # (C*C,)
    return flat.reshape(num_classes, num_classes).astype(np.int64)  # (C, C)


def _check_cm(cm: Any) -> np.ndarray:
    cm = np.asarray(cm)
    square = cm.ndim == 2 and cm.shape[0] == cm.shape[1]
    check(square, "cm", f"must be a square (C, C) matrix; got shape {cm.shape}")
    return cm


def _safe_divide(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den, and 0 where den == 0 (sklearn's zero_division=0)."""
    return np.where(den > 0, num / np.where(den > 0, den, 1), 0.0).astype(np.float64)


def precision_recall_f1(cm: Any) -> PerClassScores:
    """Per-class precision, recall, F1 and support from a confusion matrix (zero division gives 0).

    Args:
      cm: (C, C) confusion matrix, rows = true, columns = predicted.

    Returns:
      PerClassScores of four (C,) arrays (float64 scores, int64 support).
    """
    cm = _check_cm(cm)  # (C, C)
    tp = np.diag(cm).astype(np.float64)  # (C,)
    predicted = cm.sum(axis=0).astype(np.float64)  # (C,) TP + FP
    support = cm.sum(axis=1)  # (C,) TP + FN
    precision = _safe_divide(tp, predicted)
    recall = _safe_divide(tp, support.astype(np.float64))
    f1 = _safe_divide(2 * tp, predicted + support)  # 2TP / (2TP + FP + FN)
    return PerClassScores(precision, recall, f1, support.astype(np.int64))


def macro_f1(cm: Any) -> float:
    """Unweighted mean of the per-class F1 over all C classes of a (C, C) confusion matrix."""
    return float(precision_recall_f1(cm).f1.mean())


def accuracy(cm: Any) -> float:
    """Fraction of counted examples on the diagonal of a (C, C) confusion matrix; 0 if there are none."""
    cm = _check_cm(cm)
    total = cm.sum()
    return float(np.trace(cm) / total) if total > 0 else 0.0


def classification_report(labels: Any, preds: Any, class_names: Sequence[str]) -> dict[str, Any]:
    """A JSON-able summary of one task's predictions.

    Args:
      labels: (N,) true classes, -1 for "no label" (ignored).
      preds: (N,) predicted classes.
      class_names: C distinct names; their order defines the class ids.

    Returns:
      {"accuracy": float, "macro_f1": float, "num_examples": int,
       "per_class": {name: {"precision", "recall", "f1", "support"}},
       "class_names": [...], "confusion_matrix": C lists of C ints (rows true, columns predicted)}.
    """
    names = [str(n) for n in class_names]
    check(len(names) > 0, "class_names", "must name at least one class")
    check(len(set(names)) == len(names), "class_names", f"must be distinct; got {names}")
    cm = confusion_matrix(labels, preds, len(names))  # (C, C)
    scores = precision_recall_f1(cm)
    per_class = {
        name: {
            "precision": float(scores.precision[c]),
            "recall": float(scores.recall[c]),
            "f1": float(scores.f1[c]),
            "support": int(scores.support[c]),
        }
        for c, name in enumerate(names)
    }
    return {
        "accuracy": accuracy(cm),
        "macro_f1": float(scores.f1.mean()),
        "num_examples": int(cm.sum()),
        "per_class": per_class,
        "class_names": names,
        "confusion_matrix": cm.tolist(),
    }


def format_report(report: Mapping[str, Any], *, digits: int = 3) -> str:
    """Renders a `classification_report` dict as a small aligned text table for progress output.

    Example (a majority-class predictor on 95 negatives and 5 positives):
      class  precision  recall     f1  support
      neg        0.950   1.000  0.974       95
      pos        0.000   0.000  0.000        5
      accuracy 0.950  macro-F1 0.487  n=100
    """
    for key in ("accuracy", "macro_f1", "per_class"):
        if key not in report:
            raise ConfigError("report", f"missing key {key!r}; pass the dict from classification_report")
    header = ["class", "precision", "recall", "f1", "support"]
    rows = [
        [str(name)] + [f"{s[k]:.{digits}f}" for k in ("precision", "recall", "f1")] + [str(s["support"])]
        for name, s in report["per_class"].items()
    ]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        return "  ".join([cells[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(cells[1:], widths[1:])])

    footer = f"accuracy {report['accuracy']:.{digits}f}  macro-F1 {report['macro_f1']:.{digits}f}"
    if "num_examples" in report:
        footer += f"  n={report['num_examples']}"
    return "\n".join([line(header), *map(line, rows), footer])
