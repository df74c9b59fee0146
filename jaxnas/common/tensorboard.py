"""TensorBoard scalars without TensorFlow or torch: event files written directly.

An event file is a sequence of TFRecords (length, masked CRC-32C of the length, data, masked CRC-32C of the
data), each holding one `Event` protocol buffer (tensorflow/core/util/event.proto): the first names the file
version, the others carry a step, a wall time and a `Summary` of (tag, simple_value) pairs. Both encodings are
small enough to write by hand, so `tensorboard --logdir DIR` reads what `ScalarWriter` writes without this
project depending on either framework.

    from jaxnas.common.tensorboard import ScalarWriter
    with ScalarWriter("runs/x/tensorboard") as tb:
        tb.write_scalars(step, {"loss": 0.3, "valid_acc": 0.9})

The training loop (`jaxnas.common.loop`) streams every numeric metric of its JSON lines here as well when
`JAXNAS_TENSORBOARD=1` (into `tensorboard/` beside `metrics.jsonl`).
"""

from __future__ import annotations

import os
import socket
import struct
import time
from collections.abc import Mapping
from typing import Any

ENV = "JAXNAS_TENSORBOARD"


def _crc32c_table() -> list[int]:
    poly, table = 0x82F63B78, []  # Castagnoli, reflected
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ poly if c & 1 else c >> 1
        table.append(c)
    return table


_TABLE = _crc32c_table()


def crc32c(data: bytes) -> int:
    crc = 0xFFFFFFFF
    for b in data:
        crc = _TABLE[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def masked_crc32c(data: bytes) -> int:
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def record(data: bytes) -> bytes:
    """One TFRecord around `data`."""
    length = struct.pack("<Q", len(data))
    return length + struct.pack("<I", masked_crc32c(length)) + data + struct.pack("<I", masked_crc32c(data))


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _field(number: int, wire: int, payload: bytes) -> bytes:
    key = _varint((number << 3) | wire)
    return key + (_varint(len(payload)) + payload if wire == 2 else payload)


def event(wall_time: float, step: int = 0, scalars: Mapping[str, float] | None = None,
          file_version: str | None = None) -> bytes:
    """An `Event` message: wall_time (1, double), step (2, int64), file_version (3) or summary (5) whose values
    (1) are (tag (1), simple_value (2, float))."""
    out = _field(1, 1, struct.pack("<d", wall_time)) + _field(2, 0, _varint(step))
    if file_version is not None:
        out += _field(3, 2, file_version.encode())
    if scalars:
        values = b"".join(_field(1, 2, _field(1, 2, tag.encode()) + _field(2, 5, struct.pack("<f", float(v))))
                          for tag, v in scalars.items())
        out += _field(5, 2, values)
    return out


def requested() -> bool:
    return os.environ.get(ENV, "").strip().lower() in ("1", "true")


class ScalarWriter:
    """Appends scalar summaries to one new event file in `logdir` (flushed after every call)."""

    def __init__(self, logdir: str):
        os.makedirs(logdir, exist_ok=True)
        now = time.time()
        self.path = os.path.join(logdir, f"events.out.tfevents.{int(now)}.{socket.gethostname()}.{os.getpid()}")
        self._f = open(self.path, "wb")
        self._f.write(record(event(now, file_version="brain.Event:2")))
        self._f.flush()

    def write_scalars(self, step: int, scalars: Mapping[str, Any]) -> None:
        """The numeric entries of `scalars` (bools and non-numbers are left out) at `step`."""
        numeric = {k: float(v) for k, v in scalars.items()
                   if isinstance(v, (int, float)) and not isinstance(v, bool)}
        if numeric:
            self._f.write(record(event(time.time(), int(step), numeric)))
            self._f.flush()

    def close(self) -> None:
        self._f.close()

    def __enter__(self) -> "ScalarWriter":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
