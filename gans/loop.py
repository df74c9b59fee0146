"""The host-side training loop shared by the GAN trainers: resume, step, refuse non-finite steps, checkpoint.

A trainer supplies `step(i, state) -> (state, metrics)` (its jitted, sharded step; `metrics` holds device
scalars including a boolean `finite`) and this loop does the rest the same way for every model: restore
the latest orbax checkpoint in `workdir` (refusing one written with other settings), run to `end`, stop
with `FloatingPointError` naming the step when a step was not finite (the step itself leaves the state
unchanged in that case), keep a per-step history (with what `callback(step, state)` returns merged in, so
measurements taken during training survive a restart), and checkpoint every `checkpoint_every` steps and
at the end.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from jaxnas.common.checkpoint import Checkpointer


def train_loop(step: Callable[[int, Any], tuple[Any, dict[str, Any]]], state: Any, *, end: int, mesh: Mesh,
               workdir: str | None, meta: dict[str, str], checkpoint_every: int, model: str, hint: str,
               progress: Callable[[int, dict[str, float]], None] | None = None,
               callback: Callable[[int, Any], dict[str, Any] | None] | None = None) -> tuple[Any, list[dict]]:
    """Runs `step` from the state's (or the latest checkpoint's) step to `end`; returns (state, history).

    Args:
      step: `step(i, state)` for step index i (0-based), returning the new state and its metrics.
      state: the initial state (used when `workdir` holds no checkpoint); must have an integer `step`.
      meta: settings recorded with each checkpoint; a checkpoint with other settings is refused.
      model, hint: named in the divergence error (`"<model> training diverged at step N (...)": hint`).
    """
    history: list[dict[str, Any]] = []
    ckpt = Checkpointer(workdir) if workdir else None
    restored = ckpt.resume({"state": state}, meta, settings_key="settings_meta") if ckpt is not None else None
    if restored is not None:
        _, payload, saved = restored
        state, history = payload["state"], list(saved.get("history", []))
    state = jax.device_put(state, NamedSharding(mesh, P()))
    try:
        for i in range(int(state.step), end):
            t0 = time.perf_counter()
            state, metrics = step(i, state)
            m = {k: float(v) for k, v in metrics.items()}
            if not m.pop("finite"):
                values = ", ".join(f"{k} {v:.4g}" for k, v in m.items())
                raise FloatingPointError(f"{model} training diverged at step {i + 1} ({values}): the step was not "
                                         f"applied; {hint}")
            m.update(step=i + 1, seconds=time.perf_counter() - t0)
            if callback is not None:
                m.update(callback(i + 1, state) or {})
            history.append(m)
            if progress is not None:
                progress(i + 1, m)
            if ckpt is not None and ((i + 1) % checkpoint_every == 0 or i + 1 == end):
                ckpt.save(i + 1, {"state": state}, {"settings_meta": meta, "history": history})
    finally:
        if ckpt is not None:
            ckpt.close()
    return state, history


def all_finite(*trees: Any) -> jax.Array:
    """True when every leaf of every tree (losses, gradients) is finite: the condition for applying a step."""
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(trees)]))
