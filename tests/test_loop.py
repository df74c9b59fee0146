"""The one host loop (jaxnas/common/loop.py) on a toy job: a resumed run ends where an uninterrupted one does,
a non-finite step is refused naming it, metrics.jsonl holds one line per step (none duplicated after a resume),
a damaged newest checkpoint falls back to the previous one, and a changed setting is refused before any restore."""

import glob
import json
import os

import jax.numpy as jnp
import numpy as np
import pytest

from jaxnas.common.checkpoint import Checkpointer
from jaxnas.common.errors import ConfigError
from jaxnas.common.loop import flat_settings, run_loop

SETTINGS = {"rate": 0.5, "data": {"fingerprint": "abc", "shape": (3, 2)}}


def toy_step(poison: int | None = None):
    """x <- x * rate + i, with a non-finite result at step `poison` (1-based) left unapplied."""

    def step(i, state):
        new = state["x"] * 0.5 + i
        if poison is not None and i + 1 == poison:
            new = new * jnp.nan
        finite = jnp.all(jnp.isfinite(new))
        return {"x": jnp.where(finite, new, state["x"])}, {"x0": new[0], "finite": finite}

    return step


def run(tmp_path, end=6, settings=SETTINGS, poison=None, **kw):
    state = {"x": jnp.arange(3.0)}
    return run_loop(toy_step(poison), state, end=end, settings=settings, checkpoint_dir=str(tmp_path / "ckpt"),
                    metrics_path=str(tmp_path / "metrics.jsonl"), checkpoint_every=2, label="toy", **kw)


def truncate_newest(checkpoints) -> list[int]:
    """Cuts every file of the newest checkpoint in `checkpoints` in half (a crash mid-write); returns the other
    steps (the entry points' tests use it too)."""
    steps = sorted(int(d) for d in os.listdir(checkpoints) if d.isdigit())
    for p in glob.glob(os.path.join(checkpoints, str(steps[-1]), "**"), recursive=True):
        if os.path.isfile(p):
            with open(p, "r+b") as f:
                f.truncate(os.path.getsize(p) // 2)
    return steps[:-1]


def refused_before_restore(monkeypatch, call) -> str:
    """The one-line ConfigError message of `call()`, run with `Checkpointer.restore` failing the test: the refusal
    must come from the settings check, before any checkpoint is read (the entry points' tests use it too)."""
    with monkeypatch.context() as m:
        m.setattr(Checkpointer, "restore", lambda *a, **k: pytest.fail("restored before the settings were checked"))
        with pytest.raises(ConfigError) as err:
            call()
    message = str(err.value)
    assert "\n" not in message, message
    return message


def lines(tmp_path):
    return [json.loads(line) for line in open(tmp_path / "metrics.jsonl")]


def test_resume_equals_uninterrupted_and_metrics_have_one_line_per_step(tmp_path):
    full = run_loop(toy_step(), {"x": jnp.arange(3.0)}, end=6, settings=SETTINGS)
    killed = run(tmp_path, stop_after=3)  # steps 1-3 done, checkpoint at 2: step 3 is lost with the "kill"
    assert killed.calls == 3 and [r["step"] for r in lines(tmp_path)] == [1, 2, 3]
    resumed = run(tmp_path)
    assert resumed.resumed_from == 2 and resumed.calls == 4 and resumed.position == 6
    np.testing.assert_array_equal(resumed.state["x"], full.state["x"])
    assert [r["step"] for r in resumed.history] == [1, 2, 3, 4, 5, 6]
    assert [r["x0"] for r in resumed.history] == [r["x0"] for r in full.history]
    written = lines(tmp_path)  # rewritten from the restored history: step 3 once, not twice
    assert [r["step"] for r in written] == [1, 2, 3, 4, 5, 6]
    assert [r["x0"] for r in written] == [r["x0"] for r in full.history]
    again = run(tmp_path)  # finished: restored, nothing run, the stream unchanged
    assert again.resumed_from == 6 and again.calls == 0 and [r["step"] for r in lines(tmp_path)] == list(range(1, 7))


def test_a_non_finite_step_is_refused_naming_it_and_not_applied(tmp_path):
    with pytest.raises(FloatingPointError, match=r"^toy diverged at step 3 \(x0 nan\): the step was not applied; "
                                                 r"lower the rate$"):
        run(tmp_path, poison=3, hint="lower the rate")
    with Checkpointer(tmp_path / "ckpt") as ckpt:
        assert ckpt.steps() == [2]  # nothing saved for the refused step
    assert [r["step"] for r in lines(tmp_path)] == [1, 2]


def test_a_damaged_newest_checkpoint_falls_back_to_the_previous_one(tmp_path):
    full = run(tmp_path / "a", end=8)
    run(tmp_path / "b", end=6)  # checkpoints 4 and 6 kept
    assert truncate_newest(tmp_path / "b" / "ckpt") == [4]
    said = []
    resumed = run(tmp_path / "b", end=8, announce=said.append)
    assert resumed.resumed_from == 4 and len(said) == 1 and "resuming from step 4" in said[0]
    np.testing.assert_array_equal(resumed.state["x"], full.state["x"])
    assert [r["step"] for r in lines(tmp_path / "b")] == list(range(1, 9))


def test_a_changed_setting_is_refused_in_one_line_before_any_restore(tmp_path, monkeypatch):
    run(tmp_path, end=2)

    def no_restore(*args, **kwargs):
        raise AssertionError("an array was read before the settings were checked")

    monkeypatch.setattr(Checkpointer, "restore", no_restore)
    other = {"rate": 0.5, "data": {"fingerprint": "abd", "shape": (3, 2)}}
    with pytest.raises(ConfigError) as err:
        run(tmp_path, end=4, settings=other)
    msg = str(err.value)
    assert msg.startswith("workdir: ") and "data.fingerprint (saved 'abc', now 'abd')" in msg and "\n" not in msg
    assert "rate" not in msg.split("settings:")[1]  # only the differing key is named


def test_position_read_from_the_state_for_chunks_of_varying_length(tmp_path):
    """A chunk may advance several units (a NEAT chunk stops early once solved): the loop asks the state."""

    def chunk(i, s):
        n = min(3, 7 - int(s["n"]))
        return {"n": s["n"] + n}, {"advanced": n}

    out = run_loop(chunk, {"n": jnp.array(0)}, end=7, settings={}, position=lambda s: int(s["n"]),
                   checkpoint_dir=str(tmp_path / "c"), checkpoint_every=1, unit="generation")
    assert [r["generation"] for r in out.history] == [3, 6, 7] and out.position == 7
    with Checkpointer(tmp_path / "c") as ckpt:
        assert ckpt.steps() == [7, 6]


def test_settings_are_flattened_to_dotted_keys():
    assert flat_settings({"a": 1, "b": {"c": (1, 2), "d": {"e": "x"}}, "f": {}}) == {
        "a": 1, "b.c": [1, 2], "b.d.e": "x", "f": {}}


def test_progress_says_compiling_and_how_long_it_took(tmp_path, capsys):
    """With progress on, the first call of a run (and any call a job marks `compiles`) is reported with its time."""
    def step(i, state):
        return {"x": state["x"] + 1}, {"compiles": i == 3}

    run_loop(step, {"x": jnp.zeros(())}, end=5, settings={}, progress=True, desc="toy")
    out = capsys.readouterr().out
    assert "toy: step 1 took " in out and "toy: step 4 took " in out and "toy: step 2 took" not in out
    assert out.count("(compiling included)") == 2
