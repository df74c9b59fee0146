"""The NAS-Bench-201 table (Dong & Yang, ICLR 2020) as a jit-able objective, a `jaxnas.problems.tabular.Table`.

Data: one row per cell, CIFAR-10-valid, 200-epoch schedule, seed means (see the data README next to the
CSV). The search's fitness is `valid_acc`; `test_acc` is only reported; an evaluation costs
`train_time_s * 12 / 200` simulated seconds, the paper's convention of charging a 12-epoch training.
Deviation from the paper's code: it used the 12-epoch accuracy of one random seed as fitness, which this
table does not hold; here the fitness is the 200-epoch seed-mean validation accuracy (less noisy), so
absolute numbers are comparable in ranking, not to the decimal.
Accuracies are percent in the file and fractions in the `Table` (every accuracy of the library is a fraction).
Every cell read is checked at load (`jaxnas.problems.tabular.table_number`): accuracies finite in [0, 100],
`train_time_s` finite and > 0, `index` an integer in [0, 15624]; errors name the file, the line and the column.
"""

from __future__ import annotations

import csv
import functools
import os

import jax.numpy as jnp
import numpy as np

from jaxnas.common.errors import ConfigError
from jaxnas.common.paths import resolve_data_file
from jaxnas.problems.tabular import PERCENT, POSITIVE, Evaluation, Table, file_stamp, table_number
from jaxnas.spaces import nb201

__all__ = ["Evaluation", "NB201Table", "load_nb201_table", "resolve_table_path", "table_path_exists"]

DEFAULT_RELATIVE_PATHS = ("../shared/data/nasbench201/nb201_cifar10_valid.csv", "shared/data/nasbench201/nb201_cifar10_valid.csv")
ENV_VAR = "JAXNAS_NB201_CSV"
EPOCHS_CHARGED = 12
EPOCHS_TABLE = 200
_COLUMNS = ("index", "arch_str", "ops", "valid_acc", "test_acc", "train_time_s")


NB201Table = Table  # the NAS-Bench-201 table is a `Table` over `nb201.SPACE` (the name older code imports)


def resolve_table_path(path: str | None = None) -> str:
    """The CSV to load: `path`, else `$JAXNAS_NB201_CSV`, else `../shared/data/nasbench201/...`."""
    return resolve_data_file(
        path or None, ENV_VAR, DEFAULT_RELATIVE_PATHS, field="table_path",
        hint="Pass the NAS-Bench-201 CSV (columns: " + ", ".join(_COLUMNS) + ") with --config.table_path=PATH "
        f"or set ${ENV_VAR}.",
    )


def _row(path: str, line: int, row: dict[str, str | None], n: int) -> tuple[int, float, float, float, int]:
    """(code, valid, test, cost, index) of one CSV row; a bad cell raises ConfigError naming path, line, column."""
    where = f"{path}: line {line}"
    arch_str = row["arch_str"] or ""
    try:
        arch = nb201.from_string(arch_str)
    except ConfigError as err:
        raise ConfigError("table_path", f"{where}, column arch_str: {str(err).split(': ', 1)[1]}") from None
    where = f"{where} (arch {arch_str})"
    if "".join(map(str, arch)) != row["ops"]:
        raise ConfigError("table_path", f"{where}, column ops: got {row['ops']!r}; must spell arch_str's ops "
                          f"({''.join(map(str, arch))})")
    cell = functools.partial(table_number, field="table_path", where=where)
    index = int(cell(row["index"], (0, n - 1), column="index", integer=True))
    # the file's percent, checked as such, becomes a fraction (the library's unit for every accuracy)
    valid, test = (cell(row[c], PERCENT, column=c) / 100.0 for c in ("valid_acc", "test_acc"))
    cost = cell(row["train_time_s"], POSITIVE, column="train_time_s") * EPOCHS_CHARGED / EPOCHS_TABLE
    return int(np.sum(arch * nb201.SPACE.num_choices ** np.arange(5, -1, -1))), valid, test, cost, index


@functools.lru_cache(maxsize=4)
def _read_csv(path: str, stamp: tuple[int, int] | None = None) -> tuple[np.ndarray, ...]:
    del stamp  # only the cache key: an edited file (other mtime or size) is read again
    n = nb201.SPACE.size
    valid, test, cost = (np.full(n, np.nan, np.float32) for _ in range(3))
    index = np.full(n, -1, np.int32)
    try:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            missing = [c for c in _COLUMNS if c not in (reader.fieldnames or [])]
            if missing:
                raise ConfigError("table_path", f"{path} lacks columns {missing}; expected {list(_COLUMNS)}")
            for row in reader:
                code, *values = _row(path, reader.line_num, row, n)
                valid[code], test[code], cost[code], index[code] = values
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise ConfigError("table_path", f"{path}: not a readable UTF-8 CSV ({err})") from None
    if (index < 0).any():
        raise ConfigError("table_path", f"{path} covers {(index >= 0).sum()} of the {n} cells; all are needed")
    if sorted(index.tolist()) != list(range(n)):
        raise ConfigError("table_path", f"{path}: the index column is not a permutation of 0..{n - 1}")
    code_of_index = np.empty(n, np.int32)
    code_of_index[index] = np.arange(n, dtype=np.int32)
    return valid, test, cost, index, code_of_index


def load_nb201_table(path: str | None = None) -> Table:
    """Loads and validates the table (cached per path); a missing or malformed file raises ConfigError."""
    valid, test, cost, index, code = _read_csv(*_path_and_stamp(path))
    return Table(*(jnp.asarray(a) for a in (valid, test, cost, index, code)), space=nb201.SPACE)


def table_path_exists(path: str | None = None) -> bool:
    """True when a table can be found (used by tests and notebooks to explain a skip)."""
    try:
        return os.path.isfile(resolve_table_path(path))
    except ConfigError:
        return False


def _path_and_stamp(path: str | None) -> tuple[str, tuple[int, int] | None]:
    resolved = resolve_table_path(path)
    return resolved, file_stamp(resolved)
