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
    """500 runs, random 91.00% (std 0.28), Q-learning (std 0.30) 91.10, 91.02 and 90.95% on seeds 3-5, as the files
    hold them (fractions): 2 SE = 2 sqrt((0.30^2 + 0.28^2) / 499) = 0.0367 points, so +0.100 is above it, +0.020
    within, -0.050 below; printed in percentage points."""
    def run(seed, q_mean):
        return {"figures": {"seed": seed, "runs": 500, "strategies": {
            "random": {"valid_mean": 0.9100, "valid_std": 0.0028},
            "qlearning": {"valid_mean": q_mean, "valid_std": 0.0030}}}}

    runs = [run(3, 0.9110), run(4, 0.9102), run(5, 0.9095)]
    line = rt._against_random(runs, "qlearning", "Q-learning", "mean validation accuracy")
    assert line == (" Q-learning minus random search, mean validation accuracy: seed 3: +0.100 (2 SE 0.037); "
                    "seed 4: +0.020 (2 SE 0.037); seed 5: -0.050 (2 SE 0.037); more than two standard errors above "
                    "random on 1 of 3 seeds, below on 1.")


# Accuracy-valued keys of the results files (issue 26: fractions in [0, 1] in every file; percent only in printed
# text), by name: accuracies, their spreads and means; and the differences of two accuracies, in [-1, 1].
_ACCURACY_KEY = re.compile(r"(^|_)(valid|test)(_acc|_map|_ap50|_mean|_std|_median)?$|^(best|table_best|table_max)_"
                           r"(valid|test)$|_map$|_ap50$|accuracy(_std)?$|^acc$|^valid_acc|_valid_mean$|_test_mean$|"
                           r"valid_quartiles$|^paired_diff_se$|_by_epoch$")
_DIFFERENCE_KEY = re.compile(r"^paired_diff_mean$|^valid_change_(mean|worst)$")


@pytest.mark.parametrize("name", sorted(p.stem for p in (REPO_ROOT / "results").glob("*.json")))
def test_committed_accuracies_are_fractions(name):
    """Every number under an accuracy key is a fraction (a difference of two in [-1, 1]; DARTS's `vs_darts` holds
    differences and their standard errors): a file published in percent, or converted only in part, fails here."""
    seen = []

    def walk(x, key, inside_vs):
        if isinstance(x, dict):
            for k, v in x.items():
                walk(v, k, inside_vs or k == "vs_darts")
        elif isinstance(x, list):
            for v in x:
                walk(v, key, inside_vs)
        elif isinstance(x, (int, float)) and not isinstance(x, bool) and key is not None:
            if _DIFFERENCE_KEY.search(key) or (inside_vs and key == "mean"):
                seen.append((key, x, -1.0))
            elif _ACCURACY_KEY.search(key) or (inside_vs and key == "se"):
                seen.append((key, x, 0.0))

    walk(load_result(name)["figures"], None, False)
    bad = [(k, x) for k, x, lo in seen if not lo <= x <= 1.0]
    assert not bad, f"{name}: accuracies outside [0, 1] (percent?): {bad[:5]}"
