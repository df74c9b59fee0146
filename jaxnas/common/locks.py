"""Inter-process file locks: one process prepares a shared cache (a TFDS builder, a fetched corpus), the others wait."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator


@contextlib.contextmanager
def file_lock(path: str) -> Iterator[None]:
    """An exclusive advisory lock on `path` (POSIX `flock`); a no-op where `fcntl` is missing."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
