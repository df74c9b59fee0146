"""Sentence embeddings in one call: the tokenizer, the pretrained encoder and the pooling together.

    from mtl.sentence_encoder import SentenceEncoder, encode

    vectors = encode(["a sentence", "another one"])  # (2, 384) float32, unit length: all-MiniLM-L6-v2's own output
    model = SentenceEncoder()                        # keeps the weights and compiled programs between calls
    model.encode(texts, batch_size=64)

The settings default to the model folder's own (sentence-transformers' `sentence_bert_config.json` and
`modules.json`): all-MiniLM-L6-v2 truncates at 256 tokens, mean-pools over the attention mask and L2-normalises.
The result equals the four-call path (`Tokenizer.encode`, `load_pretrained`, `BertEncoder.apply`, `pool`; tested),
and so sentence-transformers' own embeddings to 1e-4 (tests/test_mtl_encoder.py's fixture). Batches are padded
to a power-of-two token width and to `batch_size` rows, so a few compiled programs serve any list of texts.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxnas.common.errors import ConfigError
from mtl.encoder import POOLINGS, BertEncoder, Tokenizer, load_pretrained, model_dir, pool


def model_settings(path: str | None = None) -> dict[str, Any]:
    """{max_length, pooling, normalize} as the model folder's sentence-transformers files give them (defaults: 128,
    mean, no normalisation where a file is missing)."""
    folder = model_dir(path)
    out: dict[str, Any] = {"max_length": 128, "pooling": "mean", "normalize": False}
    st = os.path.join(folder, "sentence_bert_config.json")
    if os.path.isfile(st):
        with open(st) as f:
            out["max_length"] = int(json.load(f).get("max_seq_length", 128))
    pooling_cfg = os.path.join(folder, "1_Pooling", "config.json")
    if os.path.isfile(pooling_cfg):
        with open(pooling_cfg) as f:
            cfg = json.load(f)
        out["pooling"] = "cls" if cfg.get("pooling_mode_cls_token") else "mean"
    modules = os.path.join(folder, "modules.json")
    if os.path.isfile(modules):
        with open(modules) as f:
            out["normalize"] = any(m.get("type", "").endswith(".Normalize") for m in json.load(f))
    return out


def token_batches(tokenizer: Tokenizer, texts: Sequence[str], max_length: int,
                  batch_size: int) -> Iterator[tuple[int, int, np.ndarray, np.ndarray]]:
    """(start, count, ids, mask) for `texts` in batches of `batch_size` rows (the last padded with rows attending to
    one [PAD] token: finite, to be dropped), each tokenised to at most `max_length` tokens and padded to a
    power-of-two width (at least 8), so that a few compiled programs serve any texts."""
    if batch_size < 1:
        raise ConfigError("batch_size", f"got {batch_size}; allowed: >= 1")
    for start in range(0, len(texts), batch_size):
        chunk = [str(t) for t in texts[start:start + batch_size]]
        enc = tokenizer.encode(chunk, max_length=max_length)
        n, w = enc["input_ids"].shape
        width = min(max_length, max(8, 1 << (w - 1).bit_length()))
        ids = np.zeros((batch_size, width), np.int32)
        mask = np.zeros((batch_size, width), np.int32)
        ids[:n, :w], mask[:n, :w] = enc["input_ids"], enc["attention_mask"]
        mask[n:, 0] = 1
        yield start, n, ids, mask


class SentenceEncoder:
    """The pretrained encoder ready to embed texts; `encode(texts)` gives (N, D) float32 embeddings."""

    def __init__(self, path: str | None = None, max_length: int | None = None, pooling: str | None = None,
                 normalize: bool | None = None, dtype: Any = jnp.float32):
        own = model_settings(path)
        self.max_length = own["max_length"] if max_length is None else max_length
        self.pooling = own["pooling"] if pooling is None else pooling
        self.normalize = own["normalize"] if normalize is None else normalize
        if self.pooling not in POOLINGS:
            raise ConfigError("pooling", f"got {self.pooling!r}; allowed: {', '.join(POOLINGS)}")
        self.config, self.params = load_pretrained(path)
        positions = self.config.max_position_embeddings
        if not 2 <= self.max_length <= positions:
            raise ConfigError("max_length", f"got {self.max_length}; allowed: 2 .. {positions} (the model's positions)")
        self.tokenizer = Tokenizer(path)
        net = BertEncoder(self.config, dtype=dtype)
        pooling_, normalize_ = self.pooling, self.normalize

        def embed(params: Any, ids: jax.Array, mask: jax.Array) -> jax.Array:
            return pool(net.apply({"params": params}, ids, mask), mask, pooling_, normalize_)

        self._embed = jax.jit(embed)

    @property
    def dim(self) -> int:
        return self.config.hidden_size

    def encode(self, texts: Sequence[str] | str, batch_size: int = 64) -> np.ndarray:
        """(N, D) float32 embeddings of `texts` (a single string gives (1, D)), `batch_size` texts per call."""
        if isinstance(texts, str):
            texts = [texts]
        out = np.zeros((len(texts), self.dim), np.float32)
        for start, n, ids, mask in token_batches(self.tokenizer, texts, self.max_length, batch_size):
            out[start:start + n] = np.asarray(self._embed(self.params, ids, mask))[:n]
        return out


_DEFAULT: SentenceEncoder | None = None


def encode(texts: Sequence[str] | str, batch_size: int = 64) -> np.ndarray:
    """Embeddings of `texts` with the default pretrained encoder (loaded on first use, then kept)."""
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = SentenceEncoder()
    return _DEFAULT.encode(texts, batch_size=batch_size)
