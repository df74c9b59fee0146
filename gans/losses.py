"""GAN losses: the non-saturating logistic loss and the R1 gradient penalty, with lazy regularisation.

Goodfellow et al., "Generative Adversarial Nets", NeurIPS 2014 (non-saturating generator loss);
Mescheder, Geiger & Nowozin, "Which Training Methods for GANs do actually Converge?", ICML 2018 (R1);
Karras et al., "A Style-Based Generator Architecture for GANs", CVPR 2019 (the pair as StyleGAN's
default loss, gamma 10); Karras et al., "Analyzing and Improving the Image Quality of StyleGAN", CVPR 2020,
Sec. 3.1 and App. B (lazy regularisation: R1 every k minibatches, scaled by k, with Adam's learning rate
and betas corrected by c = k / (k + 1) so the optimiser sees the same effective step).
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp


def d_logistic(real_logits: jax.Array, fake_logits: jax.Array) -> jax.Array:
    """Discriminator logistic loss per example: softplus(D(G(z))) + softplus(-D(x)). Shapes (B,) -> (B,)."""
    return jax.nn.softplus(fake_logits) + jax.nn.softplus(-real_logits)


def g_nonsaturating(fake_logits: jax.Array) -> jax.Array:
    """Generator non-saturating loss per example: softplus(-D(G(z))) = -log sigmoid(D(G(z)))."""
    return jax.nn.softplus(-fake_logits)


def r1_per_example(d_apply: Callable[[jax.Array], jax.Array], real: jax.Array) -> jax.Array:
    """||grad_x D(x)||^2 for each real image x (B,). `d_apply` maps images (B, H, W, C) to logits (B,).

    The discriminator treats examples independently except through minibatch-stddev; the gradient of the
    summed logits w.r.t. the batch is used, as in the official implementation.
    """
    grads = jax.grad(lambda x: d_apply(x).sum())(real)  # (B, H, W, C)
    return jnp.sum(jnp.square(grads), axis=(1, 2, 3))


def lazy_adam_hparams(lr: float, beta1: float, beta2: float, interval: int) -> tuple[float, float, float]:
    """Adam settings for a network regularised every `interval` steps (StyleGAN2 App. B): lr*c, beta**c."""
    if interval <= 1:
        return lr, beta1, beta2
    c = interval / (interval + 1)
    return lr * c, beta1**c, beta2**c
