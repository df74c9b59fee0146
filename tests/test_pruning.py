"""Filter pruning (Li et al. 2017): the smaller network computes what the dense one computes without the
pruned channels, and the channels kept are those with the largest filter L1 norms."""

import jax
import numpy as np
import optax
import pytest

from jaxnas.common.errors import ConfigError
from jaxnas.models.nb201 import CONV1, CONV3, NB201Network, NONE, POOL, SKIP
from jaxnas.evaluation.population import Candidate, TrainSettings
from jaxnas.models.nb201_surgery import filter_prune_candidate, pruned_network

ARCH = np.array([CONV3, CONV1, SKIP, POOL, CONV3, NONE], np.int32)
DENSE = NB201Network(4, 1, 10)


pytestmark = pytest.mark.usefixtures("fast_compile")  # exact checks, not speed (conftest)


def _l1(k):
    return np.abs(np.asarray(k)).reshape(-1, k.shape[-1]).sum(0)


def _kept(score, k):
    return np.sort(np.argsort(-score, kind="stable")[:k])


def test_pruned_network_widths_and_validation():
    small = pruned_network(DENSE, 0.5)
    assert small.stage_widths() == (2, 4, 8) and small.inner_widths == (4, 8)
    assert pruned_network(DENSE, 0.0).stage_widths() == DENSE.stage_widths()
    assert NB201Network(4, 1, 10, widths=(4, 8, 16)).stage_widths() == DENSE.stage_widths()
    with pytest.raises(ConfigError, match="^pruning.channel_fraction:"):
        pruned_network(DENSE, 1.0)


def test_filter_pruned_candidate_equals_the_dense_network_without_those_channels():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(6, 8, 8, 1)).astype(np.float32)
    variables = jax.jit(lambda k, x: DENSE.init(k, x[:1], ARCH, train=True))(jax.random.key(0), x)
    params = jax.tree.map(lambda w: w + 0.3 * rng.normal(size=w.shape).astype(np.float32), variables["params"])
    stats = {"mean": lambda w: rng.normal(size=w.shape), "var": lambda w: rng.uniform(0.5, 2.0, w.shape)}
    batch_stats = jax.tree_util.tree_map_with_path(lambda p, w: stats[p[-1].key](w).astype(np.float32),
                                                   variables["batch_stats"])
    opt = TrainSettings().make_optimizer(10)
    cand = Candidate(params=params, batch_stats=batch_stats, opt_state=opt.init(params), step=np.int32(3))
    cand = cand.replace(opt_state=optax.tree_utils.tree_map_params(opt, lambda _, w: w, cand.opt_state, params))
    small_model = pruned_network(DENSE, 0.5)
    small = jax.jit(lambda c: filter_prune_candidate(c, ARCH, DENSE, 0.5))(cand)

    # the channels kept, ranked here independently with numpy (summed L1 of every filter writing a channel)
    p = jax.tree.map(np.asarray, params)
    red = [p[f"ResidualReduction_{r}"] for r in range(2)]
    stage = [_l1(p["Conv_0"]["kernel"])] + [_l1(r["Conv_1"]["kernel"]) + _l1(r["Conv_2"]["kernel"]) for r in red]
    for s in range(3):
        for e, op in enumerate(ARCH):
            if op in (CONV1, CONV3):
                stage[s] = stage[s] + _l1(p[f"Cell_{s}"]["conv3x3" if op == CONV3 else "conv1x1"][e])
    keep = [_kept(sc, k) for sc, k in zip(stage, small_model.widths)]
    mid = [_kept(_l1(r["Conv_0"]["kernel"]), k) for r, k in zip(red, small_model.inner_widths)]

    # reference: the dense network with the pruned filters (and their BN scale and bias) zeroed, nothing sliced
    ref = jax.tree.map(np.array, p)

    def drop(tree, kept, width):
        gone = np.setdiff1d(np.arange(width), kept)
        for name in tree:
            tree[name][..., gone] = 0.0
    drop(ref["Conv_0"], keep[0], 4)
    drop(ref["BatchNorm_0"], keep[0], 4)
    drop(ref["BatchNorm_1"], keep[2], 16)
    for s, c in enumerate((4, 8, 16)):
        cell = ref[f"Cell_{s}"]
        for e in range(6):
            drop(cell[f"bn_edge{e}"], keep[s], c)
        for name in ("conv3x3", "conv1x1"):
            cell[name][..., np.setdiff1d(np.arange(c), keep[s])] = 0.0
    for r, c in enumerate((8, 16)):
        for layer, kept in (("Conv_0", mid[r]), ("BatchNorm_0", mid[r]), ("Conv_1", keep[r + 1]),
                            ("BatchNorm_1", keep[r + 1]), ("Conv_2", keep[r + 1])):
            drop(ref[f"ResidualReduction_{r}"][layer], kept, c)

    dense_apply = jax.jit(lambda v, x: DENSE.apply(v, x, ARCH, train=False))
    small_apply = jax.jit(lambda v, x: small_model.apply(v, x, ARCH, train=False))
    want = dense_apply({"params": ref, "batch_stats": batch_stats}, x)  # (6, 10)
    got = small_apply({"params": small.params, "batch_stats": small.batch_stats}, x)
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-5, atol=1e-5)
    assert np.abs(np.asarray(want)).max() > 0.1  # not a trivially zero output
    # the momentum buffers (a copy of the weights here) are cut exactly like the weights; training carries on
    for t, w in zip(jax.tree.leaves(small.opt_state[1][0].trace), jax.tree.leaves(small.params)):
        np.testing.assert_array_equal(np.asarray(t), np.asarray(w))
    assert int(small.step) == 3
