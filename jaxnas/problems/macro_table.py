"""The NAS-Bench-Macro table (Su et al., CVPR 2021) as a jit-able objective, a `jaxnas.problems.tabular.Table`.

Data: `../shared/data/nasbench_macro/nas-bench-macro_cifar10.json` (format and known values in the README beside
it): every one of the 6,561 networks trained from scratch three times on CIFAR-10, test accuracy of each
training, parameters and FLOPs. The benchmark holds no validation split, so a search that selects on the
accuracy it then reports is optimistic. Here the search's fitness (`valid`) is the accuracy of one training,
`search_run` (0, 1 or 2), and the reported figure (`test`) is the mean of the other two trainings: what was
searched on is never what is reported. The table has no training times: every evaluation costs 1, so a budget
counts evaluations. `extras` holds `mean_acc` (all three trainings), `params` and `flops`. Accuracies are percent
in the file and fractions in the `Table`. Every value read is checked at load
(`jaxnas.problems.tabular.table_number`): accuracies finite in [0, 100] (the file's percent), params and FLOPs
finite and >= 0; errors name the file, the entry's key and the field.
"""

from __future__ import annotations

import functools
import json
import os
from typing import Any

import jax.numpy as jnp
import numpy as np

from jaxnas.common.errors import ConfigError
from jaxnas.common.paths import resolve_data_file
from jaxnas.problems.tabular import NONNEGATIVE, PERCENT, Table, file_stamp, table_number
from jaxnas.spaces import macro

DEFAULT_RELATIVE_PATHS = ("../shared/data/nasbench_macro/nas-bench-macro_cifar10.json",
                          "shared/data/nasbench_macro/nas-bench-macro_cifar10.json")
ENV_VAR = "JAXNAS_MACRO_JSON"
RUNS = 3  # trainings per network in the benchmark
_FIELDS = ("test_acc", "mean_acc", "params", "flops")


def resolve_table_path(path: str | None = None) -> str:
    """The JSON to load: `path`, else `$JAXNAS_MACRO_JSON`, else `../shared/data/nasbench_macro/...`."""
    return resolve_data_file(
        path or None, ENV_VAR, DEFAULT_RELATIVE_PATHS, field="macro.path",
        hint="Pass NAS-Bench-Macro's nas-bench-macro_cifar10.json (github.com/xiusu/NAS-Bench-Macro, data/) with "
        f"--config.macro.path=PATH or set ${ENV_VAR}.")


def _entry(path: str, key: str, entry: Any, weights: np.ndarray) -> tuple[int, list[float], float, float, float]:
    """(code, three accuracies, mean accuracy, params, flops) of one entry; a bad value raises ConfigError naming
    the file, the entry's key and the field."""
    where = f"{path}: entry {key!r}"
    try:
        arch = macro.from_string(key)
    except ConfigError as err:
        raise ConfigError("macro.path", f"{where}: bad key ({str(err).split(': ', 1)[1]})") from None
    missing = [k for k in _FIELDS if k not in entry] if isinstance(entry, dict) else list(_FIELDS)
    runs = entry.get("test_acc") if isinstance(entry, dict) else None
    if missing or not isinstance(runs, list) or len(runs) != RUNS:
        raise ConfigError("macro.path", f"{where} lacks {missing or 'three test_acc values'}; each needs "
                          f"{list(_FIELDS)}, test_acc a list of {RUNS}")
    cell = functools.partial(table_number, field="macro.path", where=where)
    # the file's percent, checked as such, becomes a fraction (the library's unit for every accuracy)
    accs = [cell(a, PERCENT, column=f"test_acc[{r}]") / 100.0 for r, a in enumerate(runs)]
    mean = cell(entry["mean_acc"], PERCENT, column="mean_acc") / 100.0
    params, flops = (cell(entry[c], NONNEGATIVE, column=c) for c in ("params", "flops"))
    return int(np.sum(arch * weights)), accs, mean, params, flops


@functools.lru_cache(maxsize=4)
def _read_json(path: str, stamp: tuple[int, int] | None = None) -> tuple[np.ndarray, ...]:
    del stamp  # only the cache key: an edited file (other mtime or size) is read again
    """(accuracies (N, 3), mean accuracy, params, flops), rows ordered by `macro.SPACE.encode`."""
    n = macro.SPACE.size
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError) as err:  # ValueError: a JSON or UTF-8 decoding error
        raise ConfigError("macro.path", f"{path}: not a readable JSON file ({err})") from None
    if not isinstance(data, dict):
        raise ConfigError("macro.path", f"{path}: expected one JSON object keyed by architecture")
    acc = np.full((n, RUNS), np.nan, np.float32)
    mean, params, flops = np.full(n, np.nan, np.float32), np.zeros(n, np.float64), np.zeros(n, np.float64)
    weights = macro.SPACE.num_choices ** np.arange(macro.SPACE.num_positions - 1, -1, -1)
    for key, entry in data.items():
        code, *values = _entry(path, key, entry, weights)
        acc[code], mean[code], params[code], flops[code] = values
    if np.isnan(mean).any():
        raise ConfigError("macro.path", f"{path} covers {int((~np.isnan(mean)).sum())} of the {n} networks; all are "
                          "needed")
    return acc, mean, params, flops


def load_macro_table(path: str | None = None, search_run: int = 0) -> Table:
    """The table with training `search_run` as fitness and the mean of the other two as the reported figure."""
    if search_run not in range(RUNS):
        raise ConfigError("macro.search_run", f"got {search_run!r}; allowed: 0, 1 or 2 (one of the {RUNS} trainings)")
    acc, mean, params, flops = _read_json(*_path_and_stamp(path))
    others = [r for r in range(RUNS) if r != search_run]
    codes = np.arange(macro.SPACE.size, dtype=np.int32)
    return Table(valid=jnp.asarray(acc[:, search_run]), test=jnp.asarray(acc[:, others].mean(1)),
                 cost=jnp.ones(macro.SPACE.size, jnp.float32), index=jnp.asarray(codes), code=jnp.asarray(codes),
                 space=macro.SPACE, extras={"mean_acc": jnp.asarray(mean), "params": jnp.asarray(params, jnp.float32),
                                            "flops": jnp.asarray(flops, jnp.float32)})


def table_path_exists(path: str | None = None) -> bool:
    """True when the table can be found (tests explain a skip with it)."""
    try:
        return os.path.isfile(resolve_table_path(path))
    except ConfigError:
        return False


def _path_and_stamp(path: str | None) -> tuple[str, tuple[int, int] | None]:
    resolved = resolve_table_path(path)
    return resolved, file_stamp(resolved)
