"""The masked NASNet supernet (every op at every element slot, a one-hot keeps one; the baseline of
benchmarks/nasnet_population_speed.py) computes the population network's function: for the same variables and a
traced architecture, the same training and evaluation logits, parameter gradients and new running statistics as
`jaxnas.models.nasnet.network` (switch dispatch, only the chosen ops), for architectures that together use every op
in both cells and, in the reduction cell, every op at stride 2 and at stride 1."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxnas.common.errors import ConfigError
from jaxnas.models.nasnet import network
from jaxnas.models.nasnet_supernet import MaskedNASNetNetwork, supernet
from jaxnas.spaces import nasnet
from test_nasnet import every_op_archs

pytestmark = pytest.mark.usefixtures("fast_compile")  # exact checks: compile-bound (conftest)

SMALL = nasnet.space(B=3)
CELLS = nasnet.cells_of(SMALL)
SIZE = {"channels": 4, "cells_per_stage": 1, "stages": 2}  # normal, reduction, normal
X = jax.random.normal(jax.random.key(11), (4, 8, 8, 2))
Y = jnp.array([0, 3, 1, 4])


def test_supernet_equals_the_network_of_each_architecture():
    archs = every_op_archs()
    plain, masked = network(CELLS, num_classes=5, **SIZE), supernet(CELLS, num_classes=5, **SIZE)
    assert isinstance(masked, MaskedNASNetNetwork) and masked.layout() == plain.layout()
    variables = jax.jit(lambda a: plain.init(jax.random.key(0), X, a, train=True))(archs[0])
    mine = jax.jit(lambda a: masked.init(jax.random.key(0), X, a, train=True))(archs[1])
    jax.tree.map(np.testing.assert_array_equal, variables, mine)  # same parameters, names and initial values
    noise = jax.random.uniform(jax.random.key(3), (), minval=0.5, maxval=1.5)  # move the running statistics
    variables = {"params": variables["params"],
                 "batch_stats": jax.tree.map(lambda a: a * noise + 0.1, variables["batch_stats"])}

    def run(net):
        def go(v, a):
            def loss(p):
                logits, updates = net.apply({**v, "params": p}, X, a, train=True, mutable=["batch_stats"])
                return -jnp.mean(jax.nn.log_softmax(logits)[jnp.arange(4), Y]), (logits, updates["batch_stats"])
            (_, (logits, stats)), grads = jax.value_and_grad(loss, has_aux=True)(v["params"])
            return logits, net.apply(v, X, a, train=False), grads, stats
        return jax.jit(go)

    ref, got = run(plain), run(masked)
    for a in archs:
        want, have = ref(variables, jnp.asarray(a)), got(variables, jnp.asarray(a))
        for w, h in zip(want[:2], have[:2]):  # training and evaluation logits
            np.testing.assert_allclose(h, w, atol=3e-5, rtol=1e-4)
        for part in (2, 3):  # parameter gradients, new running statistics
            flat = dict(jax.tree_util.tree_flatten_with_path(want[part])[0])
            for path, value in jax.tree_util.tree_flatten_with_path(have[part])[0]:
                np.testing.assert_allclose(value, flat[path], atol=3e-5, rtol=1e-3,
                                           err_msg=f"{SMALL.to_string(a)} {jax.tree_util.keystr(path)}")
    # a concrete architecture runs the plain network of that architecture
    np.testing.assert_allclose(masked.apply(variables, X, archs[0]), plain.apply(variables, X, archs[0]),
                               atol=1e-6, rtol=1e-6)
    # the supernet computes every op: NaN kernels of an op no element chose poison its output (0 * NaN), not the
    # population network's (a real branch never runs the op; 1x7-7x1 has a branch of its own, while the separable
    # ops share one whose kernels are mixed by a one-hot)
    no_line = np.where(np.arange(CELLS.num_positions) % 2 == 1, archs[0] % 3, archs[0])  # ops 0-2 only
    poisoned = jax.tree_util.tree_map_with_path(
        lambda path, a: a * jnp.nan if "conv_1x7_7x1" in jax.tree_util.keystr(path) else a, variables)
    a = jnp.asarray(no_line)
    assert bool(jnp.all(jnp.isfinite(jax.jit(lambda v, a: plain.apply(v, X, a))(poisoned, a))))
    assert bool(jnp.all(jnp.isnan(jax.jit(lambda v, a: masked.apply(v, X, a))(poisoned, a))))


def test_supernet_refuses_bad_options_naming_them():
    with pytest.raises(ConfigError, match="^channels: "):
        supernet(CELLS, channels=0)
