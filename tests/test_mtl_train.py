"""The multi-task trainer on a tiny encoder: data-parallel == single device, resume == uninterrupted, the
cached-features path == the frozen-encoder path, NaNs stop training, batch schedules are pure functions."""

import dataclasses

import jax
import numpy as np
import pytest

from mtl.data import Corpus, TextTask
from mtl.encoder import BertConfig, Tokenizer
from mtl.losses import make_loss
from mtl.model import HeadConfig, MultiTaskModel, init_params
from mtl.train import BatchSchedule, MultiTaskTrainer, TrainSettings

pytestmark = pytest.mark.usefixtures("fast_compile")  # a 1-layer encoder, 4 steps: compile-bound (59 -> 48 s CPU)

TASKS = (TextTask("topic", ("a", "b", "c")), TextTask("sentiment", ("neg", "pos")))
WORDS = "good bad movie film book tweet news great awful fine plot actor story price".split()


def _corpus(n=48, seed=0):
    rng = np.random.default_rng(seed)
    texts = [" ".join(rng.choice(WORDS, size=rng.integers(2, 12))) for _ in range(n)]
    return Corpus(np.array(texts, object), {"topic": rng.integers(0, 3, n), "sentiment": rng.integers(0, 2, n)}, TASKS)


def _model(dropout=0.0):
    cfg = BertConfig(hidden_size=16, num_layers=1, num_heads=2, intermediate_size=32, max_position_embeddings=32,
                     hidden_dropout=dropout, attention_dropout=dropout)
    return MultiTaskModel(cfg, tuple((t.name, len(t.class_names)) for t in TASKS), HeadConfig(hidden=8, dropout=dropout))


@pytest.fixture(scope="module")
def tokenizer():
    return Tokenizer()


@pytest.fixture(scope="module")
def corpus():
    return _corpus()


SETTINGS = TrainSettings(steps=4, batch_size=8, max_length=16, pad_multiple=8, lr_encoder=1e-3, lr_heads=1e-2,
                         checkpoint_every=2, eval_batch_size=16)


def _trainer(corpus, tokenizer, *, freeze="none", loss="weighted", devices=None, model=None, settings=SETTINGS,
             **kw):
    model = model or _model()
    params = init_params(model, jax.random.key(0))
    losses = {t.name: make_loss(loss, corpus.counts(t.name)) for t in TASKS}
    return MultiTaskTrainer(model, params, [corpus], losses, freeze, tokenizer, settings, devices=devices, **kw)


def _close(a, b, atol=1e-5):
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), atol=atol)


def test_eight_devices_equal_one(corpus, tokenizer):
    assert len(jax.devices()) == 8
    one, _ = _trainer(corpus, tokenizer, devices=jax.devices()[:1]).train(jax.random.key(1))
    eight, hist = _trainer(corpus, tokenizer).train(jax.random.key(1))
    _close(one.params, eight.params)
    assert len(hist) == 4 and all(np.isfinite(h["loss"]) for h in hist)


def test_resume_equals_uninterrupted(corpus, tokenizer, tmp_path):
    full, hist_full = _trainer(corpus, tokenizer).train(jax.random.key(2))
    _trainer(corpus, tokenizer).train(jax.random.key(2), workdir=str(tmp_path), stop_at=2)
    resumed, hist = _trainer(corpus, tokenizer).train(jax.random.key(2), workdir=str(tmp_path))
    assert int(resumed.step) == 4 and [h["step"] for h in hist] == [1, 2, 3, 4]
    _close(full.params, resumed.params, atol=0)
    assert [h["loss"] for h in hist] == pytest.approx([h["loss"] for h in hist_full])


def test_changed_settings_refuse_to_resume(corpus, tokenizer, tmp_path):
    from jaxnas.common.errors import ConfigError

    _trainer(corpus, tokenizer).train(jax.random.key(2), workdir=str(tmp_path), stop_at=2)
    other = dataclasses.replace(SETTINGS, lr_heads=0.5)
    with pytest.raises(ConfigError, match="workdir"):
        _trainer(corpus, tokenizer, settings=other).train(jax.random.key(2), workdir=str(tmp_path))


def test_cached_features_equal_frozen_encoder(corpus, tokenizer):
    cached = _trainer(corpus, tokenizer, freeze="encoder")
    direct = _trainer(corpus, tokenizer, freeze="encoder", cache_features=False)
    assert cached.features_mode and not direct.features_mode
    a, _ = cached.train(jax.random.key(3))
    b, _ = direct.train(jax.random.key(3))
    _close(cached.full_params(a.params), direct.full_params(b.params))
    np.testing.assert_array_equal(b.params["encoder"]["layer_0"]["output"]["kernel"],
                                  direct.encoder_params["layer_0"]["output"]["kernel"])
    pa, pb = cached.predict(a.params, corpus), direct.predict(b.params, corpus)
    for t in pa:
        np.testing.assert_allclose(pa[t], pb[t], atol=1e-4)


def test_same_seed_same_run_different_seed_differs(corpus, tokenizer):
    model = _model(dropout=0.1)
    a, _ = _trainer(corpus, tokenizer, model=model).train(jax.random.key(5))
    b, _ = _trainer(corpus, tokenizer, model=model).train(jax.random.key(5))
    c, _ = _trainer(corpus, tokenizer, model=model).train(jax.random.key(6))
    _close(a.params, b.params, atol=0)
    assert not np.allclose(a.params["heads_topic"]["out"]["kernel"], c.params["heads_topic"]["out"]["kernel"])


def test_nan_stops_with_the_step_named(corpus, tokenizer):
    trainer = _trainer(corpus, tokenizer, freeze="encoder")
    bad = jax.tree.map(lambda x: x, trainer.initial_params)
    bad["heads_topic"]["first"]["kernel"] = bad["heads_topic"]["first"]["kernel"].at[0, 0].set(np.nan)
    trainer.initial_params = bad
    with pytest.raises(FloatingPointError, match="diverged at step 1"):
        trainer.train(jax.random.key(0))


def test_batch_schedule_is_pure_and_covers_epochs():
    sched = BatchSchedule([20, 60], batch_size=5, steps=40, seed=0, alpha=1.0)
    again = BatchSchedule([20, 60], batch_size=5, steps=40, seed=0, alpha=1.0)
    for s in range(40):
        j, idx = sched(s)
        j2, idx2 = again(s)
        assert j == j2 and np.array_equal(idx, idx2) and len(idx) == 5
    assert (sched.source == 0).sum() == 10 and (sched.source == 1).sum() == 30  # proportional (MT-DNN)
    first_epoch = np.concatenate([sched(s)[1] for s in np.flatnonzero(sched.source == 0)[:4]])
    assert sorted(first_epoch) == list(range(20))  # one epoch of source 0 is a permutation
