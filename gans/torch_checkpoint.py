"""PyTorch checkpoints read without PyTorch: a state_dict file (the zip format of torch >= 1.6, or the older
"legacy" format of a sequence of pickles followed by raw storages) into numpy arrays.

A restricted unpickler resolves only OrderedDict, the tensor-rebuild helpers and the storage types; anything else
is refused, so an untrusted file cannot run code. Used by `gans.inception.load_inception` for pytorch-fid's
weights; tested against small files written by torch (`tests/test_inception.py`).
"""

from __future__ import annotations

import collections
import dataclasses
import pickle
import struct
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from jaxnas.common.errors import ConfigError

_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_LEGACY_PROTOCOL = 1001
_STORAGE_DTYPES = {
    "FloatStorage": np.dtype("<f4"), "DoubleStorage": np.dtype("<f8"), "HalfStorage": np.dtype("<f2"),
    "BFloat16Storage": np.dtype("<u2"), "LongStorage": np.dtype("<i8"), "IntStorage": np.dtype("<i4"),
    "ShortStorage": np.dtype("<i2"), "CharStorage": np.dtype("i1"), "ByteStorage": np.dtype("u1"),
    "BoolStorage": np.dtype("?"), "UntypedStorage": np.dtype("u1"),
}


@dataclasses.dataclass
class _StorageType:
    name: str

    @property
    def dtype(self) -> np.dtype:
        return _STORAGE_DTYPES[self.name]


@dataclasses.dataclass
class _Storage:
    """A storage whose bytes may arrive after unpickling (legacy format); views point at a root."""

    type: _StorageType
    numel: int
    data: np.ndarray | None = None
    root: _Storage | None = None
    offset: int = 0  # in elements, for views

    def array(self) -> np.ndarray:
        if self.root is not None:
            return self.root.array()[self.offset : self.offset + self.numel]
        if self.data is None:
            raise ValueError("storage data missing from the checkpoint")
        return self.data


@dataclasses.dataclass
class _PendingTensor:
    storage: _Storage
    offset: int
    size: tuple[int, ...]
    stride: tuple[int, ...]

    def materialize(self) -> np.ndarray:
        flat = self.storage.array()
        dtype = self.storage.type.dtype
        size, stride = tuple(int(d) for d in self.size), tuple(int(s) for s in self.stride)
        if len(size) != len(stride) or any(d < 0 for d in size) or any(s < 0 for s in stride):
            raise ValueError(f"bad tensor geometry size={size} stride={stride}")
        if 0 in size:
            arr = np.zeros(size, dtype)
        else:
            last = self.offset + sum((d - 1) * s for d, s in zip(size, stride))
            if self.offset < 0 or last >= len(flat):
                raise ValueError("tensor reaches past the end of its storage")
            arr = np.lib.stride_tricks.as_strided(flat[self.offset :], size, [s * dtype.itemsize for s in stride])
            arr = np.array(arr)  # own, contiguous copy
        if self.storage.type.name == "BFloat16Storage":
            arr = (arr.astype(np.uint32) << 16).view(np.float32)
        return arr.astype(arr.dtype.newbyteorder("="), copy=False)


def _rebuild_tensor(storage, storage_offset, size, stride, *_ignored):
    return _PendingTensor(storage, int(storage_offset), tuple(size), tuple(stride))


def _rebuild_parameter(data, *_ignored):
    return data


class _CheckpointUnpickler(pickle.Unpickler):
    """Resolves only what a plain state_dict needs; every other global is refused."""

    _ALLOWED = {
        ("collections", "OrderedDict"): collections.OrderedDict,
        ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
        ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
        ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    }

    def __init__(self, file, persistent_load=None):
        super().__init__(file)
        self._persistent = persistent_load

    def find_class(self, module, name):
        if (module, name) in self._ALLOWED:
            return self._ALLOWED[(module, name)]
        if module in ("torch", "torch.storage") and name in _STORAGE_DTYPES:
            return _StorageType(name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}: not part of a plain tensor state_dict")

    def persistent_load(self, pid):
        if self._persistent is None:
            raise pickle.UnpicklingError("unexpected persistent id")
        return self._persistent(pid)


def _as_str(x) -> str:
    return x.decode("ascii") if isinstance(x, bytes) else str(x)


def _read_zip_checkpoint(path: Path) -> Any:
    with zipfile.ZipFile(path) as zf:
        names = zf.namelist()
        pkl = [n for n in names if n == "data.pkl" or n.endswith("/data.pkl")]
        if len(pkl) != 1:
            raise ValueError("zip archive holds no single data.pkl")
        prefix = pkl[0][: -len("data.pkl")]
        byteorder = f"{prefix}byteorder"
        if byteorder in names and zf.read(byteorder).strip() != b"little":
            raise ValueError("big-endian checkpoints are not supported")
        storages: dict[str, _Storage] = {}

        def persistent_load(pid):
            if not isinstance(pid, tuple) or _as_str(pid[0]) != "storage" or len(pid) != 5:
                raise pickle.UnpicklingError(f"unsupported persistent id {pid!r}")
            _, stype, key, _location, numel = pid
            key = _as_str(key)
            if not isinstance(stype, _StorageType):
                raise pickle.UnpicklingError(f"unsupported storage type {stype!r}")
            if key not in storages:
                raw = zf.read(f"{prefix}data/{key}")
                dtype = stype.dtype
                count = len(raw) // dtype.itemsize
                storages[key] = _Storage(stype, count, np.frombuffer(raw, dtype, count))
            return storages[key]

        with zf.open(pkl[0]) as f:
            result = _CheckpointUnpickler(f, persistent_load).load()
    return result


def _read_legacy_checkpoint(path: Path) -> Any:
    roots: dict[str, _Storage] = {}
    views: dict[str, _Storage] = {}

    def persistent_load(pid):
        if not isinstance(pid, tuple) or _as_str(pid[0]) != "storage" or len(pid) != 6:
            raise pickle.UnpicklingError(f"unsupported persistent id {pid!r}")
        _, stype, root_key, _location, numel, view = pid
        if not isinstance(stype, _StorageType):
            raise pickle.UnpicklingError(f"unsupported storage type {stype!r}")
        root_key = _as_str(root_key)
        root = roots.setdefault(root_key, _Storage(stype, int(numel)))
        if view is None:
            return root
        view_key, offset, view_size = view
        return views.setdefault(_as_str(view_key), _Storage(stype, int(view_size), root=root, offset=int(offset)))

    with open(path, "rb") as f:
        if _CheckpointUnpickler(f).load() != _LEGACY_MAGIC:
            raise ValueError("not a PyTorch checkpoint (bad magic number)")
        if _CheckpointUnpickler(f).load() != _LEGACY_PROTOCOL:
            raise ValueError("unsupported legacy checkpoint protocol version")
        sys_info = _CheckpointUnpickler(f).load()
        if isinstance(sys_info, dict) and not sys_info.get("little_endian", True):
            raise ValueError("big-endian checkpoints are not supported")
        result = _CheckpointUnpickler(f, persistent_load).load()
        keys = _CheckpointUnpickler(f).load()
        for key in keys:
            storage = roots[_as_str(key)]
            header = f.read(8)
            if len(header) != 8:
                raise ValueError("checkpoint truncated")
            (count,) = struct.unpack("<q", header)
            dtype = storage.type.dtype
            raw = f.read(count * dtype.itemsize)
            if count != storage.numel or len(raw) != count * dtype.itemsize:
                raise ValueError(f"storage {key}: size mismatch or truncated file")
            storage.data = np.frombuffer(raw, dtype, count)
    return result


def read_torch_state_dict(path: str | Path) -> dict[str, np.ndarray]:
    """Reads a PyTorch state_dict file (zip or legacy format) into numpy arrays, without torch.

    Only plain tensor state_dicts are accepted (a mapping of names to tensors); a restricted unpickler
    refuses any other Python object, so untrusted files cannot run code.

    Raises:
      ConfigError('path', ...) if the file cannot be read as such a state_dict.
    """
    path = Path(path)
    try:
        with open(path, "rb") as f:
            head = f.read(4)
        result = _read_zip_checkpoint(path) if head == b"PK\x03\x04" else _read_legacy_checkpoint(path)
        if not isinstance(result, Mapping):
            raise ValueError(f"holds a {type(result).__name__}, not a state_dict mapping")
        out = {}
        for key, value in result.items():
            if not isinstance(value, _PendingTensor):
                raise ValueError(f"entry {key!r} is a {type(value).__name__}, not a tensor")
            out[_as_str(key)] = value.materialize()
        return out
    except (OSError, ValueError, KeyError, EOFError, pickle.UnpicklingError, struct.error, zipfile.BadZipFile) as e:
        raise ConfigError("path", f"{path}: cannot read as a PyTorch state_dict ({e})") from None
