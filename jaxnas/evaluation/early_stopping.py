"""Early stopping for populations: successive halving (Jamieson & Talwalkar, AISTATS 2016; the inner
loop of Hyperband, Li et al., JMLR 2018) with an optional learning-curve rule, the median stopping
rule of Google Vizier (Golovin et al., KDD 2017).

Successive halving: all n candidates train for the smallest budget r; the best 1/eta (by validation
accuracy) continue to r*eta steps, and so on up to the full budget R. Training is *continued*, not
restarted: a candidate's batches and learning-rate schedule depend only on its step count, so a
survivor that reaches R has exactly the weights it would have after R uninterrupted steps. Defaults:
eta = 3 (Hyperband's), r = R / 9.

Median stopping rule (`median_rule=True`): at each rung a candidate also stops if the best value of
its learning curve so far is below the median, over the candidates still running, of the running
average of their curves at that step (Vizier's rule, applied at the rungs).
"""

from __future__ import annotations

import math
from typing import Any

import jax
import numpy as np
from flax import struct

from jaxnas.common.errors import check, check_positive
from jaxnas.evaluation.population import PopulationTrainer


@struct.dataclass
class HalvingResult:
    """Per candidate: score at the rung where it stopped, steps trained, and the rung reached."""

    score: np.ndarray  # (n,) validation accuracy at the last rung reached
    steps: np.ndarray  # (n,) steps trained
    rung: np.ndarray  # (n,) index of the last rung reached
    budgets: tuple[int, ...]
    curves: np.ndarray  # (n, rungs) validation accuracy at each rung (NaN where stopped)

    def ranking_score(self) -> np.ndarray:
        """Candidates that got further rank above those stopped earlier; within a rung, by score."""
        return self.rung * 1000.0 + np.nan_to_num(self.score, nan=-1.0)

    @property
    def candidate_steps(self) -> int:
        return int(self.steps.sum())


def rung_budgets(full_steps: int, min_steps: int, eta: int) -> tuple[int, ...]:
    """Budgets R / eta^k, ..., R / eta, R (rounded), none below `min_steps`."""
    check_positive("min_steps", min_steps, integer=True)
    check(isinstance(eta, int) and eta >= 2, "eta", f"got {eta}; allowed: an integer >= 2")
    check(min_steps <= full_steps, "min_steps", f"got {min_steps}; allowed: <= the full budget ({full_steps})")
    k = int(math.floor(math.log(full_steps / min_steps, eta) + 1e-9))
    return tuple(int(round(full_steps / eta**i)) for i in range(k, -1, -1))


def successive_halving(trainer: PopulationTrainer, archs: np.ndarray, seed: int = 0, min_steps: int | None = None,
                       eta: int = 3, median_rule: bool = False) -> HalvingResult:
    """Runs successive halving over `archs` (n, L) with the trainer's steps as the full budget R."""
    full = trainer.settings.steps
    budgets = rung_budgets(full, min_steps or max(1, full // eta**2), eta)
    archs = np.asarray(archs, np.int32)
    n = archs.shape[0]
    data, data_key = trainer.data, trainer.data_key(seed)

    init, advance = trainer.compiled_init(total_steps=full), trainer.compiled_advance(total_steps=full)
    states: Any = trainer.run_chunked(init, (trainer.candidate_keys(seed, np.arange(n)), archs), (data,))
    curves = np.full((n, len(budgets)), np.nan, np.float32)
    steps, rung = np.zeros(n, np.int64), np.zeros(n, np.int64)
    alive, done = np.arange(n), 0
    for k, budget in enumerate(budgets):
        sub = jax.tree.map(lambda a: a[alive], states)
        sub, acc = trainer.run_chunked(advance, (sub, archs[alive]), (data, data_key, np.int32(budget - done)))
        states = jax.tree.map(lambda a, s: _scatter(a, alive, s), states, sub)
        curves[alive, k], steps[alive], rung[alive] = acc, budget, k
        done = budget
        if k == len(budgets) - 1:
            break
        keep = max(1, math.ceil(len(alive) / eta))
        order = np.argsort(-np.nan_to_num(acc, nan=-np.inf), kind="stable")
        survivors = alive[order[:keep]]
        if median_rule:
            running = np.nanmean(curves[alive, : k + 1], axis=1)
            best = np.nanmax(curves[survivors, : k + 1], axis=1)
            survivors = survivors[best >= np.median(running)]
        alive = np.sort(survivors)
    score = curves[np.arange(n), rung]
    return HalvingResult(score=score, steps=steps, rung=rung, budgets=budgets, curves=curves)


def _scatter(full: np.ndarray, idx: np.ndarray, values: np.ndarray) -> np.ndarray:
    out = np.array(full)
    out[idx] = values
    return out
