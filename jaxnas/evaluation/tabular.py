"""The NAS-Bench-201 table as a jit-able objective (Dong & Yang, ICLR 2020).

Data: one row per cell, CIFAR-10-valid, 200-epoch schedule, seed means (see the data README next to the
CSV). The search's fitness is `valid_acc`; `test_acc` is only reported; an evaluation costs
`train_time_s * 12 / 200` simulated seconds, the paper's convention of charging a 12-epoch training.
Deviation from the paper's code: it used the 12-epoch accuracy of one random seed as fitness, which this
table does not hold; here the fitness is the 200-epoch seed-mean validation accuracy (less noisy), so
absolute numbers are comparable in ranking, not to the decimal.
"""

from __future__ import annotations

import csv
import functools
import os

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from jaxnas.common.errors import ConfigError
from jaxnas.common.paths import resolve_data_file
from jaxnas.spaces import nb201

DEFAULT_RELATIVE_PATHS = ("../shared/data/nasbench201/nb201_cifar10_valid.csv", "shared/data/nasbench201/nb201_cifar10_valid.csv")
ENV_VAR = "JAXNAS_NB201_CSV"
EPOCHS_CHARGED = 12
EPOCHS_TABLE = 200
_COLUMNS = ("index", "arch_str", "ops", "valid_acc", "test_acc", "train_time_s")


@struct.dataclass
class Evaluation:
    """What one table query returns; every field has the architectures' batch shape."""

    valid: jax.Array  # validation accuracy, percent: the search's fitness
    test: jax.Array  # test accuracy, percent: reported only, never used to choose
    cost: jax.Array  # simulated seconds charged for the evaluation
    index: jax.Array  # benchmark index


@struct.dataclass
class NB201Table:
    """All 15,625 cells, ordered by the space's base-5 code (`nb201.SPACE.encode`), as device arrays."""

    valid: jax.Array  # (15625,) float32
    test: jax.Array  # (15625,) float32
    cost: jax.Array  # (15625,) float32, seconds
    index: jax.Array  # (15625,) int32: benchmark index of each code
    code: jax.Array  # (15625,) int32: code of each benchmark index (inverse permutation)

    def query(self, arch: jax.Array) -> Evaluation:
        """Looks up architectures of shape (..., 6); jit- and vmap-able."""
        code = nb201.SPACE.encode(arch)
        return Evaluation(valid=self.valid[code], test=self.test[code], cost=self.cost[code], index=self.index[code])

    def index_of(self, arch: jax.Array) -> jax.Array:
        """Benchmark index of architectures of shape (..., 6)."""
        return self.index[nb201.SPACE.encode(arch)]

    def arch_of(self, index: jax.Array) -> jax.Array:
        """Architecture (..., 6) of benchmark indices."""
        return nb201.SPACE.decode(self.code[jnp.asarray(index)])

    @property
    def min_cost(self) -> float:
        return float(jnp.min(self.cost))


def resolve_table_path(path: str | None = None) -> str:
    """The CSV to load: `path`, else `$JAXNAS_NB201_CSV`, else `../shared/data/nasbench201/...`."""
    return resolve_data_file(
        path or None, ENV_VAR, DEFAULT_RELATIVE_PATHS, field="table_path",
        hint="Pass the NAS-Bench-201 CSV (columns: " + ", ".join(_COLUMNS) + ") with --config.table_path=PATH "
        f"or set ${ENV_VAR}.",
    )


@functools.lru_cache(maxsize=4)
def _read_csv(path: str) -> tuple[np.ndarray, ...]:
    n = nb201.SPACE.size
    valid, test, cost = (np.full(n, np.nan, np.float32) for _ in range(3))
    index = np.full(n, -1, np.int32)
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        missing = [c for c in _COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise ConfigError("table_path", f"{path} lacks columns {missing}; expected {list(_COLUMNS)}")
        for row in reader:
            arch = nb201.from_string(row["arch_str"])
            if "".join(map(str, arch)) != row["ops"]:
                raise ConfigError("table_path", f"{path}: row {row['index']} has ops {row['ops']} but arch_str {row['arch_str']}")
            code = int(np.sum(arch * nb201.SPACE.num_choices ** np.arange(5, -1, -1)))
            valid[code], test[code] = float(row["valid_acc"]), float(row["test_acc"])
            cost[code] = float(row["train_time_s"]) * EPOCHS_CHARGED / EPOCHS_TABLE
            index[code] = int(row["index"])
    if (index < 0).any():
        raise ConfigError("table_path", f"{path} covers {(index >= 0).sum()} of the {n} cells; all are needed")
    if sorted(index.tolist()) != list(range(n)):
        raise ConfigError("table_path", f"{path}: the index column is not a permutation of 0..{n - 1}")
    code_of_index = np.empty(n, np.int32)
    code_of_index[index] = np.arange(n, dtype=np.int32)
    return valid, test, cost, index, code_of_index


def load_nb201_table(path: str | None = None) -> NB201Table:
    """Loads and validates the table (cached per path); a missing or malformed file raises ConfigError."""
    valid, test, cost, index, code = _read_csv(resolve_table_path(path))
    return NB201Table(*(jnp.asarray(a) for a in (valid, test, cost, index, code)))


def table_path_exists(path: str | None = None) -> bool:
    """True when a table can be found (used by tests and notebooks to explain a skip)."""
    try:
        return os.path.isfile(resolve_table_path(path))
    except ConfigError:
        return False
