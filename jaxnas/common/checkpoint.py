"""Orbax checkpoint helpers: save a pytree plus JSON metadata each step; restore the latest.

Restores always go through an abstract target built from a template state, so optax named tuples and
flax dataclasses come back with their types (without one, orbax returns plain dicts and lists).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp

from jaxnas.common.errors import ConfigError


def fingerprint(*parts: Any) -> str:
    """A short content hash of arrays and objects (objects by their repr), for the settings a checkpoint records:
    a rerun on other data or another table is then refused, not silently resumed."""
    h = hashlib.sha256()
    for part in jax.tree.leaves(parts):
        if hasattr(part, "shape") and hasattr(part, "dtype"):
            a = np.ascontiguousarray(np.asarray(part))
            h.update(f"{a.dtype}{a.shape}".encode())
            # object arrays (texts) by their values: their bytes are pointers
            h.update("\x1f".join(map(str, a.ravel())).encode() if a.dtype == object else a.tobytes())
        else:
            h.update(repr(part).encode())
    return h.hexdigest()[:16]


def file_fingerprint(path: str | os.PathLike[str]) -> str:
    """A short content hash of a file's bytes: recorded under the setting that names an input file, so the file
    edited in place is refused by name even where a loader caches what it parsed from that path."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:16]


def check_same_settings(meta: dict[str, Any], settings: dict[str, Any]) -> None:
    """Refuses to resume from a checkpoint written with other `settings` (stored as its metadata)."""
    diff = [k for k, v in settings.items() if meta.get(k) != v]
    if diff:
        details = ", ".join(f"{k} (saved {saved}, now {now})" for k in diff for saved, now in [_where_they_differ(
            meta.get(k), settings[k])])
        raise ConfigError("workdir", f"holds a checkpoint of another search, made with other settings: {details}; "
                                     "use a fresh --workdir or the same settings")


def _failure(step: int, err: Exception) -> str:
    """One line for a checkpoint that could not be read: the step, the error's type and its first line."""
    first = str(err).splitlines()[0][:200] if str(err) else ""
    return f"step {step}: {type(err).__name__}: {first}"


def _where_they_differ(saved: Any, now: Any, width: int = 60) -> tuple[str, str]:
    """Two values on one line each; long ones (a strategy's or a model's repr) cut around their first difference."""
    a, b = (" ".join(repr(v).split()) for v in (saved, now))
    if max(len(a), len(b)) <= width:
        return a, b
    first = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
    start = max(0, first - width // 3)
    cut = lambda t: ("..." if start else "") + t[start:start + width] + ("..." if start + width < len(t) else "")  # noqa: E731
    return cut(a), cut(b)


class Checkpointer:
    """Thin wrapper over `ocp.CheckpointManager` with one pytree item (`state`) and one JSON item (`meta`).

    Saves are synchronous: a job killed right after `save` returns can always resume from that step.
    """

    def __init__(self, directory: str | os.PathLike[str], max_to_keep: int | None = 2):
        self.directory = os.path.abspath(os.fspath(directory))
        # Several processes (jaxnas.common.distributed) each hold the whole state and checkpoint it on their own:
        # process 0 into the work directory, the others into their private folders.
        extra: dict[str, Any] = {"create": True}
        if jax.process_count() > 1:
            me = jax.process_index()
            os.makedirs(self.directory, exist_ok=True)  # orbax does not create it for a subset of processes
            only_me = ocp.options.MultiprocessingOptions(primary_host=me, active_processes={me})
            extra = {"create": False, "multiprocessing_options": only_me}
        options = ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, enable_async_checkpointing=False, **extra)
        self._manager = ocp.CheckpointManager(self.directory, options=options, item_names=("state", "meta"))

    def latest_step(self) -> int | None:
        return self._manager.latest_step()

    def save(self, step: int, state: Any, meta: dict[str, Any] | None = None) -> None:
        """Saves `state` (any pytree of arrays) and `meta` (JSON-able dict) as checkpoint `step`."""
        if jax.process_count() > 1:  # orbax refuses process-local device arrays there: numpy ones are the same data
            state = jax.device_get(state)
        args = ocp.args.Composite(state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta or {}))
        self._manager.save(step, args=args, force=True)
        self._manager.wait_until_finished()

    def restore(self, template: Any, step: int | None = None) -> tuple[int, Any, dict[str, Any]] | None:
        """Restores checkpoint `step` (default: latest) shaped like `template`; None if there is none."""
        step = self.latest_step() if step is None else step
        if step is None:
            return None
        if jax.process_count() > 1:  # restored as numpy (see save); the caller places it on its devices
            abstract = jax.tree.map(lambda x: np.zeros(np.shape(x), x.dtype), template)
        else:
            abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, template)
        args = ocp.args.Composite(state=ocp.args.StandardRestore(abstract), meta=ocp.args.JsonRestore())
        restored = self._manager.restore(step, args=args)
        state = restored["state"]
        if jax.process_count() == 1:
            state = jax.tree.map(_placed_like, template, state)
        return step, state, dict(restored["meta"] or {})

    def steps(self) -> list[int]:
        """The saved steps, newest first."""
        return sorted(self._manager.all_steps(), reverse=True)

    def read_meta(self, step: int) -> dict[str, Any]:
        """The JSON metadata of checkpoint `step`, without touching its arrays."""
        restored = self._manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))
        return dict(restored["meta"] or {})

    def resume(self, template: Any | Callable[[int], Any], settings: dict[str, Any] | None = None, *,
               settings_key: str | None = None, announce: Callable[[str], None] = print
               ) -> tuple[int, Any, dict[str, Any]] | None:
        """The newest checkpoint that restores, as `(step, state, meta)`; None when there is none.

        `settings` are compared with the newest checkpoint's metadata (`meta[settings_key]`, or `meta` itself)
        before any array is read: a difference raises `ConfigError("workdir")` naming the differing keys. A
        checkpoint that cannot be read (a crash mid-write, a truncated file) is skipped for the one before it,
        and `announce` says so; when none can be read, `ConfigError("workdir")` names the directory to delete.
        `template` is the state's shape, or a function of the step that returns it.
        """
        steps = self.steps()
        if not steps:
            return None
        checked, failures = False, []
        for step in steps:
            try:
                meta = self.read_meta(step)
            except Exception as err:  # noqa: BLE001 (orbax raises many kinds for a damaged checkpoint)
                failures.append(_failure(step, err))
                continue
            if settings is not None and not checked:  # the newest readable checkpoint decides
                check_same_settings(meta.get(settings_key, {}) if settings_key else meta, settings)
                checked = True
            try:
                restored = self.restore(template(step) if callable(template) else template, step)
            except Exception as err:  # noqa: BLE001
                failures.append(_failure(step, err))
                continue
            if failures:
                announce(f"warning: could not read the newest checkpoint(s) in {self.directory} ({'; '.join(failures)}); "
                         f"resuming from step {step}")
            return restored
        raise ConfigError("workdir", f"no checkpoint in {self.directory} can be read ({'; '.join(failures)}); delete "
                                     "that directory to start over")

    def close(self) -> None:
        self._manager.close()

    def __enter__(self) -> "Checkpointer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _placed_like(template: Any, restored: Any) -> Any:
    """A restored array placed as its template was: orbax commits every array to the template's device, and a
    committed argument is another program to `jit` than the uncommitted one a fresh run passes (measured: a
    resumed Q-learning search compiled its `ask` a second time, 4-7 s). Uncommitted templates give uncommitted
    arrays (same values); committed and sharded ones (a mesh) keep orbax's placement."""
    if not (isinstance(template, jax.Array) and not template.committed and isinstance(restored, jax.Array)):
        return restored
    if jax.dtypes.issubdtype(restored.dtype, jax.dtypes.prng_key):
        data = jax.numpy.asarray(np.asarray(jax.random.key_data(restored)))
        return jax.random.wrap_key_data(data, impl=jax.random.key_impl(restored))
    return jax.numpy.asarray(np.asarray(restored))
