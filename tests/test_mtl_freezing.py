"""Freezing strategies: which parameters train, exact counts, frozen weights bit-identical under weight
decay (and the trap that a naive chain falls into), and the L1 proximal step."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxnas.common.errors import ConfigError
from mtl import freezing
from mtl.encoder import BertConfig
from mtl.model import HeadConfig, MultiTaskModel, init_params

TINY = BertConfig(vocab_size=50, hidden_size=8, num_layers=2, num_heads=2, intermediate_size=12,
                  max_position_embeddings=16)
TASKS = (("topic", 4), ("sentiment", 3))


@pytest.fixture(scope="module")
def params():
    return init_params(MultiTaskModel(TINY, TASKS, HeadConfig(hidden=0)), jax.random.key(0))


def _size(tree):
    return sum(x.size for x in jax.tree.leaves(tree))


def test_trainable_counts_by_hand(params):
    enc, d, f = params["encoder"], TINY.hidden_size, TINY.intermediate_size
    heads = (d * 4 + 4) + (d * 3 + 3)
    total = _size(params)
    value = TINY.num_layers * (d * d + d)
    ffn = TINY.num_layers * ((d * f + f) + (f * d + d))
    assert freezing.trainable_count(params, "none") == total
    assert freezing.trainable_count(params, "encoder") == heads == total - _size(enc)
    assert freezing.trainable_count(params, "value") == total - value
    assert freezing.trainable_count(params, "ffn") == ffn + heads


def test_minilm_counts():
    shapes = jax.eval_shape(lambda: init_params(MultiTaskModel(BertConfig(), TASKS, HeadConfig(hidden=0)),
                                                jax.random.key(0)))
    enc = 22_565_376
    heads = 384 * 4 + 4 + 384 * 3 + 3
    assert freezing.trainable_count(shapes, "none") == enc + heads
    assert freezing.trainable_count(shapes, "encoder") == heads
    assert freezing.trainable_count(shapes, "value") == enc + heads - 6 * (384 * 384 + 384)
    assert freezing.trainable_count(shapes, "ffn") == 6 * (384 * 1536 + 1536 + 1536 * 384 + 384) + heads


def _run(params, tx, steps=3):
    state = tx.init(params)
    grads = jax.tree.map(lambda x: jnp.ones_like(x) * 0.3, params)  # every parameter gets a gradient
    for _ in range(steps):
        updates, state = tx.update(grads, state, params)
        params = optax.apply_updates(params, updates)
    return params


@pytest.mark.parametrize("strategy", freezing.FREEZING)
def test_frozen_parameters_bit_identical_with_weight_decay(params, strategy):
    tx = freezing.make_optimizer(params, strategy, lr_encoder=1e-2, lr_heads=1e-2, weight_decay=0.1,
                                 warmup_steps=1, total_steps=10)
    after = _run(params, tx)
    labels = freezing.param_labels(params, strategy)
    for lab, before, new in zip(jax.tree.leaves(labels), jax.tree.leaves(params), jax.tree.leaves(after)):
        if lab == "frozen":
            np.testing.assert_array_equal(np.asarray(before), np.asarray(new))
        else:
            assert not np.array_equal(np.asarray(before), np.asarray(new))


def test_the_trap_a_naive_chain_moves_frozen_weights(params):
    """Zeroing gradients before AdamW does not freeze: the decoupled decay still shrinks the weights."""
    frozen = jax.tree.map(lambda _: True, params)
    naive = optax.chain(optax.masked(optax.set_to_zero(), frozen), optax.adamw(1e-2, weight_decay=0.1))
    after = _run(params, naive)
    kernel = params["encoder"]["layer_0"]["attention"]["value_kernel"]
    np.testing.assert_allclose(after["encoder"]["layer_0"]["attention"]["value_kernel"],
                               kernel * (1 - 1e-2 * 0.1) ** 3, rtol=1e-6)


def test_l1_proximal_soft_thresholds_exactly():
    p = {"w": jnp.array([0.5, -0.05, 0.02, -0.3])}
    u = {"w": jnp.array([0.1, 0.0, 0.0, 0.0])}
    tx = freezing.l1_proximal(lambda c: jnp.asarray(0.1))
    new = optax.apply_updates(p, tx.update(u, tx.init(p), p)[0])
    np.testing.assert_allclose(new["w"], [0.5, 0.0, 0.0, -0.2], atol=1e-7)
    assert float(new["w"][1]) == 0.0 and float(new["w"][2]) == 0.0  # exact zeros, not small values


def test_l1_applies_only_to_head_first_layers(params):
    tx = freezing.make_optimizer(params, "none", lr_encoder=1e-3, lr_heads=1e-1, weight_decay=0.0,
                                 warmup_steps=1, total_steps=100, l1=5.0)
    after = _run(params, tx, steps=5)
    assert float(jnp.mean(after["heads_topic"]["first"]["kernel"] == 0)) > 0.5
    assert float(jnp.mean(after["encoder"]["layer_0"]["intermediate"]["kernel"] == 0)) == 0.0


def test_unknown_strategy_is_a_config_error(params):
    with pytest.raises(ConfigError, match="freeze.*allowed: none, encoder, value, ffn"):
        freezing.param_labels(params, "bias")


def test_warmup_linear_decay_schedule():
    sched = freezing.warmup_linear_decay(1.0, 10, 110)
    assert float(sched(0)) == 0.0 and float(sched(5)) == pytest.approx(0.5)
    assert float(sched(10)) == pytest.approx(1.0) and float(sched(60)) == pytest.approx(0.5)
    assert float(sched(110)) == pytest.approx(0.0)
