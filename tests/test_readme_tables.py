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
from jaxnas.common.provenance import REPO_ROOT, load_result, record_result


def test_readme_tables_are_generated_from_results():
    assert rt.problems(rt.README.read_text()) == []


@pytest.mark.parametrize("name", sorted({s for t in rt.TABLES.values() for s in t.sources}))
def test_each_published_result_names_its_command_and_origin(name):
    r = load_result(name)
    assert r["name"] == name
    assert r["command"].startswith("python ")
    assert isinstance(r["settings"], dict) and r["settings"]
    prov = r["provenance"]
    assert re.fullmatch(r"[0-9a-f]{40}", prov["commit"] or "")
    assert prov["packages"]["jax"] and prov["device"]["cores"] >= 1


def _fake_cyclegan(tmp_path, error_ab):
    fig = {"transform": "invert", "translation_error_ab": error_ab, "translation_error_ba": 0.25,
           "label_preservation": 0.9, "cycle_error": 0.03, "steps": 10, "train_step_s": 60.0,
           "mean_image_error_ab": 0.2, "mean_image_error_ba": None}
    for name in rt.TABLES["cyclegan"].sources:
        record_result(name, command="python -m experiments.cyclegan", settings={"train": {"identity": 0.0}},
                      figures=fig, out_dir=tmp_path)


def test_update_rewrites_a_stale_block_and_check_finds_it(tmp_path):
    _fake_cyclegan(tmp_path, 0.125)
    text = ("intro\n<!-- generated: cyclegan (python -m experiments.readme_tables) -->\n| old |\n"
            "<!-- end generated: cyclegan -->\noutro\n")
    assert "out of date: cyclegan" in rt.problems(text, tmp_path)
    new = rt.update(text, tmp_path)
    assert new.startswith("intro\n") and new.endswith("<!-- end generated: cyclegan -->\noutro\n")
    assert "| invert | 0 | 0.125 / 0.250 | 90.0% | 0.030 | 10 (1.0 min) | 0.20 / n/a |" in new
    assert "out of date: cyclegan" not in rt.problems(new, tmp_path)
    _fake_cyclegan(tmp_path, 0.5)  # a new result makes the old text stale again
    assert "out of date: cyclegan" in rt.problems(new, tmp_path)


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
