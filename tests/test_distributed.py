"""Two processes on this machine (a localhost coordinator, CPU collectives through gloo) give the result of one
(issue 26's multi-host): population training splits the candidates by process and gathers them on every process;
through an entry point only process 0 writes the work directory."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest

from jaxnas.common import distributed
from jaxnas.common.errors import ConfigError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
pytestmark = pytest.mark.usefixtures("fast_compile")  # and the same in the processes (equal programs)

# Each process: the test's 8x8 digits, a tiny NB201 network, 5 candidates (process 0 trains 3, process 1 trains 2),
# every process saving what it ends with.
SCRIPT = """
import sys, numpy as np
from jaxnas.common import distributed
distributed.initialize()
import jax
from jaxnas.data import load_images
from jaxnas.evaluation.population import PopulationTrainer, TrainSettings
from jaxnas.models.nb201 import NB201Network
from jaxnas.spaces import nb201
data = load_images("digits", size=8, data_dir=sys.argv[1])
archs = np.asarray(nb201.SPACE.decode(np.array([0, 6111, 15624, 3906, 781])))
trainer = PopulationTrainer(NB201Network(channels=4, cells_per_stage=1, num_classes=10), data,
                            TrainSettings(steps=6, batch_size=32, learning_rate=0.1), chunk_size=2)
s = trainer.score(archs, seed=3, first_id=7)
np.savez(sys.argv[2], valid=s.valid_acc, test=s.test_acc, curve=s.train_loss, devices=len(jax.devices()),
         local=len(jax.local_devices()), index=jax.process_index())
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(process: int, port: int, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JAXNAS_")}
    env.update({"XLA_FLAGS": "--xla_force_host_platform_device_count=1", "JAX_DISABLE_MOST_OPTIMIZATIONS": "1",
                "JAXNAS_DISTRIBUTED": "1",
                "JAXNAS_COORDINATOR": f"127.0.0.1:{port}", "JAXNAS_NUM_PROCESSES": "2",
                "JAXNAS_PROCESS_ID": str(process), "PYTHONPATH": ROOT, **extra})
    return env


def _run_both(cmds, port, cwd, **extra):
    procs = [subprocess.Popen(cmd, cwd=cwd, env=_env(i, port, **extra), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for i, cmd in enumerate(cmds)]
    outs = [p.communicate(timeout=600) for p in procs]
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, err[-3000:]
    return outs


@pytest.mark.slow
def test_two_processes_train_a_population_like_one(tmp_path, digits_8x8):
    data_dir = str(tmp_path / "tfds")
    script = tmp_path / "population.py"
    script.write_text(SCRIPT)
    cmds = [[sys.executable, str(script), data_dir, str(tmp_path / f"p{i}.npz")] for i in range(2)]
    _run_both(cmds, _free_port(), ROOT)
    p0, p1 = (np.load(tmp_path / f"p{i}.npz") for i in range(2))
    assert int(p0["devices"]) == 2 and int(p0["local"]) == 1 and [int(p0["index"]), int(p1["index"])] == [0, 1]

    # the same population in one process (this one), on one device
    import jax

    from jaxnas.evaluation.population import PopulationTrainer, TrainSettings
    from jaxnas.models.nb201 import NB201Network
    from jaxnas.spaces import nb201

    archs = np.asarray(nb201.SPACE.decode(np.array([0, 6111, 15624, 3906, 781])))
    one = PopulationTrainer(NB201Network(channels=4, cells_per_stage=1, num_classes=10), digits_8x8,
                            TrainSettings(steps=6, batch_size=32, learning_rate=0.1), chunk_size=2,
                            devices=jax.local_devices()[:1]).score(archs, seed=3, first_id=7)
    for p in (p0, p1):  # every process ends with every candidate, in order
        np.testing.assert_allclose(p["curve"], one.train_loss, rtol=2e-5, atol=2e-5)
        np.testing.assert_allclose(p["valid"], one.valid_acc, atol=1e-3)
        np.testing.assert_allclose(p["test"], one.test_acc, atol=1e-3)


def test_through_an_entry_point_only_process_0_writes_the_workdir(tmp_path):
    """The table protocol's runs are split between the processes and gathered (the result of one process); process 1
    works in a private temporary folder it removes, prints nothing, and publishes nothing."""
    work = tmp_path / "work"
    (tmp_path / "tmp").mkdir()
    cmd = [sys.executable, "-m", "experiments.nb201", "--config", "experiments/configs/nb201.py:small",
           "--config.strategy=random", "--config.runs=4", "--config.progress=false", "--workdir", str(work)]
    (out0, _), (out1, _) = _run_both([cmd, cmd], _free_port(), ROOT, TMPDIR=str(tmp_path / "tmp"))
    summary = json.loads(out0[out0.index("\n{") + 1:])  # the summary the writer prints last
    assert summary["runs"] == 4 and "\n{" not in out1
    # the table protocol's runs were split (runs 0, 2 and 1, 3) and gathered: the result of one process
    from experiments import nb201
    from experiments.configs import nb201 as nb201_config

    c = nb201_config.get_config("small")
    c.strategy, c.runs, c.progress = "random", 4, False
    one = nb201.run(c, str(tmp_path / "one"))
    for key in ("valid_mean", "valid_std", "test_mean", "evaluations_mean"):
        assert summary[key] == pytest.approx(one[key], rel=1e-6), key
    assert summary["most_chosen_arch"] == one["most_chosen_arch"]
    assert (work / "results.json").exists() and (work / "report.md").exists()
    assert os.listdir(tmp_path / "tmp") == []  # process 1's private folder is gone


def test_the_switch_is_read_strictly(monkeypatch):
    for value, expected in (("1", True), ("true", True), ("0", False), ("", False)):
        monkeypatch.setenv(distributed.ENV, value)
        assert distributed.requested() is expected
    monkeypatch.setenv(distributed.ENV, "yes")
    with pytest.raises(ConfigError, match="^JAXNAS_DISTRIBUTED: got 'yes'; allowed: 1, true, 0, false$"):
        distributed.requested()


def test_one_process_shares_and_gathers_everything():
    assert distributed.share(5).tolist() == [0, 1, 2, 3, 4] and distributed.is_writer()
    tree = {"a": np.arange(5.0)}
    assert distributed.gather_rows(tree, 5) is tree
