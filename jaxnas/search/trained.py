"""Search with real training: any ask/tell strategy, candidates trained by the population engine.

Each `ask` yields a batch of architectures (the strategy's `batch_size`, normally the engine's chunk
size), the engine trains and scores them in one compiled call, and `tell` receives their validation
accuracy. After every batch (`jaxnas.common.loop.run_loop`) the strategy state and the history are
checkpointed, so a killed search restarted on the same directory resumes and ends with exactly the uninterrupted result
(keys are `fold_in(seed key, batch number)`; candidate i is initialised from `fold_in(seed key, i)`).
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import jax
import numpy as np
from flax import struct

from jaxnas.common.checkpoint import fingerprint
from jaxnas.common.errors import check, check_positive
from jaxnas.common.loop import described, run_loop
from jaxnas.evaluation.population import PopulationTrainer
from jaxnas.strategies.base import Strategy, jitted

MAX_EVALUATIONS = 1_000_000  # trained candidates one search may plan (a typo must not plan an unbounded search)


@struct.dataclass
class History:
    """Every evaluation of a search, in order (numpy on the host)."""

    archs: np.ndarray  # (N, L) int32
    valid_acc: np.ndarray  # (N,)
    test_acc: np.ndarray  # (N,)
    diverged: np.ndarray  # (N,) bool

    def best(self) -> int:
        """Index of the best validation accuracy (NaN never wins; ties: earliest)."""
        return int(np.argmax(np.where(np.isnan(self.valid_acc), -np.inf, self.valid_acc)))


def _empty(n: int, length: int) -> History:
    return History(np.zeros((n, length), np.int32), np.zeros(n, np.float32), np.zeros(n, np.float32), np.zeros(n, bool))


def run_trained_search(strategy: Strategy, trainer: PopulationTrainer, evaluations: int, seed: int = 0,
                       checkpoint_dir: str | None = None, metrics_path: str | None = None, progress: bool = True,
                       stop_after_batches: int | None = None) -> tuple[History, dict[str, Any]]:
    """Runs `evaluations` trained evaluations (rounded up to whole batches); returns the history and timing.

    `stop_after_batches` ends this call early (to test resumption), as a kill would.
    """
    check_positive("evaluations", evaluations, integer=True)
    check(evaluations <= MAX_EVALUATIONS, "evaluations", f"got {evaluations}; allowed: at most {MAX_EVALUATIONS:,}")
    batch = strategy.batch_size
    check(batch == trainer.chunk_size, "batch_size",
          f"strategy batch ({batch}) must equal the engine's chunk size ({trainer.chunk_size})")
    n_batches = -(-evaluations // batch)
    key = jax.random.key(seed)
    ask, tell = jitted(strategy)
    state = strategy.init(jax.random.fold_in(key, 0))
    hist = _empty(n_batches * batch, strategy.space.num_positions)
    start = time.perf_counter()
    # everything that decides the scores: a rerun with any other strategy, training, network or data is refused,
    # naming the field (`strategy.sample_size`, `train.steps`, `execution`, `model.channels`) or `data` (the arrays' content)
    objective = trainer.objective
    settings = {"seed": seed, "evaluations": evaluations, "batch": batch, "strategy": described(strategy),
                "train": trainer.settings, "execution": trainer.execution, "model": described(trainer.model),
                "objective": described(objective) if dataclasses.is_dataclass(objective) else repr(objective),
                "data": fingerprint(trainer.data),
                "accuracy": "fraction"}  # checkpoints from before 2026-12-07 held percent: refused, not mixed

    def one_batch(done: int, st: tuple[Any, History]) -> tuple[tuple[Any, History], dict[str, Any]]:
        state, hist = st
        archs, state = ask(jax.random.fold_in(jax.random.fold_in(key, 1), done), state)
        scores = trainer.score(np.asarray(archs), seed=seed, first_id=done * batch)
        state, _ = tell(state, archs, scores.valid_acc)
        sl = slice(done * batch, (done + 1) * batch)
        hist.archs[sl], hist.valid_acc[sl], hist.test_acc[sl], hist.diverged[sl] = (
            np.asarray(archs), scores.valid_acc, scores.test_acc, scores.diverged)
        best = hist.valid_acc[:(done + 1) * batch]
        return (state, hist), {"evaluations": (done + 1) * batch,
                               "best_valid": float(np.nanmax(best)) if np.isfinite(best).any() else None,
                               "batch_valid_mean": float(np.nanmean(scores.valid_acc)),
                               "diverged": int(scores.diverged.sum()), "wall_s": time.perf_counter() - start}

    out = run_loop(one_batch, (state, hist), end=n_batches, settings=settings, checkpoint_dir=checkpoint_dir,
                   metrics_path=metrics_path, place=lambda st: (st[0], jax.tree.map(np.array, st[1])),  # writable
                   postfix=lambda r: {"best": "nan" if r["best_valid"] is None else f"{100 * r['best_valid']:.1f}%"},
                   progress=progress, desc="search", unit="batch", stop_after=stop_after_batches)
    (state, hist), done = out.state, out.position
    n = done * batch
    hist = History(hist.archs[:n], hist.valid_acc[:n], hist.test_acc[:n], hist.diverged[:n])
    return hist, {"wall_s": time.perf_counter() - start, "resumed_from_batch": out.resumed_from, "batches": done,
                  "strategy_state": state}
