"""Class labels of user data: mapped to the classes present, their number bounded (issue 20).

A user file's integer labels are not used as class indices directly: a single stray label of 1,000,000 would
otherwise build a 1,000,001-class head, and labels {1, 2} an empty class 0 that drags macro-F1 down. Instead the
distinct values, sorted, become classes 0..K-1 (`index_labels`), and the values are kept so that reports can name
the original labels. Data whose labels already are 0..K-1 with every class present (the embedded digits and
VADER corpora) map to themselves.

The bound (`max_classes`): at most `MAX_CLASSES` (10,000) classes, and at most half as many classes as examples,
since a class needs on average two examples, one to learn from and one to evaluate on; files of fewer than
`2 * SMALL_FILE_CLASSES` examples may still have up to `SMALL_FILE_CLASSES` (10) classes. More distinct labels
than that means the wrong column was read (an id, a score, the text), not a classification task.
"""

from __future__ import annotations

import numpy as np

from jaxnas.common.errors import check

MAX_CLASSES = 10_000
SMALL_FILE_CLASSES = 10


def max_classes(num_examples: int) -> int:
    """The most distinct labels allowed among `num_examples` labelled examples (see the module docstring)."""
    return min(MAX_CLASSES, max(num_examples // 2, SMALL_FILE_CLASSES))


def check_class_count(num_classes: int, num_examples: int, field: str, where: str) -> None:
    """Raises `ConfigError(field, ...)`, one line naming `where` (the file and column), above `max_classes`."""
    limit = max_classes(num_examples)
    check(num_classes <= limit, field,
          f"{where}: {num_classes:,} distinct labels among {num_examples:,} examples; allowed at most {limit:,} "
          f"classes (half the examples, at least {SMALL_FILE_CLASSES}, at most {MAX_CLASSES:,}): is this the label "
          "column?")


def index_labels(values: np.ndarray, field: str, where: str) -> tuple[np.ndarray, tuple[int, ...]]:
    """(N,) int32 class indices of integer labels and the label value of each class (sorted distinct values).

    Class `i` is the `i`-th smallest distinct value, so labels {1, 2} become classes 0, 1 with `(1, 2)` recorded,
    and labels 0..K-1 with every class present map to themselves. Too many distinct values raise ConfigError.
    """
    classes, indices = np.unique(np.asarray(values).reshape(-1), return_inverse=True)
    check_class_count(len(classes), len(indices), field, where)
    return indices.astype(np.int32), tuple(int(c) for c in classes)
