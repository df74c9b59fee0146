"""The one host-side loop of every long job: resume, settings check, step, non-finite refusal, history,
checkpoints, a progress bar and a JSON-lines metrics stream.

A job supplies `step(i, state) -> (state, metrics)`: `i` is the position (units done so far: training
steps, search chunks, evaluated batches, generations) and one call may advance it by one unit or by several.
The loop advances the position by `units` per call, or reads it from the state with `position(state)` where a
call advances a varying number (a NEAT chunk stops early once solved). `metrics` holds host or device scalars;
a boolean `finite` among them, when false, stops the job with `FloatingPointError` naming the step (the job's
step must then have left the state unchanged, as `tree_where(finite, new, old)` does).

Around the step the loop does, the same way for every job:
* resume: `Checkpointer.resume` compares `settings` (everything that decides the result, content hashes of the
  input files included; flattened to dotted keys, so the refusal names e.g. `train.lr`) with the newest
  checkpoint's before any array is read, refuses in one line naming the differing keys, falls back past a
  damaged checkpoint to the newest one that restores (saying so), and names the directory to delete when none does;
* history: one record per call (`metrics` as plain numbers, the position under `unit`, `seconds`, and what
  `callback(position, state)` returns), kept in every checkpoint's metadata so a restart restores it;
* `metrics_path` (`metrics.jsonl`): one JSON object per record (with JAXNAS_TENSORBOARD=1 also TensorBoard scalars in
  `tensorboard/` beside it), rewritten from the restored history when the loop
  starts, so after a resume it holds no duplicate or stale lines past the resumed position;
* checkpoints every `checkpoint_every` units, at `end`, and when `done(state)` says the job has finished early;
* a tqdm bar over the units (rate and time left) unless `progress` is false; it says "compiling ..." during a
  run's first call and prints how long each compiling call took.

`steady_rate(history)` turns the records into a throughput that leaves out the steps that compiled (a job marks
them `compiles`), in every run the history spans, so a resumed run's compilation never counts as steady state.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import time
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp

from jaxnas.common.checkpoint import Checkpointer
from jaxnas.common import tensorboard
from jaxnas.common.metrics import to_jsonable

Step = Callable[[int, Any], tuple[Any, Mapping[str, Any]]]


@dataclasses.dataclass
class LoopResult:
    """What `run_loop` returns: the final state, every record (restored ones first), where it resumed
    (None: a fresh start), the final position, and how many calls this run made."""

    state: Any
    history: list[dict[str, Any]]
    resumed_from: int | None
    position: int
    calls: int

    @property
    def new_history(self) -> list[dict[str, Any]]:
        """The records of the calls this run made (not the restored ones)."""
        return self.history[len(self.history) - self.calls:] if self.calls else []


def _canonical(value: Any) -> Any:
    """A JSON value that compares equal after a JSON round trip (tuples as lists); other objects by their repr."""
    value = to_jsonable(value)
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return repr(value)
    return value


def flat_settings(settings: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Settings as `{dotted key: JSON value}`: nested dicts and dataclasses are opened up, so a refusal names the
    one setting that differs (`train.lr`), and values compare the same after a JSON round trip. A dataclass field
    declared `compare=False` (a space's printer or network factory) is not part of its identity and is left out:
    its repr (a function's address) would differ in every process."""
    out: dict[str, Any] = {}
    for key, value in settings.items():
        name = f"{prefix}{key}"
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            value = {f.name: getattr(value, f.name) for f in dataclasses.fields(value) if f.compare}
        if isinstance(value, Mapping) and value:
            out.update(flat_settings(value, name + "."))
        else:
            out[name] = _canonical(value)
    return out


def described(obj: Any) -> dict[str, Any]:
    """A dataclass (a strategy, a network) as settings: its class under `class` and its compared fields, which
    `flat_settings` opens up, so a refusal names the one field that differs (`strategy.sample_size`) and two
    classes with equal fields still differ."""
    fields = {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj) if f.compare}
    return {"class": type(obj).__name__, **fields}


def _record(metrics: Mapping[str, Any]) -> dict[str, Any]:
    """Device or numpy scalars as Python numbers (one transfer each); other values as JSON values."""
    out = {}
    for k, v in metrics.items():
        out[k] = v.item() if getattr(v, "shape", None) == () else to_jsonable(v)
    return out


def _bar(enabled: bool, total: int, initial: int, desc: str, unit: str):
    import sys

    from tqdm.auto import tqdm

    # In a terminal or a notebook the bar redraws in place; in a log file (a scripted run, CI) every redraw is
    # appended, so it redraws at most every 30 s there.
    interactive = sys.stderr.isatty() or "ipykernel" in sys.modules
    return tqdm(total=total, initial=initial, desc=desc, unit=unit, disable=not enabled, leave=False,
                dynamic_ncols=True, mininterval=0.1 if interactive else 30.0)


class _Metrics:
    """`metrics.jsonl`: rewritten from the restored history, then one line appended (and flushed) per record; with
    `JAXNAS_TENSORBOARD=1` the new records' numbers also go to TensorBoard (`tensorboard/` beside it)."""

    def __init__(self, path: str | None, history: list[dict[str, Any]], unit: str = "step"):
        self._file, self._tb, self._unit = None, None, unit
        if path:
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
            self._file = open(path, "w", encoding="utf-8")
            for record in history:
                self._line(record)
            if tensorboard.requested():  # a resumed run adds a new event file; the earlier one keeps its steps
                self._tb = tensorboard.ScalarWriter(os.path.join(os.path.dirname(os.path.abspath(path)), "tensorboard"))

    def _line(self, record: Mapping[str, Any]) -> None:
        self._file.write(json.dumps(to_jsonable(record)) + "\n")
        self._file.flush()

    def write(self, record: Mapping[str, Any]) -> None:
        if self._file is not None:
            self._line(record)
        if self._tb is not None:
            self._tb.write_scalars(int(record.get(self._unit, 0)), {k: v for k, v in record.items() if k != self._unit})

    def close(self) -> None:
        for f in (self._file, self._tb):
            if f is not None:
                f.close()


def _drop_newer(ckpt: Checkpointer, step: int) -> Checkpointer:
    """After a fallback past unreadable checkpoints, removes them (they would block saving those steps again)."""
    newer = [s for s in ckpt.steps() if s > step]
    if not newer:
        return ckpt
    ckpt.close()
    for s in newer:
        shutil.rmtree(os.path.join(ckpt.directory, str(s)), ignore_errors=True)
    return Checkpointer(ckpt.directory)


def run_loop(step: Step, state: Any, *, end: int, settings: Mapping[str, Any], checkpoint_dir: str | None = None,
             metrics_path: str | None = None, checkpoint_every: int = 1, start: int = 0, units: int = 1,
             position: Callable[[Any], int] | None = None, done: Callable[[Any], bool] | None = None,
             template: Any | Callable[[int], Any] = None, place: Callable[[Any], Any] | None = None,
             callback: Callable[[int, Any], Mapping[str, Any] | None] | None = None,
             postfix: Callable[[dict[str, Any]], Mapping[str, Any]] | None = None, progress: bool = False,
             desc: str = "train", unit: str = "step", label: str = "training", hint: str = "",
             stop_after: int | None = None, announce: Callable[[str], None] = print) -> LoopResult:
    """Runs `step` from the restored (or `start`) position until `end`, `done(state)` or `stop_after` calls.

    Args:
      step: `step(i, state) -> (state, metrics)` for position i (units done before the call).
      state: the initial state (used when `checkpoint_dir` holds no checkpoint).
      end: the position to reach.
      settings: everything that decides the result; a checkpoint made with other settings is refused.
      checkpoint_dir: where checkpoints go (None: none are kept); metrics_path: the JSON-lines stream (None: none).
      checkpoint_every: units between checkpoints (one is also written at `end` and when `done`).
      start: the position of `state` when nothing is restored; units: units one call advances (ignored with
        `position`, which reads the position from the state after each call).
      done: whether the job has finished before `end` (checked before each call).
      template: the checkpointed state's shape (default: `state`), or a function of the checkpoint's position.
      place: applied to the state before the first call (e.g. `jax.device_put` onto a mesh); a restored state
        arrives on one device.
      callback: `callback(position, state)` after each call, before its checkpoint; its dict joins the record.
      postfix: what the bar shows beside the rate (default: nothing).
      label, hint: the divergence error reads `"<label> diverged at <unit> N (<metrics>): ...; <hint>"`.
      stop_after: end this run after that many calls (as a kill would; tests of resumption).
    """
    flat = flat_settings(settings)
    ckpt = Checkpointer(checkpoint_dir) if checkpoint_dir else None
    history: list[dict[str, Any]] = []
    resumed = None
    try:
        if ckpt is not None:
            shape = state if template is None else template
            target = (lambda s: {"state": shape(s)}) if callable(shape) else {"state": shape}
            restored = ckpt.resume(target, flat, settings_key="settings", announce=announce)
            if restored is not None:
                resumed, payload, meta = restored
                state, history = payload["state"], list(meta.get("history", []))
                ckpt = _drop_newer(ckpt, resumed)
        pos = resumed if resumed is not None else start
        state = place(state) if place is not None else state
        stream = _Metrics(metrics_path, history, unit)
        bar = _bar(progress, end, min(pos, end), desc, unit)
        calls = 0
        try:
            while pos < end and not (done is not None and done(state)):
                if stop_after is not None and calls >= stop_after:
                    break
                t0 = time.perf_counter()
                if calls == 0 and progress:  # the first call of a run compiles (a resumed run's too)
                    bar.set_postfix_str("compiling ...", refresh=True)
                new_state, metrics = step(pos, state)
                m = _record(metrics)
                if not m.pop("finite", True):
                    values = ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in m.items())
                    raise FloatingPointError(f"{label} diverged at {unit} {pos + 1} ({values}): the step was not "
                                             f"applied" + (f"; {hint}" if hint else ""))
                state = new_state
                new_pos = int(position(state)) if position is not None else pos + units
                m.setdefault("seconds", time.perf_counter() - t0)
                record = {unit: new_pos, **m}
                if callback is not None:
                    record.update(callback(new_pos, state) or {})
                history.append(record)
                stream.write(record)
                if progress and (calls == 0 or record.get("compiles")):
                    bar.write(f"{desc}: {unit} {new_pos} took {record['seconds']:.1f} s (compiling included)")
                    if calls == 0:
                        bar.set_postfix_str("", refresh=False)
                calls += 1
                bar.update(min(new_pos, end) - min(pos, end))
                if postfix is not None:
                    bar.set_postfix(postfix(record), refresh=False)
                finished = new_pos >= end or (done is not None and done(state))
                if ckpt is not None and (new_pos // checkpoint_every > pos // checkpoint_every or finished):
                    ckpt.save(new_pos, {"state": state}, {"settings": flat, "history": history})
                pos = new_pos
        finally:
            bar.close()
            stream.close()
    finally:
        if ckpt is not None:
            ckpt.close()
    return LoopResult(state, history, resumed, pos, calls)


def all_finite(*trees: Any) -> jax.Array:
    """True when every leaf of every tree (losses, gradients) is finite: the condition for applying a step."""
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(trees)]))


def steady_rate(history: list[dict[str, Any]]) -> tuple[float, dict[str, Any]]:
    """Steps per second over the steps that did not compile (`compiles` false in their record), in every run
    the history spans (a resumed run compiles again), and which steps those were: `{"timed": count,
    "excluded": [steps that compiled]}`. NaN when every step compiled."""
    timed = [h["seconds"] for h in history if not h.get("compiles", False)]
    excluded = [h["step"] for h in history if h.get("compiles", False)]
    rate = len(timed) / sum(timed) if timed and sum(timed) > 0 else float("nan")
    return rate, {"timed": len(timed), "excluded": excluded}
