"""MetaQNN's space and chain network (issue 22): the transition rules against an independent enumerator written
from the published `enumerate_state`, the agent's states, the padded chain against the plain network of the same
architecture (outputs and gradients), and the engine's restarts."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxnas.common.errors import ConfigError
from jaxnas.data import load_images
from jaxnas.evaluation.population import PopulationTrainer, TrainSettings
from jaxnas.models.chain import ChainNetwork, reference_logits
from jaxnas.spaces import SPACES, metaqnn

SMALL = metaqnn.space(image_size=8, layer_limit=3, conv_filters=(4, 8), conv_sizes=(1, 3, 5),
                      pools=((5, 3), (3, 2), (2, 2)), fc_widths=(16, 8), max_fc=2, fc_max_size=4)
LAY = metaqnn.layers_of(SMALL)


def _published_successors(layers, state):
    """The layers allowed after `state` = (type, depth, n, fc_run, fc_width), written from the published
    `StateEnumerator.enumerate_state` (conv < n, pool < n, no pool first or after pool, FC only at n <= 4 or
    after FC up to max_fc in a row with non-increasing widths, GAP after start/conv/pool, nothing at the limit)."""
    kind, depth, n, fc_run, fc_width = state
    out = [("end", ())]
    if kind in ("end", "gap") or depth >= layers.layer_limit:
        return out
    spatial = kind in ("start", "conv", "pool")
    if spatial:
        out += [("conv", (f, k)) for f in layers.conv_filters for k in layers.conv_sizes if k < n]
        out += [("gap", ())]
    if kind == "conv":
        out += [("pool", p) for p in layers.pools if p[0] < n]
    if spatial and n <= layers.fc_max_size:
        out += [("fc", (w,)) for w in layers.fc_widths]
    if kind == "fc" and fc_run < layers.max_fc:
        out += [("fc", (w,)) for w in layers.fc_widths if w <= fc_width]
    return out


def _published_architectures(layers):
    """Every valid architecture, as tuples of ids padded with END to layer_limit + 1."""
    ids = {row: i for i, row in enumerate(layers.table)}
    found = []

    def extend(prefix, state):
        for row in _published_successors(layers, state):
            arch = prefix + (ids[row],)
            kind, params = row
            if kind == "end":
                found.append(arch + (0,) * (layers.layer_limit + 1 - len(arch)))
                continue
            _, depth, n, fc_run, fc_width = state
            if kind == "pool":
                n = (n - params[0]) // params[1] + 1
            extend(arch, (kind, depth + 1, 0 if kind == "fc" else 1 if kind == "gap" else n,
                          fc_run + 1 if kind == "fc" else 0, params[0] if kind == "fc" else 0))

    extend((), ("start", 0, layers.image_size, 0, 0))
    return set(found)


def test_rules_equal_the_published_enumerator_exhaustively():
    expected = _published_architectures(LAY)
    codes = jnp.arange(SMALL.size)
    archs = np.asarray(SMALL.decode(codes))
    valid = np.asarray(jax.jit(SMALL.is_valid)(jnp.asarray(archs)))
    assert {tuple(a) for a, v in zip(archs, valid) if v} == expected
    assert len(expected) > 100  # the small space is not trivial
    # sampling and mutation never leave the valid set, and sampling reaches all of it
    drawn = np.asarray(SMALL.sample(jax.random.key(0), (20000,)))
    assert set(map(tuple, drawn)) <= expected
    children = np.asarray(jax.jit(SMALL.mutate)(jax.random.key(1), jnp.asarray(drawn[:3000])))
    assert set(map(tuple, children)) <= expected


def test_strings_and_depth():
    ids = {row: i for i, row in enumerate(LAY.table)}
    arch = [ids[("conv", (8, 3))], ids[("pool", (2, 2))], ids[("fc", (16,))], 0]
    assert SMALL.to_string(arch) == "[C(8,3,1), P(2,2), FC(16), SM]"
    assert metaqnn.depth(arch) == 3 and metaqnn.depth([0, 0, 0, 0]) == 0


def test_agent_states_are_the_published_tuple():
    states = SMALL.states()
    archs = sorted(_published_architectures(LAY))
    seen = {}
    for a in archs:
        a = np.array(a, np.int32)
        d = int(states.decisions(a))
        assert d == metaqnn.depth(a) + 1  # the layers and the final END
        w = None
        for p in range(d):
            w = metaqnn.walk(LAY, a, p)
            key = (p, int(w.prev), int(metaqnn.size_bin(w.n)), int(min(max(int(w.fc_run) - 1, 0), LAY.max_fc - 1)))
            s = int(states.index(a, p))
            assert 0 <= s < states.num_states
            assert seen.setdefault(key, s) == s  # the same published state gets the same index ...
    assert len(set(seen.values())) == len(seen)  # ... and different ones different indices


def test_bad_settings_name_the_field():
    with pytest.raises(ConfigError, match="layer_types"):
        metaqnn.space(layer_types=("conv", "dense"))
    with pytest.raises(ConfigError, match="layer_limit"):
        metaqnn.space(layer_limit=0)
    with pytest.raises(ConfigError, match="conv_sizes"):
        metaqnn.space(conv_sizes=(2,))
    with pytest.raises(ConfigError, match="pools"):
        metaqnn.space(pools=((2, 3),))
    only_conv = metaqnn.space(image_size=8, layer_limit=2, layer_types=("conv",))
    assert {k for k, _ in metaqnn.layers_of(only_conv).table} == {"end", "conv"}
    assert SPACES.get("metaqnn").factory(image_size=8) is metaqnn.space(image_size=8)


@pytest.mark.parametrize("dispatch", ["switch", "select"])
def test_padded_chain_equals_the_plain_network(dispatch):
    """Outputs and every parameter gradient of the padded network equal those of the unpadded network built from
    the corresponding parameter slices, for architectures covering every layer kind."""
    archs = np.asarray(SMALL.sample(jax.random.key(7), (64,)))
    kinds_seen = set()
    x = jax.random.uniform(jax.random.key(1), (3, 8, 8, 2))
    y = jnp.array([0, 3, 9])
    net = ChainNetwork(LAY, num_classes=10, dispatch=dispatch)

    def loss(p, fn):
        return -jnp.mean(jax.nn.log_softmax(fn(p))[jnp.arange(3), y])

    padded = jax.jit(lambda p, a: (net.apply({"params": p}, x, a), jax.grad(loss)(p, lambda q: net.apply({"params": q}, x, a))))
    for a in archs[:16]:
        kinds_seen |= {LAY.table[i][0] for i in a}
        params = net.init(jax.random.key(0), x, a)["params"]
        plain = lambda p: reference_logits(LAY, p, np.asarray(x), a, 10)
        out, g1 = padded(params, a)
        np.testing.assert_allclose(out, plain(params), atol=2e-5, rtol=1e-5)
        g2 = jax.grad(loss)(params, plain)
        for k in g1:
            np.testing.assert_allclose(g1[k], g2[k], atol=2e-5, rtol=1e-4, err_msg=f"{SMALL.to_string(a)} {k}")
    assert kinds_seen == {"end", "conv", "pool", "fc", "gap"}


def test_xavier_fan_in_follows_the_architecture():
    ids = {row: i for i, row in enumerate(LAY.table)}
    x = jnp.zeros((1, 8, 8, 1))
    net = ChainNetwork(LAY, num_classes=10)
    for f, k in [(4, 1), (8, 5)]:
        arch = np.array([ids[("conv", (8, 3))], ids[("conv", (f, k))], 0, 0], np.int32)
        kernel = np.asarray(net.init(jax.random.key(0), x, arch)["params"]["conv_1"])
        bound = np.sqrt(3.0 / (k * k * 8))  # fan-in of a k x k kernel over the 8 channels before it
        assert np.abs(kernel).max() <= bound and np.abs(kernel).max() > 0.9 * bound


@pytest.fixture(scope="module")
def digits():
    return load_images("digits", size=8, seed=0)


def test_restarts_keep_the_last_attempt_at_the_reduced_rate(digits):
    """With a threshold nothing passes, the candidate is attempt `restarts`: the network trained from
    fold_in(key, restarts) at the learning rate times 0.4**restarts, exactly."""
    sp = metaqnn.space(image_size=8, layer_limit=2, conv_filters=(4,), conv_sizes=(3,), fc_widths=(8,))
    net = sp.network(num_classes=digits.num_classes)
    base = dict(steps=6, batch_size=16, learning_rate=0.01, optimizer="adam", schedule="step", decay_steps=4)
    tr = PopulationTrainer(net, digits, TrainSettings(**base, restarts=2, restart_check_steps=2,
                                                      restart_threshold=1.01), chunk_size=1)
    arch = np.asarray(sp.sample(jax.random.key(3), (1,)))
    scores = tr.score(arch)
    assert scores.restarts.tolist() == [2]
    plain = PopulationTrainer(net, digits, TrainSettings(**base), chunk_size=1)
    data, dkey = plain.device_data(), plain.data_key(0)
    key = jax.random.fold_in(plain.candidate_keys(0, np.arange(1))[0], 2)
    cand = plain.init_candidate(key, jnp.asarray(arch[0]), data)
    cand, losses = plain.train_candidate(cand, jnp.asarray(arch[0]), data, dkey, 6, lr_scale=jnp.float32(0.4) ** 2)
    np.testing.assert_allclose(scores.train_loss[0], losses, rtol=1e-5, atol=1e-6)
    acc, _ = plain.evaluate_candidate(cand, jnp.asarray(arch[0]), data.valid_x, data.valid_y)
    np.testing.assert_allclose(scores.valid_acc[0], acc, rtol=1e-5)
    easy = PopulationTrainer(net, digits, TrainSettings(**base, restarts=2, restart_check_steps=2,
                                                        restart_threshold=-0.01), chunk_size=1)
    assert easy.score(arch).restarts.tolist() == [0]


def test_map_and_vmap_train_the_same_chains(digits):
    archs = np.asarray(SMALL.sample(jax.random.key(11), (4,)))
    net = ChainNetwork(LAY, num_classes=digits.num_classes)
    st = TrainSettings(steps=5, batch_size=16, learning_rate=0.01, optimizer="adam", schedule="step", decay_steps=3)
    a = PopulationTrainer(net, digits, st, chunk_size=4, execution="map").score(archs)
    b = PopulationTrainer(net, digits, st, chunk_size=4, execution="vmap").score(archs)
    np.testing.assert_allclose(a.train_loss, b.train_loss, rtol=2e-4, atol=2e-5)
    np.testing.assert_allclose(a.valid_acc, b.valid_acc, atol=0.003)  # at most one borderline image of 359 flips
