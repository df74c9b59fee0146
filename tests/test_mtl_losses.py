"""mtl.losses: weighted cross-entropy, softmax focal loss, class-weight schemes, the loss registry.

Values are checked against hand-computed cases (numbers written out), optax, and scikit-learn.
"""

import math

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from sklearn.utils.class_weight import compute_class_weight

from jaxnas.common import ConfigError
from mtl.class_weights import class_balanced_weights, inverse_frequency_weights
from mtl.losses import (
    LOSSES,
    cross_entropy,
    cross_entropy_sums,
    focal_loss,
    focal_loss_sums,
    make_loss,
    weighted_mean,
)

COUNTS = np.array([100, 10, 1])


def _random_batch(seed: int, batch: int = 12, num_classes: int = 3):
    rng = np.random.default_rng(seed)
    logits = jnp.asarray(rng.normal(size=(batch, num_classes)) * 3, jnp.float32)  # (B, C)
    labels = jnp.asarray(rng.integers(0, num_classes, size=batch), jnp.int32)  # (B,)
    return logits, labels


# ---------------------------------------------------------------- cross-entropy


def test_cross_entropy_matches_optax():
    logits, labels = _random_batch(0)
    expected = optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()
    chex.assert_trees_all_close(cross_entropy(logits, labels), expected, rtol=1e-6)


def test_weighted_cross_entropy_uses_torch_normalisation():
    # p = softmax(logits): example 0 -> p_0 = 3/4, example 1 -> p_1 = 1/2, example 2 -> p_1 = 1/4.
    logits = jnp.array([[math.log(3.0), 0.0], [0.0, 0.0], [math.log(3.0), 0.0]])
    labels = jnp.array([0, 1, 1])
    w = jnp.array([1.0, 3.0])
    # torch reduction='mean': sum_i w_{y_i} nll_i / sum_i w_{y_i}
    #   = (1 * ln(4/3) + 3 * ln 2 + 3 * ln 4) / (1 + 3 + 3) = (ln(4/3) + 9 ln 2) / 7 = 0.932286671...
    expected = (math.log(4 / 3) + 9 * math.log(2)) / 7
    assert abs(expected - 0.932286671070184) < 1e-12
    chex.assert_trees_all_close(cross_entropy(logits, labels, class_weights=w), expected, rtol=1e-6)
    total, count = cross_entropy_sums(logits, labels, class_weights=w)
    chex.assert_trees_all_close((total, count), (expected * 7, 7.0), rtol=1e-6)
    # Not the "divide by the number of examples" convention.
    assert abs(float(cross_entropy(logits, labels, class_weights=w)) - expected * 7 / 3) > 1.0


# ---------------------------------------------------------------- focal loss


def test_focal_gamma_zero_is_cross_entropy():
    logits, labels = _random_batch(1)
    expected = optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()
    chex.assert_trees_all_close(focal_loss(logits, labels, gamma=0.0), expected, rtol=1e-6)
    chex.assert_trees_all_close(focal_loss(logits, labels, gamma=0.0), cross_entropy(logits, labels), rtol=1e-6)


def test_focal_hand_computed_two_examples():
    logits = jnp.array([[2.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    labels = jnp.array([0, 2])
    # Example 0: p = e^2 / (e^2 + 2) = 0.786986042; -ln p = 0.239544766; (1 - p)^2 = 0.045374946
    #            FL = 0.045374946 * 0.239544766 = 0.010869331
    # Example 1: p = 1 / (2 + e) = 0.211941558;   -ln p = 1.551444714; (1 - p)^2 = 0.621036109
    #            FL = 0.621036109 * 1.551444714 = 0.963503188
    fl0 = (1 - math.e**2 / (math.e**2 + 2)) ** 2 * -math.log(math.e**2 / (math.e**2 + 2))
    fl1 = (1 - 1 / (2 + math.e)) ** 2 * -math.log(1 / (2 + math.e))
    assert abs(fl0 - 0.010869331) < 1e-9 and abs(fl1 - 0.963503188) < 1e-9
    # Mean over the 2 counted examples: (0.010869331 + 0.963503188) / 2 = 0.487186259
    chex.assert_trees_all_close(focal_loss(logits, labels, gamma=2.0), 0.487186259, rtol=1e-6)
    # alpha = (0.25, 0.5, 0.75): (0.25 * 0.010869331 + 0.75 * 0.963503188) / 2 = 0.362672362;
    # the denominator stays the number of examples (2), not the sum of the alphas (1.0).
    alpha = jnp.array([0.25, 0.5, 0.75])
    chex.assert_trees_all_close(focal_loss(logits, labels, gamma=2.0, alpha=alpha), 0.362672362, rtol=1e-6)
    chex.assert_trees_all_close(
        focal_loss_sums(logits, labels, gamma=2.0, alpha=alpha), (2 * 0.362672362, 2.0), rtol=1e-6
    )


def test_focal_is_below_cross_entropy_and_downweights_easy_examples():
    logits, labels = _random_batch(2)
    ce = optax.softmax_cross_entropy_with_integer_labels(logits, labels)  # (B,)
    for gamma in (0.5, 1.0, 2.0, 5.0):
        per_example = jnp.stack(
            [focal_loss(logits[i : i + 1], labels[i : i + 1], gamma=gamma) for i in range(logits.shape[0])]
        )  # (B,)
        p = jnp.exp(-ce)
        chex.assert_trees_all_close(per_example, (1 - p) ** gamma * ce, rtol=1e-5, atol=1e-7)
        assert bool(jnp.all(per_example <= ce + 1e-7))


@pytest.mark.parametrize("gamma", [0.5, 1.0, 2.0])
def test_focal_gradients_finite_when_confident(gamma):
    # Rows 0 and 1 have p_y == 1 in float32 (1 - p rounds to 0); rows 2-3 are ordinary.
    logits = jnp.array([[200.0, 0.0, -3.0], [40.0, 0.0, 0.0], [0.3, -0.2, 1.0], [1.0, 2.0, 0.5]])
    labels = jnp.array([0, 0, 2, 1])
    grad = jax.grad(lambda z: focal_loss(z, labels, gamma=gamma))(logits)
    chex.assert_tree_all_finite(grad)
    # Confident rows contribute (numerically) nothing.
    assert float(jnp.abs(grad[:2]).max()) < 1e-12
    # Elsewhere the safe form gives the same gradient as the naive formula.
    def naive(z):
        logp = jnp.take_along_axis(jax.nn.log_softmax(z), labels[:, None], axis=-1)[:, 0]
        return jnp.mean((1 - jnp.exp(logp)) ** gamma * -logp)

    chex.assert_trees_all_close(grad[2:], jax.grad(naive)(logits)[2:], rtol=1e-5, atol=1e-7)


def test_focal_gradient_finite_for_tiny_gamma_and_traced_gamma():
    logits = jnp.array([[200.0, 0.0], [12.0, 0.0], [0.0, 0.5]])
    labels = jnp.array([0, 0, 1])
    for gamma in (1e-3, 0.01):
        chex.assert_tree_all_finite(jax.grad(lambda z: focal_loss(z, labels, gamma=gamma))(logits))
    # gamma as a traced argument (e.g. swept under vmap/jit) and differentiated through.
    grad_gamma = jax.jit(jax.grad(lambda g: focal_loss(logits, labels, gamma=g)))(jnp.float32(0.5))
    chex.assert_tree_all_finite(grad_gamma)


# ---------------------------------------------------------------- masks and missing labels


@pytest.mark.parametrize("loss_fn", [cross_entropy, focal_loss], ids=["ce", "focal"])
def test_masked_and_minus_one_labels_are_ignored(loss_fn):
    logits, labels = _random_batch(3, batch=8)
    keep = np.array([1, 0, 1, 1, 0, 0, 1, 1], bool)
    expected = loss_fn(logits[keep], labels[keep])
    masked = loss_fn(logits, labels, mask=jnp.asarray(keep, jnp.float32))
    missing = loss_fn(logits, jnp.where(jnp.asarray(keep), labels, -1))
    out_of_range = loss_fn(logits, jnp.where(jnp.asarray(keep), labels, 7))  # C = 3: ignored, no bad gather
    for value in (masked, missing, out_of_range):
        chex.assert_trees_all_close(value, expected, rtol=1e-6)
    # Gradients of ignored rows are exactly 0 and nothing is NaN.
    grad = jax.grad(lambda z: loss_fn(z, jnp.where(jnp.asarray(keep), labels, -1)))(logits)
    chex.assert_tree_all_finite(grad)
    assert float(jnp.abs(grad[~keep]).max()) == 0.0


def test_float_mask_is_a_weighted_mean_and_empty_batch_is_zero():
    logits, labels = _random_batch(4, batch=4)
    mask = jnp.array([0.5, 1.0, 0.0, 2.0])
    ce = optax.softmax_cross_entropy_with_integer_labels(logits, labels)  # (B,)
    chex.assert_trees_all_close(cross_entropy(logits, labels, mask=mask), jnp.sum(mask * ce) / 3.5, rtol=1e-6)
    none = jnp.full((4,), -1)
    for fn in (cross_entropy, focal_loss):
        value, grad = jax.value_and_grad(lambda z: fn(z, none))(logits)
        assert float(value) == 0.0 and float(jnp.abs(grad).max()) == 0.0
    assert float(weighted_mean(jnp.float32(0.0), jnp.float32(0.0))) == 0.0


def test_sums_split_across_shards_give_the_full_batch_mean():
    logits, labels = _random_batch(5, batch=10)
    labels = labels.at[3].set(-1)
    loss = make_loss("class_balanced", COUNTS, beta=0.99)
    full = weighted_mean(*loss(logits, labels))
    parts = [loss(logits[s], labels[s]) for s in (slice(0, 4), slice(4, 10))]
    total, count = (sum(p[i] for p in parts) for i in (0, 1))  # what a psum over devices gives
    chex.assert_trees_all_close(weighted_mean(total, count), full, rtol=1e-6)


# ---------------------------------------------------------------- class weights


def test_class_balanced_weights_hand_computed():
    for beta, expected in [
        (0.9, [0.239329236, 0.367441973, 2.393228791]),
        (0.99, [0.042237469, 0.280043613, 2.677718918]),
    ]:
        # E_n = (1 - beta^n) / (1 - beta); w_c = (1 / E_c) * C / sum_k (1 / E_k) with C = 3.
        effective = [(1 - beta**n) / (1 - beta) for n in (100, 10, 1)]
        inverse = [1 / e for e in effective]
        formula = [3 * v / sum(inverse) for v in inverse]
        np.testing.assert_allclose(formula, expected, rtol=1e-8)
        weights = class_balanced_weights(COUNTS, beta)
        np.testing.assert_allclose(weights, formula, rtol=1e-12)
        assert abs(weights.sum() - 3.0) < 1e-12


def test_class_balanced_limits():
    np.testing.assert_allclose(class_balanced_weights(COUNTS, 0.0), [1.0, 1.0, 1.0])
    np.testing.assert_allclose(class_balanced_weights(COUNTS, 1e-9), [1.0, 1.0, 1.0], rtol=1e-8)
    # beta -> 1: E_n -> n, so the weights become proportional to 1 / n (inverse frequency).
    ratio = class_balanced_weights(COUNTS, 1 - 1e-9) / inverse_frequency_weights(COUNTS)
    np.testing.assert_allclose(ratio, ratio[0], rtol=1e-6)
    ratio_far = class_balanced_weights(COUNTS, 0.99) / inverse_frequency_weights(COUNTS)
    assert ratio_far.max() / ratio_far.min() > 1.5  # far from beta = 1 the schemes really differ


def test_inverse_frequency_matches_sklearn():
    rng = np.random.default_rng(0)
    for _ in range(5):
        counts = rng.integers(1, 50, size=rng.integers(2, 7))
        y = np.repeat(np.arange(counts.size), counts)
        expected = compute_class_weight("balanced", classes=np.arange(counts.size), y=y)
        np.testing.assert_allclose(inverse_frequency_weights(counts), expected, rtol=1e-12)


def test_zero_count_classes_get_weight_zero():
    counts = [50, 0, 5]
    np.testing.assert_allclose(inverse_frequency_weights(counts), [55 / (3 * 50), 0.0, 55 / (3 * 5)])
    cb = class_balanced_weights(counts, 0.9)
    assert cb[1] == 0.0 and abs(cb.sum() - 3.0) < 1e-12
    np.testing.assert_allclose(cb[[0, 2]] / cb[[0, 2]].sum(), class_balanced_weights([50, 5], 0.9) / 2, rtol=1e-12)


# ---------------------------------------------------------------- registry


def test_registry_has_exactly_the_four_configured_losses():
    assert LOSSES.names() == ["ce", "weighted", "class_balanced", "focal"]


def test_registry_losses_equal_their_definitions():
    logits, labels = _random_batch(6)
    labels = labels.at[0].set(-1)
    mask = jnp.ones(labels.shape).at[1].set(0.0)

    def ce_with(w):
        return cross_entropy(logits, labels, class_weights=w, mask=mask)

    expected = {
        "ce": ce_with(None),
        "weighted": ce_with(inverse_frequency_weights(COUNTS)),
        "class_balanced": ce_with(class_balanced_weights(COUNTS, 0.99)),
        "focal": focal_loss(logits, labels, gamma=2.0, mask=mask),
    }
    for name, value in expected.items():
        got = weighted_mean(*make_loss(name, COUNTS, beta=0.99)(logits, labels, mask))
        chex.assert_trees_all_close(got, value, rtol=1e-6)
    alpha = class_balanced_weights(COUNTS, 0.99)
    focal_cb = make_loss("focal", COUNTS, beta=0.99, focal_alpha="class_balanced")(logits, labels, mask)
    chex.assert_trees_all_close(
        weighted_mean(*focal_cb), focal_loss(logits, labels, alpha=alpha, mask=mask), rtol=1e-6
    )
    focal_inv = make_loss("focal", COUNTS, focal_alpha="inverse", gamma=0.0)(logits, labels, mask)
    # gamma 0 with inverse-frequency alpha: total = sum_i alpha_{y_i} nll_i over the counted rows 2..B-1.
    alpha_inv = jnp.asarray(inverse_frequency_weights(COUNTS), jnp.float32)[labels[2:]]  # (B - 2,)
    nll = optax.softmax_cross_entropy_with_integer_labels(logits[2:], labels[2:])  # (B - 2,)
    chex.assert_trees_all_close(focal_inv[0], jnp.sum(alpha_inv * nll), rtol=1e-5)
    assert float(focal_inv[1]) == labels.shape[0] - 2  # focal: count is the number of examples


@pytest.mark.parametrize("name", LOSSES.names())
def test_registry_losses_jit_and_have_finite_gradients(name):
    logits, labels = _random_batch(7, batch=6)
    logits = logits.at[0].set(jnp.array([300.0, 0.0, 0.0]))
    labels = labels.at[0].set(0).at[5].set(-1)
    loss = make_loss(name, COUNTS, gamma=0.5, focal_alpha=[0.2, 0.3, 0.5] if name == "focal" else None)

    chex.clear_trace_counter()  # the counter is per function code: reset it between parametrized runs

    @jax.jit
    @chex.assert_max_traces(n=1)
    def value_and_grad(z, y, m):
        return jax.value_and_grad(lambda zz: weighted_mean(*loss(zz, y, m)))(z)

    mask = jnp.ones(labels.shape)
    eager = weighted_mean(*loss(logits, labels, mask))
    value, grad = value_and_grad(logits, labels, mask)
    chex.assert_trees_all_close(value, eager, rtol=1e-6)
    chex.assert_tree_all_finite(grad)
    value_and_grad(logits + 1.0, labels, mask)  # same shapes: no retrace
    assert float(eager) > 0.0


# ---------------------------------------------------------------- errors


def test_config_errors_name_the_field():
    with pytest.raises(ConfigError, match=r"^loss: got 'dice'; allowed: ce, weighted, class_balanced, focal$"):
        make_loss("dice", COUNTS)
    with pytest.raises(ConfigError, match=r"^beta: got 1\.0; allowed: a number in \[0, 1\)$"):
        class_balanced_weights(COUNTS, 1.0)
    with pytest.raises(ConfigError, match="^beta:"):
        make_loss("class_balanced", COUNTS, beta=-0.1)
    with pytest.raises(ConfigError, match="^counts: per-class counts are required for loss 'weighted'"):
        make_loss("weighted")
    for bad in ([3, -1], [[1, 2]], [0, 0], [], [1.0, float("nan")]):
        with pytest.raises(ConfigError, match="^counts:"):
            inverse_frequency_weights(bad)
    with pytest.raises(ConfigError, match=r"^focal_alpha: got 'balanced'; allowed: class_balanced, inverse$"):
        make_loss("focal", COUNTS, focal_alpha="balanced")
    with pytest.raises(ConfigError, match="^focal_alpha:"):
        make_loss("focal", COUNTS, focal_alpha=[0.5, -1.0, 0.5])
    with pytest.raises(ConfigError, match=r"^gamma: got -1\.0; allowed: a number >= 0$"):
        make_loss("focal", COUNTS, gamma=-1.0)
    logits = jnp.zeros((4, 3))
    with pytest.raises(ConfigError, match="^labels: must have shape"):
        cross_entropy(logits, jnp.zeros((5,), jnp.int32))
    with pytest.raises(ConfigError, match="^labels: must be integers"):
        cross_entropy(logits, jnp.zeros((4,)))
    with pytest.raises(ConfigError, match="^logits:"):
        focal_loss(jnp.zeros((4,)), jnp.zeros((4,), jnp.int32))
    with pytest.raises(ConfigError, match="^mask:"):
        focal_loss(logits, jnp.zeros((4,), jnp.int32), mask=jnp.ones((3,)))
    with pytest.raises(ConfigError, match=r"^class_weights: must have shape \(C,\) = \(3,\)"):
        make_loss("weighted", [5, 5])(logits, jnp.zeros((4,), jnp.int32))
