"""Splits, task sampling and class balance for multi-task corpora.

Task sampling after MT-DNN (Liu, He, Chen & Gao, "Multi-Task Deep Neural Networks for Natural Language
Understanding", ACL 2019). Deviation: MT-DNN visits every mini-batch of every task once per epoch in random
order, so tasks appear in proportion to their sizes; we generalise to p_i ∝ size_i**alpha (alpha=1: MT-DNN,
alpha=0: uniform), drawn with exact per-task counts (MT-DNN's epoch) or i.i.d.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from jaxnas.common.errors import check, check_positive, check_range
from jaxnas.data.images import stratified_split
from mtl.data import Corpus, Splits


# ------------------------------------------------------------------------- splits, sampling, balance
def split_corpus(corpus: Corpus, *, valid_fraction: float = 0.1, test_fraction: float = 0.2, seed: int = 0,
                 stratify: str | Sequence[str] | None = None) -> Splits:
    """Deterministic stratified train/valid/test split (`jaxnas.data.images.stratified_split`).

    Strata are the joint label combinations of the tasks in `stratify` (default: all tasks; -1 is a value
    of its own; `()` gives a plain random split). Same seed, same split.
    """
    check_range("valid_fraction", valid_fraction, 0.0, 1.0)
    check_range("test_fraction", test_fraction, 0.0, 1.0)
    check(valid_fraction + test_fraction < 1, "test_fraction",
          f"valid_fraction + test_fraction = {valid_fraction + test_fraction}; allowed: < 1")
    names = [t.name for t in corpus.tasks] if stratify is None else [stratify] if isinstance(stratify, str) \
        else list(stratify)
    code = np.zeros(len(corpus), np.int64)  # (N,) joint class code
    for name in names:
        code = code * (len(corpus.task(name).class_names) + 1) + corpus.labels[name] + 1
    parts = stratified_split(code, (valid_fraction, test_fraction), seed)
    for part, field, frac in zip(parts[1:], ("valid_fraction", "test_fraction"), (valid_fraction, test_fraction)):
        check(len(part) > 0 or frac == 0, field, f"{len(corpus)} examples leave this part empty; need more data")
    return Splits(*(corpus.subset(p) for p in parts))


def task_probabilities(sizes: Sequence[int], alpha: float = 1.0) -> np.ndarray:
    """(T,) float64 probabilities p_i = size_i**alpha / sum_j size_j**alpha (1: MT-DNN, 0: uniform)."""
    check_range("alpha", alpha, 0.0, 1.0)
    check(len(sizes) > 0, "sizes", "need at least one task")
    for i, size in enumerate(sizes):
        check_positive(f"sizes[{i}]", int(size) if isinstance(size, np.integer) else size, integer=True)
    weights = np.asarray(sizes, np.float64) ** alpha
    return weights / weights.sum()


@dataclasses.dataclass(frozen=True, eq=False)  # arrays inside: compare fields explicitly
class TaskSampler:
    """Chooses the task of each training batch with `task_probabilities` (MT-DNN-style)."""

    names: tuple[str, ...]
    probabilities: np.ndarray  # (T,)

    @classmethod
    def from_sizes(cls, sizes: Mapping[str, int], alpha: float = 1.0) -> TaskSampler:
        """A sampler over `sizes` (task name -> number of training examples or batches)."""
        return cls(tuple(sizes), task_probabilities(list(sizes.values()), alpha))

    def schedule(self, num_steps: int, seed: int, *, exact: bool = True) -> np.ndarray:
        """(num_steps,) int32 task indices. `exact`: task i appears round(p_i * num_steps) times (largest
        remainders, summing to num_steps) in random order, MT-DNN's epoch; else i.i.d. draws."""
        check_positive("num_steps", num_steps, integer=True)
        rng = np.random.default_rng(seed)
        if not exact:
            return rng.choice(len(self.names), size=num_steps, p=self.probabilities).astype(np.int32)
        quota = self.probabilities * num_steps
        counts = np.floor(quota).astype(np.int64)
        counts[np.argsort(counts - quota, kind="stable")[: num_steps - counts.sum()]] += 1
        return rng.permutation(np.repeat(np.arange(len(self.names), dtype=np.int32), counts))


def oversample_to_balance(corpus: Corpus, task: str, seed: int) -> np.ndarray:
    """(M,) shuffled indices in which every class of `task` appears as often as its largest class.

    Each class keeps all its examples plus draws with replacement from them. Classes without examples
    stay empty; examples unlabelled for `task` are kept once.
    """
    y = corpus.labels[corpus.task(task).name]
    rng = np.random.default_rng(seed)
    target = int(corpus.counts(task).max())
    parts = [np.flatnonzero(y < 0)]
    for c in np.unique(y[y >= 0]):
        idx = np.flatnonzero(y == c)
        parts += [idx, rng.choice(idx, size=target - len(idx), replace=True)]
    return rng.permutation(np.concatenate(parts))


def label_shift(corpus: Corpus, idx: np.ndarray, task: str) -> dict[str, Any]:
    """How the class distribution of `task` changes from `corpus` to `corpus.subset(idx)`.

    Returns:
      {"classes": class names, "before": (K,) and "after": (K,) fractions of the labelled examples,
       "total_variation": 0.5 * sum |after - before|}.
    """
    before, after = corpus.counts(task), corpus.subset(idx).counts(task)
    before, after = before / max(before.sum(), 1), after / max(after.sum(), 1)
    return {"classes": corpus.task(task).class_names, "before": before, "after": after,
            "total_variation": float(0.5 * np.abs(after - before).sum())}
