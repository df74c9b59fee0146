"""Freezing strategies and the optimiser, built with optax partitioning.

Which parts of a pretrained encoder to train when labelled data are small is the course's question 3;
the options follow common practice in fine-tuning BERT-style encoders (Howard & Ruder, ULMFiT, ACL 2018;
Lee et al., "What would Elsa do? Freezing layers during transformer fine-tuning", 2019; adapters-like
"train only the feed-forward blocks"):

  none     train everything (encoder and heads)
  encoder  freeze the whole encoder, train the heads only (feature extraction; the encoder also runs
           without dropout, so its features are constant and `mtl.train` computes them once)
  value    freeze the attention value projections only, train everything else
  ffn      train only the feed-forward blocks of each layer (intermediate and output dense) plus the heads

The optimiser is AdamW with BERT's linear warm-up and linear decay (Devlin et al. 2019), decay on
kernels and embeddings only (not on biases and LayerNorm parameters), separate learning rates for the
encoder and the heads. Frozen parameters get `optax.set_to_zero()` inside `optax.multi_transform`, so
they stay bit-identical even with weight decay on. (The trap this avoids: chaining a freezing mask
*before* a decoupled weight decay, e.g. `chain(masked(set_to_zero), adamw)`, still shrinks the frozen
weights by lr x wd every step, because AdamW's decay term is added after the zeroed gradient.)

The optional L1 penalty on each head's first layer is applied as a proximal step (soft-thresholding by
lr x lambda after the AdamW update, Parikh & Boyd, "Proximal Algorithms", 2014), which makes unused
encoder features exactly zero instead of merely small; `mtl.sparsity` reads them off. Deviation, documented:
after an Adam step the shrinkage lr x lambda is in Adam's normalised step units (each coordinate moves by
about lr per step whatever its gradient scale), so this is the common "proximal Adam" heuristic, not the
exact L1-regularised optimum (which ProxGen, Yun et al. NeurIPS 2021, would reach with a preconditioned
threshold); useful lambdas are therefore O(0.1-1), not O(1e-3).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from jaxnas.common.errors import check_choice, check_range

FREEZING = ("none", "encoder", "value", "ffn")
DESCRIPTIONS = {
    "none": "train everything",
    "encoder": "freeze the encoder (heads only)",
    "value": "freeze the value projections only",
    "ffn": "train only the feed-forward blocks (+ heads)",
}


def _keys(path: tuple) -> tuple[str, ...]:
    return tuple(str(getattr(p, "key", p)) for p in path)


def _encoder_trainable(keys: tuple[str, ...], strategy: str) -> bool:
    if strategy == "none":
        return True
    if strategy == "encoder":
        return False
    if strategy == "value":
        return keys[-1] not in ("value_kernel", "value_bias")
    # ffn: encoder/layer_i/{intermediate,output}/{kernel,bias} (not the attention output, not LayerNorms)
    return len(keys) == 4 and keys[1].startswith("layer_") and keys[2] in ("intermediate", "output")


def param_labels(params: Any, strategy: str) -> Any:
    """A pytree of 'encoder' | 'head' | 'frozen' labels, one per parameter leaf."""
    check_choice("freeze", strategy, FREEZING)

    def label(path: tuple, _: Any) -> str:
        keys = _keys(path)
        if keys[0].startswith("heads_"):
            return "head"
        return "encoder" if _encoder_trainable(keys, strategy) else "frozen"

    return jax.tree_util.tree_map_with_path(label, params)


def trainable_count(params: Any, strategy: str) -> int:
    """How many parameters the strategy trains."""
    labels = jax.tree.leaves(param_labels(params, strategy))
    return int(sum(x.size for x, lab in zip(jax.tree.leaves(params), labels) if lab != "frozen"))


def first_layer_mask(params: Any) -> Any:
    """True on each head's first-layer kernel (where the L1 penalty applies)."""
    return jax.tree_util.tree_map_with_path(
        lambda path, _: _keys(path)[0].startswith("heads_") and _keys(path)[-2:] == ("first", "kernel"), params
    )


def _decay_mask(params: Any) -> Any:
    return jax.tree.map(lambda x: x.ndim >= 2, params)  # kernels and embeddings; not biases or LayerNorm


def warmup_linear_decay(peak: float, warmup_steps: int, total_steps: int) -> optax.Schedule:
    """BERT's schedule: linear warm-up from 0 to `peak`, then linear decay to 0 at `total_steps`."""
    warmup_steps = max(int(warmup_steps), 1)
    return optax.join_schedules(
        [optax.linear_schedule(0.0, peak, warmup_steps),
         optax.linear_schedule(peak, 0.0, max(total_steps - warmup_steps, 1))],
        [warmup_steps],
    )


class _CountState(NamedTuple):
    count: jax.Array


def l1_proximal(threshold: Callable[[jax.Array], jax.Array]) -> optax.GradientTransformation:
    """Turns an update u into the soft-thresholded step: p + u' = sign(p + u) max(|p + u| - t, 0).

    `threshold(count)` gives t at each step (lr(count) x lambda). Needs `params`.
    """

    def init(params: Any) -> _CountState:
        del params
        return _CountState(jnp.zeros([], jnp.int32))

    def update(updates: Any, state: _CountState, params: Any = None):
        if params is None:
            raise ValueError("l1_proximal needs params")
        t = threshold(state.count)

        def prox(u: jax.Array, p: jax.Array) -> jax.Array:
            z = p + u
            return jnp.sign(z) * jnp.maximum(jnp.abs(z) - t, 0.0) - p

        return jax.tree.map(prox, updates, params), _CountState(state.count + 1)

    return optax.GradientTransformation(init, update)


def make_optimizer(
    params: Any,
    strategy: str,
    *,
    lr_encoder: float,
    lr_heads: float,
    weight_decay: float,
    warmup_steps: int,
    total_steps: int,
    l1: float = 0.0,
) -> optax.GradientTransformation:
    """AdamW over the trainable groups, zero updates for the frozen group, optional L1 proximal step."""
    check_range("weight_decay", weight_decay, 0.0, 1.0)
    check_range("l1", l1, 0.0, float("inf"))
    enc_lr = warmup_linear_decay(lr_encoder, warmup_steps, total_steps)
    head_lr = warmup_linear_decay(lr_heads, warmup_steps, total_steps)
    groups = {
        "encoder": optax.adamw(enc_lr, weight_decay=weight_decay, mask=_decay_mask),
        "head": optax.adamw(head_lr, weight_decay=weight_decay, mask=_decay_mask),
        "frozen": optax.set_to_zero(),
    }
    tx = optax.multi_transform(groups, param_labels(params, strategy))
    if l1 > 0:
        tx = optax.chain(tx, optax.masked(l1_proximal(lambda c: head_lr(c) * l1), first_layer_mask(params)))
    return tx
