"""The `experiments.nb201` entry point: config validation, outputs, and the paper-level result."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from experiments import nb201 as exp
from experiments.configs import nb201 as nb201_config
from jaxnas.common.errors import ConfigError

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def small_config(**overrides):
    c = nb201_config.get_config("small")
    c.progress = False
    for k, v in overrides.items():
        c[k] = v
    return c


@pytest.mark.parametrize("field, value, pattern", [
    ("strategy", "bayesopt", r"^strategy: got 'bayesopt'; allowed: random, aging_evolution, tournament, reinforce, "
                             r"qlearning, all, or several names separated by commas$"),
    ("strategy", "random,bayesopt", r"^strategy: got 'random,bayesopt'; allowed: random, .*separated by commas$"),
    ("strategy", "random, random", r"^strategy: got 'random, random'; allowed: .*separated by commas, each once$"),
    ("budget_s", 0.0, r"^budget_s: got 0.0; allowed: a number > 0$"),
    ("budget_s", -5.0, r"^budget_s:"),
    ("runs", 0, r"^runs:"),
    ("table_path", "/nonexistent/table.csv", r"^table_path: file not found"),
])
def test_bad_config_fails_at_once_naming_the_field(tmp_path, field, value, pattern):
    with pytest.raises(ConfigError, match=pattern):
        exp.run(small_config(**{field: value}), str(tmp_path))
    assert not os.listdir(tmp_path)  # nothing was run or written


def test_sample_size_larger_than_population_names_the_nested_field(tmp_path):
    c = small_config()
    c.aging_evolution.sample_size = 11
    with pytest.raises(ConfigError, match=r"^aging_evolution.sample_size: got 11; allowed: <= population_size \(10\)$"):
        exp.run(c, str(tmp_path))


def test_cli_reports_a_bad_strategy_in_one_line(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "experiments.nb201", "--config", os.path.join(REPO, "experiments/configs/nb201.py"),
         "--config.strategy=nope", "--workdir", str(tmp_path)],
        capture_output=True, text=True, cwd=REPO, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].startswith("error: config.strategy: got 'nope'; allowed:")
    assert "Traceback" not in proc.stderr


def test_single_strategy_outputs(tmp_path):
    out = exp.run(small_config(strategy="aging_evolution"), str(tmp_path))
    for key in ("strategy", "runs", "budget_s", "valid_mean", "valid_std", "test_mean", "test_std", "wall_s"):
        assert key in out
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["strategy"] == "aging_evolution" and saved["runs"] == 20
    assert 0.8 < saved["valid_mean"] < 1 and 0.8 < saved["test_mean"] < 1 and 0 < saved["valid_std"] < 0.1  # fractions
    rows = [json.loads(line) for line in (tmp_path / "runs.jsonl").read_text().splitlines()]
    assert len(rows) == 20
    np.testing.assert_allclose(np.mean([r["best_valid"] for r in rows]), saved["valid_mean"], rtol=1e-6)
    assert (tmp_path / "best_so_far.png").stat().st_size > 10_000
    report = (tmp_path / "report.md").read_text()
    assert "best_so_far.png" in report
    assert f"| {100 * saved['valid_mean']:.2f} ± {100 * saved['valid_std']:.2f} |" in report  # percent in the text
    # a second call with the same workdir resumes from the final checkpoint and reports the same numbers
    again = exp.run(small_config(strategy="aging_evolution"), str(tmp_path))
    assert again["resumed_from_chunk"] is not None and again["valid_mean"] == saved["valid_mean"]


# Seeds 0-2 chose the REINFORCE learning rate (README sweep, results/nb201_reinforce_lr.json); the protocol's
# reported figures and this test use seeds never used for tuning.
REPORT_SEEDS = (3, 4, 5)


@pytest.mark.slow
def test_paper_protocol_500_runs(tmp_path):
    """The paper's protocol (500 runs x 12,000 s; published: REA 91.19, REINFORCE 91.09, random 90.93% valid)
    on seed 3, one of the untuned report seeds. Compilation is a third of its cost (34 of 105 s, measured), so the
    test runs the full protocol rather than a smaller setting.

    On seeds 3, 4 and 5 (results/nb201_protocol_seed{3,4,5}.json) the mean validation accuracy was REA
    91.30-91.32 > tournament without aging 91.21 > REINFORCE 91.12-91.13 > random 91.03-91.04, each gap
    0.08-0.11 with a standard error of ~0.02 (std ~0.29 over 500 runs), and the same order on test
    accuracy (90.98 > 90.88-90.90 > 90.80-90.81 > 90.72). Asserted: that order with half the smallest gap
    seen, REA at least 0.2 above random, and random search within 0.3 of the paper's (in points; the results hold
    fractions). Q-learning, which the paper did not run, is left out (a comma-separated list of strategies): its 500
    runs took 58 of this test's 105 s.
    """
    order = ("aging_evolution", "tournament", "reinforce", "random")
    c = small_config(strategy=",".join(order), runs=500, budget_s=12_000.0, seed=REPORT_SEEDS[0])
    out = exp.run(c, str(tmp_path))["strategies"]
    assert list(out) == list(order)
    valid = [out[k]["valid_mean"] for k in order]
    test = [out[k]["test_mean"] for k in order]
    assert all(hi - lo >= 0.0004 for hi, lo in zip(valid, valid[1:])), dict(zip(order, valid))
    assert all(hi > lo for hi, lo in zip(test, test[1:])), dict(zip(order, test))
    assert valid[0] >= 0.910 and valid[0] - valid[-1] >= 0.002
    assert abs(valid[-1] - 0.9093) <= 0.003
    assert all(80 <= out[k]["evaluations_mean"] <= 120 for k in order)  # ~100 evaluations fit in 12,000 s
    assert (tmp_path / "comparison.json").exists() and (tmp_path / "best_so_far.png").exists()


def test_rerun_with_another_strategy_setting_or_table_is_refused_before_any_restore(tmp_path):
    exp.run(small_config(strategy="aging_evolution", runs=8), str(tmp_path))
    other = small_config(strategy="aging_evolution", runs=8)
    other.aging_evolution.sample_size = 5  # once silently answered with the sample-size-3 result
    with pytest.raises(ConfigError, match=r"^workdir: .*: strategy\.sample_size \(saved 3, now 5\); use a fresh"):
        exp.run(other, str(tmp_path))
    macro = small_config(strategy="aging_evolution", runs=8, benchmark="macro")  # other shapes: no orbax traceback
    with pytest.raises(ConfigError, match=r"^workdir: .*budget_s \(saved 3000\.0, now 100\.0\).*table \(saved"):
        exp.run(macro, str(tmp_path))


def test_edited_table_file_is_refused_and_a_truncated_checkpoint_falls_back(tmp_path, monkeypatch, capsys):
    """Through the one loop, on a copy of the NAS-Bench-Macro table: a rerun with another sample size, or with the
    table file edited in place, is refused in one line naming the key before any checkpoint is restored (the edit
    by its setting, `macro.path`, even though the loader still holds the parse of the unedited file); a truncated
    newest checkpoint is skipped for the one before it and the search ends with the first run's figures."""
    from jaxnas.problems.macro_table import resolve_table_path
    from test_loop import refused_before_restore, truncate_newest

    table = tmp_path / "macro.json"
    entries = json.loads(open(resolve_table_path()).read())
    table.write_text(json.dumps(entries))
    config = small_config(strategy="aging_evolution", runs=8, benchmark="macro")  # 100 evaluations: 4 chunks of 32
    config.macro.path = str(table)
    work = str(tmp_path / "run")
    first = exp.run(config, work)
    runs = (tmp_path / "run" / "runs.jsonl").read_text()
    config.aging_evolution.sample_size = 5
    assert "strategy.sample_size (saved 3, now 5)" in refused_before_restore(monkeypatch, lambda: exp.run(config, work))
    config.aging_evolution.sample_size = 3
    key = next(iter(entries))
    accs = entries[key]["test_acc"]
    edited = {**entries, key: {**entries[key], "test_acc": [accs[0] - 1.0, *accs[1:]]}}
    table.write_text(json.dumps(edited))  # the same file, one fitness changed
    message = refused_before_restore(monkeypatch, lambda: exp.run(config, work))
    assert "macro.path (saved '" in message and "strategy." not in message
    table.write_text(json.dumps(entries))
    assert truncate_newest(tmp_path / "run" / "checkpoints") == [3]
    capsys.readouterr()
    again = exp.run(config, work)
    assert "resuming from step 3" in capsys.readouterr().out
    assert again["resumed_from_chunk"] == 3
    assert (again["valid_mean"], again["test_mean"]) == (first["valid_mean"], first["test_mean"])
    assert (tmp_path / "run" / "runs.jsonl").read_text() == runs
    assert [json.loads(line)["chunk"] for line in open(tmp_path / "run" / "metrics.jsonl")] == [1, 2, 3, 4]


def test_table_path_records_the_file_content():
    """The NAS-Bench-201 table names its file by `table_path`; no path (the default table) adds nothing, the
    search records the loaded table's content either way."""
    from jaxnas.problems import BENCHMARKS

    assert exp.table_file_settings(small_config(), BENCHMARKS.get("nb201")) == {}
    path = os.path.join(REPO, "experiments", "configs", "nb201.py")  # any file: only its bytes are hashed
    recorded = exp.table_file_settings(small_config(table_path=path), BENCHMARKS.get("nb201"))
    assert list(recorded) == ["table_path"] and len(recorded["table_path"]) == 16
