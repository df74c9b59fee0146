"""The NAS-Bench-201 space and table: conversions checked against the CSV itself, known values, mutation."""

import csv

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxnas.common.errors import ConfigError
from jaxnas.problems.nb201_table import load_nb201_table
from jaxnas.spaces import SPACES, nb201


@pytest.fixture(scope="module")
def csv_rows(nb201_csv_path):
    with open(nb201_csv_path, newline="") as f:
        return list(csv.DictReader(f))


def test_space_shape():
    assert SPACES.get("nb201") is nb201.SPACE
    assert nb201.SPACE.size == 15_625 and len(nb201.OPS) == 5 and len(nb201.EDGES) == 6


def test_string_index_round_trip_all_cells(nb201_table, csv_rows):
    assert len(csv_rows) == 15_625
    indices = np.array([int(r["index"]) for r in csv_rows])
    archs = np.asarray(nb201_table.arch_of(jnp.asarray(indices)))  # (15625, 6)
    for row, arch in zip(csv_rows, archs):
        assert nb201.to_string(arch) == row["arch_str"]
        assert "".join(map(str, arch)) == row["ops"]
        np.testing.assert_array_equal(nb201.from_string(row["arch_str"]), arch)
    np.testing.assert_array_equal(np.asarray(nb201_table.index_of(jnp.asarray(archs))), indices)


def test_code_round_trip_all_cells():
    codes = jnp.arange(nb201.SPACE.size)
    archs = nb201.SPACE.decode(codes)
    np.testing.assert_array_equal(nb201.SPACE.encode(archs), codes)
    assert len({tuple(a) for a in np.asarray(archs)}) == nb201.SPACE.size


def test_known_table_values(nb201_table):
    arch = nb201_table.arch_of(6111)
    ev = jax.jit(nb201_table.query)(arch)
    assert nb201.to_string(arch) == "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"
    np.testing.assert_allclose(float(ev.valid), 0.916067, atol=1e-6)  # 91.6067% in the CSV
    np.testing.assert_allclose(float(ev.test), 0.9109, atol=1e-6)
    np.testing.assert_allclose(float(ev.cost), 2879.75 * 12 / 200, rtol=1e-6)
    assert int(ev.index) == 6111
    assert int(jnp.argmax(nb201_table.valid)) == int(nb201.SPACE.encode(arch))  # 6111 is the best cell
    row0 = nb201_table.query(nb201.from_string(
        "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|"))
    assert int(row0.index) == 0 and abs(float(row0.valid) - 0.819827) < 1e-6


def test_mutation_changes_exactly_one_edge_to_another_op():
    keys = jax.random.split(jax.random.key(0), 20_000)
    parents = jax.vmap(lambda k: nb201.SPACE.sample(k))(jax.random.split(jax.random.key(1), 20_000))
    children = jax.vmap(nb201.SPACE.mutate)(keys, parents)
    changed = np.asarray(children != parents)
    assert (changed.sum(1) == 1).all()
    # every edge is chosen, and each of the 4 other ops is equally likely (uniform: 1/4 each, +-0.02)
    pos = changed.argmax(1)
    assert np.bincount(pos, minlength=6).min() > 20_000 / 6 * 0.9
    offset = (np.asarray(children)[np.arange(20_000), pos] - np.asarray(parents)[np.arange(20_000), pos]) % 5
    np.testing.assert_allclose(np.bincount(offset, minlength=5)[1:] / 20_000, 0.25, atol=0.02)


def test_sample_is_uniform_over_ops():
    archs = np.asarray(nb201.SPACE.sample(jax.random.key(3), (10_000,)))
    assert archs.shape == (10_000, 6) and archs.dtype == np.int32
    np.testing.assert_allclose(np.bincount(archs.ravel(), minlength=5) / archs.size, 0.2, atol=0.01)


@pytest.mark.parametrize("bad", ["", "|none~0|", "|none~0|+|none~0|none~1|+|none~0|none~1|",
                                 "|conv~0|+|none~0|none~1|+|none~0|none~1|none~2|",
                                 "|none~0|+|none~0|none~0|+|none~0|none~1|none~2|"])
def test_from_string_rejects_malformed(bad):
    with pytest.raises(ConfigError, match="arch_str"):
        nb201.from_string(bad)


def test_missing_table_fails_at_once_naming_the_field(tmp_path):
    with pytest.raises(ConfigError, match="table_path: file not found"):
        load_nb201_table(str(tmp_path / "nope.csv"))
    bad = tmp_path / "bad.csv"
    bad.write_text("index,arch_str\n0,x\n")
    with pytest.raises(ConfigError, match="table_path: .* lacks columns"):
        load_nb201_table(str(bad))
