"""Text data for multi-task classification: the corpus types. Reading corpora (VADER, user tables, TFDS) is
`mtl.corpora`; splits, task sampling and oversampling are `mtl.sampling`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from jaxnas.common.errors import check, check_choice


@dataclasses.dataclass(frozen=True)
class TextTask:
    """One classification task: its name and its class names (label `i` is `class_names[i]`)."""

    name: str
    class_names: tuple[str, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "class_names", tuple(str(c) for c in self.class_names))
        check(isinstance(self.name, str) and bool(self.name), "task", f"got {self.name!r}; allowed: a non-empty name")
        check(len(self.class_names) >= 2 and len(set(self.class_names)) == len(self.class_names),
              f"{self.name}.class_names", f"got {self.class_names}; need at least 2 distinct names")


@dataclasses.dataclass(frozen=True, eq=False)  # arrays inside: compare fields explicitly
class Corpus:
    """Texts with labels for one or more tasks; label -1 means "no label for that task"."""

    texts: np.ndarray  # (N,) object array of str
    labels: dict[str, np.ndarray]  # task name -> (N,) int32 in [-1, num_classes)
    tasks: tuple[TextTask, ...]

    def __post_init__(self) -> None:
        texts = np.asarray(self.texts, dtype=object)
        labels = {k: np.asarray(v, dtype=np.int32) for k, v in self.labels.items()}
        object.__setattr__(self, "texts", texts)
        object.__setattr__(self, "labels", labels)
        object.__setattr__(self, "tasks", tuple(self.tasks))
        names = [t.name for t in self.tasks]
        check(texts.ndim == 1, "texts", f"got shape {texts.shape}; allowed: (N,)")
        check(bool(names) and len(set(names)) == len(names) and set(names) == set(labels), "labels",
              f"label keys {sorted(labels)} must match the distinct task names {names}")
        for t in self.tasks:
            y, k = labels[t.name], len(t.class_names)
            check(y.shape == texts.shape and (y.size == 0 or (y.min() >= -1 and y.max() < k)), f"labels[{t.name}]",
                  f"must be {texts.shape} ints in [-1, {k - 1}] (-1 = unlabelled); got shape {y.shape}")

    def __len__(self) -> int:
        return len(self.texts)

    def task(self, name: str) -> TextTask:
        """The task called `name` (`ConfigError("task")` listing the tasks otherwise)."""
        check_choice("task", name, [t.name for t in self.tasks])
        return next(t for t in self.tasks if t.name == name)

    def subset(self, idx: np.ndarray | Sequence[int]) -> Corpus:
        """The examples at integer indices (repeats allowed) or boolean mask `idx`, in that order."""
        idx = np.asarray(idx)
        idx = idx if idx.dtype == bool else idx.astype(np.int64)
        return Corpus(self.texts[idx], {k: v[idx] for k, v in self.labels.items()}, self.tasks)

    def counts(self, task: str) -> np.ndarray:
        """(num_classes,) int64 number of labelled examples per class of `task`."""
        y = self.labels[self.task(task).name]
        return np.bincount(y[y >= 0], minlength=len(self.task(task).class_names)).astype(np.int64)


@dataclasses.dataclass(frozen=True, eq=False)  # arrays inside: compare fields explicitly
class Splits:
    """Train / validation / test corpora."""

    train: Corpus
    valid: Corpus
    test: Corpus
