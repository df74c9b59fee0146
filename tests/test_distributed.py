"""Two processes on this machine (a localhost coordinator, CPU collectives through gloo) give the result of one
(issue 26's multi-host): population training splits the candidates by process and gathers them on every process;
a data-parallel trainer (MTL) splits each global batch between the processes' devices; through an entry point only
process 0 writes the work directory."""

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


# Each process: a tiny multi-task model (dropout on, so the per-device random streams matter) trained 4 steps on a
# global batch of 8 split over the two processes' devices, checkpointed every 2 steps into its own folder, then
# predicting a corpus on its own copy of the weights.
MTL_SCRIPT = """
import sys, numpy as np
from jaxnas.common import distributed
if distributed.requested():  # the one-process reference runs the same script
    distributed.initialize()
import jax
from mtl.data import Corpus, TextTask
from mtl.encoder import BertConfig, Tokenizer
from mtl.losses import make_loss
from mtl.model import HeadConfig, MultiTaskModel, init_params
from mtl.train import MultiTaskTrainer, TrainSettings
tasks = (TextTask("topic", ("a", "b", "c")), TextTask("sentiment", ("neg", "pos")))
rng = np.random.default_rng(0)
words = "good bad movie film book tweet news great awful fine plot actor story price".split()
texts = [" ".join(rng.choice(words, size=rng.integers(2, 12))) for _ in range(40)]
corpus = Corpus(np.array(texts, object), {"topic": rng.integers(0, 3, 40), "sentiment": rng.integers(0, 2, 40)}, tasks)
cfg = BertConfig(hidden_size=16, num_layers=1, num_heads=2, intermediate_size=32, max_position_embeddings=32,
                 hidden_dropout=0.1, attention_dropout=0.1)
model = MultiTaskModel(cfg, (("topic", 3), ("sentiment", 2)), HeadConfig(hidden=8, dropout=0.1))
settings = TrainSettings(steps=4, batch_size=8, max_length=16, pad_multiple=8, lr_encoder=1e-3, lr_heads=1e-2,
                         checkpoint_every=2, eval_batch_size=16)
devices = jax.devices() if len(sys.argv) < 4 else jax.devices()[:int(sys.argv[3])]
trainer = MultiTaskTrainer(model, init_params(model, jax.random.key(0)), [corpus],
                           {t.name: make_loss("focal", corpus.counts(t.name)) for t in tasks}, "none", Tokenizer(),
                           settings, devices=devices)
state, history = trainer.train(jax.random.key(1), workdir=sys.argv[1])
logits = trainer.predict(state.params, corpus)
leaves = [np.asarray(x) for x in jax.tree.leaves(jax.device_get(state.params))]
np.savez(sys.argv[2], losses=np.array([h["loss"] for h in history]), topic=logits["topic"],
         sentiment=logits["sentiment"], devices=len(trainer.devices), **{f"leaf{i}": x for i, x in enumerate(leaves)})
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
        np.testing.assert_allclose(p["valid"], one.valid_acc, atol=1e-5)
        np.testing.assert_allclose(p["test"], one.test_acc, atol=1e-5)


@pytest.mark.slow
def test_two_processes_train_a_multi_task_model_like_one(tmp_path):
    """Two processes of one device each == one process of two devices (the same mesh size): the losses, the
    trained weights (every leaf) and the predictions, on both processes."""
    script = tmp_path / "train_mtl.py"  # not mtl.py, which would hide the package
    script.write_text(MTL_SCRIPT)
    cmds = [[sys.executable, str(script), str(tmp_path / f"ck{i}"), str(tmp_path / f"p{i}.npz")] for i in range(2)]
    _run_both(cmds, _free_port(), ROOT)
    env = {k: v for k, v in os.environ.items() if not k.startswith("JAXNAS_")}
    env.update({"XLA_FLAGS": "--xla_force_host_platform_device_count=2", "JAX_DISABLE_MOST_OPTIMIZATIONS": "1",
                "PYTHONPATH": ROOT})
    subprocess.run([sys.executable, str(script), str(tmp_path / "ck_one"), str(tmp_path / "one.npz"), "2"],
                   cwd=ROOT, env=env, check=True, capture_output=True, timeout=600)
    one = np.load(tmp_path / "one.npz")
    assert int(one["devices"]) == 2
    for i in range(2):
        p = np.load(tmp_path / f"p{i}.npz")
        assert int(p["devices"]) == 2 and sorted(p.files) == sorted(one.files)
        for name in one.files:
            np.testing.assert_allclose(p[name], one[name], rtol=1e-5, atol=1e-6, err_msg=name)
    assert os.path.isdir(tmp_path / "ck0") and os.path.isdir(tmp_path / "ck1")  # each process checkpointed


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
