"""Single-path supernet steps leave the weights (and momentum) of ops off the sampled path untouched."""

import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxnas.common.errors import ConfigError
from jaxnas.models.nb201 import CONV1, CONV3, NB201Network, NONE, POOL, SKIP
from jaxnas.evaluation.population import PopulationTrainer, TrainSettings
from jaxnas.evaluation.weight_sharing import make_supernet_step
from jaxnas.models.nb201_surgery import path_mask

ALL_CONV3 = np.full(6, CONV3, np.int32)
MIXED = np.array([CONV3, CONV1, NONE, SKIP, POOL, CONV1], np.int32)  # edge 2 off; edge 0 keeps only its 3x3


pytestmark = pytest.mark.usefixtures("fast_compile")  # exact checks, not speed (conftest)


@pytest.fixture(scope="module")
def setup(fast_compile):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 8, 8, 1)).astype(np.float32)
    y = rng.integers(0, 10, 32).astype(np.int32)
    data = types.SimpleNamespace(train_x=x, train_y=y, valid_x=x, valid_y=y, test_x=x, test_y=y)
    trainer = PopulationTrainer(NB201Network(4, 1, 10), data, TrainSettings(steps=10, batch_size=32))
    frozen, decayed = (make_supernet_step(trainer, 10, mode) for mode in ("frozen", "decayed"))

    def loss(params, batch_stats, arch, x, y):
        logits, _ = trainer.model.apply({"params": params, "batch_stats": batch_stats}, x, arch, train=True,
                                        mutable=["batch_stats"])
        return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(logits), y[:, None], 1))

    @jax.jit
    def probe(cand, arch, x, y):  # one compiled program for every check (compiling is the cost here)
        return (frozen(cand, arch, x, y), decayed(cand, arch, x, y)[0],
                jax.grad(loss)(cand.params, cand.batch_stats, arch, x, y), path_mask(cand.params, arch))

    init = jax.jit(lambda k, data: trainer.init_candidate(k, ALL_CONV3, data, total_steps=10))
    cand = init(jax.random.key(0), trainer.data)
    # one step on the all-3x3 path first, so every 3x3 kernel has a non-zero momentum buffer
    cand = probe(cand, ALL_CONV3, x, y)[0][0]
    return trainer, probe, cand, x, y


def _leaves(tree):
    return jax.tree_util.tree_leaves_with_path(tree)


def test_off_path_weights_and_momentum_are_bit_identical_after_a_step(setup):
    _, probe, cand, x, y = setup
    (after, loss), _, _, mask = probe(cand, MIXED, x, y)
    assert np.isfinite(float(loss))
    trace_before, trace_after = cand.opt_state[1][0].trace, after.opt_state[1][0].trace
    off = 0
    for tree_before, tree_after in ((cand.params, after.params), (trace_before, trace_after)):
        for (path, m), w0, w1 in zip(_leaves(mask), jax.tree.leaves(tree_before), jax.tree.leaves(tree_after)):
            m, w0, w1 = np.asarray(m), np.asarray(w0), np.asarray(w1)
            np.testing.assert_array_equal(w1[~m], w0[~m], err_msg=jax.tree_util.keystr(path))  # bit-identical
            off += (~m).sum()
    # what is off the path: 3x3 kernels of edges 1-5, 1x1 kernels of edges 0, 2, 3, 4, BNs of edges 2, 3, 4
    # (scale and bias), in each of the three cells (widths 4, 8, 16), in the weights and in the momentum
    assert off == 2 * sum(5 * 9 * c * c + 4 * c * c + 3 * 2 * c for c in (4, 8, 16))
    m = jax.tree.map(np.asarray, mask["Cell_0"])
    assert m["conv3x3"][:, 0, 0].tolist() == [True, False, False, False, False, False]
    assert m["conv1x1"][:, 0, 0].tolist() == [False, True, False, False, False, True]
    assert [bool(m[f"bn_edge{e}"]["scale"][0]) for e in range(6)] == [True, True, False, False, False, True]
    # the weights on the path did move, and the schedule's step count is global
    for name in ("conv3x3", "conv1x1"):
        moved = np.asarray(after.params["Cell_1"][name]) != np.asarray(cand.params["Cell_1"][name])
        np.testing.assert_array_equal(moved.any(axis=(1, 2)), np.asarray(mask["Cell_1"][name])[:, 0, 0])
    assert int(after.step) == int(cand.step) + 1


def test_frozen_step_equals_the_plain_step_on_the_path_and_the_plain_step_moves_off_path_weights(setup):
    _, probe, cand, x, y = setup
    (frozen, _), plain, _, mask = probe(cand, MIXED, x, y)
    moved_off_path = 0
    for m, w0, wf, wp in zip(*(jax.tree.leaves(t) for t in (mask, cand.params, frozen.params, plain.params))):
        m, w0, wf, wp = (np.asarray(a) for a in (m, w0, wf, wp))
        np.testing.assert_allclose(wf[m], wp[m], rtol=1e-6, atol=1e-8)  # two programs' rounding may differ
        moved_off_path += (wp[~m] != w0[~m]).sum()
    assert moved_off_path > 0  # without the mask, decay and momentum move off-path weights


def test_path_mask_covers_every_weight_with_a_gradient(setup):
    _, probe, cand, x, y = setup
    for arch in (MIXED, np.array([CONV1, NONE, CONV3, POOL, SKIP, CONV3], np.int32)):
        _, _, grads, mask = probe(cand, arch, x, y)
        for (path, g), m in zip(_leaves(grads), jax.tree.leaves(mask)):
            g, m = np.asarray(g), np.asarray(m)
            assert not g[~m].any(), jax.tree_util.keystr(path)  # no gradient leaks outside the mask
        assert np.asarray(grads["Cell_0"]["conv3x3"])[arch == CONV3].any()  # the path's kernels do get gradients


def test_off_path_mode_is_validated(setup):
    trainer = setup[0]
    with pytest.raises(ConfigError, match="^weight_sharing.off_path: got .sticky.; allowed: frozen, decayed$"):
        make_supernet_step(trainer, 10, "sticky")
