"""Tests of `gans.metrics`: Fréchet distance against hand-computed cases, the in-project feature net,
FID / KID / precision-recall behaviour on digits (16x16) with noise and mode collapse, and KID against a
brute-force reference. The feature net is trained once per module."""

import dataclasses

import numpy as np
import pytest

from gans import metrics as M
from jaxnas.common.errors import ConfigError
from jaxnas.data import load_images

NOISE = (0.05, 0.1, 0.2, 0.4)


def _noisy(x, sigma, seed):
    rng = np.random.default_rng(seed)
    return np.clip(x + sigma * rng.standard_normal(x.shape).astype(np.float32), 0.0, 1.0)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    ds = load_images("digits", size=16, data_dir=str(tmp_path_factory.mktemp("tfds")), seed=0)
    net = M.feature_net_for(ds, seed=0)
    held = np.concatenate([ds.valid_x, ds.test_x])  # (M, 16, 16, 1)
    feats = {
        "train": net.features(ds.train_x),
        "held": net.features(held),
        "collapse": net.features(ds.train_x[ds.train_y == 3]),  # every sample from one class
        "uniform": net.features(np.random.default_rng(7).uniform(size=held.shape).astype(np.float32)),
    }
    for i, sigma in enumerate(NOISE):
        feats[sigma] = net.features(_noisy(held, sigma, seed=i))
    return ds, net, feats


# ---- Fréchet distance on hand-computed cases ----

def test_frechet_identical_is_zero():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((6, 6))
    sigma = a @ a.T + 0.1 * np.eye(6)
    mu = rng.standard_normal(6)
    assert M.frechet_distance(mu, sigma, mu, sigma) == pytest.approx(0.0, abs=1e-9)


@pytest.mark.parametrize("d,s1,s2", [(0.0, 1.0, 2.0), (1.5, 0.3, 0.3), (-2.0, 3.0, 0.5)])
def test_frechet_one_dimensional(d, s1, s2):
    got = M.frechet_distance([0.0], [[s1**2]], [d], [[s2**2]])
    assert got == pytest.approx(d**2 + s1**2 + s2**2 - 2 * s1 * s2, abs=1e-12)


def test_frechet_diagonal_and_singular():
    v1, v2 = np.array([1.0, 4.0, 0.0]), np.array([9.0, 1.0, 2.0])  # one singular covariance
    mu1, mu2 = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, 0.0])
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(v1) - np.sqrt(v2)) ** 2)
    assert M.frechet_distance(mu1, np.diag(v1), mu2, np.diag(v2)) == pytest.approx(expected, abs=1e-9)


def test_frechet_symmetric_nonnegative_and_matches_scipy():
    scipy_linalg = pytest.importorskip("scipy.linalg")
    rng = np.random.default_rng(1)
    for trial in range(5):
        n = 8
        a, b = rng.standard_normal((n, n)), rng.standard_normal((n, 3))  # b b^T is rank 3 (singular)
        s1, s2 = a @ a.T / n, b @ b.T + 1e-3 * trial * np.eye(n)
        m1, m2 = rng.standard_normal(n), rng.standard_normal(n)
        f12, f21 = M.frechet_distance(m1, s1, m2, s2), M.frechet_distance(m2, s2, m1, s1)
        assert f12 >= 0 and f12 == pytest.approx(f21, rel=1e-7, abs=1e-8)
        covmean = np.real(scipy_linalg.sqrtm(s1 @ s2))
        ref = np.sum((m1 - m2) ** 2) + np.trace(s1 + s2 - 2 * covmean)
        assert f12 == pytest.approx(ref, rel=1e-5, abs=1e-5)


def test_input_errors_name_the_field():
    with pytest.raises(ConfigError, match="sigma2"):
        M.frechet_distance(np.zeros(2), np.eye(2), np.zeros(2), np.eye(3))
    with pytest.raises(ConfigError, match="feats_b"):
        M.fid(np.zeros((5, 4)), np.zeros((5, 3)))
    with pytest.raises(ConfigError, match="subset_size"):
        M.kid(np.zeros((5, 4)), np.zeros((6, 4)), subset_size=10)
    with pytest.raises(ConfigError, match="k"):
        M.precision_recall(np.zeros((5, 4)), np.zeros((5, 4)), k=0)


# ---- the feature net ----

def test_feature_net_accuracy_shapes_and_checks(setup):
    ds, net, feats = setup
    print(f"feature net: test accuracy {net.test_accuracy:.4f}, trained in {net.train_seconds:.1f} s")
    assert net.test_accuracy >= 0.95
    assert feats["train"].shape == (len(ds.train_x), net.feature_dim) and np.isfinite(feats["train"]).all()
    preds = net.predict(ds.test_x, batch_size=100)  # a batch size that pads the last batch
    assert preds.shape == (len(ds.test_x),) and np.mean(preds == ds.test_y) == pytest.approx(net.test_accuracy)
    np.testing.assert_allclose(net.features(ds.train_x[:300], batch_size=64), feats["train"][:300], rtol=1e-4, atol=1e-4)
    with pytest.raises(ConfigError, match="images"):
        net.features(np.zeros((2, 8, 8, 1), np.float32))
    with pytest.raises(ConfigError, match="images"):
        net.features(np.full((2, 16, 16, 1), 2.0, np.float32))


def test_feature_net_seed_determinism(setup):
    ds = setup[0]
    x, y = ds.train_x[:200], ds.train_y[:200]
    nets = [M.train_feature_net(x, y, x[:50], y[:50], num_classes=10, steps=3, seed=s, width=4) for s in (0, 0, 1)]
    f = [n.features(x[:20]) for n in nets]
    np.testing.assert_array_equal(f[0], f[1])
    assert not np.allclose(f[0], f[2])
    with pytest.raises(ConfigError, match="train_y"):
        M.train_feature_net(x, y[:10], x, y, num_classes=10)


def test_rotation_pretext_for_unlabeled_images(setup):
    ds = setup[0]
    x = np.arange(2 * 3 * 3, dtype=np.float32).reshape(2, 3, 3, 1)
    turned, labels = M.rotations(x)
    assert turned.shape == (8, 3, 3, 1) and labels.tolist() == [0, 0, 1, 1, 2, 2, 3, 3]
    np.testing.assert_array_equal(turned[2, :, :, 0], np.rot90(x[0, :, :, 0]))  # 90 degrees counter-clockwise
    np.testing.assert_array_equal(turned[4, :, :, 0], x[0, ::-1, ::-1, 0])  # 180 degrees by hand
    unlabeled = dataclasses.replace(ds, labeled=False, num_classes=1, train_y=0 * ds.train_y, test_y=0 * ds.test_y)
    net = M.feature_net_for(unlabeled, steps=150, width=4, seed=0)
    # Digits have a canonical orientation, so the rotation is learnable well above chance (0.25).
    assert net.task == "rotation" and net.num_classes == 4 and net.test_accuracy > 0.6
    assert net.features(ds.test_x[:5]).shape == (5, net.feature_dim)
    with pytest.raises(ConfigError, match="square"):
        M.rotations(np.zeros((2, 3, 4, 1)))


# ---- FID ----

def test_fid_real_vs_heldout_noise_and_collapse(setup):
    _, _, feats = setup
    base = M.fid(feats["train"], feats["held"])
    noisy = [M.fid(feats["train"], feats[s]) for s in NOISE]
    collapse = M.fid(feats["train"], feats["collapse"])
    print(f"FID real vs held-out {base:.3f}; noise {dict(zip(NOISE, np.round(noisy, 3)))}; collapse {collapse:.3f}")
    assert np.all(np.diff([base, *noisy]) > 0), (base, noisy)  # monotone in the noise level
    # sigma 0.05 is barely visible to the classifier (FID ~8.9 vs ~8.3); the clear gap starts at 0.2-0.4
    assert base < 0.3 * noisy[2] and base < 0.1 * noisy[3]
    assert base < 0.01 * collapse and collapse > noisy[-1]


# ---- KID ----

def _kid_brute_force(x, y):
    d = x.shape[1]
    k = lambda a, b: (float(np.dot(a, b)) / d + 1.0) ** 3  # noqa: E731
    m, n = len(x), len(y)
    kxx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    kyy = sum(k(y[i], y[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    kxy = sum(k(x[i], y[j]) for i in range(m) for j in range(n)) / (m * n)
    return kxx + kyy - 2 * kxy


def test_kid_matches_brute_force():
    rng = np.random.default_rng(3)
    x, y = rng.standard_normal((7, 5)), rng.standard_normal((7, 5)) + 0.5
    ref = _kid_brute_force(x, y)
    assert M.mmd2_unbiased(x, y) == pytest.approx(ref, rel=1e-10)
    mean, std = M.kid(x, y, num_subsets=4, subset_size=7)  # whole sets: every subset gives the same value
    assert mean == pytest.approx(ref, rel=1e-10) and std == pytest.approx(0.0, abs=1e-9 * abs(ref))
    assert M.kid(x, y, num_subsets=5, subset_size=4, seed=1) == M.kid(x, y, num_subsets=5, subset_size=4, seed=1)


def test_kid_same_distribution_near_zero_and_ordered(setup):
    _, _, feats = setup
    train = feats["train"][np.random.default_rng(0).permutation(len(feats["train"]))]
    half = len(train) // 2
    mean, std = M.kid(train[:half], train[half:], subset_size=100)
    k2, k4, kc = (M.kid(feats["train"], feats[key], subset_size=100)[0] for key in (0.2, 0.4, "collapse"))
    print(f"KID halves {mean:.2f} +- {std:.2f}; noise 0.2 {k2:.1f}, 0.4 {k4:.1f}; collapse {kc:.1f}")
    assert abs(mean) < 3 * std
    assert 0 < k2 < k4 < kc and kc > 3 * std


# ---- precision / recall ----

def test_precision_recall(setup):
    _, _, feats = setup
    train = feats["train"][np.random.default_rng(1).permutation(len(feats["train"]))]
    half = len(train) // 2
    p_real, r_real = M.precision_recall(train[:half], train[half:])
    p_col, r_col = M.precision_recall(feats["train"], feats["collapse"])
    p_uni, _ = M.precision_recall(feats["train"], feats["uniform"])
    print(f"P/R real halves ({p_real:.3f}, {r_real:.3f}); collapse ({p_col:.3f}, {r_col:.3f}); uniform noise P {p_uni:.3f}")
    assert p_real > 0.85 and r_real > 0.85
    assert p_col > 0.9 and r_col < 0.2
    assert p_uni < 0.1


def test_precision_recall_hand_case():
    real = np.array([[0.0], [1.0], [2.0], [3.0]])  # k=1 radii: 1 each
    fake = np.array([[0.5], [10.0], [3.9]])
    p, r = M.precision_recall(real, fake, k=1)
    assert p == pytest.approx(2 / 3)  # 0.5 and 3.9 lie in real balls, 10 does not
    # fake k=1 radii: 0.5 -> 3.4, 10 -> 6.1, 3.9 -> 3.4; every real point lies within 3.4 of 0.5 or 3.9
    assert r == pytest.approx(1.0)
