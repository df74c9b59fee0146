"""DARTS (Liu et al., ICLR 2019) on the NAS-Bench-201 supernet: the mixed op against the plain network, the unrolled
alpha gradient against finite differences, both Hessian-vector products, power iteration against the dense Hessian,
and the vmapped search (determinism, seeds, NaN batches). Tiny shapes: C=4, one cell per stage, 8x8 images."""

import functools

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxnas.common.errors import ConfigError
from jaxnas.evaluation import darts as D
from jaxnas.models.darts_nb201 import DartsNB201Network, to_nb201_variables
from jaxnas.models.layers import BatchNorm
from jaxnas.models.nb201 import NB201Network
from jaxnas.spaces import nb201

pytestmark = pytest.mark.usefixtures("fast_compile")

C, N, K, B = 4, 1, 3, 8  # channels, cells per stage, classes, batch
SETTINGS = D.DartsSettings(channels=C, cells_per_stage=N, batch_size=B)
COVERING = np.array([3, 0, 2, 1, 4, 3])  # every op on some edge, every node non-zero (edges 0->1 ... 2->3)


def _images(seed, n):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 8, 8, 1)).astype(np.float32), rng.integers(0, K, n).astype(np.int32)


@pytest.fixture(scope="module")
def model():
    return DartsNB201Network(C, N, K)


@pytest.fixture(scope="module")
def variables(model):
    """Supernet variables with random running statistics (so evaluation mode is tested too)."""
    x, _ = _images(0, B)
    v = jax.jit(lambda k: model.init(k, jnp.asarray(x), jnp.full((6, 5), 0.2), False))(jax.random.key(0))  # eager: 5x
    keys = iter(jax.random.split(jax.random.key(1), 64))
    stats = jax.tree.map(lambda a: jax.random.uniform(next(keys), a.shape, minval=0.5, maxval=1.5), v["batch_stats"])
    return {"params": v["params"], "batch_stats": stats}


@pytest.fixture(scope="module")
def batches():
    xw, yw = _images(2, B)
    xa, ya = _images(3, B)
    return (jnp.asarray(xw), jnp.asarray(yw)), (jnp.asarray(xa), jnp.asarray(ya))


def test_one_hot_mixed_op_is_the_chosen_op(model, variables):
    """Supernet at one_hot(arch) against the plain NB201Network of arch (a concrete arch with dispatch="switch":
    each edge runs only its op: zeros, identity, ReLU-1x1-BN, ReLU-3x3-BN or the pool) with the same weights
    (`to_nb201_variables`; BN scale 1, bias 0): logits in training and in evaluation mode, every running statistic
    a training step writes (the chosen conv ops', stem, reductions, last BN), and the training loss's gradient in
    every weight (in the cells: the chosen ops' kernels; the others' are zero in the supernet)."""
    x, y = _images(4, B)
    hot = jax.nn.one_hot(COVERING, 5)
    reference = NB201Network(C, N, K, dispatch="switch")

    def loss(net, arch, params, stats):
        out, upd = net.apply({"params": params, "batch_stats": stats}, x, arch, True, mutable=["batch_stats"])
        return optax.softmax_cross_entropy_with_integer_labels(out, y).mean(), (out, upd["batch_stats"])

    @jax.jit
    def both():
        ref_vars = to_nb201_variables(variables, COVERING)
        (_, (out, stats)), grads = jax.value_and_grad(loss, 2, has_aux=True)(
            model, hot, variables["params"], variables["batch_stats"])
        (_, (ref_out, ref_stats)), ref_grads = jax.value_and_grad(loss, 2, has_aux=True)(
            reference, COVERING, ref_vars["params"], ref_vars["batch_stats"])
        stats = to_nb201_variables({"batch_stats": stats}, COVERING)["batch_stats"]
        return (out, model.apply(variables, x, hot, False), stats, grads,
                ref_out, reference.apply(ref_vars, x, COVERING, False), ref_stats, ref_grads)

    out, ev, stats, grads, ref_out, ref_ev, ref_stats, ref_grads = both()
    chex.assert_trees_all_close(out, ref_out, atol=2e-5)
    chex.assert_trees_all_close(ev, ref_ev, atol=2e-5)
    assert float(jnp.abs(out - ev).max()) > 1e-3  # the running statistics matter: evaluation mode is tested
    convs = {"conv3x3": COVERING == 3, "conv1x1": COVERING == 2}
    for cell in [k for k in stats if k.startswith("Cell_")]:  # edges without a conv: statistics not compared
        for e in np.flatnonzero(convs["conv3x3"] | convs["conv1x1"]):
            chex.assert_trees_all_close(stats[cell][f"bn_edge{e}"], ref_stats[cell][f"bn_edge{e}"], atol=1e-5)
        for name, used in convs.items():
            g, ref_g = np.asarray(grads[cell].pop(name)), np.asarray(ref_grads[cell].pop(name))
            np.testing.assert_allclose(g[used], ref_g[used], atol=1e-5)
            assert np.abs(g[used]).max() > 1e-3 and not g[~used].any()
        del stats[cell], ref_stats[cell], grads[cell], ref_grads[cell]
    chex.assert_trees_all_close(stats, ref_stats, atol=1e-5)
    chex.assert_trees_all_close(grads, ref_grads, atol=1e-5)


class SmoothSupernet(nn.Module):
    """A tiny smooth stand-in with the supernet's interface for the calculus checks: the NAS-Bench-201 DAG over
    feature vectors (B, 1, 1, H), ops none / identity / tanh / softplus / sin of dense maps, a non-affine batch
    norm. The supernet's ReLUs make grad_w L a discontinuous function of alpha (activations cross zero), so
    finite differences of its unrolled objective measure kinks, not the gradient (checked: three step sizes gave
    three different signs); every function here is smooth."""

    hidden: int = 6

    @nn.compact
    def __call__(self, x, weights, train=False):
        h = jnp.tanh(nn.Dense(self.hidden)(x.reshape(x.shape[0], 1, 1, -1)))
        nodes = [BatchNorm(affine=False)(h, train)]
        for j in range(1, 4):
            terms = []
            for e, (i, dst) in enumerate(nb201.EDGES):
                if dst == j:
                    a = nodes[i]
                    terms += [weights[e, 1] * a, weights[e, 2] * jnp.tanh(nn.Dense(self.hidden)(a)),
                              weights[e, 3] * jax.nn.softplus(nn.Dense(self.hidden)(a)),
                              weights[e, 4] * jnp.sin(nn.Dense(self.hidden)(a))]
            nodes.append(sum(terms))
        return nn.Dense(K)(nodes[-1][:, 0, 0])


@pytest.fixture(scope="module")
def smooth():
    model = SmoothSupernet()
    x, _ = _images(0, B)
    st = D.init_state(SETTINGS, model, jax.random.key(0), jnp.asarray(x))
    trace = jax.tree.map(lambda p: 0.1 * jax.random.normal(jax.random.key(1), p.shape), st.params)
    alpha = jax.random.normal(jax.random.key(2), st.alpha.shape)
    return model, st.replace(alpha=alpha, w_opt=st.w_opt[:-1] + (optax.TraceState(trace=trace),))


@pytest.fixture(scope="module")
def second_order(smooth, batches):
    """Alpha gradients, the unrolled objective and both HVPs on the smooth model, at xi = lr = 0.5 so that the
    second-order term is large (the test below checks that first order fails)."""
    model, state = smooth
    lr = 0.5
    bw, ba = batches
    exact, finite = (D.DartsSettings(channels=C, cells_per_stage=N, batch_size=B, order=2, hvp=h)
                     for h in ("exact", "finite"))
    v = jax.tree.map(lambda p: jax.random.normal(jax.random.key(5), p.shape), state.params)

    @jax.jit
    def quantities(st):
        hv = [D.mixed_hvp(m, model, st.params, st.batch_stats, st.alpha, *bw, v) for m in D.HVP_MODES]
        return (D.alpha_gradient(exact, model, st, bw, ba, lr)[0], D.alpha_gradient(finite, model, st, bw, ba, lr)[0],
                D.alpha_gradient(SETTINGS, model, st, bw, ba, lr)[0], *hv)

    objective = jax.jit(lambda a: D.unrolled_objective(exact, model, state, a, bw, ba, lr))
    return quantities(state), objective


def test_second_order_gradient_matches_finite_differences(smooth, second_order):
    """g = grad_alpha L_val(w', alpha) - xi H v (both HVPs) against central differences of L_val(w'(alpha), alpha)
    in each of the 30 coordinates (h = 1e-2, float32), within 0.2% of the largest entry; the first-order gradient
    is off by ~67% here."""
    (g_exact, g_finite, g_first, *_), objective = second_order
    h, alpha = 1e-2, smooth[1].alpha
    eye = np.eye(alpha.size, dtype=np.float32).reshape((alpha.size,) + alpha.shape)
    fd = np.array([(objective(alpha + h * d) - objective(alpha - h * d)) / (2 * h) for d in eye]).reshape(alpha.shape)
    scale = np.abs(fd).max()
    np.testing.assert_allclose(g_exact, fd, atol=2e-3 * scale)  # measured: 2e-4 (h = 3e-2 or 1e-2), 9e-4 (3e-3)
    np.testing.assert_allclose(g_finite, fd, atol=2e-3 * scale)
    assert np.abs(g_first - fd).max() > 0.1 * scale


def test_exact_and_finite_difference_hvps_agree(second_order):
    """H v = grad^2_{alpha, w} L_train v for a random v: the paper's central difference (eps = 0.01 / ||v||,
    float32) within 0.1% of the largest entry of the exact forward-over-reverse product (measured: 5e-5)."""
    *_, hv_exact, hv_finite = second_order[0]
    assert float(jnp.abs(hv_exact).max()) > 0
    np.testing.assert_allclose(hv_finite, hv_exact, atol=1e-3 * float(jnp.abs(hv_exact).max()))


def test_power_iteration_finds_the_dominant_hessian_eigenvalue(smooth, batches):
    """Power iteration (exact alpha-HVPs, 60 steps) against the eigenvalue of largest magnitude of the dense
    (30 x 30) jax.hessian of the validation loss in alpha (here the largest, 0.0567; next |0.0444|: 20 steps
    are within 2e-4, 50 within 1e-7); its vector is an eigenvector."""
    model, state = smooth
    _, (xa, ya) = batches
    args = (model, state.params, state.batch_stats)

    @jax.jit
    def both(alpha):
        dense = jax.hessian(lambda a: D.loss_fn(*args, a, xa, ya)[0])(alpha).reshape(alpha.size, alpha.size)
        lam, u = D.dominant_eigenvalue(*args, alpha, xa, ya, jax.random.key(7), 60)
        return dense, lam, u, D.alpha_hvp(*args, alpha, xa, ya, u)

    dense, lam, u, hu = both(state.alpha)
    np.testing.assert_allclose(dense, dense.T, atol=1e-5 * np.abs(dense).max())
    eig = np.linalg.eigvalsh((dense + dense.T) / 2)
    top = eig[np.argmax(np.abs(eig))]
    assert top == eig.max()  # the dominant eigenvalue is the largest here
    np.testing.assert_allclose(lam, top, rtol=1e-4)
    np.testing.assert_allclose(hu, lam * u, atol=1e-2 * abs(top))


@pytest.fixture(scope="module")
def runs(smooth):
    """First-order searches on the smooth model (2 epochs, 2 steps each): `search_one` vmapped over seeds (0, 1)
    and jitted alone; data with one NaN image in the weights' half, and with every weight image NaN."""
    model = smooth[0]
    x, y = _images(6, 4 * B)
    clean = D.split_half(x, y)
    one_nan = clean.replace(xw=clean.xw.at[3, 2, 2, 0].set(jnp.nan))
    all_nan = clean.replace(xw=jnp.full_like(clean.xw, jnp.nan))
    one = functools.partial(D.search_one, SETTINGS, model, epochs=2)
    vmapped = jax.jit(jax.vmap(one, in_axes=(0, None)))
    alone = jax.jit(one)
    init = jax.jit(lambda seed: D.init_state(SETTINGS, model, jax.random.split(jax.random.key(seed))[0],
                                             clean.xw[:B]))
    return dict(v=vmapped(jnp.array([0, 1]), clean), a0=alone(0, clean), a0_again=alone(0, clean),
                a1=alone(1, clean), nan1=alone(0, one_nan), nan_all=alone(0, all_nan), init0=init(0))


def test_same_seed_same_run_and_different_seeds_differ(runs):
    chex.assert_trees_all_equal(runs["a0"], runs["a0_again"])
    assert not np.allclose(runs["a0"][0].alpha, runs["a1"][0].alpha)
    state, rec = runs["a0"]
    assert int(state.step) == 4 and int(state.epoch) == 2 and int(state.skipped) == 0
    np.testing.assert_allclose(rec.lr, [0.025, 0.013], rtol=1e-6)  # cosine 0.025 -> 0.001 over 2 epochs
    np.testing.assert_array_equal(rec.arch, np.argmax(rec.probs, -1))
    chex.assert_tree_all_finite((rec.train_loss, rec.valid_loss, rec.probs))
    assert np.isnan(rec.eigenvalue).all()  # not asked for (settings.eigen=False)


def test_vmapped_seeds_equal_separate_runs(runs):
    for s in (0, 1):
        chex.assert_trees_all_close(jax.tree.map(lambda a: a[s], runs["v"]), runs[f"a{s}"], atol=1e-5, rtol=1e-5)


def test_nan_batch_is_skipped_and_counted(runs):
    state, rec = runs["nan1"]
    np.testing.assert_array_equal(rec.skipped, [1, 1])  # the NaN image is in one batch per epoch
    assert int(state.skipped) == 2 and int(state.step) == 4
    chex.assert_tree_all_finite((state.params, state.alpha, state.batch_stats, rec.train_loss, rec.valid_loss))
    state, rec = runs["nan_all"]  # every step skipped: nothing but the counters moves
    assert int(state.skipped) == 4 and int(state.step) == 4
    init = runs["init0"]
    chex.assert_trees_all_equal((state.params, state.batch_stats, state.alpha, state.w_opt, state.a_opt),
                                (init.params, init.batch_stats, init.alpha, init.w_opt, init.a_opt))


def test_refusals():
    with pytest.raises(ConfigError, match="darts.hvp"):
        D.DartsSettings(hvp="lanczos")
    with pytest.raises(ConfigError, match="darts.order"):
        D.DartsSettings(order=3)
    x, y = _images(0, 12)
    with pytest.raises(ConfigError, match="darts.batch_size"):
        D.check_data(SETTINGS, x, y)
    with pytest.raises(ConfigError, match="darts.x"):
        D.check_data(SETTINGS, x[:, :6, :6], y)


def test_gdas_sample_is_one_hot_forward_with_the_gumbel_softmax_gradient():
    """GDAS's straight-through weights: forward values exactly one_hot(argmax(alpha + g)) per edge (log_softmax
    shifts a row by a constant), gradient that of softmax((log_softmax(alpha) + g) / tau)."""
    alpha = jax.random.normal(jax.random.key(0), (6, 5))
    g = jax.random.gumbel(jax.random.key(1), (6, 5))
    mix = D.Mix(jnp.zeros(()), g, jnp.asarray(0.7), True)
    w = D.op_weights(alpha, mix)
    np.testing.assert_array_equal(w, np.eye(5)[np.argmax(np.asarray(alpha + g), -1)])
    c = jax.random.normal(jax.random.key(2), (6, 5))
    got = jax.grad(lambda a: jnp.sum(c * D.op_weights(a, mix)))(alpha)
    want = jax.grad(lambda a: jnp.sum(c * jax.nn.softmax((jax.nn.log_softmax(a, -1) + g) / 0.7, -1)))(alpha)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)
    assert np.abs(got).max() > 0


def test_darts_minus_adds_the_auxiliary_skip_and_schedules_are_the_published_ones():
    alpha = jax.random.normal(jax.random.key(0), (6, 5))
    skip = nb201.OPS.index("skip_connect")
    w = D.op_weights(alpha, D.Mix(jnp.asarray(0.3), jnp.zeros((6, 5)), jnp.ones(()), False, skip=skip))
    np.testing.assert_allclose(w, jax.nn.softmax(alpha, -1) + 0.3 * np.eye(5)[nb201.OPS.index("skip_connect")],
                               rtol=1e-6)
    E = 10
    minus = [D.schedule(D.DartsSettings(method="darts_minus"), e, E) for e in (0, 5)]
    np.testing.assert_allclose([float(h.aux) for h in minus], [1.0, 0.5])  # linear 1 -> 0
    gdas = [D.schedule(D.DartsSettings(method="gdas"), e, E) for e in (0, 9)]
    np.testing.assert_allclose([float(h.tau) for h in gdas], [10.0, 0.1], rtol=1e-5)  # GDAS: 10 -> 0.1 (float32)
    beta = D.schedule(D.DartsSettings(method="beta"), 5, E)
    np.testing.assert_allclose(float(beta.reg), 25.0)  # beta-DARTS: 50 * epoch / epochs
    plain = D.schedule(D.DartsSettings(), 5, E)
    assert float(plain.aux) == 0 and float(plain.reg) == 0
    np.testing.assert_allclose(float(plain.lr), 0.001 + 0.024 * 0.5 * (1 + np.cos(np.pi / 2)), rtol=1e-6)


def test_beta_regulariser_adds_its_gradient_to_the_architecture_gradient(smooth, batches):
    """d/dalpha mean_e logsumexp(alpha_e) = softmax(alpha) / 6 (by hand); alpha_gradient adds reg times it."""
    model, state = smooth
    bw, ba = batches
    np.testing.assert_allclose(jax.grad(D.beta_regulariser)(state.alpha), jax.nn.softmax(state.alpha, -1) / 6,
                               rtol=1e-6)
    g0, loss0 = D.alpha_gradient(SETTINGS, model, state, bw, ba, 0.025)
    g1, loss1 = D.alpha_gradient(SETTINGS, model, state, bw, ba, 0.025, reg=20.0)
    np.testing.assert_allclose(g1 - g0, 20.0 * jax.nn.softmax(state.alpha, -1) / 6, rtol=1e-4, atol=1e-6)
    assert float(loss0) == float(loss1)  # the reported validation loss leaves the regulariser out


def test_epochwise_search_equals_the_scanned_one(smooth, runs):
    """`init_one` then `epoch_one` twice (the entry point's checkpointable loop) equals `search_one`'s scan."""
    model = smooth[0]
    x, y = _images(6, 4 * B)
    clean = D.split_half(x, y)
    state = jax.jit(lambda: D.init_one(SETTINGS, model, 0, clean))()
    step = jax.jit(lambda st: D.epoch_one(SETTINGS, model, st, 0, clean, 2))
    state, r0 = step(state)
    state, r1 = step(state)
    full_state, full_rec = runs["a0"]
    chex.assert_trees_all_close(state, full_state, atol=1e-6, rtol=1e-6)
    chex.assert_trees_all_close(jax.tree.map(lambda a, b: jnp.stack([a, b]), r0, r1), full_rec, atol=1e-6, rtol=1e-6)


def test_robust_darts_rule_by_hand():
    from jaxnas.evaluation.robust_darts import early_stop_epoch, local_averages

    # window 5: the mean of the values up to e + 2 (at most 5), formed once 3 exist, never at the last epoch
    assert local_averages(np.arange(1.0, 9.0)) == {0: 2.0, 1: 2.5, 2: 3.0, 3: 4.0, 4: 5.0}
    ev = np.ones(30)
    ev[20:] = 2.0  # the eigenvalue doubles at epoch 20
    # local average of epoch j holds j - 17 doubled values for j in 18..22: 1 + (j - 17) / 5; the one 4 epochs
    # earlier is 1 until j = 22. Ratio > 1.3 first at j = 19 (1.4): return the cell of epoch 19 - 4 = 15.
    assert early_stop_epoch(ev) == 15
    assert early_stop_epoch(ev, start_epoch=16) == 16  # j = 20: 1.6 / 1.0
    assert early_stop_epoch(ev, factor=2.5) is None
    assert early_stop_epoch(np.ones(30)) is None
    nan = ev.copy()
    nan[15:25] = np.nan
    assert early_stop_epoch(nan) is None
    with pytest.raises(ConfigError, match="robust_darts.window"):
        early_stop_epoch(ev, window=0)


def test_method_refusals():
    with pytest.raises(ConfigError, match="darts.method"):
        D.DartsSettings(method="pc_darts")
    with pytest.raises(ConfigError, match="darts.order"):
        D.DartsSettings(method="gdas", order=2)
    with pytest.raises(ConfigError, match="darts.tau"):
        D.DartsSettings(tau=(0.1, 10.0))


def test_darts_cell_discretisation_on_a_hand_made_alpha():
    """The DARTS rule on 4 nodes (14 edges): top-2 incoming edges by their strongest non-`none` op, that op kept;
    a `none`-dominated edge is ranked by its runner-up and never gets `none`."""
    from jaxnas.models.darts_cell import DARTS_OPS, derive_cell, num_edges

    op = {name: i for i, name in enumerate(DARTS_OPS)}
    alpha = np.zeros((num_edges(4), len(DARTS_OPS)))
    # node 0 (edges 0-1, inputs 0, 1): edge 1 strong sep_conv_3x3, edge 0 weaker skip
    alpha[1, op["sep_conv_3x3"]] = 3.0
    alpha[0, op["skip_connect"]] = 1.0
    # node 1 (edges 2-4, inputs 0, 1, 2): edge 2 dominated by `none` (10) with max_pool 2 as runner-up; edge 4
    # dil_conv_5x5 2.5; edge 3 avg_pool 1.5. Softmax rows: edge 2's max_pool share is tiny, so it ranks last.
    alpha[2, op["none"]], alpha[2, op["max_pool_3x3"]] = 10.0, 2.0
    alpha[4, op["dil_conv_5x5"]] = 2.5
    alpha[3, op["avg_pool_3x3"]] = 1.5
    # node 2 (edges 5-8): all equal -> a tie: inputs 0 and 1, op: the first non-none op (max_pool_3x3)
    # node 3 (edges 9-13): input 4 (edge 13) sep_conv_5x5, input 2 (edge 11) dil_conv_3x3
    alpha[13, op["sep_conv_5x5"]] = 4.0
    alpha[11, op["dil_conv_3x3"]] = 3.0
    assert derive_cell(alpha) == [("sep_conv_3x3", 1), ("skip_connect", 0),
                                  ("dil_conv_5x5", 2), ("avg_pool_3x3", 1),
                                  ("max_pool_3x3", 0), ("max_pool_3x3", 1),
                                  ("sep_conv_5x5", 4), ("dil_conv_3x3", 2)]
    with pytest.raises(ConfigError, match="alpha"):
        derive_cell(alpha[:10])


def test_gdas_code_estimator_gives_every_unsampled_op_the_outputs_summed_gradient():
    """GDAS's official estimator: the supernet gets weights w * m (only the sampled op carries its weight) and an
    edge bias sum_{o unsampled} w_o (value 0). For an output linear in both, sum C * (w m) + K * bias, the gradient in
    alpha equals the straight-through softmax gradient with dL/dw_o = C[e, o] for the sampled op and K[e] (the
    summed output gradient) for every unsampled one, `none` included."""
    alpha = jax.random.normal(jax.random.key(0), (6, 5))
    g = jax.random.gumbel(jax.random.key(1), (6, 5))
    mix = D.Mix(jnp.zeros(()), g, jnp.asarray(2.0), True, "code")
    w, bias = D.model_inputs(alpha, mix)
    m = np.eye(5)[np.argmax(np.asarray(alpha + g), -1)]
    np.testing.assert_allclose(w, m, atol=1e-6)
    np.testing.assert_allclose(bias, 0.0, atol=1e-6)
    C = jax.random.normal(jax.random.key(2), (6, 5))
    K = jax.random.normal(jax.random.key(3), (6,))

    def out(a):
        w_, b_ = D.model_inputs(a, mix)
        return jnp.sum(C * w_) + jnp.sum(K * b_)

    G = np.where(m > 0, np.asarray(C), np.asarray(K)[:, None])
    want = jax.grad(lambda a: jnp.sum(G * jax.nn.softmax((jax.nn.log_softmax(a, -1) + g) / 2.0, -1)))(alpha)
    np.testing.assert_allclose(jax.grad(out)(alpha), want, rtol=1e-5, atol=1e-7)
    assert D.model_inputs(alpha, mix.replace(estimator="paper"))[1] is None  # the relaxed sum needs no bias
    with pytest.raises(ConfigError, match="darts.gdas_estimator"):
        D.DartsSettings(gdas_estimator="rebar")
