"""Tests for gans/stylegan.py: shapes, AdaIN, noise, truncation, style mixing, equalized lr, mbstd, config."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gans import stylegan as sg
from jaxnas.common.errors import ConfigError

pytestmark = pytest.mark.usefixtures("fast_compile")  # exact checks and tiny runs: compile-bound (conftest)

TINY = dict(z_dim=16, w_dim=16, mapping_layers=2, fmap_base=64, fmap_max=16, mbstd_group=2)


def tiny(**kw) -> sg.StyleGANConfig:
    return sg.StyleGANConfig(**{**TINY, "resolution": 8, **kw})


@pytest.fixture(scope="module")
def gen8():
    """A tiny 8x8 generator with params and jitted map / synthesize."""
    cfg = tiny(channels=3)
    g = sg.Generator(cfg)
    params = g.init(jax.random.key(0), jnp.zeros((2, cfg.z_dim)), None)
    mapf = jax.jit(lambda p, z: g.apply(p, z, method=g.map))
    synth = jax.jit(lambda p, ws, k: g.apply(p, ws, k, method=g.synthesize))
    synth_det = jax.jit(lambda p, ws: g.apply(p, ws, None, method=g.synthesize))
    return cfg, params, mapf, synth, synth_det


@pytest.mark.parametrize("resolution,channels,num_ws", [(8, 1, 4), (16, 3, 6), (32, 1, 8)])
@pytest.mark.parametrize("arch", ["resnet", "plain"])
def test_shapes_and_num_ws(resolution, channels, num_ws, arch, key_reuse_check):
    cfg = tiny(resolution=resolution, channels=channels, discriminator=arch)
    assert cfg.num_ws == num_ws
    g, d = sg.Generator(cfg), sg.Discriminator(cfg)
    k_g, k_d, k_z, k_n = jax.random.split(jax.random.key(1), 4)
    z = jax.random.normal(k_z, (3, cfg.z_dim))
    gp = g.init(k_g, z, None)
    imgs = g.apply(gp, z, k_n)
    chex.assert_shape(imgs, (3, resolution, resolution, channels))
    chex.assert_tree_all_finite(imgs)
    dp = d.init(k_d, imgs)
    logits = d.apply(dp, imgs)
    chex.assert_shape(logits, (3,))
    chex.assert_tree_all_finite(logits)
    chex.assert_shape(g.apply(gp, z, method=g.map), (3, cfg.w_dim))
    assert ("skip%d" % resolution in dp["params"]) == (arch == "resnet")


def test_nf_official_and_cpu_channels():
    official = sg.StyleGANConfig()
    assert [official.nf(s) for s in range(5)] == [512] * 5
    assert official.num_ws == 8
    cpu = sg.StyleGANConfig(fmap_base=1024, fmap_max=128)
    assert [cpu.nf(s) for s in range(6)] == [128, 128, 128, 128, 64, 32]
    g = sg.Generator(cpu)
    shapes = jax.eval_shape(g.init, jax.random.key(0), jnp.zeros((1, 512)), None)["params"]["synthesis"]
    assert shapes["const"].shape == (1, 4, 4, 128)
    assert shapes["conv32"]["kernel"].shape == (3, 3, 64, 64)
    assert shapes["to_rgb"]["kernel"].shape == (1, 1, 64, 1)


def test_instance_norm_and_adain_by_hand():
    rng = np.random.default_rng(0)
    x = rng.normal(3.0, 5.0, (2, 4, 5, 3)).astype(np.float32)
    n = np.asarray(sg.instance_norm(jnp.asarray(x)))
    np.testing.assert_allclose(n.mean(axis=(1, 2)), 0.0, atol=1e-5)
    np.testing.assert_allclose(n.std(axis=(1, 2)), 1.0, atol=1e-4)
    scale = rng.normal(size=(2, 3)).astype(np.float32)
    bias = rng.normal(size=(2, 3)).astype(np.float32)
    mu = x.mean(axis=(1, 2), keepdims=True)
    var = ((x - mu) ** 2).mean(axis=(1, 2), keepdims=True)
    want = scale[:, None, None, :] * (x - mu) / np.sqrt(var + 1e-8) + bias[:, None, None, :]
    np.testing.assert_allclose(np.asarray(sg.adain(jnp.asarray(x), scale, bias)), want, rtol=1e-5, atol=1e-5)
    z = rng.normal(size=(4, 7)).astype(np.float32) * 9
    np.testing.assert_allclose((np.asarray(sg.pixel_norm(jnp.asarray(z))) ** 2).mean(-1), 1.0, rtol=1e-5)


def test_blur_is_the_official_121_filter_by_hand():
    """blur = the official depthwise [1,2,1]x[1,2,1]/16 filter with zero padding, computed here by loops."""
    rng = np.random.default_rng(2)
    x = rng.normal(size=(2, 5, 4, 3)).astype(np.float32)
    k = np.outer([1, 2, 1], [1, 2, 1]) / 16.0
    pad = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    want = np.zeros_like(x)
    for i in range(5):
        for j in range(4):
            want[:, i, j] = np.einsum("bhwc,hw->bc", pad[:, i:i + 3, j:j + 3], k)
    np.testing.assert_allclose(np.asarray(sg.blur(jnp.asarray(x))), want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("h,w", [(4, 4), (5, 6)])
def test_fused_resampling_convs_equal_the_plain_order(h, w):
    """upsample_conv2d = conv3x3 of the nearest-upsampled input; conv2d_downsample = conv3x3 then 2x2 mean."""
    rng = np.random.default_rng(3)
    x = jnp.asarray(rng.normal(size=(2, h, w, 3)), jnp.float32)
    k = jnp.asarray(rng.normal(size=(3, 3, 3, 4)), jnp.float32)

    def conv(v):
        return jax.lax.conv_general_dilated(v, k, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))

    up = jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2)
    np.testing.assert_allclose(np.asarray(sg.upsample_conv2d(x, k)), np.asarray(conv(up)), rtol=1e-5, atol=1e-5)
    x2 = jnp.asarray(rng.normal(size=(2, 2 * h, 2 * w, 3)), jnp.float32)
    pooled = np.asarray(conv(x2)).reshape(2, h, 2, w, 2, 4).mean(axis=(2, 4))
    np.testing.assert_allclose(np.asarray(sg.conv2d_downsample(x2, k)), pooled, rtol=1e-5, atol=1e-5)


def test_style_affine_starts_at_scale_one(gen8):
    cfg, params, *_ = gen8
    style = params["params"]["synthesis"]["epilogue0"]["style"]
    c = cfg.nf(1)
    np.testing.assert_array_equal(style["bias"], np.r_[np.ones(c), np.zeros(c)])


def test_noise_is_zero_at_init_then_matters(gen8):
    cfg, params, mapf, synth, synth_det = gen8
    z = jax.random.normal(jax.random.key(2), (2, cfg.z_dim))
    ws = sg.broadcast_ws(mapf(params, z), cfg.num_ws)
    a, b = synth(params, ws, jax.random.key(10)), synth(params, ws, jax.random.key(11))
    chex.assert_trees_all_equal(a, b)
    chex.assert_trees_all_close(a, synth_det(params, ws), atol=1e-5)  # other graph: rounding only
    p2 = jax.tree_util.tree_map(lambda x: x, params)
    layer = p2["params"]["synthesis"]["epilogue%d" % (cfg.num_ws - 1)]
    layer["noise_strength"] = jnp.ones_like(layer["noise_strength"])
    a2, b2 = synth(p2, ws, jax.random.key(10)), synth(p2, ws, jax.random.key(11))
    assert float(jnp.max(jnp.abs(a2 - b2))) > 1e-3
    chex.assert_trees_all_equal(a2, synth(p2, ws, jax.random.key(10)))  # same key, same image
    chex.assert_trees_all_equal(synth_det(p2, ws), synth_det(params, ws))  # no key: zero noise


def test_truncation_psi_zero_gives_w_avg_image(gen8):
    cfg, params, mapf, synth, synth_det = gen8
    ws = sg.broadcast_ws(mapf(params, jax.random.normal(jax.random.key(3), (2, cfg.z_dim))), cfg.num_ws)
    w_avg = jax.random.normal(jax.random.key(4), (cfg.w_dim,))
    got = synth_det(params, sg.truncate(ws, w_avg, 0.0, None))
    want = synth_det(params, sg.broadcast_ws(jnp.broadcast_to(w_avg, (2, cfg.w_dim)), cfg.num_ws))
    chex.assert_trees_all_close(got, want, atol=1e-6)
    assert float(jnp.max(jnp.abs(synth_det(params, ws) - want))) > 1e-4
    # psi 0.5 with cutoff 2: halfway on layers 0, 1; untouched after.
    t = sg.truncate(ws, w_avg, 0.5, 2)
    chex.assert_trees_all_close(t[:, :2], 0.5 * (ws[:, :2] + w_avg), atol=1e-6)
    chex.assert_trees_all_equal(t[:, 2:], ws[:, 2:])
    np.testing.assert_allclose(sg.update_w_avg(jnp.ones(3), jnp.zeros(3)), 0.995 * np.ones(3), rtol=1e-6)


def test_mix_styles_switches_at_crossover():
    n, b, d = 6, 4, 5
    w1 = jnp.broadcast_to(jnp.arange(b, dtype=jnp.float32)[:, None], (b, d))
    w2 = -1.0 - w1
    cross = jnp.array([0, 1, 3, n])
    ws = sg.mix_styles(w1, w2, cross, n)
    chex.assert_shape(ws, (b, n, d))
    for i in range(b):
        for layer in range(n):
            want = w1[i] if layer < int(cross[i]) else w2[i]
            chex.assert_trees_all_equal(ws[i, layer], want)
    chex.assert_trees_all_equal(sg.mix_styles(sg.broadcast_ws(w1, n), sg.broadcast_ws(w2, n), cross), ws)


def test_style_mixing_ws_probabilities(key_reuse_check):
    n, b, d = 8, 64, 3
    k1, k2, k3 = jax.random.split(jax.random.key(5), 3)
    w1 = jax.random.normal(k1, (b, d))
    w2 = w1 + 100.0
    none = sg.style_mixing_ws(k2, w1, w2, n, prob=0.0)
    chex.assert_trees_all_equal(none, sg.broadcast_ws(w1, n))
    ws = np.asarray(sg.style_mixing_ws(k3, w1, w2, n, prob=1.0))
    is_w2 = ws[:, :, 0] > 50  # (B, N)
    switches = np.diff(is_w2.astype(int), axis=1)
    assert (switches >= 0).all() and (switches.sum(axis=1) == 1).all()  # exactly one w1 -> w2 switch
    cross = is_w2.argmax(axis=1)
    assert cross.min() >= 1 and cross.max() <= n - 1
    assert len(set(cross.tolist())) > 3  # drawn per example
    np.testing.assert_allclose(ws[~is_w2], np.repeat(np.asarray(w1)[:, None], n, 1)[~is_w2])


@pytest.mark.parametrize("lod,active", [(0.0, 8), (0.5, 8), (1.0, 6), (2.7, 4), (3.0, 2)])
def test_mixing_crossover_stays_among_rendered_layers(lod, active):
    # Official G_style: cur_layers = num_layers - int(lod) * 2; crossover ~ U{1..cur_layers-1} when mixing.
    n, b = 8, 4000  # 32x32: 8 style inputs; lod 3 renders 4x4 (2 inputs)
    k_mix, k_cut = jax.random.split(jax.random.key(11))
    cross = np.asarray(sg.mixing_crossover(k_mix, k_cut, b, n, prob=0.9, lod=lod))
    mixed = cross[cross != n]
    assert set(mixed.tolist()) == set(range(1, active))  # every rendered switch point, nothing beyond
    assert abs(len(mixed) / b - 0.9) < 0.03
    assert (np.asarray(sg.mixing_crossover(k_mix, k_cut, b, n, prob=0.0, lod=lod)) == n).all()


@pytest.mark.parametrize("lr_mul,gain", [(1.0, 1.0), (0.01, 1.0), (0.01, np.sqrt(2.0))])
def test_equalized_lr_dense(lr_mul, gain):
    layer = sg.EqDense(256, gain=gain, lr_mul=lr_mul)
    k_p, k_x = jax.random.split(jax.random.key(6))
    x = jax.random.normal(k_x, (512, 400))
    p = layer.init(k_p, x)
    np.testing.assert_allclose(np.std(p["params"]["kernel"]), 1.0 / lr_mul, rtol=0.02)  # stored weight
    var = float(jnp.var(layer.apply(p, x)))
    assert abs(var - gain**2) < 0.15 * gain**2  # runtime-scaled output ~ unit variance (x gain^2)
    p2 = {"params": {**p["params"], "bias": jnp.ones(256)}}
    np.testing.assert_allclose(layer.apply(p2, x) - layer.apply(p, x), lr_mul, rtol=1e-4)


def test_mbstd_by_hand():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(4, 2, 3, 5)).astype(np.float32)
    y = np.asarray(sg.minibatch_stddev(jnp.asarray(x), group_size=2))
    assert y.shape == (4, 2, 3, 6)
    np.testing.assert_array_equal(y[..., :5], x)
    extra = y[..., 5]
    np.testing.assert_allclose(extra, extra[:, :1, :1] * np.ones_like(extra))  # constant over H, W
    for members in ([0, 1], [2, 3]):  # contiguous groups (the official code strides them; see docstring)
        want = np.sqrt(x[members].var(axis=0) + 1e-8).mean()
        np.testing.assert_allclose(extra[members], want, rtol=1e-5)
    # Group size not dividing B falls back to the largest divisor (B=3, group 2 -> 1: std 1e-4).
    y3 = np.asarray(sg.minibatch_stddev(jnp.asarray(x[:3]), group_size=2))
    np.testing.assert_allclose(y3[..., 5], 1e-4, rtol=1e-3)


@pytest.mark.parametrize("kw,field", [
    (dict(resolution=12), "resolution"), (dict(resolution=4), "resolution"),
    (dict(discriminator="unet"), "discriminator"), (dict(use_mapping=False, z_dim=8), "use_mapping"),
    (dict(channels=0), "channels"), (dict(mapping_lr_mul=0.0), "mapping_lr_mul"),
    (dict(resolution=64, fmap_base=16), "fmap_base"),
])
def test_config_errors(kw, field):
    with pytest.raises(ConfigError) as err:
        tiny(**kw).validate()
    assert err.value.field == field
    with pytest.raises(ConfigError):
        sg.Generator(tiny(**kw)).init(jax.random.key(0), jnp.zeros((1, 16)), None)


def test_input_shape_errors(gen8):
    cfg, params, mapf, synth, synth_det = gen8
    with pytest.raises(ConfigError, match="ws"):
        synth_det(params, jnp.zeros((2, cfg.num_ws + 1, cfg.w_dim)))
    with pytest.raises(ConfigError, match="images"):
        sg.Discriminator(cfg).init(jax.random.key(0), jnp.zeros((2, 16, 16, 3)))


def test_no_mapping_ablation_and_determinism():
    cfg = tiny(use_mapping=False)
    g = sg.Generator(cfg)
    z = jax.random.normal(jax.random.key(7), (2, cfg.z_dim)) * 3
    p = g.init(jax.random.key(8), z, None)
    assert "mapping" not in p["params"]
    chex.assert_trees_all_close(g.apply(p, z, method=g.map), sg.pixel_norm(z))
    p_same = g.init(jax.random.key(8), z, None)
    p_other = g.init(jax.random.key(9), z, None)
    chex.assert_trees_all_equal(g.apply(p, z), g.apply(p_same, z))
    assert float(jnp.max(jnp.abs(g.apply(p, z) - g.apply(p_other, z)))) > 1e-4


def test_progressive_reals_by_hand():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(2, 8, 8, 1)).astype(np.float32)
    box = x.reshape(2, 4, 2, 4, 2, 1).mean(axis=(2, 4))  # 4x4, 2x2-box-averaged
    lod1 = np.repeat(np.repeat(box, 2, axis=1), 2, axis=2)
    np.testing.assert_array_equal(np.asarray(sg.progressive_reals(jnp.asarray(x), 0.0)), x)
    np.testing.assert_allclose(np.asarray(sg.progressive_reals(jnp.asarray(x), 1.0)), lod1, atol=1e-6)
    np.testing.assert_allclose(np.asarray(sg.progressive_reals(jnp.asarray(x), 0.25)), 0.75 * x + 0.25 * lod1,
                               atol=1e-6)


def _perturbed(params, name, fn=lambda v: v + 1.0):
    """A copy of `params` with `fn` (default: shift by 1) applied to every leaf under the module `name`."""
    return jax.tree_util.tree_map_with_path(
        lambda path, v: fn(v) if any(getattr(k, "key", None) == name for k in path) else v, params)


def test_lod_fades_between_the_resolutions_toRGB_and_fromRGB(gen8):
    """lod 0 uses only the 8x8 toRGB/fromRGB, lod 1 only the 4x4 ones (upsampled: 2x2 blocks), 0.5 both."""
    cfg, params, mapf, _, _ = gen8
    g, d = sg.Generator(cfg), sg.Discriminator(cfg)
    assert cfg.progressive and cfg.max_lod == 1
    ws = sg.broadcast_ws(mapf(params, jax.random.normal(jax.random.key(4), (2, cfg.z_dim))), cfg.num_ws)
    synth = jax.jit(lambda p, lod: g.apply(p, ws, None, False, lod, method=g.synthesize))
    full, low, half = (np.asarray(synth(params, lod)) for lod in (0.0, 1.0, 0.5))
    np.testing.assert_array_equal(np.asarray(synth(_perturbed(params, "to_rgb4"), 0.0)), full)
    np.testing.assert_array_equal(np.asarray(synth(_perturbed(params, "to_rgb"), 1.0)), low)
    assert not np.allclose(np.asarray(synth(_perturbed(params, "to_rgb4"), 1.0)), low)
    np.testing.assert_array_equal(low[:, ::2, ::2], low[:, 1::2, 1::2])  # 4x4 image, nearest-upsampled
    np.testing.assert_allclose(half, 0.5 * (full + low), atol=1e-5)
    imgs = jnp.asarray(full)
    dp = d.init(jax.random.key(5), imgs)
    disc = jax.jit(lambda p, lod: d.apply(p, imgs, lod))
    np.testing.assert_array_equal(np.asarray(disc(_perturbed(dp, "from_rgb4"), 0.0)), np.asarray(disc(dp, 0.0)))
    np.testing.assert_array_equal(np.asarray(disc(_perturbed(dp, "from_rgb"), 1.0)), np.asarray(disc(dp, 1.0)))
    assert "to_rgb4" not in sg.Generator(tiny(structure="fixed")).init(
        jax.random.key(0), jnp.zeros((1, cfg.z_dim)), None)["params"]["synthesis"]


def test_skip_structure_sums_every_resolutions_toRGB():
    """StyleGAN2's skip generator: with the 8x8 toRGB zeroed, the image is the upsampled 4x4 one, so the
    8x8 layers' styles no longer matter; otherwise they do."""
    cfg = tiny(structure="skip")
    g = sg.Generator(cfg)
    params = g.init(jax.random.key(0), jnp.zeros((1, cfg.z_dim)), None)
    k1, k2 = jax.random.split(jax.random.key(6))
    ws_a = sg.broadcast_ws(jax.random.normal(k1, (2, cfg.w_dim)), cfg.num_ws)
    ws_b = ws_a.at[:, 2:].set(jax.random.normal(k2, (2, 2, cfg.w_dim)))  # other 8x8 styles
    synth = jax.jit(lambda p, ws: g.apply(p, ws, None, False, method=g.synthesize))
    zeroed = _perturbed(params, "to_rgb", lambda v: v * 0.0)
    np.testing.assert_allclose(np.asarray(synth(zeroed, ws_a)), np.asarray(synth(zeroed, ws_b)), atol=1e-6)
    assert not np.allclose(np.asarray(synth(params, ws_a)), np.asarray(synth(params, ws_b)), atol=1e-3)
    assert {"to_rgb4", "to_rgb"} <= set(params["params"]["synthesis"])
