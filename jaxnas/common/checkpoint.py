"""Orbax checkpoint helpers: save a pytree plus JSON metadata each step; restore the latest.

Restores always go through an abstract target built from a template state, so optax named tuples and
flax dataclasses come back with their types (without one, orbax returns plain dicts and lists).
"""

from __future__ import annotations

import os
from typing import Any

import jax
import orbax.checkpoint as ocp

from jaxnas.common.errors import ConfigError


def check_same_settings(meta: dict[str, Any], settings: dict[str, Any]) -> None:
    """Refuses to resume from a checkpoint written with other `settings` (stored as its metadata)."""
    diff = {k: (meta.get(k), v) for k, v in settings.items() if meta.get(k) != v}
    if diff:
        raise ConfigError("workdir", f"holds a checkpoint of another search (saved, requested: {diff}); "
                                     "use a fresh --workdir or the same settings")


class Checkpointer:
    """Thin wrapper over `ocp.CheckpointManager` with one pytree item (`state`) and one JSON item (`meta`).

    Saves are synchronous: a job killed right after `save` returns can always resume from that step.
    """

    def __init__(self, directory: str | os.PathLike[str], max_to_keep: int | None = 2):
        self.directory = os.path.abspath(os.fspath(directory))
        options = ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, enable_async_checkpointing=False, create=True)
        self._manager = ocp.CheckpointManager(self.directory, options=options, item_names=("state", "meta"))

    def latest_step(self) -> int | None:
        return self._manager.latest_step()

    def save(self, step: int, state: Any, meta: dict[str, Any] | None = None) -> None:
        """Saves `state` (any pytree of arrays) and `meta` (JSON-able dict) as checkpoint `step`."""
        args = ocp.args.Composite(state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta or {}))
        self._manager.save(step, args=args, force=True)
        self._manager.wait_until_finished()

    def restore(self, template: Any, step: int | None = None) -> tuple[int, Any, dict[str, Any]] | None:
        """Restores checkpoint `step` (default: latest) shaped like `template`; None if there is none."""
        step = self.latest_step() if step is None else step
        if step is None:
            return None
        abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, template)
        args = ocp.args.Composite(state=ocp.args.StandardRestore(abstract), meta=ocp.args.JsonRestore())
        restored = self._manager.restore(step, args=args)
        return step, restored["state"], dict(restored["meta"] or {})

    def close(self) -> None:
        self._manager.close()

    def __enter__(self) -> "Checkpointer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
