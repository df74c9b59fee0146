"""README's results tables equal what `experiments.readme_tables` renders from the committed results/*.json, and
every such file says where it came from (`jaxnas.common.provenance`)."""

import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from experiments import readme_tables as rt
from experiments.table_format import fmt, markdown_table
from jaxnas.common.provenance import REPO_ROOT, load_result, record_result


def test_readme_tables_are_generated_from_results():
    assert rt.problems(rt.README.read_text()) == []


@pytest.mark.parametrize("name", sorted({s for t in rt.TABLES.values() for s in t.sources}))
def test_each_published_result_names_its_command_and_origin(name):
    r = load_result(name)
    assert r["name"] == name
    words = r["command"].split()
    assert "python" in words[0], r["command"]
    target = words[2].replace(".", "/") + ".py" if words[1] == "-m" else words[1]
    assert (REPO_ROOT / target).is_file(), f"{name}: its command runs {target}, which is not in the repository"
    assert isinstance(r["settings"], dict) and r["settings"]
    prov = r["provenance"]
    assert re.fullmatch(r"[0-9a-f]{40}", prov["commit"] or "")
    assert prov["packages"]["jax"] and prov["device"]["cores"] >= 1


def _fake_table(monkeypatch, tmp_path, value):
    """A table `demo_t` reading one results file `demo_r` written to tmp_path with figure `value`."""
    record_result("demo_r", command="python -m experiments.demo_t", settings={"a": 1}, figures={"v": value},
                  out_dir=tmp_path)
    render = lambda res: markdown_table(["v"], [[fmt(res["demo_r"]["figures"]["v"])]])  # noqa: E731
    monkeypatch.setitem(rt.TABLES, "demo_t", rt.Table(("demo_r",), render))


def test_update_rewrites_a_stale_block_and_check_finds_it(tmp_path, monkeypatch):
    _fake_table(monkeypatch, tmp_path, 0.125)
    text = ("intro\n<!-- generated: demo_t (python -m experiments.readme_tables) -->\n| old |\n"
            "<!-- end generated: demo_t -->\noutro\n")
    assert "out of date: demo_t" in rt.problems(text, tmp_path)
    new = rt.update(text, tmp_path)
    assert new.startswith("intro\n") and new.endswith("<!-- end generated: demo_t -->\noutro\n")
    assert "| v |\n|---|\n| 0.125 |\n" in new
    assert "out of date: demo_t" not in rt.problems(new, tmp_path)
    _fake_table(monkeypatch, tmp_path, 0.5)  # a new result makes the old text stale again
    assert "out of date: demo_t" in rt.problems(new, tmp_path)


def test_unknown_block_is_an_error(tmp_path):
    text = "<!-- generated: nope (python -m experiments.readme_tables) -->\nx\n<!-- end generated: nope -->\n"
    with pytest.raises(KeyError, match="nope"):
        rt.update(text, tmp_path)


def test_record_result_writes_plain_json(tmp_path):
    path = record_result("t_1", command="python x", settings={"lr": np.float32(0.5)}, seeds=[3],
                         figures={"acc": np.array([0.25, 0.75]), "bad": float("nan")}, wall_s=1.5, out_dir=tmp_path)
    doc = json.loads(path.read_text())
    assert doc["settings"] == {"lr": 0.5} and doc["figures"] == {"acc": [0.25, 0.75], "bad": None}
    assert doc["seeds"] == [3] and doc["wall_s"] == 1.5 and doc["provenance"]["python"]
    with pytest.raises(ValueError, match="result name 'Bad/name'"):
        record_result("Bad/name", command="x", settings={}, figures={}, out_dir=tmp_path)


def _cli(tmp_path, *args):
    env = {**os.environ, "JAXNAS_RESULTS_DIR": str(tmp_path / "results")}
    return subprocess.run([sys.executable, "-m", "experiments.nb201", "--config",
                           str(REPO_ROOT / "experiments/configs/nb201.py:small"), "--config.progress=false",
                           "--config.strategy=random", "--config.runs=4", "--workdir", str(tmp_path / "run"), *args],
                          capture_output=True, text=True, cwd=REPO_ROOT, env=env, timeout=300)


def test_cli_publish_writes_the_summary_with_its_command(tmp_path):
    bad = _cli(tmp_path, "--publish", "No Good")
    assert bad.returncode == 2 and bad.stderr.strip().splitlines()[-1].startswith("error: --publish: result name")
    assert not (tmp_path / "run").exists()  # refused before any work
    proc = _cli(tmp_path, "--publish", "nb201_tiny")
    assert proc.returncode == 0, proc.stderr[-2000:]
    doc = json.loads((tmp_path / "results" / "nb201_tiny.json").read_text())
    summary = json.loads((tmp_path / "run" / "results.json").read_text())
    assert doc["figures"]["valid_mean"] == summary["valid_mean"]
    assert doc["command"].startswith("python -m experiments.nb201 --config ") and "--publish nb201_tiny" in doc["command"]
    assert doc["settings"]["runs"] == 4 and doc["seeds"] == [0] and doc["wall_s"] > 0


def test_qlearning_against_random_states_the_difference_and_two_standard_errors():
    """500 runs, random 91.00 (std 0.28), Q-learning (std 0.30) 91.10, 91.02 and 90.95 on seeds 3-5:
    2 SE = 2 sqrt((0.30^2 + 0.28^2) / 499) = 0.0367, so +0.100 is above it, +0.020 within, -0.050 below."""
    def run(seed, q_mean):
        return {"figures": {"seed": seed, "runs": 500, "strategies": {
            "random": {"valid_mean": 91.00, "valid_std": 0.28}, "qlearning": {"valid_mean": q_mean, "valid_std": 0.30}}}}

    runs = [run(3, 91.10), run(4, 91.02), run(5, 90.95)]
    line = rt._against_random(runs, "qlearning", "Q-learning", "mean validation accuracy")
    assert line == (" Q-learning minus random search, mean validation accuracy: seed 3: +0.100 (2 SE 0.037); "
                    "seed 4: +0.020 (2 SE 0.037); seed 5: -0.050 (2 SE 0.037); more than two standard errors above "
                    "random on 1 of 3 seeds, below on 1.")
