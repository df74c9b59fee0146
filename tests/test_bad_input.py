"""Bad input never becomes a wrong result (issue 20): each case, run as a user would
(`python -m experiments.ENTRY --config ... --config.FIELD=VALUE --workdir DIR`), is refused with exit
status 2 and one line on stderr, `error: FIELD: ...`, naming the field as the user typed it, in under 5 s
(validation runs before any data is loaded or anything compiled; about 2.5 s of each is Python, JAX and
absl starting up), and leaves the workdir as it was. Cases are data: add a row, not a test.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from typing import NamedTuple

import pytest

from experiments import cli

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS = {"speedups": "experiments/configs/speedups.py:small", "nas_search": "experiments/configs/nas_search.py:small",
           **{e: f"experiments/configs/{e}.py" for e in ("nb201", "mtl", "neat", "stylegan", "cyclegan")}}
SECONDS = 5.0


class Case(NamedTuple):
    entry: str  # experiments.ENTRY
    overrides: tuple[str, ...]  # after --config; {file} is a regular file in the test's folder
    field: str  # the error line starts with `error: FIELD:`
    says: str = ""  # and, if given, contains this


CASES = [
    # reported in issue 20: refused only after 70-86 s of training, named wrongly, or a ZeroDivisionError
    Case("speedups", ("--config.early_stopping.eta=1",), "config.early_stopping.eta", "got 1; allowed"),
    Case("speedups", ("--config.incremental.eval_points=0",), "config.incremental.eval_points", "got 0; allowed"),
    Case("speedups", ("--config.incremental.lr_scale=-0.1",), "config.incremental.lr_scale", "got -0.1; allowed"),
    Case("speedups", ("--config.network.channels=0",), "config.network.channels", "got 0; allowed"),
    Case("speedups", ("--config.network.cells_per_stage=0",), "config.network.cells_per_stage", "got 0; allowed"),
    Case("nas_search", ("--config.network.channels=0",), "config.network.channels", "got 0;"),
    Case("nas_search", ("--config.network.cells_per_stage=0",), "config.network.cells_per_stage", "got 0;"),
    # unknown fields: the nearest known one is suggested (difflib over the dotted keys)
    Case("speedups", ("--config.trian.steps=3",), "config.trian.steps", "unknown field; did you mean train.steps?"),
    Case("speedups", ("--config.nonexistent=1",), "config.nonexistent", "unknown field; known fields: candidates,"),
    Case("speedups", ("--config.early_stopping.etaa=2",), "config.early_stopping.etaa",
         "did you mean early_stopping.eta?"),
    Case("speedups", ("--config.candidates.n=2",), "config.candidates.n", "unknown field"),
    Case("nas_search", ("--config.stratgy=random",), "config.stratgy", "did you mean strategy?"),
    *(Case(e, ("--config.sed=1",), "config.sed", "unknown field; did you mean seed?")
      for e in ("nb201", "mtl", "neat", "stylegan", "cyclegan")),  # the shared CLI: every entry point
    # wrong types (refused while the flags are parsed)
    Case("speedups", ("--config.candidates=abc",), "config.candidates", "got 'abc'; allowed: an integer"),
    Case("speedups", ("--config.early_stopping.eta=1.5",), "config.early_stopping.eta", "allowed: an integer"),
    Case("speedups", ("--config.train.learning_rate=fast",), "config.train.learning_rate", "allowed: a number"),
    Case("speedups", ("--config.progress=maybe",), "config.progress", "allowed: true or false"),
    # out of range, and bounds that keep a run finite
    Case("speedups", ("--config.candidates=1",), "config.candidates", "got 1; allowed: an integer in [2, 1024]"),
    Case("speedups", ("--config.candidates=100000",), "config.candidates", "got 100000;"),
    Case("speedups", ("--config.weight_sharing.supernet_steps=1000000000",), "config.weight_sharing.supernet_steps"),
    Case("speedups", ("--config.pruning.repeats=1000",), "config.pruning.repeats"),
    Case("speedups", ("--config.train.steps=0",), "config.train.steps"),
    Case("speedups", ("--config.train.learning_rate=inf",), "config.train.learning_rate", "got inf;"),
    Case("speedups", ("--config.train.learning_rate=nan",), "config.train.learning_rate", "got nan;"),
    Case("speedups", ("--config.train.momentum=1.0",), "config.train.momentum"),
    Case("speedups", ("--config.pruning.sparsity=1.5",), "config.pruning.sparsity"),
    Case("speedups", ("--config.pruning.channel_fraction=0.0",), "config.pruning.channel_fraction"),
    Case("speedups", ("--config.incremental.child_fraction=2.0",), "config.incremental.child_fraction"),
    Case("speedups", ("--config.image_size=10",), "config.image_size", "multiple of 4"),
    Case("speedups", ("--config.early_stopping.min_steps=50",), "config.early_stopping.min_steps",
         "at most train.steps (18)"),
    Case("speedups", ("--config.incremental.eval_points=10",), "config.incremental.eval_points",
         "the child's steps (4"),
    # choices
    Case("speedups", ("--config.speedup=distillation",), "config.speedup", "allowed: weight_sharing, pruning,"),
    Case("speedups", ("--config.space=macro",), "config.space", "allowed: nb201"),
    Case("speedups", ("--config.pruning.mode=sometimes",), "config.pruning.mode", "allowed: before, during"),
    Case("speedups", ("--config.weight_sharing.off_path=random",), "config.weight_sharing.off_path"),
    Case("speedups", ("--config.dataset=no_such_dataset",), "config.dataset", "'no_such_dataset'"),
    # the command line itself
    Case("speedups", ("--wrokdir=x",), "--wrokdir", "unknown flag; did you mean --workdir?"),
    Case("speedups", ("--config=experiments/configs/speedups.py:bogus",), "--config", "allowed: small"),
    Case("speedups", ("--config=no_such_config.py",), "--config", "no such file"),
    Case("speedups", ("--publish", "No Good"), "--publish"),
]


def run_entry(entry: str, *args: str) -> tuple[subprocess.CompletedProcess, float]:
    """`python -m experiments.ENTRY ARGS` from the repository root on one CPU device; (process, wall s)."""
    env = {**os.environ, "XLA_FLAGS": "", "JAX_PLATFORMS": "cpu"}
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", f"experiments.{entry}", *args], capture_output=True, text=True,
                          cwd=REPO, env=env, timeout=120)
    return proc, time.perf_counter() - start


def snapshot(folder) -> dict[str, tuple[bytes, int]]:
    """Every file under `folder` with its bytes and modification time."""
    out = {}
    for root, dirs, files in os.walk(folder):
        for name in dirs + files:
            path = os.path.join(root, name)
            rel = os.path.relpath(path, folder)
            out[rel] = (open(path, "rb").read() if name in files else b"<dir>", os.stat(path).st_mtime_ns)
    return out


def assert_refused(proc: subprocess.CompletedProcess, seconds: float, field: str, says: str = "") -> str:
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert len(lines) == 1, proc.stderr[-3000:]
    assert lines[0].startswith(f"error: {field}: "), lines[0]
    assert says in lines[0], lines[0]
    assert proc.stdout == ""
    assert seconds < SECONDS, f"{seconds:.1f} s"
    return lines[0]


@pytest.mark.parametrize("case", CASES, ids=[" ".join(c.overrides) + f" ({c.entry})" for c in CASES])
def test_bad_input_is_refused_in_one_line_before_any_work(tmp_path, case):
    workdir = tmp_path / "work"  # an existing workdir with a result in it: the refusal must not touch it
    workdir.mkdir()
    (workdir / "results.json").write_text('{"kept": true}')
    before = snapshot(workdir)
    proc, seconds = run_entry(case.entry, "--config", CONFIGS[case.entry], *case.overrides, "--workdir", str(workdir))
    assert_refused(proc, seconds, case.field, case.says)
    assert snapshot(workdir) == before


def test_a_refused_run_creates_no_workdir(tmp_path):
    workdir = tmp_path / "new" / "work"
    proc, seconds = run_entry("speedups", "--config", CONFIGS["speedups"], "--config.early_stopping.eta=1",
                              "--workdir", str(workdir))
    assert_refused(proc, seconds, "config.early_stopping.eta")
    assert os.listdir(tmp_path) == []


def test_the_unknown_field_is_explained_without_a_config_flag(tmp_path):
    """Without --config, ml_collections applies overrides while the flag is defined: the same one line."""
    proc, seconds = run_entry("speedups", "--config.trian.steps=3", "--workdir", str(tmp_path / "w"))
    assert_refused(proc, seconds, "config.trian.steps", "did you mean train.steps?")
    assert not (tmp_path / "w").exists()


@pytest.mark.parametrize("where", ["file", "under_a_file", "unwritable"])
def test_a_workdir_that_cannot_be_used_is_refused_before_any_work(tmp_path, where):
    a_file = tmp_path / "a_file"
    a_file.write_text("not a directory")
    workdir = {"file": a_file, "under_a_file": a_file / "work", "unwritable": tmp_path / "locked" / "work"}[where]
    if where == "unwritable":
        if os.geteuid() == 0:
            pytest.skip("root can write to any directory")
        (tmp_path / "locked").mkdir(mode=0o500)
    before = snapshot(tmp_path)
    proc, seconds = run_entry("speedups", "--config", CONFIGS["speedups"], "--workdir", str(workdir))
    (tmp_path / "locked").exists() and (tmp_path / "locked").chmod(0o700)
    assert_refused(proc, seconds, "--workdir", "is a file" if where != "unwritable" else "not writable")
    assert snapshot(tmp_path) == before


def test_an_unwritable_workdir_or_parent_is_refused(tmp_path, monkeypatch, capsys):
    """The unwritable branch even as root (where the subprocess case above is skipped): os.access says no."""
    monkeypatch.setattr(cli.os, "access", lambda path, mode: False)
    for workdir in (tmp_path, tmp_path / "new" / "work"):
        with pytest.raises(SystemExit) as exit_info:
            cli.check_workdir(str(workdir))
        assert exit_info.value.code == 2
        line = capsys.readouterr().err.strip()
        assert line.startswith(f"error: --workdir: got '{workdir}'") and "not writable" in line
    assert os.listdir(tmp_path) == []


def test_missing_workdir_flag_is_one_line():
    proc, seconds = run_entry("speedups", "--config", CONFIGS["speedups"])
    assert_refused(proc, seconds, "--workdir", "required")


def test_dotted_keys_and_the_suggestion():
    from experiments.configs import speedups as speedups_config

    config = speedups_config.get_config("small")
    keys = cli.dotted_keys(config)
    assert "train" in keys and "train.steps" in keys and "early_stopping.eta" in keys and "train.trian" not in keys
    assert cli.unknown_field_line(config, "train.steps") is None
    assert cli.unknown_field_line(config, "trian.steps") == (
        "error: config.trian.steps: unknown field; did you mean train.steps?")
    assert cli.unknown_field_line(config, "seed.x").startswith("error: config.seed.x: unknown field")


def test_a_refused_run_removes_only_the_empty_folders_it_made(tmp_path):
    made = cli.missing_dirs(str(tmp_path / "a" / "b"))
    assert made == [str(tmp_path / "a" / "b"), str(tmp_path / "a")]
    (tmp_path / "a" / "b").mkdir(parents=True)
    cli.remove_if_empty(made)
    assert os.listdir(tmp_path) == []
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "b" / "partial.json").write_text("{}")  # something a run wrote: never deleted
    cli.remove_if_empty(made)
    assert (tmp_path / "a" / "b" / "partial.json").exists()


def test_every_speedups_setting_is_validated():
    """Each field of configs/speedups.py has a rule in speedups.validate (bounds, choices or a string type)."""
    from experiments import speedups
    from experiments.configs import speedups as speedups_config

    config = speedups_config.get_config()
    leaves = {k for k in cli.dotted_keys(config) if not isinstance(cli.lookup(config, k), type(config))}
    ruled = set(speedups.BOUNDS) | set(speedups.CHOICES) | set(speedups.STRINGS) | {"space"}
    assert leaves == ruled
    for variant in (None, "small"):
        speedups.validate(speedups_config.get_config(variant))  # the shipped settings pass


def test_an_unknown_dataset_lists_close_names_not_the_catalogue():
    from jaxnas.data import tfds_source

    hint = tfds_source.unknown_name_hint("minst", ["digits", "npz"])
    assert hint.startswith("did you mean mnist") and "tfds.list_builders()" in hint
    assert len(tfds_source.close_names("minst", ["digits", "npz"])) <= 10 and len(hint) < 400
    assert tfds_source.unknown_name_hint("zzzzqqq").startswith("List the TFDS catalogue with:")
