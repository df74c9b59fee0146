"""Op dispatch (`jaxnas.models.dispatch`) and the engine's executions: every path computes the same candidate.

A NAS-Bench-201 network in "switch" dispatch (only each edge's chosen op runs), in "select" dispatch (the folded
kernels that vmap), and as the plain network of one architecture (the op ids known when tracing, what a
per-model loop builds) must give the same outputs, gradients and BatchNorm statistics for every op on every
edge; the engine's two executions (`lax.map` and `vmap`) must train a candidate to the same losses and scores
as a hand-written loop over that plain network.
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxnas.common.errors import ConfigError
from jaxnas.evaluation.population import PopulationTrainer, TrainSettings, batch_indices
from jaxnas.models.dispatch import choose, with_dispatch
from jaxnas.models.nb201 import NB201Network
from jaxnas.spaces import nb201

pytestmark = pytest.mark.usefixtures("fast_compile")

NET = NB201Network(channels=4, cells_per_stage=1, num_classes=10)
# every op on every edge: row k puts op (e + k) % 5 on edge e
EVERY_OP = np.array([[(e + k) % len(nb201.OPS) for e in range(len(nb201.EDGES))] for k in range(len(nb201.OPS))],
                    np.int32)


def test_choose_runs_the_named_op_in_every_mode():
    table = (lambda x: x + 1.0, lambda x: 2.0 * x, lambda x: -x)
    x = jnp.arange(3.0)
    for op in range(3):
        want = table[op](x)
        np.testing.assert_array_equal(choose(op, table, x, mode="switch"), want)  # concrete: called directly
        for mode in ("switch", "select"):
            got = jax.jit(lambda i, x, mode=mode: choose(i, table, x, mode=mode))(jnp.int32(op), x)
            np.testing.assert_array_equal(got, want)
    with pytest.raises(ConfigError, match="^dispatch: got 'both'; allowed: switch, select$"):
        choose(0, table, x, mode="both")


def test_switch_runs_only_the_chosen_branch():
    """Under jit (no vmap) a switch is a real branch: the op not chosen never runs (its side effect is absent)."""
    ran = []

    def noisy(x):
        jax.debug.callback(lambda: ran.append(1))
        return x

    table = (lambda x: x, noisy)
    jax.block_until_ready(jax.jit(lambda i, x: choose(i, table, x, mode="switch"))(jnp.int32(0), jnp.ones(2)))
    assert ran == []
    jax.block_until_ready(jax.jit(lambda i, x: choose(i, table, x, mode="switch"))(jnp.int32(1), jnp.ones(2)))
    assert ran == [1]


def _loss_and_grads(net, variables, x, y, arch):
    def loss(params):
        logits, upd = net.apply({"params": params, "batch_stats": variables["batch_stats"]}, x, arch, train=True,
                                mutable=["batch_stats"])
        return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean(), (upd["batch_stats"], logits)

    return jax.value_and_grad(loss, has_aux=True)(variables["params"])


def _evaluate(net, variables, x, arch):
    return net.apply(variables, x, arch, train=False)


# The architecture as an argument: one compiled program per dispatch serves every row (select, switch). The
# plain network closes over a numpy architecture instead (its op ids known when tracing): compiled per row.
TRACED = {mode: (jax.jit(lambda v, x, y, a, mode=mode: _loss_and_grads(with_dispatch(NET, mode), v, x, y, a)),
                 jax.jit(lambda v, x, a, mode=mode: _evaluate(with_dispatch(NET, mode), v, x, a)))
          for mode in ("select", "switch")}


@pytest.mark.parametrize("row", range(len(EVERY_OP)))
def test_switch_select_and_the_plain_network_agree_for_every_op_on_every_edge(digits_8x8, row):
    arch = EVERY_OP[row]
    x, y = jnp.asarray(digits_8x8.train_x[:16]), jnp.asarray(digits_8x8.train_y[:16])
    variables = NET.init(jax.random.key(row), x[:1], arch, train=True)
    plain = with_dispatch(NET, "switch")
    results = {mode: train(variables, x, y, jnp.asarray(arch)) for mode, (train, _) in TRACED.items()}
    (ref_loss, (ref_stats, ref_logits)), ref_grads = jax.jit(
        lambda v, x, y: _loss_and_grads(plain, v, x, y, arch))(variables, x, y)  # numpy arch: a plain network
    for name, ((loss, (stats, logits)), grads) in results.items():
        np.testing.assert_allclose(loss, ref_loss, rtol=1e-5, err_msg=name)
        np.testing.assert_allclose(logits, ref_logits, rtol=1e-4, atol=1e-5, err_msg=name)
        jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6, err_msg=name), grads, ref_grads)
        jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6, err_msg=name), stats, ref_stats)
    # evaluation (running statistics) agrees as well
    ref = jax.jit(lambda v, x: _evaluate(plain, v, x, arch))(variables, x)
    for mode, (_, evaluate) in TRACED.items():
        np.testing.assert_allclose(evaluate(variables, x, jnp.asarray(arch)), ref, rtol=1e-4, atol=1e-5, err_msg=mode)


def _hand_loop(arch, digits, settings, key, data_key):
    """The plain network of `arch` trained by a Python loop of jitted SGD steps on the engine's batches."""
    net = with_dispatch(NET, "switch")
    x, y = jnp.asarray(digits.train_x), jnp.asarray(digits.train_y)
    variables = net.init(key, x[:1], arch, train=True)
    params, stats = variables["params"], variables["batch_stats"]
    opt = settings.make_optimizer()
    opt_state = opt.init(params)

    @jax.jit
    def step(params, stats, opt_state, i):
        idx = batch_indices(data_key, i, x.shape[0], settings.batch_size)

        def loss(p):
            logits, upd = net.apply({"params": p, "batch_stats": stats}, x[idx], arch, train=True, mutable=["batch_stats"])
            return optax.softmax_cross_entropy_with_integer_labels(logits, y[idx]).mean(), upd["batch_stats"]

        (value, stats), grads = jax.value_and_grad(loss, has_aux=True)(params)
        updates, opt_state = opt.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), stats, opt_state, value

    losses = []
    for i in range(settings.steps):
        params, stats, opt_state, value = step(params, stats, opt_state, jnp.int32(i))
        losses.append(float(value))
    logits = net.apply({"params": params, "batch_stats": stats}, jnp.asarray(digits.valid_x), arch, train=False)
    return np.array(losses), float(np.mean(np.argmax(logits, -1) == digits.valid_y))


def test_both_executions_train_a_candidate_like_a_hand_written_loop(digits_8x8):
    settings = TrainSettings(steps=6, batch_size=32, learning_rate=0.1)
    one = jax.local_devices()[:1]
    by_map = PopulationTrainer(NET, digits_8x8, settings, chunk_size=2, devices=one, execution="map")
    by_vmap = PopulationTrainer(NET, digits_8x8, settings, chunk_size=2, devices=one, execution="vmap")
    assert by_map.model.dispatch == "switch" and by_vmap.model.dispatch == "select"
    archs = EVERY_OP[:2]
    a, b = by_map.score(archs, seed=5), by_vmap.score(archs, seed=5)
    keys = by_map.candidate_keys(5, np.arange(2))
    for i, arch in enumerate(archs):
        losses, valid_acc = _hand_loop(arch, digits_8x8, settings, keys[i], by_map.data_key(5))
        for scores in (a, b):
            np.testing.assert_allclose(scores.train_loss[i], losses, rtol=1e-4, atol=1e-5)
            assert abs(scores.valid_acc[i] - valid_acc) < 1.5 / len(digits_8x8.valid_y)  # at most one image apart


def test_auto_execution_follows_the_backend_and_bad_values_are_refused(digits_8x8):
    settings = TrainSettings(steps=2, batch_size=32)
    trainer = PopulationTrainer(NET, digits_8x8, settings, chunk_size=1, devices=jax.local_devices()[:1])
    assert trainer.execution == ("map" if jax.default_backend() == "cpu" else "vmap")
    with pytest.raises(ConfigError, match="^execution: got 'loop'; allowed: auto, map, vmap$"):
        PopulationTrainer(NET, digits_8x8, settings, execution="loop")


def test_bfloat16_products_train_like_float32(digits_8x8):
    """bf16 convolution inputs with float32 accumulation (`NB201Network.dtype`): the same candidates reach the
    same early losses within bf16 rounding, and bf16 moves a candidate's accuracy less than a new seed does."""
    settings = TrainSettings(steps=30, batch_size=32, learning_rate=0.1)
    archs, seeds = EVERY_OP[[0, 3]], (2, 3, 4)
    trainers = {dt: PopulationTrainer(NB201Network(4, 1, 10, dtype=dt), digits_8x8, settings, chunk_size=2,
                                      devices=jax.local_devices()[:1]) for dt in (jnp.float32, jnp.bfloat16)}
    scores = {(dt, seed): t.score(archs, seed=seed) for dt, t in trainers.items() for seed in seeds}
    for seed in seeds:
        f32, bf16 = scores[jnp.float32, seed], scores[jnp.bfloat16, seed]
        assert f32.train_loss[:, -1].max() < 0.8 * f32.train_loss[:, 0].min()  # it learned: the comparison means something
        np.testing.assert_allclose(bf16.train_loss[:, :5], f32.train_loss[:, :5], rtol=2e-2)
    acc = {dt: np.stack([scores[dt, seed].valid_acc for seed in seeds]) for dt in trainers}  # (seeds, archs)
    by_dtype = np.abs(acc[jnp.bfloat16] - acc[jnp.float32]).mean()
    by_seed = np.mean([np.abs(acc[jnp.float32][i] - acc[jnp.float32][j]).mean()
                       for i in range(len(seeds)) for j in range(i + 1, len(seeds))])
    assert by_dtype <= by_seed, (by_dtype, by_seed)
