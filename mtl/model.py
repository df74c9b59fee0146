"""Hard parameter sharing: one shared encoder, one classification head per task.

Caruana, "Multitask Learning", Machine Learning 1997 (hard sharing); Liu et al., "Multi-Task Deep Neural
Networks for Natural Language Understanding" (MT-DNN), ACL 2019 (a pretrained BERT encoder shared by
task-specific output layers). Each head reads the pooled sentence embedding; its first layer is the one the
L1 sparsity analysis looks at (`first_layer_kernel`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxnas.common.errors import check, check_choice
from mtl.encoder import POOLINGS, BertConfig, BertEncoder, pool


@dataclasses.dataclass(frozen=True)
class HeadConfig:
    """A task head: `hidden` = 0 gives a linear classifier, else Dense(hidden) -> GELU -> dropout -> Dense(C)."""

    hidden: int = 256
    dropout: float = 0.1


class Head(nn.Module):
    num_classes: int
    config: HeadConfig = HeadConfig()

    @nn.compact
    def __call__(self, features: jax.Array, deterministic: bool = True) -> jax.Array:
        x = nn.Dropout(self.config.dropout)(features, deterministic=deterministic)
        if self.config.hidden:
            x = nn.gelu(nn.Dense(self.config.hidden, name="first")(x), approximate=False)
            x = nn.Dropout(self.config.dropout)(x, deterministic=deterministic)
            return nn.Dense(self.num_classes, name="out")(x)
        return nn.Dense(self.num_classes, name="first")(x)  # (B, C)


def first_layer_kernel(head_params: Mapping[str, Any]) -> jax.Array:
    """The (D, H) kernel of a head's first layer: row i is how the head uses encoder feature i."""
    return head_params["first"]["kernel"]


class MultiTaskModel(nn.Module):
    """Shared BERT encoder + one head per task. Params: {'encoder': ..., 'heads': {task: ...}}."""

    encoder_config: BertConfig
    tasks: Sequence[tuple[str, int]]  # (name, number of classes)
    head: HeadConfig = HeadConfig()
    pooling: str = "mean"
    dtype: Any = jnp.float32

    def setup(self) -> None:
        check_choice("pooling", self.pooling, POOLINGS)
        check(len(self.tasks) >= 1, "tasks", "need at least one task")
        self.encoder = BertEncoder(self.encoder_config, self.dtype)
        self.heads = {name: Head(n, self.head) for name, n in self.tasks}

    def encode(self, input_ids: jax.Array, attention_mask: jax.Array, deterministic: bool = True) -> jax.Array:
        """Pooled sentence features (B, D), float32."""
        hidden = self.encoder(input_ids, attention_mask, deterministic=deterministic)
        return pool(hidden, attention_mask, self.pooling)

    def classify(self, features: jax.Array, deterministic: bool = True) -> dict[str, jax.Array]:
        """Logits per task from pooled features: {task: (B, C_task)}."""
        return {name: head(features, deterministic) for name, head in self.heads.items()}

    def __call__(self, input_ids: jax.Array, attention_mask: jax.Array, deterministic: bool = True):
        return self.classify(self.encode(input_ids, attention_mask, deterministic), deterministic)


def split_params(params: Mapping[str, Any]) -> tuple[Any, Any]:
    """(encoder params, {task: head params}) from a MultiTaskModel parameter tree."""
    heads = {k[len("heads_"):]: v for k, v in params.items() if k.startswith("heads_")}
    return params["encoder"], heads


def init_params(model: MultiTaskModel, key: jax.Array, encoder_params: Any | None = None) -> dict:
    """Initial parameters; given `encoder_params` (e.g. the pretrained MiniLM), only the heads are initialised
    and the encoder entry is that very object (so caches keyed on it stay valid)."""
    if encoder_params is None:
        dummy = jnp.zeros((1, 2), jnp.int32)
        return dict(jax.jit(lambda k: model.init(k, dummy, jnp.ones((1, 2), jnp.int32))["params"])(key))
    want = jax.eval_shape(lambda: model.init(key, jnp.zeros((1, 2), jnp.int32), jnp.ones((1, 2), jnp.int32)))
    got = jax.tree.map(lambda x: jax.ShapeDtypeStruct(jnp.shape(x), jnp.result_type(x)), encoder_params)
    check(jax.tree.structure(got) == jax.tree.structure(want["params"]["encoder"])
          and jax.tree.leaves(got) == jax.tree.leaves(want["params"]["encoder"]),
          "encoder.path", "pretrained weights do not match the encoder configuration")
    features = jnp.zeros((1, model.encoder_config.hidden_size), jnp.float32)
    heads = model.init(key, features, method=MultiTaskModel.classify)["params"]
    return {"encoder": encoder_params, **heads}


def count_params(tree: Any) -> int:
    return int(sum(x.size for x in jax.tree.leaves(tree)))
