"""The Flax BERT encoder against the stored sentence-transformers fixture (tests/fixtures/make_minilm_fixture.py
generated it once with the PyTorch reference), plus weight loading and tokenizer checks."""

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxnas.common.errors import ConfigError
from mtl.encoder import BertConfig, BertEncoder, Tokenizer, load_pretrained, model_dir, pool

FIXTURE = os.path.join(os.path.dirname(__file__), "fixtures", "minilm_reference.npz")


@pytest.fixture(scope="module")
def reference():
    return dict(np.load(FIXTURE))


@pytest.fixture(scope="module")
def pretrained():
    return load_pretrained()


@pytest.fixture(scope="module")
def tokenizer():
    return Tokenizer()


@pytest.fixture(scope="module")
def hidden(pretrained, reference):
    config, params = pretrained
    fn = jax.jit(lambda p, i, m: BertEncoder(config).apply({"params": p}, i, m))
    return np.asarray(fn(params, reference["input_ids"], reference["attention_mask"]))


def test_fixture_has_enough_varied_sentences(reference):
    assert len(reference["sentences"]) >= 8
    lengths = reference["attention_mask"].sum(1)
    assert lengths.min() <= 5 and lengths.max() == int(reference["max_seq_length"])  # one is truncated


def test_tokenizer_matches_sentence_transformers(tokenizer, reference):
    enc = tokenizer.encode(reference["sentences"], max_length=int(reference["max_seq_length"]))
    np.testing.assert_array_equal(enc["input_ids"], reference["input_ids"])
    np.testing.assert_array_equal(enc["attention_mask"], reference["attention_mask"])
    enc128 = tokenizer.encode(reference["sentences"], max_length=128)
    np.testing.assert_array_equal(enc128["input_ids"], reference["input_ids_128"])
    np.testing.assert_array_equal(enc128["attention_mask"], reference["attention_mask_128"])
    assert enc["input_ids"][:, 0].tolist() == [101] * len(reference["sentences"])  # [CLS] first


@pytest.mark.parametrize("name,pooling,normalize", [("embeddings", "mean", True), ("mean_pooled", "mean", False),
                                                    ("cls", "cls", False)])
def test_sentence_embeddings_match_reference(hidden, reference, name, pooling, normalize):
    out = np.asarray(pool(jnp.asarray(hidden), reference["attention_mask"], pooling, normalize))
    assert out.shape == reference[name].shape
    assert np.abs(out - reference[name]).max() <= 1e-4


def test_bfloat16_matmuls_stay_close(pretrained, reference):
    config, params = pretrained
    ids, mask = reference["input_ids_128"], reference["attention_mask_128"]
    fn = jax.jit(lambda p: pool(BertEncoder(config, jnp.bfloat16).apply({"params": p}, ids, mask), mask, "mean", True))
    out = np.asarray(fn(params))
    short = mask.sum(1) < 128  # the two long sentences are truncated differently at 128 and 256 tokens
    assert short.sum() >= 8
    cos = (out[short] * reference["embeddings"][short]).sum(1)
    assert cos.min() > 0.9999
    assert np.abs(out[short] - reference["embeddings"][short]).max() < 5e-3


def test_padding_does_not_change_embeddings(pretrained, tokenizer):
    config, params = pretrained
    texts = ["short one", "a somewhat longer sentence with more tokens in it"]
    tight = tokenizer.encode(texts, max_length=64)
    wide = tokenizer.encode(texts, max_length=64, pad_to=40)
    fn = jax.jit(lambda p, i, m: pool(BertEncoder(config).apply({"params": p}, i, m), m, "mean", True))
    assert tight["input_ids"].shape[1] < 40 == wide["input_ids"].shape[1]
    np.testing.assert_allclose(fn(params, tight["input_ids"], tight["attention_mask"]),
                               fn(params, wide["input_ids"], wide["attention_mask"]), atol=1e-5)


def test_loaded_weights_shape_and_count(pretrained):
    config, params = pretrained
    assert config == BertConfig()  # MiniLM-L6-H384: the defaults
    n = sum(x.size for x in jax.tree.leaves(params))
    assert n == 22_565_376  # 22.7M in the model card includes the unused pooler (147,840)
    assert params["layer_0"]["attention"]["query_kernel"].shape == (384, 384)
    assert params["layer_5"]["intermediate"]["kernel"].shape == (384, 1536)


def test_missing_model_folder_fails_clearly(tmp_path):
    with pytest.raises(ConfigError, match="encoder.path.*model.safetensors"):
        model_dir(str(tmp_path))
    with pytest.raises(ConfigError, match="max_length"):
        Tokenizer().encode(["x"], max_length=1)
    assert os.path.isfile(os.path.join(model_dir(), "tokenizer.json"))


def test_encode_in_one_call_equals_the_four_call_path_and_the_reference(pretrained, tokenizer, reference):
    """`encode(texts)` (bucketed widths, padded batches) gives what the four calls give, and so sentence-transformers'
    embeddings; its settings are the model folder's own (256 tokens, mean pooling, normalised)."""
    from mtl.sentence_encoder import SentenceEncoder, model_settings

    assert model_settings() == {"max_length": 256, "pooling": "mean", "normalize": True}
    sentences = [str(s) for s in reference["sentences"]]
    length = int(reference["max_seq_length"])
    model = SentenceEncoder(max_length=length)
    out = model.encode(sentences, batch_size=5)  # 12 texts: batches of 5, 5 and 2 (padded rows dropped)
    config, params = pretrained
    enc = tokenizer.encode(sentences, max_length=length)
    hidden = BertEncoder(config).apply({"params": params}, enc["input_ids"], enc["attention_mask"])
    four = np.asarray(pool(hidden, enc["attention_mask"], "mean", True))
    assert out.shape == (12, 384) and out.dtype == np.float32
    assert np.abs(out - four).max() <= 1e-5
    assert np.abs(out - reference["embeddings"]).max() <= 1e-4
    np.testing.assert_allclose(model.encode(sentences[3]), out[3:4], atol=1e-5)  # a single string
    with pytest.raises(ConfigError, match="^batch_size: got 0"):
        model.encode(sentences, batch_size=0)
    with pytest.raises(ConfigError, match="^max_length: got 1000; allowed: 2 .. 512"):
        SentenceEncoder(max_length=1000)
