"""JSON-lines metrics: one JSON object per line, appended and flushed so a killed job loses nothing."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np


def to_jsonable(value: Any) -> Any:
    """Converts numpy/JAX scalars and arrays (and nested containers) into plain JSON values."""
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if hasattr(value, "__array__") and not isinstance(value, (str, bytes)):
        arr = np.asarray(value)
        return to_jsonable(arr.item()) if arr.ndim == 0 else to_jsonable(arr.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, (np.integer, np.floating, np.bool_)):
        return value.item()
    return value


class JsonlWriter:
    """Appends records to a JSON-lines file; `with JsonlWriter(path) as w: w.write({...})`."""

    def __init__(self, path: str | os.PathLike[str]):
        self.path = os.fspath(path)
        os.makedirs(os.path.dirname(self.path) or ".", exist_ok=True)
        self._file = open(self.path, "a", encoding="utf-8")

    def write(self, record: Mapping[str, Any]) -> None:
        self._file.write(json.dumps(to_jsonable(record)) + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> "JsonlWriter":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_jsonl(path: str | os.PathLike[str]) -> Iterator[dict[str, Any]]:
    """Yields the records of a JSON-lines file."""
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                yield json.loads(line)


def device_summary() -> str:
    """The accelerator a result was measured on, e.g. `cpu:cpu x8` or `gpu:NVIDIA H100 x1`."""
    import jax

    d = jax.devices()[0]
    return f"{d.platform}:{d.device_kind} x{jax.device_count()}"


def write_json(path: str | os.PathLike[str], data: Mapping[str, Any]) -> None:
    """Writes `data` as indented JSON, atomically (a crash never leaves half a file)."""
    path = os.fspath(path)
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(to_jsonable(data), f, indent=2)
        f.write("\n")
    os.replace(tmp, path)


def write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Writes `data` atomically (a crash never leaves half a file under `path`)."""
    path = os.fspath(path)
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)
