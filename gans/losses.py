"""GAN losses: StyleGAN's non-saturating logistic loss and R1 gradient penalty with lazy regularisation, and
CycleGAN's adversarial (LSGAN / minimax / non-saturating), cycle-consistency and identity losses.

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

from jaxnas.common.errors import check_choice


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


ADVERSARIAL_LOSSES = ("lsgan", "minimax", "nonsaturating")


# ----------------------------------------------------------------------------------------------------
# CycleGAN (Zhu et al. 2017, the official code's losses): pure, mean-reduced over every element like torch.


def _bce_with_logits(logits: jax.Array, target: float) -> jax.Array:
    """mean of torch ``BCEWithLogitsLoss`` against a constant target 0 or 1 (stable: softplus)."""
    return jnp.mean(jax.nn.softplus(-logits) if target == 1 else jax.nn.softplus(logits))


def adversarial_d_loss(kind: str, real_scores: jax.Array, fake_scores: jax.Array) -> jax.Array:
    """Unhalved discriminator loss ``loss_D_real + loss_D_fake`` (see `discriminator_loss` for the official 0.5).

    ``"lsgan"``: ``mean((real - 1)**2) + mean(fake**2)``. ``"minimax"`` and ``"nonsaturating"`` (scores are
    logits): ``BCE(real, 1) + BCE(fake, 0) = mean(softplus(-real)) + mean(softplus(fake))``.
    """
    check_choice("adversarial_loss", kind, ADVERSARIAL_LOSSES)
    if kind == "lsgan":
        return jnp.mean(jnp.square(real_scores - 1.0)) + jnp.mean(jnp.square(fake_scores))
    return _bce_with_logits(real_scores, 1) + _bce_with_logits(fake_scores, 0)


def discriminator_loss(kind: str, real_scores: jax.Array, fake_scores: jax.Array) -> jax.Array:
    """Official ``loss_D = (loss_D_real + loss_D_fake) * 0.5`` (halves D's rate relative to G)."""
    return 0.5 * adversarial_d_loss(kind, real_scores, fake_scores)


def adversarial_g_loss(kind: str, fake_scores: jax.Array) -> jax.Array:
    """Generator adversarial loss on the discriminator's scores of generated images (to be minimised).

    ``"lsgan"`` (paper and official default): ``mean((fake - 1)**2)``.

    With scores as logits and ``D = sigmoid(score)``:
      * ``"minimax"``: minimise ``mean(log(1 - D(G(x))))`` = ``-BCE(fake, 0)`` = ``-mean(softplus(fake))``.
        Saturates: when D confidently rejects the fakes (D(G(x)) -> 0, early training) its gradient
        ``-sigmoid(score)`` vanishes.
      * ``"nonsaturating"`` (official ``gan_mode='vanilla'``): minimise ``-mean(log D(G(x)))`` =
        ``BCE(fake, 1)`` = ``mean(softplus(-fake))``: same fixed point, gradient ``-(1 - sigmoid(score))``
        close to -1 exactly where the minimax one vanishes.

    Note on a common error: the course text's generator loss ``-log(1 - D(G(x)))`` has the wrong sign for a
    generator. Minimising it drives D(G(x)) to 0, i.e. it makes the fakes look *more* fake and helps the
    discriminator. The correct forms are the minimax ``log(1 - D(G(x)))`` (minimised) or the non-saturating
    ``-log D(G(x))``.
    """
    check_choice("adversarial_loss", kind, ADVERSARIAL_LOSSES)
    if kind == "lsgan":
        return jnp.mean(jnp.square(fake_scores - 1.0))
    if kind == "minimax":
        return -_bce_with_logits(fake_scores, 0)  # mean(log_sigmoid(-fake)) = mean(log(1 - D))
    return _bce_with_logits(fake_scores, 1)


def cycle_loss(real_a: jax.Array, rec_a: jax.Array, real_b: jax.Array, rec_b: jax.Array,
               lam: float = 10.0) -> jax.Array:
    """``lam * mean|rec_a - real_a| + lam * mean|rec_b - real_b|`` with rec_a = g_ba(g_ab(real_a)) etc.

    Official ``loss_cycle_A + loss_cycle_B`` with lambda_A = lambda_B = lam (10).
    """
    return lam * jnp.mean(jnp.abs(rec_a - real_a)) + lam * jnp.mean(jnp.abs(rec_b - real_b))


def identity_loss(real_a: jax.Array, g_ba_of_a: jax.Array, real_b: jax.Array, g_ab_of_b: jax.Array,
                  lam: float = 10.0, weight: float = 0.5) -> jax.Array:
    """Identity mapping loss: each generator should leave images of its *target* domain unchanged.

    Official: ``idt_A = netG_A(real_B)``, ``loss_idt_A = L1(idt_A, real_B) * lambda_B * lambda_identity``;
    ``idt_B = netG_B(real_A)``, ``loss_idt_B = L1(idt_B, real_A) * lambda_A * lambda_identity``. Here
    netG_A = g_ab, netG_B = g_ba, lambda_A = lambda_B = ``lam``, lambda_identity = ``weight``:
    ``weight * lam * (mean|g_ab_of_b - real_b| + mean|g_ba_of_a - real_a|)``. Needs channels_a == channels_b.
    """
    return weight * lam * (jnp.mean(jnp.abs(g_ab_of_b - real_b)) + jnp.mean(jnp.abs(g_ba_of_a - real_a)))
