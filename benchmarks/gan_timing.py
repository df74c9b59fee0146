"""Timing harness shared by the GAN training benchmarks (stylegan_train.py, cyclegan_train.py)."""

from __future__ import annotations

import time
from typing import Any


def time_training(trainer: Any, key: Any, warmup: int, steps: int, rounds: int) -> tuple[Any, float, list[float]]:
    """`warmup` steps (they compile), then `rounds` timed runs of `steps` steps through `trainer.train`.

    Returns (final state, warm-up seconds including compilation, seconds of each round).
    """
    t0 = time.perf_counter()
    state, _ = trainer.train(key, stop_at=warmup)
    compile_s = time.perf_counter() - t0
    times = []
    for r in range(rounds):
        t0 = time.perf_counter()
        state, _ = trainer.train(key, stop_at=warmup + steps * (r + 1), state=state)
        times.append(time.perf_counter() - t0)
    return state, compile_s, times
