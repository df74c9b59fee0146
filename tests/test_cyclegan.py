"""Tests for gans/cyclegan.py, gans/losses.py (CycleGAN's) and gans/pool.py: torch-equivalent transposed conv,
generator / PatchGAN shapes and parameter counts against the official code, instance norm, initialisation,
hand-computed losses, the image pool, and config errors."""

import dataclasses
import math

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gans import cyclegan as cg
from gans import losses as gl
from gans import pool as gpool
from jaxnas.common.errors import ConfigError

pytestmark = pytest.mark.usefixtures("fast_compile")  # exact checks and tiny runs: compile-bound (conftest)

TINY = dict(ngf=8, ndf=8, n_res_blocks=2)


def rbg_key(seed: int) -> jax.Array:
    """Keys for network init. On CPU, compiling threefry sampling takes 1-3 s per distinct parameter shape;
    the XLA RngBitGenerator keys compile in ~0.2 s. The library itself works with any key type."""
    return jax.random.key(seed, impl="rbg")


def tiny(**kw) -> cg.CycleGANConfig:
    return cg.CycleGANConfig(**{**TINY, "resolution": 16, "disc_layers": 2, **kw})


def _torch_conv_transpose_ref(x, k, s=2, p=1, op=1):
    """Direct scatter definition of torch ConvTranspose2d: out[h*s - p + kh, w*s - p + kw] += x[h, w] @ W[kh, kw]."""
    b, h, w, _ = x.shape
    kk = k.shape[0]
    ho, wo = (h - 1) * s - 2 * p + kk + op, (w - 1) * s - 2 * p + kk + op
    out = np.zeros((b, ho, wo, k.shape[3]))
    for i in range(h):
        for j in range(w):
            for kh in range(kk):
                for kw in range(kk):
                    y, z = i * s - p + kh, j * s - p + kw
                    if 0 <= y < ho and 0 <= z < wo:
                        out[:, y, z, :] += x[:, i, j, :] @ k[kh, kw]
    return out


# ---- transposed conv ----

def test_conv_transpose_hand_case():
    # 1x1 input of value 1, kernel 1..9: out[y, x] = k[y + 1, x + 1] for y, x in {0, 1} (torch k3 s2 p1 op1).
    k = jnp.arange(1.0, 10.0).reshape(3, 3, 1, 1)
    out = cg.conv_transpose_torch(jnp.ones((1, 1, 1, 1)), k)
    np.testing.assert_array_equal(np.asarray(out[0, :, :, 0]), [[5.0, 6.0], [8.0, 9.0]])


def test_conv_transpose_matches_torch_definition_and_lax():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 4, 2)).astype(np.float32)
    k = rng.standard_normal((3, 3, 2, 5)).astype(np.float32)
    out = cg.conv_transpose_torch(jnp.asarray(x), jnp.asarray(k))
    chex.assert_shape(out, (2, 6, 8, 5))  # (in - 1) * 2 - 2 + 3 + 1 = 2 * in
    np.testing.assert_allclose(out, _torch_conv_transpose_ref(x, k), atol=1e-5)
    lax = jax.lax.conv_transpose(jnp.asarray(x), jnp.asarray(k).swapaxes(2, 3), (2, 2), ((1, 2), (1, 2)),
                                 dimension_numbers=("NHWC", "HWIO", "NHWC"), transpose_kernel=True)
    np.testing.assert_allclose(out, lax, atol=1e-5)
    # Other settings take the general lhs-dilated path (the default one has its own polyphase path).
    for s, p, op in ((2, 1, 0), (1, 1, 0), (2, 0, 1)):
        np.testing.assert_allclose(cg.conv_transpose_torch(jnp.asarray(x), jnp.asarray(k), s, p, op),
                                   _torch_conv_transpose_ref(x, k, s, p, op), atol=1e-5)


# ---- instance norm ----

def test_instance_norm_stats_and_eps():
    x = 3.0 * np.random.default_rng(0).standard_normal((2, 8, 8, 5)).astype(np.float32) + 2.0
    y = np.asarray(jax.jit(cg.instance_norm)(x), np.float64)
    np.testing.assert_allclose(y.mean(axis=(1, 2)), 0.0, atol=1e-4)
    np.testing.assert_allclose(y.var(axis=(1, 2)), 1.0, atol=1e-4)
    xn = np.asarray(x, np.float64)
    mu, var = xn.mean(axis=(1, 2), keepdims=True), xn.var(axis=(1, 2), keepdims=True)  # biased, like torch
    np.testing.assert_allclose(y, (xn - mu) / np.sqrt(var + 1e-5), atol=1e-5)
    # eps 1e-5 matters on a tiny-variance channel: var 1e-5 -> output std sqrt(1/2).
    t = jnp.asarray([[-1.0, 1.0], [1.0, -1.0]]).reshape(1, 2, 2, 1) * math.sqrt(1e-5)
    np.testing.assert_allclose(cg.instance_norm(t)[0, 0, 0, 0], -math.sqrt(0.5), rtol=1e-4)


# ---- generator ----

@pytest.fixture(scope="module")
def nets16():
    """The four tiny 16px networks (A: 1 channel, B: 3 channels) from `init_cyclegan`, initialised eagerly:
    the init runs every forward op once, so later eager applies at the same shapes compile nothing."""
    cfg = tiny(channels_a=1, channels_b=3)
    return cfg, cg.init_cyclegan(cfg, rbg_key(0)), cg.cyclegan_modules(cfg)


def test_generator_shape_and_range_16(nets16):
    cfg, params, mods = nets16
    # Batch 1, the init batch: the eager ops are already compiled (batch 2 is covered at 32px).
    x_a = jax.random.uniform(rbg_key(5), (1, 16, 16, 1), minval=-1.0, maxval=1.0)
    y = mods["g_ab"].apply({"params": params["g_ab"]}, x_a)
    chex.assert_shape(y, (1, 16, 16, 3))
    assert y.dtype == x_a.dtype
    assert float(jnp.max(jnp.abs(y))) < 1.0 and float(jnp.std(y)) > 0.0
    back = mods["g_ba"].apply({"params": params["g_ba"]}, y)
    chex.assert_shape(back, (1, 16, 16, 1))
    assert float(jnp.max(jnp.abs(back))) < 1.0


def test_generator_shape_and_range_32():
    g = cg.ResnetGenerator(tiny(resolution=32), 3, 3)
    x = jax.random.uniform(rbg_key(6), (2, 32, 32, 3), minval=-1.0, maxval=1.0)
    y = g.apply(g.init(rbg_key(4), x), x)
    chex.assert_shape(y, (2, 32, 32, 3))
    assert float(jnp.max(jnp.abs(y))) < 1.0 and float(jnp.std(y)) > 0.0


def test_generator_structure_and_init(nets16):
    p = nets16[1]["g_ab"]  # tiny(16): ngf 8, 2 res blocks, 1 -> 3 channels
    assert set(p) == {"conv_in", "down0", "down1", "res0", "res1", "up0", "up1", "conv_out"}
    shapes = {"conv_in": (7, 7, 1, 8), "down0": (3, 3, 8, 16), "down1": (3, 3, 16, 32),
              "up0": (3, 3, 32, 16), "up1": (3, 3, 16, 8), "conv_out": (7, 7, 8, 3)}
    for name, shape in shapes.items():
        assert p[name]["kernel"].shape == shape, name
        assert p[name]["bias"].shape == shape[-1:], name  # convs have biases (IN has no affine)
    assert set(p["res0"]) == {"conv0", "conv1"}
    assert p["res0"]["conv0"]["kernel"].shape == (3, 3, 32, 32)
    leaves = jax.tree_util.tree_leaves_with_path(p)
    assert {jax.tree_util.keystr(path[-1:]) for path, _ in leaves} == {"['kernel']", "['bias']"}  # no IN scale
    for path, leaf in leaves:
        if jax.tree_util.keystr(path[-1:]) == "['bias']":
            assert not np.any(np.asarray(leaf)), path
    w = np.concatenate([np.ravel(leaf) for path, leaf in leaves if "kernel" in jax.tree_util.keystr(path)])
    assert abs(w.mean()) < 1e-3 and abs(w.std() - 0.02) < 1e-3  # N(0, 0.02), ~40k weights


def test_generator_exactly_doubles_in_upsampling():
    cfg = tiny(resolution=16)
    g = cg.ResnetGenerator(cfg, 3, 3)
    out = jax.eval_shape(lambda: g.init_with_output(jax.random.key(0), jnp.zeros((1, 24, 40, 3)))[0])
    assert out.shape == (1, 24, 40, 3)  # non-square, not a power of two: 24 -> 6 -> 24


def test_official_parameter_counts():
    """resnet_9blocks has 11.378 M parameters and the 3-layer PatchGAN 2.765 M (official training log)."""
    cfg = cg.CycleGANConfig()
    mods = cg.cyclegan_modules(cfg)
    x = jnp.zeros((1, 256, 256, 3))
    counts = {n: sum(math.prod(leaf.shape) for leaf in jax.tree.leaves(jax.eval_shape(m.init, jax.random.key(0), x)))
              for n, m in (("g", mods["g_ab"]), ("d", mods["d_a"]))}
    assert counts == {"g": 11378179, "d": 2764737}
    assert jax.eval_shape(mods["d_a"].apply, jax.eval_shape(mods["d_a"].init, jax.random.key(0), x), x).shape == \
        (1, 30, 30, 1)


# ---- discriminator ----

def test_patch_geometry():
    assert cg.receptive_field(3) == 70
    assert [cg.receptive_field(n) for n in (1, 2, 3, 4)] == [16, 34, 70, 142]
    assert cg.patch_output_size(256, 3) == 30
    assert cg.patch_output_size(128, 3) == 14
    assert cg.patch_output_size(32, 3) == 2
    assert cg.patch_output_size(16, 3) == 0  # 16 -> 8 -> 4 -> 2 -> 1 -> 0: too small
    assert cg.patch_output_size(16, 2) == 2
    assert cg.patch_output_size(17, 2) == 2  # torch floor arithmetic on odd sizes: 17 -> 8 -> 4 -> 3 -> 2
    assert cg.CycleGANConfig().patch_size == 30


def test_discriminator_output(nets16):
    _, params, mods = nets16
    x = jax.random.uniform(rbg_key(7), (1, 16, 16, 1), minval=-1.0, maxval=1.0)
    s = mods["d_a"].apply({"params": params["d_a"]}, x)
    chex.assert_shape(s, (1, 2, 2, 1))  # patch_output_size(16, 2) == 2
    chex.assert_tree_all_finite(s)
    assert float(jnp.std(s)) > 0.0  # raw scores, not squashed


@pytest.mark.parametrize("resolution,layers,channels", [(16, 2, 3), (32, 3, 3), (64, 3, 1), (48, 2, 3)])
def test_discriminator_shape(resolution, layers, channels):
    d = cg.PatchDiscriminator(tiny(resolution=resolution, disc_layers=layers), channels)
    x = jax.ShapeDtypeStruct((3, resolution, resolution, channels), jnp.float32)
    out = jax.eval_shape(lambda v: d.init_with_output(jax.random.key(0), v)[0], x)
    q = cg.patch_output_size(resolution, layers)
    assert q >= 1
    assert out.shape == (3, q, q, 1)


def test_discriminator_channels():
    cfg = cg.CycleGANConfig(ndf=8, disc_layers=5, resolution=256)
    p = jax.eval_shape(cg.PatchDiscriminator(cfg, 3).init, jax.random.key(0), jnp.zeros((1, 256, 256, 3)))["params"]
    outs = [p[f"conv{n}"]["kernel"].shape[-1] for n in range(6)]
    assert outs == [8, 16, 32, 64, 64, 64]  # ndf * min(2**n, 8)
    assert p["conv0"]["kernel"].shape == (4, 4, 3, 8)
    assert p["out"]["kernel"].shape == (4, 4, 64, 1)


# ---- init ----

def test_init_cyclegan_keys(nets16):
    cfg, params, _ = nets16
    assert set(params) == {"g_ab", "g_ba", "d_a", "d_b"}
    assert params["g_ab"]["conv_in"]["kernel"].shape == (7, 7, 1, 8)
    assert params["g_ab"]["conv_out"]["kernel"].shape == (7, 7, 8, 3)
    assert params["g_ba"]["conv_in"]["kernel"].shape == (7, 7, 3, 8)
    assert params["g_ba"]["conv_out"]["kernel"].shape == (7, 7, 8, 1)
    assert params["d_a"]["conv0"]["kernel"].shape == (4, 4, 1, 8)
    assert params["d_b"]["conv0"]["kernel"].shape == (4, 4, 3, 8)
    # Equal shapes, different keys: the two generators (and discriminators) start from different weights.
    for name in ("down1", "res0", "res1", "up0"):
        kernels_ab = [v for path, v in jax.tree_util.tree_leaves_with_path(params["g_ab"][name])
                      if "kernel" in jax.tree_util.keystr(path)]
        kernels_ba = [v for path, v in jax.tree_util.tree_leaves_with_path(params["g_ba"][name])
                      if "kernel" in jax.tree_util.keystr(path)]
        assert kernels_ab
        for x, y in zip(kernels_ab, kernels_ba):
            assert x.shape == y.shape and not np.allclose(x, y), name
    assert not np.allclose(params["d_a"]["conv1"]["kernel"], params["d_b"]["conv1"]["kernel"])
    chex.assert_trees_all_equal(params, cg.init_cyclegan(cfg, rbg_key(0)))  # deterministic given the key
    other = cg.init_cyclegan(cfg, rbg_key(1))
    assert not np.allclose(other["g_ab"]["res0"]["conv0"]["kernel"], params["g_ab"]["res0"]["conv0"]["kernel"])


# ---- losses ----

R = jnp.asarray([[0.5, 2.0], [-1.0, 1.0]])  # "real" scores
F = jnp.asarray([[0.0, -2.0], [1.5, 0.5]])  # "fake" scores


def test_lsgan_hand_values():
    # D: mean((r-1)^2) = (0.25 + 1 + 4 + 0) / 4 = 1.3125; mean(f^2) = (0 + 4 + 2.25 + 0.25) / 4 = 1.625.
    np.testing.assert_allclose(gl.adversarial_d_loss("lsgan", R, F), 1.3125 + 1.625, rtol=1e-6)
    np.testing.assert_allclose(gl.discriminator_loss("lsgan", R, F), 0.5 * (1.3125 + 1.625), rtol=1e-6)
    # G: mean((f-1)^2) = (1 + 9 + 0.25 + 0.25) / 4 = 2.625.
    np.testing.assert_allclose(gl.adversarial_g_loss("lsgan", F), 2.625, rtol=1e-6)


def test_lsgan_extremes():
    ones, zeros = jnp.ones((2, 3, 3, 1)), jnp.zeros((2, 3, 3, 1))
    assert float(gl.adversarial_d_loss("lsgan", ones, zeros)) == 0.0  # perfect D
    assert float(gl.adversarial_d_loss("lsgan", zeros, ones)) == 2.0  # fully fooled D: 1 + 1
    assert float(gl.discriminator_loss("lsgan", zeros, ones)) == 1.0
    assert float(gl.adversarial_g_loss("lsgan", ones)) == 0.0
    assert float(gl.adversarial_g_loss("lsgan", zeros)) == 1.0


def test_log_losses_hand_values():
    r, f = np.asarray(R, np.float64), np.asarray(F, np.float64)
    sig = lambda v: 1.0 / (1.0 + np.exp(-v))  # noqa: E731
    bce_real = -np.mean(np.log(sig(r)))  # BCE(real, 1)
    bce_fake = -np.mean(np.log(1.0 - sig(f)))  # BCE(fake, 0)
    for kind in ("minimax", "nonsaturating"):
        np.testing.assert_allclose(gl.adversarial_d_loss(kind, R, F), bce_real + bce_fake, rtol=1e-6)
        np.testing.assert_allclose(gl.discriminator_loss(kind, R, F), 0.5 * (bce_real + bce_fake), rtol=1e-6)
    np.testing.assert_allclose(gl.adversarial_g_loss("minimax", F), np.mean(np.log(1.0 - sig(f))), rtol=1e-6)
    np.testing.assert_allclose(gl.adversarial_g_loss("nonsaturating", F), -np.mean(np.log(sig(f))), rtol=1e-6)
    # f = 0 exactly: D = 1/2, both G losses are +-log 2.
    z = jnp.zeros((4,))
    np.testing.assert_allclose(gl.adversarial_g_loss("nonsaturating", z), math.log(2.0), rtol=1e-6)
    np.testing.assert_allclose(gl.adversarial_g_loss("minimax", z), -math.log(2.0), rtol=1e-6)
    # Stable at extreme logits (no log(0)).
    big = jnp.asarray([-100.0, 100.0])
    for kind in ("minimax", "nonsaturating"):
        assert np.isfinite(float(gl.adversarial_g_loss(kind, big)))
        assert np.isfinite(float(gl.adversarial_d_loss(kind, big, big)))
    np.testing.assert_allclose(gl.adversarial_g_loss("nonsaturating", big), 50.0, rtol=1e-6)  # (100 + 0) / 2


def test_nonsaturating_vs_minimax_gradients():
    """Where D confidently rejects fakes (D(G(x)) ~ 4.5e-5) minimax's gradient vanishes; non-saturating's is ~ -1."""
    f = jnp.asarray([-10.0])
    g_mm = float(jax.grad(lambda s: gl.adversarial_g_loss("minimax", s))(f)[0])
    g_ns = float(jax.grad(lambda s: gl.adversarial_g_loss("nonsaturating", s))(f)[0])
    sig = 1.0 / (1.0 + math.exp(10.0))
    np.testing.assert_allclose(g_mm, -sig, rtol=1e-4)  # d/ds log(1 - sigmoid(s)) = -sigmoid(s)
    np.testing.assert_allclose(g_ns, -(1.0 - sig), rtol=1e-4)  # d/ds -log sigmoid(s) = -(1 - sigmoid(s))
    assert g_mm < 0 and g_ns < 0  # both push the fake score up (descent)
    assert abs(g_ns) > 1e4 * abs(g_mm)
    # The wrong-sign course loss -log(1 - D(G(x))) = softplus(s) has gradient +sigmoid(s): descent lowers the
    # fake score, helping the discriminator. It is exactly the negative of the minimax loss.
    wrong = lambda s: jnp.mean(jax.nn.softplus(s))  # noqa: E731
    assert float(jax.grad(wrong)(f)[0]) > 0
    np.testing.assert_allclose(wrong(F), -gl.adversarial_g_loss("minimax", F), rtol=1e-6)


def test_unknown_adversarial_kind():
    for fn, args in ((gl.adversarial_d_loss, (R, F)), (gl.adversarial_g_loss, (F,)), (gl.discriminator_loss, (R, F))):
        with pytest.raises(ConfigError) as e:
            fn("wgan", *args)
        assert e.value.field == "adversarial_loss"
        assert "lsgan" in str(e.value) and "nonsaturating" in str(e.value) and "minimax" in str(e.value)


def test_cycle_and_identity_hand_values():
    real_a = jnp.asarray([[0.0, 1.0], [-1.0, 0.5]])
    rec_a = jnp.asarray([[0.5, 1.0], [-0.5, 0.0]])  # |diff| = .5, 0, .5, .5 -> mean .375
    real_b = jnp.asarray([1.0, -1.0, 0.0, 0.0])
    rec_b = jnp.asarray([0.0, -1.0, 0.2, 0.0])  # |diff| = 1, 0, .2, 0 -> mean .3
    np.testing.assert_allclose(gl.cycle_loss(real_a, rec_a, real_b, rec_b), 10 * 0.375 + 10 * 0.3, rtol=1e-6)
    np.testing.assert_allclose(gl.cycle_loss(real_a, rec_a, real_b, rec_b, lam=2.0), 2 * 0.675, rtol=1e-6)
    # Identity: g_ab(real_b) compared with real_b, g_ba(real_a) with real_a; 0.5 * 10 * (.3 + .375).
    val = gl.identity_loss(real_a, g_ba_of_a=rec_a, real_b=real_b, g_ab_of_b=rec_b)
    np.testing.assert_allclose(val, 0.5 * 10 * (0.3 + 0.375), rtol=1e-6)
    np.testing.assert_allclose(gl.identity_loss(real_a, rec_a, real_b, rec_b, lam=4.0, weight=0.25),
                               0.25 * 4 * 0.675, rtol=1e-6)
    assert float(gl.identity_loss(real_a, real_a, real_b, real_b)) == 0.0
    assert float(gl.cycle_loss(real_a, real_a, real_b, real_b)) == 0.0


# ---- image pool ----

def _distinct_images(n, shape=(2, 2, 1), offset=0):
    """Image i is filled with the value offset + i + 1 (never 0, the empty-slot value)."""
    return (jnp.arange(n, dtype=jnp.float32) + offset + 1)[:, None, None, None] * jnp.ones((1, *shape))


def test_pool_fills_in_order_and_returns_inputs(key_reuse_check):
    query = jax.jit(gpool.pool_query)  # one compile for both calls (same shapes)
    state = gpool.pool_init(5, (2, 2, 1))
    chex.assert_shape(state.images, (5, 2, 2, 1))
    assert state.count.dtype == jnp.int32 and int(state.count) == 0
    imgs = _distinct_images(3)
    state, out = query(state, imgs, rbg_key(0))
    np.testing.assert_array_equal(out, imgs)
    assert int(state.count) == 3
    np.testing.assert_array_equal(state.images[:3], imgs)
    np.testing.assert_array_equal(state.images[3:], 0.0)
    # A batch that crosses the full mark: the first two fill slots 3, 4 and are returned as is; the third
    # meets a full pool and comes back either itself or as one of the 5 stored images (which it replaces).
    more = _distinct_images(3, offset=3)
    new, out = query(state, more, rbg_key(1))
    np.testing.assert_array_equal(out[:2], more[:2])
    assert int(new.count) == 5
    full = np.asarray(_distinct_images(5))
    if np.array_equal(out[2], more[2]):
        np.testing.assert_array_equal(new.images, full)
    else:
        i = int(np.flatnonzero(np.all(full == np.asarray(out[2]), axis=(1, 2, 3)))[0])
        np.testing.assert_array_equal(new.images, np.concatenate([full[:i], more[2:], full[i + 1:]]))


def test_pool_size_zero_is_identity():
    state = gpool.pool_init(0, (4, 4, 3))
    imgs = jax.random.normal(rbg_key(0), (2, 4, 4, 3))
    new, out = jax.jit(gpool.pool_query)(state, imgs, rbg_key(1))
    np.testing.assert_array_equal(out, imgs)
    assert new.images.shape == (0, 4, 4, 3) and int(new.count) == 0


def test_pool_full_statistics_jitted(key_reuse_check):
    size, n = 5, 2000
    state = gpool.pool_init(size, (2, 2, 1))
    state, _ = gpool.pool_query(state, _distinct_images(size), rbg_key(0))  # fill
    queries = _distinct_images(n, offset=size)  # values size+1 .. size+n, all distinct

    @jax.jit
    def run(state, key):
        def body(st, xs):
            img, k = xs
            new, out = gpool.pool_query(st, img[None], k)
            return new, (out[0], st.images)

        return jax.lax.scan(body, state, (queries, jax.random.split(key, n)))

    final, (outs, before) = run(state, rbg_key(42))
    outs, before, queries_np = np.asarray(outs), np.asarray(before), np.asarray(queries)
    assert outs.shape == (n, 2, 2, 1) and outs.dtype == np.float32
    from_pool = ~np.all(outs == queries_np, axis=(1, 2, 3))
    assert abs(from_pool.mean() - 0.5) < 0.05
    assert int(final.count) == size
    hits = []
    for t in np.flatnonzero(from_pool):
        match = np.flatnonzero(np.all(before[t] == outs[t], axis=(1, 2, 3)))
        assert match.size == 1, t  # the returned image was in the pool just before the query ...
        after = before[t + 1] if t + 1 < n else np.asarray(final.images)
        np.testing.assert_array_equal(after[match[0]], queries_np[t])  # ... and the new one took its place
        hits.append(match[0])
    for t in np.flatnonzero(~from_pool):  # returned the new image: the pool is unchanged
        after = before[t + 1] if t + 1 < n else np.asarray(final.images)
        np.testing.assert_array_equal(after, before[t])
    counts = np.bincount(hits, minlength=size)
    assert counts.min() > 0.7 * counts.mean() and counts.max() < 1.3 * counts.mean()  # uniform index


def test_pool_batched_deterministic_and_jittable():
    """Default (threefry) keys, jitted, batch 6 against a pool of 4."""
    size = 4
    query = jax.jit(gpool.pool_query)
    k0, k1, k2, k3 = jax.random.split(jax.random.key(7), 4)
    first, second = jax.random.normal(k0, (2, 6, 3, 3, 2))
    state, out = query(gpool.pool_init(size, (3, 3, 2)), first, k1)
    np.testing.assert_array_equal(out[:size], first[:size])  # filling: stored and returned in order
    f = np.asarray(first)
    for i, row in enumerate(np.asarray(state.images)):  # slot i holds first[i] unless first[4] / first[5] took it
        assert any(np.array_equal(row, f[j]) for j in (i, 4, 5)), i
    assert int(state.count) == size
    s1, o1 = query(state, second, k2)
    s2, o2 = query(state, second, k2)
    chex.assert_trees_all_equal((s1, o1), (s2, o2))  # deterministic given the key
    assert o1.shape == second.shape and o1.dtype == second.dtype
    assert s1.images.shape == (size, 3, 3, 2) and int(s1.count) == size
    seen = np.concatenate([np.asarray(state.images), np.asarray(second)])
    for img in np.asarray(o1):  # every output is a new image or one that was stored
        assert np.any(np.all(seen == img, axis=(1, 2, 3)))
    s3, o3 = query(state, second, k3)
    assert not (np.array_equal(o1, o3) and np.array_equal(s1.images, s3.images))  # the key matters
    # Gradients do not flow through the pool (official uses image.data).
    g = jax.grad(lambda x: jnp.sum(gpool.pool_query(state, x, rbg_key(9))[1]))(second)
    assert not np.any(np.asarray(g))


def test_pool_bfloat16_dtype_kept():
    state = gpool.pool_init(2, (2, 2, 1))
    imgs = _distinct_images(3).astype(jnp.bfloat16)
    _, out = gpool.pool_query(state, imgs, rbg_key(0))
    assert out.dtype == jnp.bfloat16 and out.shape == imgs.shape


def test_pool_shape_error():
    with pytest.raises(ConfigError) as e:
        gpool.pool_query(gpool.pool_init(2, (4, 4, 3)), jnp.zeros((1, 4, 4, 1)), rbg_key(0))
    assert e.value.field == "images"


# ---- config ----

def test_default_config_is_official_and_valid():
    cfg = cg.CycleGANConfig()
    cfg.validate()
    assert (cfg.resolution, cfg.ngf, cfg.ndf, cfg.n_res_blocks, cfg.n_downsampling, cfg.disc_layers) == \
        (256, 64, 64, 9, 2, 3)
    assert cfg.init_std == 0.02
    tiny().validate()
    tiny(channels_a=1, channels_b=3).validate()
    tiny(resolution=20, n_res_blocks=0).validate()


@pytest.mark.parametrize("field,value", [
    ("resolution", 18), ("resolution", 12), ("resolution", 16.0), ("resolution", 0),
    ("channels_a", 2), ("channels_b", 4), ("ngf", 0), ("ndf", -8), ("n_res_blocks", -1),
    ("n_downsampling", 3),  # 16 / 8 = 2 ok; see below for the failing case at 20
    ("disc_layers", 3), ("disc_layers", 0), ("init_std", 0.0),
])
def test_config_errors_name_field(field, value):
    if field == "n_downsampling":  # 20 is a multiple of 4 but not of 8
        cfg = tiny(resolution=20, n_downsampling=value)
    else:
        cfg = tiny(**{field: value})
    with pytest.raises(ConfigError) as e:
        cfg.validate()
    assert e.value.field == field


def test_pool_and_loss_argument_errors():
    for size in (-1, 2.5):
        with pytest.raises(ConfigError) as e:
            gpool.pool_init(size, (4, 4, 3))
        assert e.value.field == "pool_size"
    with pytest.raises(ConfigError) as e:
        gpool.pool_init(2, (4, 4))
    assert e.value.field == "image_shape"


def test_network_input_errors():
    cfg = tiny()
    with pytest.raises(ConfigError) as e:
        cg.ResnetGenerator(cfg, 3, 3).init(jax.random.key(0), jnp.zeros((1, 18, 16, 3)))
    assert e.value.field == "images"
    with pytest.raises(ConfigError) as e:
        cg.PatchDiscriminator(cfg, 3).init(jax.random.key(0), jnp.zeros((1, 16, 16, 1)))
    assert e.value.field == "images"
    with pytest.raises(ConfigError) as e:
        cg.ResnetGenerator(dataclasses.replace(cfg, ngf=0), 3, 3).init(jax.random.key(0), jnp.zeros((1, 16, 16, 3)))
    assert e.value.field == "ngf"
