"""DARTS on its own cell (`jaxnas.models.darts_nasnet`): the edges' ops computed together equal each op alone, the
jittable discretisation equals the paper's rule, a one-hot op weight runs one op, and the entry point end to end
on the digits (`--config.space=nasnet`, a tiny 3-cell supernet)."""

from __future__ import annotations

import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments import darts as entry
from experiments.configs import darts as darts_config
from jaxnas.common.errors import ConfigError
from jaxnas.evaluation import darts as D
from jaxnas.models import darts_nasnet as M
from jaxnas.models.darts_cell import DARTS_OPS, derive_cell
from jaxnas.spaces import nasnet

pytestmark = pytest.mark.usefixtures("fast_compile")
B, H = 6, 8


@pytest.fixture(scope="module")
def supernet():
    net = M.DartsNASNetNetwork(channels=3, cells_per_stage=1, num_classes=4, stages=2)
    x = jax.random.normal(jax.random.key(0), (B, H, H, 2))
    w = jax.nn.softmax(jax.random.normal(jax.random.key(1), (2, M.NUM_EDGES, M.NUM_OPS)), -1)
    v = jax.jit(lambda: net.init(jax.random.key(2), x, w, False))()
    return net, v, x


@pytest.mark.parametrize("cell,src", [("cell0", 0), ("cell0", 4), ("cell1", 1), ("cell1", 3)])
def test_the_edges_ops_computed_together_equal_each_op_alone(supernet, cell, src):
    """`source_ops` (taps cut once, every edge's kernels in one einsum) against `apply_op` (the nasnet ops, one
    edge at a time), outputs and moved statistics, in training and evaluation mode; cell1 is a reduction cell, so
    src 1 runs the strided ops."""
    _, v, _ = supernet
    params = {k: p for k, p in v["params"][cell].items() if not k.startswith("pre")}
    stats = jax.tree.map(lambda a: a + 0.1 * jnp.arange(a.size).reshape(a.shape) / a.size, v["batch_stats"][cell]["ops"])
    f = stats["max_pool_3x3"]["bn"]["mean"].shape[-1]
    h = jax.random.normal(jax.random.key(5), (B, H, H, f))
    idx = np.asarray(M.edges_from(src))
    stride = 2 if cell == "cell1" and src < 2 else 1
    for train in (True, False):
        outs, new = jax.jit(lambda h, p, s: M.source_ops(h, p, s, idx, stride, train))(h, params, stats)
        assert sorted(outs) == [o for o, n in enumerate(DARTS_OPS) if n != "none"]
        for o, name in enumerate(DARTS_OPS):
            if name == "none":
                continue
            for k, e in enumerate(idx):
                p = jax.tree.map(lambda a: a[e], params.get(name, {}))
                s = jax.tree.map(lambda a: a[e], stats.get(name, {}))
                y, s2 = M.apply_op(name, h, p, s, stride, train)
                got = outs[o][k] if outs[o].shape[0] > 1 else outs[o][0]
                np.testing.assert_allclose(got, y, rtol=1e-4, atol=1e-4, err_msg=f"{name} edge {e}")
                if name in new:
                    jax.tree.map(lambda a, b: np.testing.assert_allclose(a[e], b, rtol=1e-4, atol=1e-6), new[name], s2)
        untouched = np.setdiff1d(np.arange(M.NUM_EDGES), idx)
        jax.tree.map(lambda a, b: np.testing.assert_array_equal(a[untouched], b[untouched]), new, stats)


def test_one_hot_weights_run_one_op_and_gdas_bias_shifts_edges(supernet):
    """A one-hot op weight on every edge makes the network that op's network: every `none` gives a cell of zeros,
    so the logits are the head's bias alone; the edge bias (GDAS's code estimator) enters every edge."""
    net, v, x = supernet
    none = jax.nn.one_hot(jnp.full((2, M.NUM_EDGES), M.NONE), M.NUM_OPS)
    logits = net.apply(v, x, none, False)
    np.testing.assert_allclose(logits, np.broadcast_to(v["params"]["head"]["bias"], logits.shape), atol=1e-6)
    biased = net.apply(v, x, none, False, jnp.ones((2, M.NUM_EDGES)))
    assert not np.allclose(biased, logits)
    skip = jax.nn.one_hot(jnp.full((2, M.NUM_EDGES), M.SKIP), M.NUM_OPS)
    assert np.all(np.isfinite(net.apply(v, x, skip, False)))
    with pytest.raises(ValueError, match="weights: expected shape"):
        net.apply(v, x, skip[0], False)


def test_jittable_discretisation_is_the_papers_rule():
    rng = np.random.default_rng(0)
    alpha = rng.normal(size=(5, 2, M.NUM_EDGES, M.NUM_OPS))
    alpha[0, :, :, M.NONE] = 10.0  # `none` strongest everywhere: still never chosen
    archs = np.asarray(jax.jit(M.derive)(alpha))
    cells = nasnet.cells_of(M.DARTS_SPACE)
    assert cells.output == "all" and archs.shape == (5, cells.num_positions)
    for k in range(5):
        genes = nasnet.as_cells(archs[k], M.STEPS)
        for c in range(2):
            mine = [(DARTS_OPS[M.EVAL_OPS.index(M.EVAL_OPS[o]) + 1], int(i)) for i, o in genes[c].reshape(-1, 2)]
            assert mine == derive_cell(alpha[k, c]), (k, c)
    assert "out=concat(2,3,4,5)" in M.DARTS_SPACE.to_string(archs[0])


def test_steps_sizes_the_cell_and_a_smaller_cell_derives_the_first_nodes():
    """`darts.steps` (DARTS's `Network(steps=...)`): alpha (2, 5, 8) for 2 nodes, an architecture of 2 combinations
    per cell, and the same discretisation as the 4-node cell's first two nodes on the shared edges."""
    from jaxnas.evaluation.darts_spaces import supernet_space

    space = supernet_space("nasnet", 2)
    assert space.alpha_shape == (2, 5, M.NUM_OPS) and supernet_space("nasnet", 2) is space
    alpha = np.random.default_rng(1).normal(size=(3, 2, M.NUM_EDGES, M.NUM_OPS))
    small = np.asarray(jax.jit(space.derive)(alpha[:, :, :5]))
    full = np.asarray(jax.jit(M.derive)(alpha))
    assert small.shape == (3, 16) and nasnet.cells_of(M.darts_space(2)).num_positions == 16
    np.testing.assert_array_equal(small.reshape(3, 2, 8), full.reshape(3, 2, 16)[:, :, :8])
    assert "out=concat(2,3)" in M.darts_space(2).to_string(small[0])
    net = space.build(2, 1, 2, 4)
    x = jnp.ones((2, 8, 8, 1))
    v = net.init(jax.random.key(0), x, jnp.ones(space.alpha_shape) / M.NUM_OPS, False)
    assert net.apply(v, x, jnp.ones(space.alpha_shape) / M.NUM_OPS, False).shape == (2, 4)
    with pytest.raises(ConfigError, match="^darts.steps.*allowed on nb201: 4"):
        D.DartsSettings(space="nb201", steps=3)
    with pytest.raises(ConfigError, match="^darts.steps"):
        D.DartsSettings(space="nasnet", steps=0)


def test_settings_refuse_what_the_space_cannot_do():
    with pytest.raises(ConfigError, match="^darts.space"):
        D.DartsSettings(space="macro")
    with pytest.raises(ConfigError, match="^darts.stages"):
        D.DartsSettings(space="nb201", stages=2)
    s = D.DartsSettings(space="nasnet", stages=2, method="darts_minus")
    mix = D.step_mix(s, D.schedule(s, 0, 10), jax.random.key(0))
    w = D.op_weights(jnp.zeros((2, M.NUM_EDGES, M.NUM_OPS)), mix)  # DARTS-'s aux lands on skip_connect
    np.testing.assert_allclose(w[..., M.SKIP], 1 / M.NUM_OPS + 1.0)
    np.testing.assert_allclose(np.delete(np.asarray(w), M.SKIP, -1), 1 / M.NUM_OPS)


def test_nasnet_space_end_to_end(tmp_path_factory, optimized_compile):
    """The entry point on DARTS's cell (2 intermediate nodes: a fifth of the 4-node supernet's compile time): results
    per seed, the derived cells in the NASNet space trained from scratch, the report's figures; no table (none exists
    for this space)."""
    assert not jax.config.read("jax_disable_most_optimizations")  # optimized_compile came after fast_compile
    c = darts_config.get_config("nasnet_small")
    c.data_dir, c.progress = str(tmp_path_factory.mktemp("tfds")), False
    workdir = str(tmp_path_factory.mktemp("nasnet"))
    summary = entry.run(c, workdir)
    with open(os.path.join(workdir, "results.json")) as f:
        res = json.load(f)
    assert res["space"] == "nasnet" and summary["mean_final_table_test"] is None
    assert res["settings"]["darts"]["steps"] == 2
    assert res["edges_per_arch"] == 8 and len(res["per_seed"]) == 2
    for row in res["per_seed"]:
        assert len(row["archs"]) == 2 and row["final_arch"] == row["archs"][-1] and "table_test" not in row
        assert row["final_arch"].count("out=concat(2,3)") == 2
        assert 0 <= row["scratch_valid"][0] <= 1 and 0 <= row["parameter_free_edges"] <= 8
    share = np.array(list(res["op_share_by_epoch"].values()))
    assert list(res["op_share_by_epoch"]) == list(M.EVAL_OPS)
    np.testing.assert_allclose(share.sum(0), 1.0, rtol=1e-6)
    for name in ("report.md", "alphas.png", "ops.png"):
        assert os.path.getsize(os.path.join(workdir, name)) > 0, name
    assert not os.path.exists(os.path.join(workdir, "table_accuracy.png"))
    with open(os.path.join(workdir, "report.md")) as f:
        assert "on DARTS's cell (2 intermediate nodes), 2 seeds vmapped, 2 epochs" in f.read()
