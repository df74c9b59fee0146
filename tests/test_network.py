"""The candidate network's building blocks against independent references (lax.conv, reduce_window,
a per-edge cell written with Python control flow)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxnas.models.layers import avg_pool3x3, batch_norm, conv3x3, conv3x3_direct, conv_same, patches3x3
from jaxnas.models.nb201 import Cell, NB201Network
from jaxnas.spaces import nb201

pytestmark = pytest.mark.usefixtures("fast_compile")  # exact checks and tiny runs: compile-bound (conftest)


def lax_conv(x, kernel_patch_layout, stride=1):
    c = x.shape[-1]
    k = kernel_patch_layout.reshape(3, 3, c, -1)
    return jax.lax.conv_general_dilated(x, k, (stride, stride), ((1, 1), (1, 1)), dimension_numbers=("NHWC", "HWIO", "NHWC"))


def ref_pool(x):
    s = jax.lax.reduce_window(x, 0.0, jax.lax.add, (1, 3, 3, 1), (1, 1, 1, 1), "SAME")
    n = jax.lax.reduce_window(jnp.ones_like(x), 0.0, jax.lax.add, (1, 3, 3, 1), (1, 1, 1, 1), "SAME")
    return s / n


def test_conv3x3_and_its_gradient_match_lax_conv():
    x = jax.random.normal(jax.random.key(0), (3, 7, 6, 4))
    k = jax.random.normal(jax.random.key(1), (36, 5))
    np.testing.assert_allclose(conv3x3(x, k), lax_conv(x, k), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(patches3x3(x, 2) @ k, lax_conv(x, k, 2), rtol=1e-5, atol=1e-5)
    f = lambda fn: jax.grad(lambda x, k: jnp.sum(jnp.sin(fn(x, k))), argnums=(0, 1))(x, k)  # noqa: E731
    for ours, ref in zip(f(conv3x3), f(lax_conv)):
        np.testing.assert_allclose(ours, ref, rtol=1e-4, atol=1e-4)


def test_direct_convolutions_hand_written_gradients_match_autodiff_of_lax_conv():
    """`conv3x3_direct` and `conv_same` (the one-candidate-at-a-time forms) have hand-written backward passes whose
    kernel gradient is a convolution over the batch (`kernel_grad_conv`): against autodiff of plain lax.conv, with
    batch, height, width and channels all different so that a transposed axis cannot pass unnoticed."""
    x = jax.random.normal(jax.random.key(4), (3, 7, 6, 4))
    f = lambda fn, *a: jax.grad(lambda x, k: jnp.sum(jnp.sin(fn(x, k))), argnums=(0, 1))(x, *a)  # noqa: E731
    k = jax.random.normal(jax.random.key(5), (36, 5))
    np.testing.assert_allclose(conv3x3_direct(x, k), lax_conv(x, k), rtol=1e-5, atol=1e-5)
    for ours, ref in zip(f(conv3x3_direct, k), f(lax_conv, k)):
        np.testing.assert_allclose(ours, ref, rtol=1e-4, atol=1e-4)
    for size in (1, 3, 5):
        k = jax.random.normal(jax.random.key(size), (size, size, 4, 5))
        plain = lambda x, k: jax.lax.conv_general_dilated(x, k, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))  # noqa: E731
        for ours, ref in zip(f(conv_same, k), f(plain, k)):
            np.testing.assert_allclose(ours, ref, rtol=1e-4, atol=1e-4)


def test_batch_norm_hand_written_backward_matches_autodiff_of_the_formula():
    """`batch_norm(custom_grad=True)` (the one-candidate-at-a-time form) against autodiff of the plain formula: the
    outputs, and the gradients of x, scale and bias under cotangents on all three outputs (the running statistics
    too), with B, H, W and C all different and x far from zero mean and unit variance."""
    k = iter(jax.random.split(jax.random.key(6), 8))
    x = 3 + 2 * jax.random.normal(next(k), (3, 5, 4, 6))
    scale, bias = 1 + 0.3 * jax.random.normal(next(k), (6,)), 0.5 * jax.random.normal(next(k), (6,))
    ra_mean, ra_var = jax.random.normal(next(k), (6,)), 1 + jax.random.uniform(next(k), (6,))
    cts = (jax.random.normal(next(k), x.shape), jax.random.normal(next(k), (6,)), jax.random.normal(next(k), (6,)))
    for primals in ((x, scale, bias), (x,)):  # affine and not
        def bn(custom):
            return lambda x, *sb: batch_norm(x, *(sb or (None, None)), ra_mean, ra_var, True, custom_grad=custom)
        out, vjp = jax.vjp(bn(True), *primals)
        ref_out, ref_vjp = jax.vjp(bn(False), *primals)
        for ours, ref in zip((*out, *vjp(cts)), (*ref_out, *ref_vjp(cts))):
            np.testing.assert_allclose(ours, ref, rtol=1e-4, atol=1e-5)


def test_avg_pool_excludes_padding_and_its_gradient_is_exact():
    x = jax.random.normal(jax.random.key(2), (2, 5, 4, 3))
    np.testing.assert_allclose(avg_pool3x3(x), ref_pool(x), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(avg_pool3x3(x)[0, 0, 0, 0], x[0, :2, :2, 0].mean(), rtol=1e-6)  # corner: 4 values
    g = lambda fn: jax.grad(lambda x: jnp.sum(jnp.sin(fn(x))))(x)  # noqa: E731
    np.testing.assert_allclose(g(avg_pool3x3), g(ref_pool), rtol=1e-5, atol=1e-6)
    # forward over reverse (DARTS's exact Hessian-vector products) equals the reference's
    v = jax.random.normal(jax.random.key(3), x.shape)
    hvp = lambda fn: jax.jvp(lambda x: jax.grad(lambda y: jnp.sum(jnp.sin(fn(y)) ** 2))(x), (x,), (v,))[1]  # noqa: E731
    np.testing.assert_allclose(hvp(avg_pool3x3), hvp(ref_pool), rtol=1e-5, atol=1e-6)


def reference_cell(params, x, arch):
    """NAS-Bench-201's cell written plainly: per edge, per op, Python branching, lax.conv, batch-stat BN."""
    def bn(y, p):
        m, v = y.mean((0, 1, 2)), y.var((0, 1, 2))
        return (y - m) / jnp.sqrt(v + 1e-5) * p["scale"] + p["bias"]

    nodes = [x]
    for j in range(1, 4):
        acc = 0.0
        for e, (src, dst) in enumerate(nb201.EDGES):
            if dst != j:
                continue
            h, op = nodes[src], int(arch[e])
            if op == 1:
                acc = acc + h
            elif op == 2:
                acc = acc + bn(jnp.einsum("BHWI,IO->BHWO", jax.nn.relu(h), params["conv1x1"][e]), params[f"bn_edge{e}"])
            elif op == 3:
                acc = acc + bn(lax_conv(jax.nn.relu(h), params["conv3x3"][e]), params[f"bn_edge{e}"])
            elif op == 4:
                acc = acc + ref_pool(h)
        nodes.append(acc)
    return nodes[3]


@pytest.mark.parametrize("code", [0, 1, 781, 3906, 6111, 9999, 15624, 7777])
def test_cell_matches_a_per_edge_reference(code):
    arch = nb201.SPACE.decode(code)
    x = jax.random.normal(jax.random.key(3), (4, 6, 6, 5))
    variables = Cell().init(jax.random.key(4), x, arch, True)
    params = jax.tree.map(lambda a: a, variables["params"])
    params = {**params, **{k: {"scale": jax.random.uniform(jax.random.key(i), (5,)) + 0.5, "bias": jnp.full((5,), 0.1)}
                           for i, k in enumerate(p for p in params if p.startswith("bn_"))}}
    ours, _ = Cell().apply({"params": params, "batch_stats": variables["batch_stats"]}, x, arch, True, mutable=["batch_stats"])
    np.testing.assert_allclose(ours, reference_cell(params, x, np.asarray(arch)), rtol=1e-4, atol=1e-4)


def test_unused_edges_keep_their_running_statistics():
    arch = jnp.array([2, 1, 0, 1, 4, 3])  # conv1x1 on edge 0, conv3x3 on edge 5; edges 1-4 carry no conv
    x = jax.random.normal(jax.random.key(5), (4, 6, 6, 3))
    variables = Cell().init(jax.random.key(6), x, arch, True)
    _, upd = Cell().apply(variables, x, arch, True, mutable=["batch_stats"])
    for e in range(6):
        moved = not np.allclose(upd["batch_stats"][f"bn_edge{e}"]["mean"], 0.0)
        assert moved == (e in (0, 5)), e


def test_network_shapes_and_a_population_vmaps():
    net = NB201Network(channels=4, cells_per_stage=1, num_classes=7)
    x = jnp.ones((2, 8, 8, 1))
    archs = nb201.SPACE.decode(jnp.array([0, 6111, 15624]))
    variables = jax.vmap(lambda k, a: net.init(k, x, a, train=True))(jax.random.split(jax.random.key(0), 3), archs)
    logits = jax.vmap(lambda v, a: net.apply(v, x, a))(variables, archs)
    assert logits.shape == (3, 2, 7)
    assert jax.tree.leaves(variables["params"])[0].shape[0] == 3


def test_growth_preserves_the_function_exactly():
    from jaxnas.models.nb201_surgery import grow, growable_edges

    net = NB201Network(channels=4, cells_per_stage=2, num_classes=10)
    parent = np.array([3, 0, 1, 0, 4, 2])
    x = jax.random.normal(jax.random.key(9), (6, 8, 8, 1))
    variables = net.init(jax.random.key(10), x, parent, train=True)
    _, upd = net.apply(variables, x, parent, train=True, mutable=["batch_stats"])  # non-trivial running stats
    stats = upd["batch_stats"]
    assert growable_edges(parent).tolist() == [1, 3]
    for edge in (1, 3):
        for op in (2, 3):
            params, child_stats, child = grow(variables["params"], stats, parent, edge, op)
            assert child[edge] == op and (np.delete(child, edge) == np.delete(parent, edge)).all()
            for train in (False, True):
                before = net.apply({"params": variables["params"], "batch_stats": stats}, x, parent, train=train, mutable=["batch_stats"])[0]
                after = net.apply({"params": params, "batch_stats": child_stats}, x, jnp.asarray(child), train=train, mutable=["batch_stats"])[0]
                np.testing.assert_allclose(after, before, rtol=1e-6, atol=1e-6)
            # and the new op is not dead: its BN scale gets a gradient
            grads = jax.grad(lambda p: net.apply({"params": p, "batch_stats": child_stats}, x, jnp.asarray(child), train=True,
                                                 mutable=["batch_stats"])[0].sum() ** 2)(params)
            assert float(jnp.abs(grads["Cell_0"][f"bn_edge{edge}"]["scale"]).sum()) > 0
    with pytest.raises(Exception, match="^edge:"):
        grow(variables["params"], stats, parent, 0, 3)
