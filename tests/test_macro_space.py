"""NAS-Bench-Macro: the space, the table against its raw JSON and the README's known values, the select-on-one-
training protocol, and a search through the table protocol's entry point."""

import json

import jax
import numpy as np
import pytest

from experiments import nb201 as exp
from experiments.configs import nb201 as nb201_config
from jaxnas.common.errors import ConfigError
from jaxnas.problems import BENCHMARKS
from jaxnas.problems.macro_table import load_macro_table
from jaxnas.spaces import SPACES, macro



def test_space_is_registered_with_its_benchmark():
    assert SPACES.get("macro") is macro.SPACE and BENCHMARKS.get("macro").space is macro.SPACE
    assert macro.SPACE.size == 3**8 == 6_561 and sum(macro.STAGES) == macro.SPACE.num_positions == 8


def test_every_key_round_trips_and_indexes_its_own_row(macro_json):
    table = load_macro_table()
    assert len(macro_json) == 6_561
    keys = sorted(macro_json)
    archs = np.stack([macro.from_string(k) for k in keys])
    assert [macro.to_string(a) for a in archs] == keys
    ev = jax.jit(table.query)(archs)
    for run in range(3):  # the fitness is the searched training as stored, the file's percent as a fraction
        t = load_macro_table(search_run=run)
        np.testing.assert_array_equal(np.asarray(t.query(archs).valid),
                                      np.array([macro_json[k]["test_acc"][run] / 100 for k in keys], np.float32))
    others = np.array([np.mean(macro_json[k]["test_acc"][1:]) / 100 for k in keys], np.float32)  # runs 1, 2
    np.testing.assert_allclose(np.asarray(ev.test), others, rtol=1e-6)
    np.testing.assert_array_equal(np.asarray(ev.cost), 1.0)
    np.testing.assert_array_equal(np.asarray(table.arch_of(ev.index)), archs)


def test_known_values_of_the_data_readme():
    t = load_macro_table()
    mean, flops = np.asarray(t.extras["mean_acc"]), np.asarray(t.extras["flops"])
    best = int(macro.SPACE.encode(macro.from_string("22212220")))
    assert mean[best] == mean.max() and round(float(mean[best]), 5) == 0.93127  # tied with 22212202 in the raw data
    assert round(flops[best] / 1e6, 1) == 85.2
    code0 = int(macro.SPACE.encode(macro.from_string("00000000")))
    assert round(float(mean[code0]), 5) == 0.45363 and round(flops[code0] / 1e6, 1) == 7.7
    assert round(float(np.median(mean)), 4) == 0.9099
    assert (round(flops.min() / 1e6, 1), round(flops.max() / 1e6, 1)) == (7.7, 105.7)
    # accuracy/FLOPs Pareto front, 35 distinct points (networks with the same accuracy and FLOPs, such as the two
    # best, count once): no other point at least as accurate with no more FLOPs and better in one
    m, f = np.unique(np.stack([mean.astype(np.float64), flops.astype(np.float64)], 1), axis=0).T
    dominated = ((m[None] >= m[:, None]) & (f[None] <= f[:, None]) & ((m[None] > m[:, None]) | (f[None] < f[:, None]))).any(1)
    assert int((~dominated).sum()) == 35


@pytest.mark.parametrize("kwargs, field", [({"search_run": 3}, "macro.search_run"),
                                           ({"path": "/nonexistent.json"}, "macro.path")])
def test_bad_table_options_name_the_field(kwargs, field):
    with pytest.raises(ConfigError, match=rf"^{field}: "):
        load_macro_table(**kwargs)


@pytest.mark.parametrize("bad", ["0000000", "000000003", "0000a000"])
def test_from_string_rejects_malformed(bad):
    with pytest.raises(ConfigError, match="^arch_str:"):
        macro.from_string(bad)


def _config(**macro_fields):
    c = nb201_config.get_config("small")
    c.benchmark, c.strategy, c.runs, c.progress = "macro", "aging_evolution", 8, False
    c.macro.update(macro_fields)
    return c


def test_entry_point_searches_macro_on_an_evaluation_budget(tmp_path):
    out = exp.run(_config(budget=30, search_run=1), str(tmp_path))
    assert out["benchmark"] == "macro" and out["budget"] == 30 and out["budget_unit"] == "evaluations"
    assert "budget_s" not in out and out["evaluations_mean"] == 30
    table = load_macro_table(search_run=1)
    runs = [json.loads(line) for line in (tmp_path / "runs.jsonl").read_text().splitlines()]
    for r in runs:  # each run reports the other two trainings' mean of the architecture it chose on training 1
        ev = table.query(macro.from_string(r["arch_str"]))
        assert float(ev.valid) == pytest.approx(r["best_valid"]) and float(ev.test) == pytest.approx(r["best_test"])
    assert out["valid_mean"] <= out["table_best_valid"]
    assert (tmp_path / "best_so_far.png").is_file() and "NAS-Bench-Macro" in (tmp_path / "report.md").read_text()


@pytest.mark.parametrize("field, value, pattern", [("benchmark", "nb301", r"^benchmark: got 'nb301'; allowed: nb201, macro$"),
                                                   ("macro.budget", 0, r"^macro.budget: got 0; allowed: a number in \(0, 100000\]$")])
def test_bad_benchmark_config_fails_before_any_work(tmp_path, field, value, pattern):
    c = _config()
    if "." in field:
        c.macro[field.split(".")[1]] = value
    else:
        c[field] = value
    with pytest.raises(ConfigError, match=pattern):
        exp.run(c, str(tmp_path))
    assert not list(tmp_path.iterdir())
