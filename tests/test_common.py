"""Shared plumbing: registry errors, JSON-lines, reports, orbax checkpoints with typed state."""

import glob
import json
import os

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
import optax
import pytest

from jaxnas.common import ConfigError, Registry, check_choice, check_positive
from jaxnas.common.checkpoint import Checkpointer, fingerprint
from jaxnas.common.metrics import JsonlWriter, read_jsonl, to_jsonable, write_json
from jaxnas.common.report import Report, markdown_table


def test_registry_lists_choices_in_errors():
    reg = Registry("widget")
    reg.register("a")(1)
    reg.register("b")(2)
    assert reg.get("b") == 2 and list(reg) == ["a", "b"] and "a" in reg
    with pytest.raises(ConfigError, match=r"^kind: unknown widget 'c'; allowed: a, b$"):
        reg.get("c", field="kind")
    with pytest.raises(KeyError, match="twice"):
        reg.register("a")(3)


def test_checks_name_the_field():
    with pytest.raises(ConfigError, match=r"^runs: got 0; allowed: an integer > 0$"):
        check_positive("runs", 0, integer=True)
    with pytest.raises(ConfigError, match="^runs:"):
        check_positive("runs", 2.5, integer=True)
    with pytest.raises(ConfigError, match="^budget_s:"):
        check_positive("budget_s", True)
    with pytest.raises(ConfigError, match="allowed: x, y"):
        check_choice("mode", "z", ["x", "y"])


def test_jsonl_round_trip_and_json_conversion(tmp_path):
    path = tmp_path / "m" / "metrics.jsonl"
    with JsonlWriter(path) as w:
        w.write({"step": np.int32(1), "loss": jnp.float32(0.5), "v": jnp.arange(3)})
        w.write({"step": 2, "loss": float("nan")})
    rows = list(read_jsonl(path))
    assert rows == [{"step": 1, "loss": 0.5, "v": [0, 1, 2]}, {"step": 2, "loss": None}]
    assert to_jsonable({"a": (np.float64(1.5), np.bool_(True))}) == {"a": [1.5, True]}
    write_json(tmp_path / "r.json", {"x": np.float32(2.0)})
    assert json.loads((tmp_path / "r.json").read_text()) == {"x": 2.0}


def test_report_writes_markdown_and_png(tmp_path):
    report = Report(tmp_path / "rep", "Title")
    report.heading("Section")
    report.text("Some words.")
    report.table([{"name": "a", "value": 1.23456}, {"name": "|x~0|+|y~1|", "value": 2.0}], digits=3)
    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    png = report.figure(fig, "plots/line.png", "A line")
    path = report.write()
    text = open(path).read()
    assert text.startswith("# Title") and "## Section" in text and "| a | 1.235 |" in text
    assert "| \\|x~0\\|+\\|y~1\\| | 2.000 |" in text  # a cell's own `|` escaped, not a column break
    assert "![A line](plots/line.png)" in text
    with open(png, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    assert markdown_table([]) == ""


def test_checkpoint_round_trip_keeps_types(tmp_path):
    params = {"w": jnp.ones((3, 2)), "b": jnp.zeros(2)}
    opt = optax.adam(1e-3)
    state = (params, opt.init(params), jax.random.key(7), jnp.int32(5))
    with Checkpointer(tmp_path / "ckpt") as ckpt:
        assert ckpt.restore(state) is None
        ckpt.save(3, state, {"note": "x"})
        ckpt.save(4, jax.tree.map(lambda a: a, state), {"note": "y"})
        step, restored, meta = ckpt.restore(state)
    assert step == 4 and meta == {"note": "y"}
    assert type(restored[1][0]).__name__ == "ScaleByAdamState"  # optax named tuple survives
    assert jax.tree.structure(restored) == jax.tree.structure(state)
    assert jnp.array_equal(jax.random.key_data(restored[2]), jax.random.key_data(state[2]))
    assert os.path.isdir(tmp_path / "ckpt")


def test_restored_arrays_are_placed_as_their_templates(tmp_path):
    """Uncommitted templates (a fresh run's arrays) restore uncommitted, keys included, so a resumed run calls the
    fresh run's compiled programs (checked: one compile for both); a template committed to a device keeps it."""
    device = jax.devices()[0]
    state = {"w": jnp.arange(4.0), "key": jax.random.key(3), "pinned": jax.device_put(jnp.ones(2), device)}
    assert not state["w"].committed and state["pinned"].committed
    with Checkpointer(tmp_path / "ckpt") as ckpt:
        ckpt.save(1, state)
        _, restored, _ = ckpt.restore(state)
    assert not restored["w"].committed and not restored["key"].committed and restored["pinned"].committed
    np.testing.assert_array_equal(restored["w"], state["w"])
    assert jnp.array_equal(jax.random.key_data(restored["key"]), jax.random.key_data(state["key"]))
    traced = []

    @jax.jit
    def f(w, key):
        traced.append(1)
        return w + jax.random.uniform(key)

    np.testing.assert_array_equal(f(state["w"], state["key"]), f(restored["w"], restored["key"]))
    assert len(traced) == 1


def _two_checkpoints(directory):
    ckpt = Checkpointer(directory)
    for step in (1, 2):
        ckpt.save(step, {"w": jnp.full((4,), float(step))}, {"seed": 0})
    ckpt.close()


def _damage(step_dir, what):
    """Truncates the data files (`what="arrays"`) or every file (`"all"`) of one saved checkpoint."""
    files = [p for p in glob.glob(os.path.join(step_dir, "**"), recursive=True) if os.path.isfile(p)]
    if what == "arrays":
        files = [p for p in files if os.sep + "d" + os.sep in p]
    assert files
    for p in files:
        with open(p, "r+b") as f:
            f.truncate(os.path.getsize(p) // 2)


@pytest.mark.parametrize("what", ["arrays", "all"])
def test_resume_falls_back_to_the_newest_checkpoint_that_restores(tmp_path, what):
    _two_checkpoints(tmp_path / "ckpt")
    _damage(str(tmp_path / "ckpt" / "2"), what)
    said = []
    with Checkpointer(tmp_path / "ckpt") as ckpt:
        step, state, meta = ckpt.resume({"w": jnp.zeros(4)}, {"seed": 0}, announce=said.append)
    assert step == 1 and meta == {"seed": 0} and jnp.array_equal(state["w"], jnp.ones(4))
    assert len(said) == 1 and "resuming from step 1" in said[0] and "step 2:" in said[0]


def test_resume_names_the_directory_when_no_checkpoint_restores(tmp_path):
    _two_checkpoints(tmp_path / "ckpt")
    for step in ("1", "2"):
        _damage(str(tmp_path / "ckpt" / step), "all")
    with Checkpointer(tmp_path / "ckpt") as ckpt, pytest.raises(ConfigError) as err:
        ckpt.resume({"w": jnp.zeros(4)}, {"seed": 0})
    assert str(err.value).startswith("workdir: no checkpoint in ") and "delete that directory" in str(err.value)
    assert "\n" not in str(err.value)


def test_resume_checks_settings_before_reading_any_array(tmp_path):
    _two_checkpoints(tmp_path / "ckpt")
    wrong_shape = {"w": jnp.zeros((7, 3))}  # restoring into this would fail inside orbax
    with Checkpointer(tmp_path / "ckpt") as ckpt, pytest.raises(ConfigError, match=r"^workdir: .*: seed \(saved 0, now 1\); use a fresh"):
        ckpt.resume(wrong_shape, {"seed": 1})


def test_fingerprint_tells_contents_apart():
    a = np.arange(6, dtype=np.float32)
    assert fingerprint(a, "x") == fingerprint(a.copy(), "x")
    assert len({fingerprint(a), fingerprint(a + 1), fingerprint(a.reshape(2, 3)), fingerprint(a.astype(np.float64)),
                fingerprint(a, "y")}) == 5
